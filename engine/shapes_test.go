package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/testutil"
	"golang.org/x/sys/unix"
)

// Real workloads (issue 18): shapes of process state that users' containers
// have, each checkpointed and restored in place and then exported and
// imported on a second engine root, with the shape checked to have survived
// (data goes on from where it was, without gap or reset), or refused at
// checkpoint time with the cause where CRIU cannot do it.

// shapeTimeout bounds every wait for a workload to make progress: generous,
// because the machine may be loaded, but a thing that never happens fails.
const shapeTimeout = 60 * time.Second

// busyboxEngine returns realEngine with Debian's static busybox (every
// applet) imported as the image "busybox".
func busyboxEngine(t *testing.T) *Engine {
	t.Helper()
	e := realEngine(t)
	if _, err := e.ImageImport(context.Background(), testutil.RequireBusybox(t), "busybox"); err != nil {
		t.Fatal(err)
	}
	return e
}

// execOut runs cmd in the container ref and returns its stdout.
func execOut(t *testing.T, e *Engine, ref string, cmd ...string) string {
	t.Helper()
	out, err := execTry(e, ref, cmd...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// execTry runs cmd in the container ref and returns its stdout, or an
// error if it did not run or exited with a status other than 0.
func execTry(e *Engine, ref string, cmd ...string) (string, error) {
	var out, errb bytes.Buffer
	code, err := e.Exec(context.Background(), ref, cmd, &ExecOptions{Stdout: &out, Stderr: &errb})
	if err != nil || code != 0 {
		return "", fmt.Errorf("exec %v in %s: status %d, %v: %s", cmd, ref, code, err, errb.String())
	}
	return out.String(), nil
}

// sequence returns the numbers that re captures (group 1) in s, in order,
// and an error if they are not first, first+step, first+2*step, ...
// from first: a gap or a restart means the state did not survive.
func sequence(re *regexp.Regexp, s string, first, step int) ([]int, error) {
	var out []int
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		n, _ := strconv.Atoi(m[1])
		if want := first + len(out)*step; n != want {
			return out, fmt.Errorf("after %v comes %d, want %d", tailInts(out, 5), n, want)
		}
		out = append(out, n)
	}
	return out, nil
}

func tailInts(s []int, n int) []int { return s[max(0, len(s)-n):] }

// shape is one real workload and how to tell that it survived.
type shape struct {
	image string
	cmd   []string
	tcp   bool // checkpoint and restore with --tcp-established
	// progress returns how far the workload got (how many items of its
	// output there are) and an error if its output shows a gap or reset.
	progress func(t *testing.T, e *Engine, ref string) (int, error)
	// restored, if set, checks more after each restore.
	restored func(t *testing.T, e *Engine, ref string)
}

// waitProgress waits until s's progress in container ref of e reaches
// want; it fails if the output breaks or the container stops running.
func waitProgress(t *testing.T, e *Engine, ref string, s shape, want int, when string) {
	t.Helper()
	deadline := time.Now().Add(shapeTimeout)
	for {
		n, err := s.progress(t, e, ref)
		// A workload whose state broke may exit meanwhile: say that first.
		c, ierr := e.Inspect(context.Background(), ref)
		if ierr != nil {
			t.Fatal(ierr)
		}
		if c.Status != StatusRunning {
			t.Fatalf("%s: container %s is %s (exit status %d), want running; log tail:\n%s", when, ref, c.Status, c.ExitCode, tail(logsOf(t, e, ref), 10))
		}
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if n >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: progress %d after %v, want %d; log tail:\n%s", when, n, shapeTimeout, want, tail(logsOf(t, e, ref), 10))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkShape runs s as container "w" on one engine, checkpoints and
// restores it in place, then exports it and imports it on a second engine
// (root), and after each restore checks that s made progress from where
// it was, without a gap or reset.
func checkShape(t *testing.T, s shape) {
	src, dst := busyboxEngine(t), busyboxEngine(t)
	ctx := context.Background()
	const ref = "w"
	if _, err := src.Run(ctx, s.image, &RunOptions{Name: ref, Command: s.cmd}); err != nil {
		t.Fatal(err)
	}
	waitProgress(t, src, ref, s, 3, "after start")

	at, _ := s.progress(t, src, ref)
	if _, err := src.Checkpoint(ctx, ref, &CheckpointOptions{TCPEstablished: s.tcp}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Restore(ctx, ref, &RestoreOptions{TCPEstablished: s.tcp}); err != nil {
		t.Fatal(err)
	}
	waitProgress(t, src, ref, s, at+5, "after restore in place")
	if s.restored != nil {
		s.restored(t, src, ref)
	}

	archive := filepath.Join(t.TempDir(), "w.tar")
	at, _ = s.progress(t, src, ref)
	o := &ExportOptions{CheckpointOptions: CheckpointOptions{TCPEstablished: s.tcp}, Compression: format.None}
	if _, err := src.Export(ctx, ref, archive, o); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Import(ctx, archive, &ImportOptions{RestoreOptions: RestoreOptions{TCPEstablished: s.tcp}}); err != nil {
		t.Fatal(err)
	}
	waitProgress(t, dst, ref, s, at+5, "after import on a second root")
	if s.restored != nil {
		s.restored(t, dst, ref)
	}
}

var recvRE = regexp.MustCompile(`(?m)^(\d+)$`)

// TestShapeBusyboxTCP is the TCP connection between two busybox nc
// processes of issue 18: a counter loop piped into a client, a server
// writing what it receives to /tmp/recv. The numbers must go on in
// /tmp/recv after each restore (a broken connection makes both nc exit
// 0, and the container with them).
func TestShapeBusyboxTCP(t *testing.T) {
	t.Parallel()
	checkShape(t, shape{
		image: "busybox",
		cmd: []string{"sh", "-c", `(sleep 100000 | nc -l -p 9000 > /tmp/recv) & sleep 0.5; ` +
			`(i=0; while true; do i=$((i+1)); echo $i; sleep 0.2; done) | nc 127.0.0.1 9000`},
		tcp: true,
		progress: func(t *testing.T, e *Engine, ref string) (int, error) {
			out, err := execTry(e, ref, "cat", "/tmp/recv")
			if err != nil {
				return 0, err
			}
			ns, err := sequence(recvRE, out, 1, 1)
			return len(ns), err
		},
	})
}

var pipeRE = regexp.MustCompile(`(?m)^pipe (\d+)$`)

// TestShapePipeChain is producer | filter | consumer in one container:
// the pipes between them, with whatever they hold, must survive.
func TestShapePipeChain(t *testing.T) {
	t.Parallel()
	checkShape(t, shape{
		image: "busybox",
		cmd: []string{"sh", "-c", `i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done | ` +
			`awk '{print $1*2; fflush()}' | while read x; do echo "pipe $x"; done`},
		progress: func(t *testing.T, e *Engine, ref string) (int, error) {
			ns, err := sequence(pipeRE, logsOf(t, e, ref), 2, 2)
			return len(ns), err
		},
		restored: func(t *testing.T, e *Engine, ref string) {
			// The three stages are still three processes joined by pipes.
			out := execOut(t, e, ref, "sh", "-c", `ls -l /proc/[0-9]*/fd/ 2>/dev/null | grep -c 'pipe:'`)
			if n, _ := strconv.Atoi(strings.TrimSpace(out)); n < 4 {
				t.Errorf("after restore %s pipe ends are open in the container, want at least 4", strings.TrimSpace(out))
			}
		},
	})
}

var heldRE = regexp.MustCompile(`(?m)^held (\d+)$`)

// TestShapeDeletedFile holds a file open after removing it and reads it
// line by line: CRIU must bring back its content and the read offset.
func TestShapeDeletedFile(t *testing.T) {
	t.Parallel()
	checkShape(t, shape{
		image: "busybox",
		cmd: []string{"sh", "-c", `seq 1 100000 > /tmp/held; exec 3</tmp/held; rm /tmp/held; ` +
			`while read -r l <&3; do echo "held $l"; sleep 0.1; done`},
		progress: func(t *testing.T, e *Engine, ref string) (int, error) {
			ns, err := sequence(heldRE, logsOf(t, e, ref), 1, 1)
			return len(ns), err
		},
		restored: func(t *testing.T, e *Engine, ref string) {
			out := execOut(t, e, ref, "sh", "-c", `ls -l /proc/1/fd/3; head -n 3 /proc/1/fd/3`)
			if !strings.Contains(out, "/tmp/held (deleted)") || !strings.HasSuffix(out, "\n1\n2\n3\n") {
				t.Errorf("after restore the held file is not the deleted one with its content:\n%s", out)
			}
			if _, err := e.Exec(context.Background(), ref, []string{"test", "!", "-e", "/tmp/held"}, nil); err != nil {
				t.Error(err)
			}
		},
	})
}

var seqRE = regexp.MustCompile(`(?m)shape: seq (\d+)$`)

// TestShapeUnixSocket is syslogd and logger: logger keeps one datagram
// socket connected to syslogd's /dev/log and sends each line it reads;
// syslogd writes them to /tmp/log.
func TestShapeUnixSocket(t *testing.T) {
	t.Parallel()
	loggerSocket := func(t *testing.T, e *Engine, ref string) string {
		return strings.TrimSpace(execOut(t, e, ref, "sh", "-c",
			`p=$(pidof logger) || exit 0; for f in /proc/$p/fd/*; do case $(readlink $f) in socket:*) echo "$p $f";; esac; done`))
	}
	var before string
	checkShape(t, shape{
		image: "busybox",
		cmd: []string{"sh", "-c", `syslogd -n -O /tmp/log & while [ ! -S /dev/log ]; do sleep 0.1; done; ` +
			`i=0; while true; do i=$((i+1)); echo "seq $i"; sleep 0.1; done | logger -t shape`},
		progress: func(t *testing.T, e *Engine, ref string) (int, error) {
			out, err := execTry(e, ref, "cat", "/tmp/log")
			if err != nil {
				return 0, err
			}
			ns, err := sequence(seqRE, out, 1, 1)
			if before == "" && len(ns) > 0 {
				// logger connects when it sends its first line.
				before = loggerSocket(t, e, ref)
			}
			return len(ns), err
		},
		restored: func(t *testing.T, e *Engine, ref string) {
			// The same logger process holds its socket at the same fd.
			if now := loggerSocket(t, e, ref); before == "" || now != before {
				t.Errorf("logger's socket after restore: %q, before: %q", now, before)
			}
			if out := execOut(t, e, ref, "cat", "/proc/net/unix"); !strings.Contains(out, " /dev/log\n") {
				t.Errorf("no socket bound to /dev/log after restore:\n%s", out)
			}
		},
	})
}

// TestShapeThreads checkpoints the Go counter, a process with several
// threads (the Go runtime's): all of them come back and it counts on.
func TestShapeThreads(t *testing.T) {
	t.Parallel()
	threads := func(t *testing.T, e *Engine, ref string) int {
		c, err := e.Inspect(context.Background(), ref)
		if err != nil {
			t.Fatal(err)
		}
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", c.PID))
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	var most int
	checkShape(t, shape{
		image: "workload",
		cmd:   []string{"/bin/counter", "-interval", "50ms", "-file", ""},
		progress: func(t *testing.T, e *Engine, ref string) (int, error) {
			most = max(most, threads(t, e, ref))
			ns, err := sequence(counterRE, logsOf(t, e, ref), 1, 1)
			return len(ns), err
		},
		restored: func(t *testing.T, e *Engine, ref string) {
			// The Go runtime does not end its threads: a restore that
			// dropped some would show fewer than ever seen.
			if n := threads(t, e, ref); n < 2 || n < most {
				t.Errorf("after restore the counter has %d threads, had up to %d", n, most)
			}
		},
	})
}

// dialIn connects to addr from inside the network namespace at nsPath.
func dialIn(t *testing.T, nsPath, addr string) net.Conn {
	t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The goroutine's thread enters the namespace and, if it cannot
		// come back, ends with the goroutine (still locked).
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer self.Close()
		ns, err := os.Open(nsPath)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: err}
			return
		}
		var d net.Dialer
		d.SetMultipathTCP(false)
		c, err := d.Dial("tcp4", addr)
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("connect to %s in %s: %v", addr, nsPath, r.err)
	}
	return r.c
}

// TestShapePendingConnection: a listening socket with a connection it has
// not accepted yet (the counter's server accepts once, and a second
// client connects). CRIU cannot dump such a socket ("In-flight
// connection"): checkpoint and export must refuse, say why, and leave the
// container running with its connection.
func TestShapePendingConnection(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	ctx := context.Background()
	if bug, err := e.HasInetSocketBug(ctx); err != nil || bug {
		testutil.Missing(t, "CRIU cannot dump TCP sockets on this kernel (%v): %s", err, inetSocketWarning)
	}
	c, err := e.Run(ctx, "workload", &RunOptions{Name: "pend", Command: []string{"/bin/counter", "-tcp", "-tcp-port", "9100", "-interval", "50ms", "-file", ""}})
	if err != nil {
		t.Fatal(err)
	}
	tcpOK := regexp.MustCompile(`(?m)^tcp ok (\d+)$`)
	oks := func() int { return len(tcpOK.FindAllString(logsOf(t, e, "pend"), -1)) }
	waitLog(t, e, "pend", "tcp ok", func(l string) bool { return tcpOK.MatchString(l) })
	conn := dialIn(t, c.NetNS, "127.0.0.1:9100")
	defer conn.Close()

	_, err = e.Checkpoint(ctx, "pend", &CheckpointOptions{TCPEstablished: true})
	var se *StateError
	if err == nil || !errors.As(err, &se) || se.Left != LeftRunning || !strings.Contains(err.Error(), inFlightHint) {
		t.Fatalf("Checkpoint with a pending connection = %v, want a *StateError (left running) with the hint %q", err, inFlightHint)
	}
	archive := filepath.Join(t.TempDir(), "pend.tar")
	_, err = e.Export(ctx, "pend", archive, &ExportOptions{CheckpointOptions: CheckpointOptions{TCPEstablished: true}})
	if err == nil || !strings.Contains(err.Error(), inFlightHint) {
		t.Fatalf("Export with a pending connection = %v, want the hint %q", err, inFlightHint)
	}
	if _, err := os.Stat(archive); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused export left %s: %v", archive, err)
	}
	// CRIU refused and exited: nothing may hold the container's lock
	// after the export returned (its watchdog once took it to thaw the
	// container again, and the next command found the container busy).
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		_, l, err := e.lock(ctx, "pend", "test")
		if err != nil {
			t.Fatalf("after the refused export: %v", err)
		}
		l.Unlock()
	}
	at := oks()
	waitLog(t, e, "pend", "tcp ok after the refusals", func(string) bool { return oks() >= at+3 })
	if log := logsOf(t, e, "pend"); strings.Contains(log, "tcp error") {
		t.Fatalf("the connection broke:\n%s", tail(log, 5))
	}
}

