package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ckpt/ckpt/engine"
	"golang.org/x/sys/unix"
)

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// makeRaw puts terminal f in raw mode (what it types goes to the
// container's terminal as it is, Ctrl-C included) and returns the
// function that restores its mode.
func makeRaw(f *os.File) (restore func(), err error) {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("read terminal mode: %w", err)
	}
	old := *t
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return nil, fmt.Errorf("set terminal raw: %w", err)
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, &old) }, nil
}

// termSize returns the window size of the first terminal of files, or
// zeros.
func termSize(files ...*os.File) (rows, cols uint16) {
	for _, f := range files {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Row > 0 && ws.Col > 0 {
			return ws.Row, ws.Col
		}
	}
	return 0, 0
}

// followSize writes "ROWS COLS" to w each time this command's terminal
// changes size (SIGWINCH), until stop is called; it closes w then.
func followSize(w *os.File, term *os.File) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		defer w.Close()
		for {
			select {
			case <-done:
				return
			case <-ch:
				if rows, cols := termSize(term); rows > 0 {
					fmt.Fprintf(w, "%d %d\n", rows, cols)
				}
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

// attachedTerminal is the client's side of run -t attached: the pipe the
// monitor copies the container's terminal output to, the pipe of window
// sizes, and this command's terminal mode while it is raw.
type attachedTerminal struct {
	out, outW, resizeR *os.File
	stopSize, restore  func()
}

// newAttachedTerminal sets o up for a terminal of this command's size
// whose output and resizing reach this command.
func newAttachedTerminal(o *engine.RunOptions) (*attachedTerminal, error) {
	o.Terminal = true
	o.TerminalRows, o.TerminalCols = termSize(os.Stdin, os.Stdout)
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create terminal pipe: %w", err)
	}
	t := &attachedTerminal{out: r, outW: w, stopSize: func() {}, restore: func() {}}
	o.TerminalOutput = w
	if isTerminal(os.Stdin) {
		rr, rw, err := os.Pipe()
		if err != nil {
			t.close()
			return nil, fmt.Errorf("create terminal pipe: %w", err)
		}
		t.resizeR, o.TerminalResize = rr, rr
		t.stopSize = followSize(rw, os.Stdin)
	}
	return t, nil
}

// started closes this command's copies of the ends the monitor now holds.
func (t *attachedTerminal) started() {
	if t == nil {
		return
	}
	t.outW.Close()
	if t.resizeR != nil {
		t.resizeR.Close()
	}
}

// raw puts this command's terminal, if stdin is one, in raw mode until
// the output ends.
func (t *attachedTerminal) raw() {
	if t == nil || !isTerminal(os.Stdin) {
		return
	}
	if restore, err := makeRaw(os.Stdin); err == nil {
		t.restore = restore
	}
}

// copyOut copies the terminal's output to w until the container's
// terminal closes, then restores this command's terminal mode.
func (t *attachedTerminal) copyOut(w io.Writer) {
	_, _ = io.Copy(w, t.out)
	t.restore()
	t.restore = func() {}
}

func (t *attachedTerminal) close() {
	t.restore()
	t.stopSize()
	t.out.Close()
	t.outW.Close()
	if t.resizeR != nil {
		t.resizeR.Close()
	}
}
