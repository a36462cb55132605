package engine

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// hasRemedy reports whether err is a *RemedyError (at the top of the
// chain, as Engine methods return it) with remedy r and, unless arg is
// "", argument arg.
func hasRemedy(err error, r Remedy, arg string) bool {
	re, ok := err.(*RemedyError)
	return ok && re.Remedy == r && (arg == "" || re.Arg == arg)
}

// leftState reports whether err holds a *StateError that left want.
func leftState(err error, want LeftState) bool {
	var se *StateError
	return errors.As(err, &se) && se.Left == want
}

func TestRemedyAdvice(t *testing.T) {
	n := 0
	for r := Remedy(1); r < remedyEnd; r++ {
		n++
		a := r.advice("ARG")
		if a == "" || a == r.String() || strings.Contains(a, "--") {
			t.Errorf("%v.advice() = %q, want advice in the API's terms", r, a)
		}
	}
	if n == 0 || remedyEnd.String() != fmt.Sprintf("Remedy(%d)", int(remedyEnd)) {
		t.Errorf("remedyEnd.String() = %q", remedyEnd.String())
	}
}

func TestWrapfKeepsRemedyOnTop(t *testing.T) {
	inner := remedy(fmt.Errorf("%w: a container named x exists", ErrNameInUse), RemedyOtherName, "")
	err := wrapf(wrapf(inner, "previous checkpoint %s", "p"), "import %s", "a.ckpt")
	if !hasRemedy(err, RemedyOtherName, "") || !errors.Is(err, ErrNameInUse) {
		t.Fatalf("wrapf(RemedyError) = %#v, want a *RemedyError on top wrapping ErrNameInUse", err)
	}
	want := "import a.ckpt: previous checkpoint p: engine: name already in use: a container named x exists: choose another ImportOptions.Name"
	if err.Error() != want {
		t.Errorf("wrapf(RemedyError).Error() = %q, want %q", err, want)
	}
	plain := wrapf(ErrState, "import %s", "a.ckpt")
	if plain.Error() != "import a.ckpt: "+ErrState.Error() || !errors.Is(plain, ErrState) {
		t.Errorf("wrapf(ErrState) = %v", plain)
	}
}

func TestRolledBack(t *testing.T) {
	// As Restore returns it.
	restoreFailed := func() error {
		return wrapf(&StateError{Err: errors.New("runc restore exited with status 1"), Left: LeftCheckpointed}, "restore %s", "x")
	}
	err := restoreFailed()
	if got := err.Error(); got != "restore x: runc restore exited with status 1 (the container stays checkpointed and can be restored again)" {
		t.Errorf("StateError = %q", got)
	}
	err = wrapf(rolledBack(err), "import %s", "a.ckpt")
	if want := "import a.ckpt: restore x: runc restore exited with status 1 (the import was rolled back: no container, volume or staging directory is left)"; !leftState(err, LeftRolledBack) || err.Error() != want {
		t.Errorf("rolledBack(restore error) = %q, want LeftRolledBack: %q", err, want)
	}
	// Undoing failed: nothing said of what is left but the undo's error.
	err = rolledBack(&UndoError{Err: restoreFailed(), Undo: errors.New("remove the container: busy")})
	if !leftState(err, LeftUnknown) || strings.Contains(err.Error(), "rolled back") || strings.Contains(err.Error(), "stays checkpointed") {
		t.Errorf("rolledBack(undo failed) = %q, want LeftUnknown", err)
	}
	// Other errors are left alone.
	other := fmt.Errorf("import: %w", ErrState)
	if err := rolledBack(other); err != other {
		t.Errorf("rolledBack(other) = %v", err)
	}
}
