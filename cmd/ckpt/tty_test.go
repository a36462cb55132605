package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt/ckpt/internal/testutil"
	"golang.org/x/sys/unix"
)

// onPTY runs ckpt args with a new pseudo-terminal as its controlling
// terminal and stdio, as in a user's shell; type is called with the
// terminal's master once ckpt runs. It returns ckpt's exit code, what the
// terminal showed, and the terminal's mode after ckpt exited.
func onPTY(a *attachEnv, typeIn func(m *os.File, shown func() string), args ...string) (int, string, *unix.Termios) {
	a.t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		testutil.Missing(a.t, "pseudo-terminal: %v", err)
	}
	defer m.Close()
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		a.t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		a.t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		a.t.Fatal(err)
	}
	defer s.Close()
	_ = unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 77})
	c := a.cmd(args...)
	c.Stdin, c.Stdout, c.Stderr = s, s, s
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	var mu sync.Mutex
	var out bytes.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := m.Read(buf)
			mu.Lock()
			out.Write(buf[:k])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	if err := c.Start(); err != nil {
		a.t.Fatal(err)
	}
	typeIn(m, func() string { mu.Lock(); defer mu.Unlock(); return out.String() })
	code := wait(a.t, c)
	mode, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		a.t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the last output on its way through the terminal
	mu.Lock()
	defer mu.Unlock()
	return code, out.String(), mode
}

// typeWhenRaw waits until the terminal is in raw mode (ckpt attached the
// container's terminal to it) and shows after, then types text.
func typeWhenRaw(t *testing.T, after string, text ...string) func(m *os.File, shown func() string) {
	return func(m *os.File, shown func() string) {
		waitFor(t, func() bool {
			mode, err := unix.IoctlGetTermios(int(m.Fd()), unix.TCGETS)
			return err == nil && mode.Lflag&unix.ICANON == 0 && strings.Contains(shown(), after)
		})
		for _, s := range text {
			if _, err := io.WriteString(m, s); err != nil {
				t.Error(err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// TestRunTerminal: run -it on a terminal gives the container its own
// terminal, this one in raw mode (what is typed reaches the container's
// line discipline: echoed by it, ^D is its EOF) and restored afterwards;
// -t with this command's output in a pipe still gives the container a
// terminal (\r\n line ends).
func TestRunTerminal(t *testing.T) {
	a := newAttachEnv(t)
	code, shown, mode := onPTY(a, typeWhenRaw(t, "", "hello\r", "\x04"), "run", "-it", "--name", "it", "workload", "/bin/counter", "-cat")
	if code != 0 || strings.Count(shown, "hello\r\n") < 2 {
		t.Errorf("run -it: exit %d, terminal showed %q; want 0 and hello twice (echo, then counter -cat)", code, shown)
	}
	if mode.Lflag&(unix.ICANON|unix.ECHO) != unix.ICANON|unix.ECHO {
		t.Errorf("run -it left the terminal in raw mode (lflag %#x)", mode.Lflag)
	}
	if c := a.find("it"); c == nil || !c.Terminal {
		t.Errorf("container it: %+v, want one recorded with a terminal", c)
	}
	// Ctrl-C is a byte in raw mode: the container's terminal makes it the
	// counter's SIGINT, on which it exits 0 (once it runs: a Go program
	// as PID 1 exits 2 on a SIGINT before it handles it).
	code, shown, _ = onPTY(a, typeWhenRaw(t, "counter 1", "\x03"), "run", "-it", "--rm", "workload", "/bin/counter", "-interval", "100ms", "-file", "")
	if code != 0 || !strings.Contains(shown, "^C") {
		t.Errorf("run -it, Ctrl-C: exit %d, terminal showed %q; want 0 and the container's echo ^C", code, shown)
	}
	code, out, errOut := a.run(nil, "run", "-t", "--rm", "workload", "/bin/counter", "-ticks", "2", "-interval", "10ms", "-file", "")
	if code != 0 || out != "counter 1\r\ncounter 2\r\n" {
		t.Errorf("run -t into a pipe = %d, %q (stderr %q); want 0, the counter with \\r\\n", code, out, errOut)
	}
}

// TestExecTerminal: exec -t gives CMD a terminal (\r\n line ends), exec
// without it none, and exec -it on a terminal is interactive.
func TestExecTerminal(t *testing.T) {
	a := newAttachEnv(t)
	a.must("run", "-d", "--name", "ex", "workload", "/bin/counter", "-interval", "1s", "-file", "")
	for _, tt := range []struct {
		flags []string
		want  string
	}{
		{[]string{"-t"}, "counter 1\r\n"},
		{nil, "counter 1\n"},
	} {
		args := append(append([]string{"exec"}, tt.flags...), "ex", "/bin/counter", "-ticks", "1", "-interval", "1ms", "-file", "")
		if code, out, errOut := a.run(nil, args...); code != 0 || out != tt.want {
			t.Errorf("exec %q = %d, %q (stderr %q); want 0, %q", tt.flags, code, out, errOut, tt.want)
		}
	}
	code, shown, mode := onPTY(a, typeWhenRaw(t, "", "abc\r", "\x04"), "exec", "-it", "ex", "/bin/counter", "-cat")
	if code != 0 || strings.Count(shown, "abc\r\n") < 2 {
		t.Errorf("exec -it: exit %d, terminal showed %q; want 0 and abc twice", code, shown)
	}
	if mode.Lflag&(unix.ICANON|unix.ECHO) != unix.ICANON|unix.ECHO {
		t.Errorf("exec -it left the terminal in raw mode (lflag %#x)", mode.Lflag)
	}
}

// TestFollowSize: a SIGWINCH makes followSize write the terminal's size.
func TestFollowSize(t *testing.T) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		testutil.Missing(t, "pseudo-terminal: %v", err)
	}
	defer m.Close()
	if err := unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 12, Col: 34}); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	stop := followSize(w, m)
	if err := syscall.Kill(os.Getpid(), syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 6)
	if _, err := io.ReadFull(r, line); err != nil || string(line) != "12 34\n" {
		t.Errorf("followSize wrote %q, %v; want \"12 34\\n\"", line, err)
	}
	stop()
}
