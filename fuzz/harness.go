package fuzz

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/ckpt/ckpt/format"
)

// Finding kinds.
const (
	KindPanic  = "panic"
	KindHang   = "hang"
	KindEscape = "escape"
	KindAlloc  = "alloc"
)

// Finding is an input that made the code under test misbehave.
type Finding struct {
	// Kind is KindPanic, KindHang, KindEscape or KindAlloc; for a sealed
	// archive also KindUnnamed or KindAccepted.
	Kind string
	// Detail describes what happened (the panic value and stack, the
	// escaped path, the bytes allocated).
	Detail string
	// Mutation names the mutations that produced the input.
	Mutation string
	// File is where the input was saved, if it was.
	File string
	// Input is the archive.
	Input []byte
}

// Sandbox is a directory an execution extracts into, with a sentinel file
// beside the extraction target; anything appearing outside the target,
// or a changed sentinel, is an escape.
type Sandbox struct {
	// Dir holds Sentinel and the extraction targets.
	Dir      string
	sentinel string
	n        int
}

const sentinelContent = "ckpt fuzz sentinel: must not change\n"

// NewSandbox creates a sandbox below parent (os.TempDir() when empty).
func NewSandbox(parent string) (*Sandbox, error) {
	dir, err := os.MkdirTemp(parent, "ckptfuzz-")
	if err != nil {
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	s := &Sandbox{Dir: dir, sentinel: filepath.Join(dir, "sentinel")}
	if err := os.WriteFile(s.sentinel, []byte(sentinelContent), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "target"), 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	return s, nil
}

// Close removes the sandbox.
func (s *Sandbox) Close() error { return os.RemoveAll(s.Dir) }

// check reports an escape: a changed sentinel, or an entry of the sandbox
// other than the sentinel and the target.
func (s *Sandbox) check() error {
	b, err := os.ReadFile(s.sentinel)
	if err != nil || string(b) != sentinelContent {
		return fmt.Errorf("sentinel %s changed or removed", s.sentinel)
	}
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() != "sentinel" && e.Name() != "target" {
			return fmt.Errorf("%s appeared outside the extraction target", filepath.Join(s.Dir, e.Name()))
		}
	}
	// Symlinks created in the target must stay inside it.
	target := filepath.Join(s.Dir, "target")
	return filepath.WalkDir(target, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.Type()&os.ModeSymlink == 0 {
			return err
		}
		l, err := os.Readlink(p)
		if err != nil {
			return err
		}
		abs := filepath.Join(filepath.Dir(p), l)
		if filepath.IsAbs(l) || !isBelow(abs, target) {
			return fmt.Errorf("symlink %s -> %s points outside the target", p, l)
		}
		return nil
	})
}

func isBelow(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && filepath.IsLocal(rel)
}

// Exec runs data through format's reader (every member read), Verify and
// Extract (into a fresh directory of the sandbox). Errors from the code
// under test are expected and ignored; Exec returns a non-nil error only
// for an escape. It does not recover panics: callers do.
func Exec(ctx context.Context, data []byte, sb *Sandbox) error {
	if zr, err := format.NewReader(bytes.NewReader(data), &format.ReaderOptions{Concurrency: 1}); err == nil {
		for {
			if _, err := zr.Next(); err != nil {
				break
			}
			if _, err := io.Copy(io.Discard, zr); err != nil {
				break
			}
		}
		zr.Close()
	}
	format.Verify(bytes.NewReader(data), &format.VerifyOptions{Reader: format.ReaderOptions{Concurrency: 1}})
	sb.n++
	target := filepath.Join(sb.Dir, "target")
	dir := filepath.Join(target, fmt.Sprint(sb.n))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("create target: %w", err)
	}
	format.Extract(ctx, bytes.NewReader(data), dir, &format.ExtractOptions{Reader: format.ReaderOptions{Concurrency: 1}})
	err := sb.check()
	os.RemoveAll(dir)
	return err
}

// execFunc and execSealedFunc are what guarded runs; tests replace them
// to check the guard.
var (
	execFunc       = Exec
	execSealedFunc = ExecSealed
)

// Options configure Run.
type Options struct {
	// Duration is how long to run; 0 with Iterations 0 means 10 seconds.
	Duration time.Duration
	// Iterations is how many inputs to run when positive.
	Iterations int
	// Seed seeds the random mutations.
	Seed int64
	// OutDir receives findings (created when needed); empty means none
	// are saved.
	OutDir string
	// Timeout is the time limit of one execution; 0 means 10 seconds.
	Timeout time.Duration
	// MaxAlloc is the most bytes one execution may allocate while any of
	// its heap is live, in bytes; 0 means 1 GiB.
	MaxAlloc int64
	// TempDir is where the sandbox is created; empty means os.TempDir().
	TempDir string
	// Log receives progress lines; nil means none.
	Log io.Writer
	// Sealed makes every input a sealed archive (MutateSealed); without
	// it one in four is.
	Sealed bool
}

// Result summarizes a run.
type Result struct {
	// Execs is the number of inputs executed.
	Execs int
	// Elapsed is the run's duration.
	Elapsed time.Duration
	// Findings are the inputs that misbehaved.
	Findings []Finding
}

// ExecsPerSec returns the execution rate.
func (r *Result) ExecsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Execs) / r.Elapsed.Seconds()
}

