package engine

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A container run with a terminal (run -t) gets a pseudo-terminal from
// runc: runc sends its master end over a console socket, and the monitor
// holds it for the container's life, as conmon does for podman. The monitor
// copies what the terminal prints to the log (as stdout) and to an attached
// client's output pipe, what the client types (its stdin pipe) to the
// terminal, and applies the client's window sizes. CRIU restores the
// terminal's slave end in the container and hands runc a new master
// (runc restore --console-socket), so a restored container gets a new one.

// consoleWait bounds the wait for runc's master after a successful create
// or restore (runc sends it before it exits).
const consoleWait = 10 * time.Second

// consoleSocket is a listening socket runc sends a terminal's master to.
type consoleSocket struct {
	dir  string
	path string
	l    *net.UnixListener
	got  chan consoleResult
}

type consoleResult struct {
	f   *os.File
	err error
}

// listenConsole listens on a socket in a new temporary directory (a short
// path: a container directory can exceed a socket path's 108 bytes) and
// starts waiting for runc's connection.
func listenConsole() (*consoleSocket, error) {
	dir, err := os.MkdirTemp("", "ckpt-console-")
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	path := filepath.Join(dir, "sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("console socket: %w", err)
	}
	cs := &consoleSocket{dir: dir, path: path, l: l, got: make(chan consoleResult, 1)}
	go func() {
		f, err := acceptMaster(l)
		cs.got <- consoleResult{f, err}
	}()
	return cs, nil
}

// acceptMaster accepts one connection on l and receives the descriptor
// runc sends on it.
func acceptMaster(l *net.UnixListener) (*os.File, error) {
	conn, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := conn.ReadMsgUnix(name, oob)
	if err != nil {
		return nil, fmt.Errorf("receive terminal: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receive terminal: no descriptor in runc's message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("receive terminal: want one descriptor, got %d", len(fds))
	}
	unix.CloseOnExec(fds[0])
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}

// master returns the terminal's master once runc has sent it.
func (cs *consoleSocket) master() (*os.File, error) {
	select {
	case r := <-cs.got:
		return r.f, r.err
	case <-time.After(consoleWait):
		return nil, errors.New("runc sent no terminal for the container")
	}
}

// close stops listening and removes the socket; a master received and not
// taken is closed.
func (cs *consoleSocket) close() {
	cs.l.Close()
	os.RemoveAll(cs.dir)
	select {
	case r := <-cs.got:
		if r.f != nil {
			r.f.Close()
		}
	default:
	}
}

// holdTerminal starts the copies between the terminal's master and the
// log, the attached client's output and stdin, and its window sizes.
func (m *monitor) holdTerminal(master *os.File, stdin *os.File) {
	lw := &logWriter{w: m.log, now: time.Now}
	m.copiers.Add(1)
	go func() {
		defer m.copiers.Done()
		out := m.cfg.out
		buf := make([]byte, 32*1024)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				_ = lw.write("stdout", buf[:n])
				if out != nil {
					if _, werr := out.Write(buf[:n]); werr != nil {
						// The client has gone: the log still gets it all.
						out.Close()
						out = nil
					}
				}
			}
			if err != nil {
				// EIO: the container's last holder of the terminal closed it.
				break
			}
		}
		if out != nil {
			out.Close()
		}
	}()
	if stdin != nil {
		go func() { _, _ = io.Copy(master, stdin) }()
	}
	if m.cfg.resize != nil {
		go applySizes(master, m.cfg.resize)
	}
}

// applySizes sets the terminal's window size to each "ROWS COLS" line
// read from r, until r ends.
func applySizes(master *os.File, r io.Reader) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		rows, cols, ok := parseSize(s.Text())
		if !ok {
			continue
		}
		_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	}
}

func parseSize(line string) (rows, cols uint16, ok bool) {
	f := strings.Fields(line)
	if len(f) != 2 {
		return 0, 0, false
	}
	r, err1 := strconv.ParseUint(f[0], 10, 16)
	c, err2 := strconv.ParseUint(f[1], 10, 16)
	if err1 != nil || err2 != nil || r == 0 || c == 0 {
		return 0, 0, false
	}
	return uint16(r), uint16(c), true
}

// openPTY opens a new pseudo-terminal pair.
func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open a pseudo-terminal: %w", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlock pseudo-terminal: %w", err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("pseudo-terminal number: %w", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("open pseudo-terminal: %w", err)
	}
	return m, s, nil
}

// execOnPTY runs x (a runc exec --tty in the foreground, which needs a
// terminal for its own stdio) on a new pseudo-terminal whose master it
// copies to and from stdio, when the caller's stdio is not a terminal.
func execOnPTY(x *exec.Cmd, stdin io.Reader, stdout io.Writer) error {
	m, s, err := openPTY()
	if err != nil {
		return err
	}
	defer m.Close()
	x.Stdin, x.Stdout, x.Stderr = s, s, s
	x.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	err = x.Start()
	s.Close()
	if err != nil {
		return err
	}
	if stdin != nil {
		go func() { _, _ = io.Copy(m, stdin) }()
	}
	copied := make(chan struct{})
	go func() {
		if stdout == nil {
			stdout = io.Discard
		}
		_, _ = io.Copy(stdout, m) // ends with EIO once runc, the last holder, exits
		close(copied)
	}()
	err = x.Wait()
	<-copied
	return err
}
