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

// TestPipeline checks that run stops at the first failing phase, undoes
// what the phases before it pushed, except a dropped step, and then
// releases what they hold, also after a success.
func TestPipeline(t *testing.T) {
	var ran []string
	note := func(name string) func() error {
		return func() error { ran = append(ran, name); return nil }
	}
	op := func(fail bool) error {
		var p pipeline
		return p.run(
			func() error { p.held.push("unlock", note("unlock")); return nil },
			func() error { p.undo.push("remove", note("remove")); return nil },
			func() error { p.undo.push("thaw", note("thaw")).drop(); return nil },
			func() error { p.held.push("close", note("close")); p.undo.push("rename", note("rename")); return nil },
			func() error {
				if fail {
					return ErrState
				}
				return nil
			},
			func() error { ran = append(ran, "last"); return nil },
		)
	}
	if err := op(true); err != ErrState || !reflect.DeepEqual(ran, []string{"rename", "remove", "close", "unlock"}) {
		t.Fatalf("run(fail) = %v, ran %v; want ErrState, rename remove close unlock", err, ran)
	}
	ran = nil
	if err := op(false); err != nil || !reflect.DeepEqual(ran, []string{"last", "close", "unlock"}) {
		t.Fatalf("run(ok) = %v, ran %v; want nil, last close unlock", err, ran)
	}
}