// heapBytes returns the live heap as runtime/metrics reports it.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// outcome is the result of one guarded execution.
type outcome struct {
	kind, detail string
}

// guarded runs exec (nil: execFunc) with panic recovery, a time limit
// and a heap watch.
func guarded(ctx context.Context, exec func(context.Context, []byte, *Sandbox) error, data []byte, sb *Sandbox, timeout time.Duration, maxAlloc int64) *outcome {
	done := make(chan *outcome, 1)
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	base := heapBytes()
	if exec == nil {
		// Read once here: a goroutine left running after a timeout must
		// not read it while a test replaces it.
		exec = execFunc
	}
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- &outcome{KindPanic, fmt.Sprintf("panic: %v\n%s", v, debug.Stack())}
			}
		}()
		if err := exec(ectx, data, sb); err != nil {
			var fe *findingError
			if errors.As(err, &fe) {
				done <- &outcome{fe.kind, fe.detail}
				return
			}
			done <- &outcome{KindEscape, err.Error()}
			return
		}
		done <- nil
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var peak uint64
	for {
		select {
		case o := <-done:
			if h := heapBytes(); h > peak {
				peak = h
			}
			if o == nil && peak > base && int64(peak-base) > maxAlloc {
				return &outcome{KindAlloc, fmt.Sprintf("heap grew by %d bytes (limit %d)", peak-base, maxAlloc)}
			}
			return o
		case <-tick.C:
			if h := heapBytes(); h > peak {
				peak = h
			}
		case <-deadline.C:
			cancel()
			return &outcome{KindHang, fmt.Sprintf("no result after %s", timeout)}
		}
	}
}

// Run mutates the seed archives (files) and executes each mutation until
// the duration or iteration count is reached or ctx is done. Findings are
// saved to opts.OutDir as <kind>-<sha256 prefix>.ckpt with a .txt beside
// it. A hang ends the run (its goroutine cannot be stopped).
func Run(ctx context.Context, seeds []string, opts *Options) (*Result, error) {
	o := *opts
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxAlloc <= 0 {
		o.MaxAlloc = 1 << 30
	}
	if o.Duration <= 0 && o.Iterations <= 0 {
		o.Duration = 10 * time.Second
	}
	var parsed []*Seed
	for _, name := range seeds {
		b, err := readSeed(name)
		if err != nil {
			return nil, err
		}
		s, err := ParseSeed(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		parsed = append(parsed, s)
	}
	sb, err := NewSandbox(o.TempDir)
	if err != nil {
		return nil, err
	}
	defer sb.Close()
	keys, err := newSealKeys()
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(uint64(o.Seed), uint64(o.Seed)>>32^0x9e3779b97f4a7c15))
	res := &Result{}
	start := time.Now()
	lastLog := start
	for {
		if ctx.Err() != nil {
			break
		}
		if o.Iterations > 0 && res.Execs >= o.Iterations {
			break
		}
		if o.Iterations <= 0 && time.Since(start) >= o.Duration {
			break
		}
		seed := parsed[r.IntN(len(parsed))]
		var exec func(context.Context, []byte, *Sandbox) error
		var data []byte
		var name string
		if o.Sealed || r.IntN(4) == 0 {
			var refuse bool
			data, name, refuse = MutateSealed(r, seed, keys)
			exec = func(ctx context.Context, data []byte, sb *Sandbox) error {
				return execSealedFunc(ctx, data, keys.ids, sb, refuse)
			}
		} else {
			data, name = Mutate(r, seed)
		}
		out := guarded(ctx, exec, data, sb, o.Timeout, o.MaxAlloc)
		res.Execs++
		if out != nil {
			f := Finding{Kind: out.kind, Detail: out.detail, Mutation: name, Input: data}
			if o.OutDir != "" {
				if f.File, err = save(o.OutDir, f); err != nil {
					return res, err
				}
			}
			res.Findings = append(res.Findings, f)
			if out.kind == KindHang || out.kind == KindEscape {
				break
			}
		}
		if o.Log != nil && time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			el := time.Since(start)
			fmt.Fprintf(o.Log, "fuzz: %d execs, %.0f execs/s, %d finding(s)\n", res.Execs, float64(res.Execs)/el.Seconds(), len(res.Findings))
		}
		if res.Execs%64 == 0 {
			runtime.GC()
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

func readSeed(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read seed: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSeedSize+1))
	if err != nil {
		return nil, fmt.Errorf("read seed: %w", err)
	}
	if len(b) > MaxSeedSize {
		return nil, fmt.Errorf("read seed %s: over %d bytes", name, MaxSeedSize)
	}
	return b, nil
}

func save(dir string, f Finding) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("save finding: %w", err)
	}
	sum := sha256.Sum256(f.Input)
	base := filepath.Join(dir, f.Kind+"-"+hex.EncodeToString(sum[:8]))
	if err := os.WriteFile(base+".ckpt", f.Input, 0o644); err != nil {
		return "", fmt.Errorf("save finding: %w", err)
	}
	txt := fmt.Sprintf("kind: %s\nmutation: %s\n\n%s\n", f.Kind, f.Mutation, f.Detail)
	if err := os.WriteFile(base+".txt", []byte(txt), 0o644); err != nil {
		return "", fmt.Errorf("save finding: %w", err)
	}
	return base + ".ckpt", nil
}
