package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/engine"
)

// TestAdvice: every remedy the engine defines is worded in ckpt's flags
// (or commands), with its argument where the engine's words have one.
func TestAdvice(t *testing.T) {
	n := 0
	for r := engine.Remedy(1); !strings.HasPrefix(r.String(), "Remedy("); r++ {
		n++
		re := &engine.RemedyError{Err: errors.New("problem"), Remedy: r, Arg: "ARG"}
		got := message(re)
		a, ok := strings.CutPrefix(got, "problem: ")
		if !ok || a == "" || got == re.Error() || strings.Contains(a, "Options") || strings.Contains(a, "Engine.") {
			t.Errorf("message(%v) = %q, want the problem and advice in ckpt's terms (engine: %q)", r, got, re.Error())
			continue
		}
		if !strings.Contains(a, "-") && !strings.Contains(a, "`ckpt ") {
			t.Errorf("message(%v) = %q names no flag or command", r, got)
		}
		if strings.Contains(re.Error(), "ARG") != strings.Contains(a, "ARG") {
			t.Errorf("message(%v) = %q, engine's %q: the argument is lost or invented", r, got, re.Error())
		}
	}
	if n < 15 {
		t.Errorf("%d remedies found, want the engine's 15 or more", n)
	}
	if got := message(&engine.RemedyError{Err: errors.New("problem"), Remedy: engine.Remedy(1000)}); got != "problem: Remedy(1000)" {
		t.Errorf("message(unknown remedy) = %q, want the engine's words", got)
	}
}

// TestMessage: only a *RemedyError on top of the chain, as the engine
// returns it, is reworded; plain errors keep their text.
func TestMessage(t *testing.T) {
	re := &engine.RemedyError{Err: fmt.Errorf("import a.ckpt: %w: a container named web exists", engine.ErrNameInUse), Remedy: engine.RemedyName}
	want := "import a.ckpt: engine: name already in use: a container named web exists: restore with --name to choose another name"
	if got := message(re); got != want {
		t.Errorf("message(RemedyError) = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("outer: %w", re)
	if got := message(wrapped); got != wrapped.Error() {
		t.Errorf("message(wrapped RemedyError) = %q, want the engine's %q", got, wrapped.Error())
	}
	if got := message(engine.ErrBusy); got != engine.ErrBusy.Error() {
		t.Errorf("message(ErrBusy) = %q", got)
	}
}
