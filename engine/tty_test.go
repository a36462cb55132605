package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestIntegrationTerminal checkpoints and restores a container run with a
// terminal (run -t), in place and through an export imported on a second
// root: the counter goes on, and what it prints still passes a terminal
// (the \r of its output post-processing).
func TestIntegrationTerminal(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	ctx := context.Background()
	cmd := []string{"/bin/counter", "-interval", "50ms", "-file", ""}
	if _, err := e.Run(ctx, "workload", &RunOptions{Name: "tty", Command: cmd, Terminal: true, TerminalRows: 33, TerminalCols: 77}); err != nil {
		t.Fatal(err)
	}
	ttyLog := func() string { return strings.ReplaceAll(logsOf(t, e, "tty"), "\r\n", "\n") }
	waitLog(t, e, "tty", "counter 3", func(string) bool { return lastCounter(ttyLog()) >= 3 })
	if l := logsOf(t, e, "tty"); !strings.Contains(l, "\r\n") {
		t.Fatalf("output of a container with a terminal has no \\r\\n (no terminal?):\n%q", tail(l, 3))
	}
	spec, err := readSpec(filepath.Join(e.containerDir(mustID(t, e, "tty")), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if p := spec.Process; !p.Terminal || p.ConsoleSize == nil || p.ConsoleSize.Height != 33 || p.ConsoleSize.Width != 77 {
		t.Fatalf("spec process: terminal %v, console size %+v; want true, 33x77", p.Terminal, p.ConsoleSize)
	}
	if _, err := e.Checkpoint(ctx, "tty", nil); err != nil {
		t.Fatal(err)
	}
	at := lastCounter(ttyLog())
	if _, err := e.Restore(ctx, "tty", nil); err != nil {
		t.Fatal(err)
	}
	waitLog(t, e, "tty", "the counter to go on", func(string) bool { return lastCounter(ttyLog()) >= at+3 })
	checkContinues(t, ttyLog(), at)

	archive := filepath.Join(t.TempDir(), "tty.tar.zst")
	if _, err := e.Export(ctx, "tty", archive, nil); err != nil {
		t.Fatal(err)
	}
	at = lastCounter(ttyLog())
	dst := realEngine(t)
	if _, err := dst.Import(ctx, archive, nil); err != nil {
		t.Fatal(err)
	}
	got, err := dst.Inspect(ctx, "tty")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Terminal {
		t.Errorf("imported container: Terminal = false, want true")
	}
	dstLog := func() string { return strings.ReplaceAll(logsOf(t, dst, "tty"), "\r\n", "\n") }
	waitLog(t, dst, "tty", "the imported counter to go on", func(string) bool { return lastCounter(dstLog()) >= at+3 })
	checkContinues(t, dstLog(), at)
}

func mustID(t *testing.T, e *Engine, ref string) string {
	t.Helper()
	c, err := e.Inspect(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// TestApplySizes resizes a real pseudo-terminal from "ROWS COLS" lines,
// skipping malformed ones.
func TestApplySizes(t *testing.T) {
	m, s := testPTY(t)
	applySizes(m, strings.NewReader("x\n0 80\n40 100\n1 2 3\n"))
	ws, err := unix.IoctlGetWinsize(int(s.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		t.Fatal(err)
	}
	if ws.Row != 40 || ws.Col != 100 {
		t.Fatalf("window size %dx%d, want 40x100", ws.Row, ws.Col)
	}
}

// testPTY opens a pseudo-terminal pair, closed at the end of the test.
func testPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, s, err := openPTY()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}
