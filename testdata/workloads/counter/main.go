// containermaxprocs=0: the Go runtime would otherwise keep
// /sys/fs/cgroup/cpu/cpu.cfs_{quota,period}_us open (Go 1.25+), files that
// CRIU must then find again at the same path on restore.

//go:debug containermaxprocs=0

// Command counter is the test workload of ckpt: a tiny, static program whose
// state lives in memory, so that a restored copy proves what was restored.
//
// Usage:
//
//	counter [flags]
//
// Every -interval it increments an in-memory counter, prints "counter N" on
// stdout and writes "N\n" to -file (through a temporary file and a rename, so
// a reader never sees a partial value). The counter starts at 0 and is never
// read back from the file: a restored process that goes on from N rather
// than from 1 proves that its memory was restored.
//
// Flags (each may also be set by the environment variable named in
// brackets; a flag on the command line wins over the variable):
//
//	-file PATH          [COUNTER_FILE]     file the counter is written to (default /tmp/counter; "" disables)
//	-interval D         [COUNTER_INTERVAL] tick period, a Go duration (default 100ms)
//	-ticks N            [COUNTER_TICKS]    exit 0 after N ticks (default 0: run until SIGTERM)
//	-ballast-mb N       [BALLAST_MB]       allocate and touch N MiB: first half pseudo-random bytes
//	                                       (fixed seed), second half repetitive text
//	-dirty-percent P    [DIRTY_PERCENT]    each tick rewrite P% of the ballast pages with new bytes
//	-tcp                [COUNTER_TCP]      keep one established loopback TCP connection and exchange a
//	                                       ping/pong on it every tick, printing "tcp ok N" (both ends
//	                                       plain TCP, not Go's default Multipath TCP, which CRIU
//	                                       cannot dump)
//	-tcp-port PORT      [COUNTER_TCP_PORT] server port on 127.0.0.1 (default 0: the kernel picks one)
//	-tcp-timeout D      [COUNTER_TCP_TIMEOUT] deadline of one ping/pong (default 0: none; a deadline
//	                                       set before a checkpoint may expire during it)
//	-write-files        [COUNTER_WRITE_FILES] change the root filesystem once at start (see below)
//	-root DIR           [COUNTER_ROOT]     directory -write-files works in (default /)
//	-cat                                   copy stdin to stdout until end-of-file, then exit 0
//	                                       (nothing else: no ticks, files or TCP)
//
// Boolean variables accept the values of strconv.ParseBool ("1", "true", ...).
//
// With -write-files, at start, relative to -root:
//
//   - /added.txt is created with the content "added by counter\n";
//   - /etc/modified.txt (shipped in the image with "original\n") is
//     overwritten with "modified by counter\n";
//   - /etc/deleted.txt (shipped in the image) is removed; a missing file is
//     not an error, so a restart is harmless.
//
// Output lines on stdout, one per event:
//
//	ballast N MiB          the ballast is allocated and touched (once)
//	files written          -write-files is done (once)
//	tcp listening ADDR     the TCP server listens on ADDR (once)
//	counter N              tick N
//	tcp ok N               the ping/pong of tick N came back intact
//	tcp error ...          the connection broke; the program exits 3
//
// Exit status: 0 on SIGTERM, SIGINT or after -ticks; 1 on an I/O error; 2 on
// a usage error; 3 on a TCP connection error.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const pageSize = 4096

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// config holds the parsed flags.
type config struct {
	file         string
	interval     time.Duration
	ticks        int
	ballastMB    int
	dirtyPercent int
	tcp          bool
	tcpPort      int
	tcpTimeout   time.Duration
	writeFiles   bool
	root         string
	cat          bool
}

// stdin is what -cat copies (a variable for the tests).
var stdin io.Reader = os.Stdin