// TestShapeStoppedProcess: a process stopped by a signal (job control)
// would hang CRIU's seize in the frozen cgroup until its time limit; the
// checkpoint and the export refuse at once and name it, and once it is
// continued the checkpoint works.
func TestShapeStoppedProcess(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	// Were the refusal gone, the dump would hang until this limit.
	e.CRIULimits = CRIULimits{Timeout: 30 * time.Second}
	ctx := context.Background()
	cmd := []string{"sh", "-c", `sleep 100000 & kill -STOP $!; echo "stopped $!"; while true; do echo tick; sleep 0.2; done`}
	if _, err := e.Run(ctx, "busybox", &RunOptions{Name: "stp", Command: cmd}); err != nil {
		t.Fatal(err)
	}
	stoppedRE := regexp.MustCompile(`(?m)^stopped (\d+)$`)
	log := waitLog(t, e, "stp", "stopped", func(l string) bool { return stoppedRE.MatchString(l) })
	pid := stoppedRE.FindStringSubmatch(log)[1]

	t0 := time.Now()
	_, err := e.Checkpoint(ctx, "stp", nil)
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "process "+pid+" ") || !strings.Contains(err.Error(), "kill -CONT "+pid) {
		t.Fatalf("Checkpoint with a stopped process = %v, want ErrUnsupported naming process %s", err, pid)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("the refusal took %v", d)
	}
	archive := filepath.Join(t.TempDir(), "stp.tar")
	if _, err := e.Export(ctx, "stp", archive, nil); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Export with a stopped process = %v, want ErrUnsupported", err)
	}
	if c, _ := e.Inspect(ctx, "stp"); c.Status != StatusRunning {
		t.Fatalf("after the refusals: %s, want running", c.Status)
	}
	execOut(t, e, "stp", "kill", "-CONT", pid)
	if _, err := e.Checkpoint(ctx, "stp", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Restore(ctx, "stp", nil); err != nil {
		t.Fatal(err)
	}
	at := strings.Count(logsOf(t, e, "stp"), "tick\n")
	waitLog(t, e, "stp", "ticks after restore", func(l string) bool { return strings.Count(l, "tick\n") >= at+3 })
}
