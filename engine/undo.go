package engine

import (
	"errors"
	"fmt"
)

// undoStack holds the undo steps of an operation's phases. Each phase that
// changes the world pushes its undo right after it succeeds; if the
// operation fails, unwind runs them last first, so every phase is undone
// in the state it left. A phase that has nothing to undo pushes nothing.
//
//	var u undoStack
//	defer u.unwindOn(&err)
//	if err := makeThing(); err != nil {
//		return err
//	}
//	u.push("remove the thing", removeThing)
type undoStack struct {
	steps []*undoStep
}

// undoStep is one pushed undo.
type undoStep struct {
	what string
	fn   func() error
}

// push registers fn, which undoes what the phase just did; what names it
// in errors ("remove the container"). The step returned can be dropped
// by a later phase that undid or settled it itself (a container thawed
// on the way, an archive renamed into place).
func (u *undoStack) push(what string, fn func() error) *undoStep {
	s := &undoStep{what: what, fn: fn}
	u.steps = append(u.steps, s)
	return s
}

// drop removes the step from its stack: it will not run. Nil does
// nothing.
func (s *undoStep) drop() {
	if s != nil {
		s.fn = nil
	}
}

// unwind runs every step, last first, even when one fails, and returns
// the failures joined, each named. The stack is empty afterwards.
func (u *undoStack) unwind() error {
	var errs []error
	for i := len(u.steps) - 1; i >= 0; i-- {
		s := u.steps[i]
		if s.fn == nil {
			continue
		}
		if err := s.fn(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.what, err))
		}
	}
	u.steps = nil
	return errors.Join(errs...)
}

// unwindOn unwinds if *err is not nil, for a deferred call on a named
// error result. A failed undo is joined to *err as an *UndoError, so the
// caller learns both what failed and what could not be undone.
func (u *undoStack) unwindOn(err *error) {
	if *err == nil {
		u.steps = nil
		return
	}
	if uerr := u.unwind(); uerr != nil {
		*err = &UndoError{Err: *err, Undo: uerr}
	}
}

// pipeline runs an operation's phases with its two stacks: undo, what a
// failed operation undoes, and held, what the operation holds until it
// ends (its lock, its journal), released after any undo, whatever
// happened.
type pipeline struct {
	undo, held undoStack
}

// run runs the phases in turn until one fails; then it undoes what the
// earlier ones did, last first. Either way it then releases what the
// operation holds, last first.
func (p *pipeline) run(phases ...func() error) (err error) {
	defer func() { _ = p.held.unwind() }()
	defer p.undo.unwindOn(&err)
	for _, phase := range phases {
		if err := phase(); err != nil {
			return err
		}
	}
	return nil
}

// UndoError is a failed operation whose undo failed too: what is left
// behind is in Undo.
type UndoError struct {
	// Err is why the operation failed.
	Err error
	// Undo is what could not be undone, one line per step.
	Undo error
}

// Error returns Err's message and the undo's failures.
func (e *UndoError) Error() string {
	return fmt.Sprintf("%v (and undoing it failed: %v)", e.Err, e.Undo)
}

// Unwrap returns both errors, so errors.Is and errors.As see each.
func (e *UndoError) Unwrap() []error { return []error{e.Err, e.Undo} }
