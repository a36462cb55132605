package engine

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestUndoStack(t *testing.T) {
	var ran []string
	step := func(name string, fail bool) func() error {
		return func() error {
			ran = append(ran, name)
			if fail {
				return errors.New(name + " failed")
			}
			return nil
		}
	}
	op := func(fail bool, failUndo bool) (err error) {
		var u undoStack
		defer u.unwindOn(&err)
		u.push("first", step("a", false))
		u.push("second", step("b", failUndo))
		u.push("third", step("c", false))
		if fail {
			return ErrState
		}
		return nil
	}

	if err := op(false, false); err != nil || len(ran) != 0 {
		t.Fatalf("op(ok) = %v, undid %v; want nil, nothing undone", err, ran)
	}
	err := op(true, false)
	if err != ErrState || !reflect.DeepEqual(ran, []string{"c", "b", "a"}) {
		t.Fatalf("op(fail) = %v, undid %v; want ErrState, c b a", err, ran)
	}
	ran = nil
	err = op(true, true)
	var ue *UndoError
	if !errors.As(err, &ue) || !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "second: b failed") ||
		!reflect.DeepEqual(ran, []string{"c", "b", "a"}) {
		t.Fatalf("op(fail, undo fails) = %v, undid %v; want an UndoError wrapping ErrState naming the second step, all undone", err, ran)
	}
}