// parseConfig reads the environment first and the flags second, so a flag
// wins over a variable.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{
		file:     "/tmp/counter",
		interval: 100 * time.Millisecond,
		root:     "/",
	}
	var errs []error
	envStr := func(name string, dst *string) {
		if v, ok := lookup(getenv, name); ok {
			*dst = v
		}
	}
	envInt := func(name string, dst *int) {
		if v, ok := lookup(getenv, name); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("env %s: %w", name, err))
				return
			}
			*dst = n
		}
	}
	envBool := func(name string, dst *bool) {
		if v, ok := lookup(getenv, name); ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("env %s: %w", name, err))
				return
			}
			*dst = b
		}
	}
	envDur := func(name string, dst *time.Duration) {
		if v, ok := lookup(getenv, name); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("env %s: %w", name, err))
				return
			}
			*dst = d
		}
	}
	envStr("COUNTER_FILE", &c.file)
	envDur("COUNTER_INTERVAL", &c.interval)
	envInt("COUNTER_TICKS", &c.ticks)
	envInt("BALLAST_MB", &c.ballastMB)
	envInt("DIRTY_PERCENT", &c.dirtyPercent)
	envBool("COUNTER_TCP", &c.tcp)
	envInt("COUNTER_TCP_PORT", &c.tcpPort)
	envDur("COUNTER_TCP_TIMEOUT", &c.tcpTimeout)
	envBool("COUNTER_WRITE_FILES", &c.writeFiles)
	envStr("COUNTER_ROOT", &c.root)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	fs := flag.NewFlagSet("counter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.file, "file", c.file, "file the counter is written to (\"\" disables) [COUNTER_FILE]")
	fs.DurationVar(&c.interval, "interval", c.interval, "tick period [COUNTER_INTERVAL]")
	fs.IntVar(&c.ticks, "ticks", c.ticks, "exit after this many ticks, 0 for never [COUNTER_TICKS]")
	fs.IntVar(&c.ballastMB, "ballast-mb", c.ballastMB, "MiB of touched memory to hold [BALLAST_MB]")
	fs.IntVar(&c.dirtyPercent, "dirty-percent", c.dirtyPercent, "percentage of ballast pages rewritten per tick [DIRTY_PERCENT]")
	fs.BoolVar(&c.tcp, "tcp", c.tcp, "keep a loopback TCP connection and ping it every tick [COUNTER_TCP]")
	fs.IntVar(&c.tcpPort, "tcp-port", c.tcpPort, "TCP server port on 127.0.0.1, 0 for any [COUNTER_TCP_PORT]")
	fs.DurationVar(&c.tcpTimeout, "tcp-timeout", c.tcpTimeout, "deadline of one ping/pong, 0 for none [COUNTER_TCP_TIMEOUT]")
	fs.BoolVar(&c.writeFiles, "write-files", c.writeFiles, "add /added.txt, modify /etc/modified.txt, delete /etc/deleted.txt [COUNTER_WRITE_FILES]")
	fs.StringVar(&c.root, "root", c.root, "directory -write-files works in [COUNTER_ROOT]")
	fs.BoolVar(&c.cat, "cat", false, "copy stdin to stdout until end-of-file, then exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() != 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case c.interval <= 0:
		return nil, fmt.Errorf("interval %v must be positive", c.interval)
	case c.ticks < 0:
		return nil, fmt.Errorf("ticks %d must not be negative", c.ticks)
	case c.ballastMB < 0:
		return nil, fmt.Errorf("ballast-mb %d must not be negative", c.ballastMB)
	case c.dirtyPercent < 0 || c.dirtyPercent > 100:
		return nil, fmt.Errorf("dirty-percent %d must be within 0..100", c.dirtyPercent)
	case c.tcpPort < 0 || c.tcpPort > 65535:
		return nil, fmt.Errorf("tcp-port %d out of range", c.tcpPort)
	case c.tcpTimeout < 0:
		return nil, fmt.Errorf("tcp-timeout %v must not be negative", c.tcpTimeout)
	}
	return c, nil
}

// lookup returns the value of an environment variable and whether it is set
// to something non-empty.
func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

// run is the whole program; it returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "counter: %v\n", err)
		return 2
	}
	if c.cat {
		if _, err := io.Copy(stdout, stdin); err != nil {
			fmt.Fprintf(stderr, "counter: %v\n", err)
			return 1
		}
		return 0
	}
	out := &lineWriter{w: stdout}

	if c.writeFiles {
		if err := writeFiles(c.root); err != nil {
			fmt.Fprintf(stderr, "counter: %v\n", err)
			return 1
		}
		out.printf("files written")
	}

	b := newBallast(c.ballastMB)
	if c.ballastMB > 0 {
		out.printf("ballast %d MiB", c.ballastMB)
	}

	var tc *tcpPair
	if c.tcp {
		tc, err = newTCPPair(c.tcpPort, c.tcpTimeout)
		if err != nil {
			out.printf("tcp error %v", err)
			return 3
		}
		defer tc.close()
		out.printf("tcp listening %s", tc.addr)
	}

	tick := time.NewTicker(c.interval)
	defer tick.Stop()
	var n uint64 // the state that only a memory restore brings back
	for {
		select {
		case <-ctx.Done():
			return 0
		case <-tick.C:
		}
		n++
		b.dirty(c.dirtyPercent, n)
		if c.file != "" {
			if err := writeCounter(c.file, n); err != nil {
				fmt.Fprintf(stderr, "counter: %v\n", err)
				return 1
			}
		}
		out.printf("counter %d", n)
		if tc != nil {
			if err := tc.ping(n); err != nil {
				out.printf("tcp error %v", err)
				return 3
			}
			out.printf("tcp ok %d", n)
		}
		if out.err != nil {
			fmt.Fprintf(stderr, "counter: write stdout: %v\n", out.err)
			return 1
		}
		if c.ticks > 0 && n >= uint64(c.ticks) {
			return 0
		}
	}
}

// lineWriter prints whole lines and remembers the first error (sticky).
type lineWriter struct {
	w   io.Writer
	err error
}

func (l *lineWriter) printf(format string, a ...any) {
	if l.err != nil {
		return
	}
	_, l.err = fmt.Fprintf(l.w, format+"\n", a...)
}

// writeCounter writes "n\n" to path through path+".tmp" and a rename.
func writeCounter(path string, n uint64) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatUint(n, 10)+"\n"), 0o644); err != nil {
		return fmt.Errorf("write counter: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write counter: %w", err)
	}
	return nil
}

// The files -write-files touches, relative to the root, and their contents.
const (
	addedFile      = "added.txt"
	addedContent   = "added by counter\n"
	modifiedFile   = "etc/modified.txt"
	modifiedBefore = "original\n"
	modifiedAfter  = "modified by counter\n"
	deletedFile    = "etc/deleted.txt"
)

// writeFiles adds, modifies and deletes one file each under root.
func writeFiles(root string) error {
	if err := os.WriteFile(filepath.Join(root, addedFile), []byte(addedContent), 0o644); err != nil {
		return fmt.Errorf("add file: %w", err)
	}
	if err := os.WriteFile(filepath.Join(root, modifiedFile), []byte(modifiedAfter), 0o644); err != nil {
		return fmt.Errorf("modify file: %w", err)
	}
	if err := os.Remove(filepath.Join(root, deletedFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete file: %w", err)
	}
	return nil
}

// ballast is touched memory whose content is cheap to make: the first half
// pseudo-random (a fixed-seed xorshift, so every run holds the same bytes),
// the second half repetitive text that compresses well.
type ballast struct {
	mem   []byte
	rng   uint64 // xorshift64 state for the random half and for dirtying
	pages int    // len(mem) / pageSize
	next  int    // next page to dirty; dirtying walks the pages round-robin
}

// ballastSeed is the fixed seed of the random half.
const ballastSeed = 0x9e3779b97f4a7c15

const ballastText = "ckpt counter ballast: the quick brown fox jumps over the lazy dog.\n"

func newBallast(mb int) *ballast {
	b := &ballast{mem: make([]byte, mb<<20), rng: ballastSeed}
	b.pages = len(b.mem) / pageSize
	half := len(b.mem) / 2
	b.fillRandom(b.mem[:half])
	for i := half; i < len(b.mem); i += len(ballastText) {
		copy(b.mem[i:], ballastText)
	}
	return b
}

func (b *ballast) rand() uint64 {
	x := b.rng
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	b.rng = x
	return x
}

func (b *ballast) fillRandom(p []byte) {
	for i := 0; i+8 <= len(p); i += 8 {
		x := b.rand()
		p[i], p[i+1], p[i+2], p[i+3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
		p[i+4], p[i+5], p[i+6], p[i+7] = byte(x>>32), byte(x>>40), byte(x>>48), byte(x>>56)
	}
}

// dirty rewrites percent% of the pages (at least one when percent > 0) with
// new pseudo-random bytes, so each rewritten page really differs from its
// previous content; the first 8 bytes of each rewritten page hold the tick.
func (b *ballast) dirty(percent int, tick uint64) {
	if percent <= 0 || b.pages == 0 {
		return
	}
	count := max(b.pages*percent/100, 1)
	for range count {
		p := b.mem[b.next*pageSize : (b.next+1)*pageSize]
		b.fillRandom(p)
		for i := range 8 {
			p[i] = byte(tick >> (8 * i))
		}
		b.next = (b.next + 1) % b.pages
	}
}

// tcpPair is a server and a client in this process joined by one
// established loopback connection.
type tcpPair struct {
	addr    string
	ln      net.Listener
	client  net.Conn
	r       *bufio.Reader
	timeout time.Duration
}

// newTCPPair listens on 127.0.0.1:port and connects to itself. Both ends
// are plain TCP: since Go 1.24 a listener uses Multipath TCP by default
// where the kernel has it, and CRIU cannot dump MPTCP sockets ("inet:
// Unsupported proto 262").
func newTCPPair(port int, timeout time.Duration) (*tcpPair, error) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- conn
		serve(conn)
	}()
	var d net.Dialer
	d.SetMultipathTCP(false)
	client, err := d.Dial("tcp4", ln.Addr().String())
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("dial: %w", err)
	}
	if _, ok := <-accepted; !ok {
		client.Close()
		ln.Close()
		return nil, errors.New("accept failed")
	}
	return &tcpPair{addr: ln.Addr().String(), ln: ln, client: client, r: bufio.NewReader(client), timeout: timeout}, nil
}

// serve answers every "ping N" line with "pong N" until the connection ends.
func serve(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := io.WriteString(conn, "pong "+strings.TrimPrefix(line, "ping ")); err != nil {
			return
		}
	}
}

// ping sends "ping n" and checks that "pong n" comes back.
func (t *tcpPair) ping(n uint64) error {
	if t.timeout > 0 {
		if err := t.client.SetDeadline(time.Now().Add(t.timeout)); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(t.client, "ping %d\n", n); err != nil {
		return err
	}
	line, err := t.r.ReadString('\n')
	if err != nil {
		return err
	}
	if want := fmt.Sprintf("pong %d\n", n); line != want {
		return fmt.Errorf("got %q, want %q", line, want)
	}
	return nil
}

func (t *tcpPair) close() {
	t.client.Close()
	t.ln.Close()
}
