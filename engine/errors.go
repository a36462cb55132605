package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ckpt/ckpt/internal/fileio"
	"github.com/ckpt/ckpt/internal/imagexfer"
)

// Sentinel errors. Callers match them with [errors.Is]; the returned errors
// carry the detail (container name, versions, paths) around them.
var (
	// ErrNotRoot reports that an operation needs root privileges.
	ErrNotRoot = errors.New("engine: must run as root")
	// ErrCRIUMissing reports that CRIU is not installed or is older than 4.0.
	ErrCRIUMissing = errors.New("engine: CRIU 4.0 or newer is required (install it with `make deps`)")
	// ErrRuntimeMissing reports that the OCI runtime (runc) is not installed.
	ErrRuntimeMissing = errors.New("engine: OCI runtime not found (install runc with `make deps`)")
	// ErrUnknownContainer reports that no container matches a name or ID.
	ErrUnknownContainer = errors.New("engine: no such container")
	// ErrUnknownImage reports that no image matches a name or ID.
	ErrUnknownImage = errors.New("engine: no such image")
	// ErrAmbiguous reports that an ID prefix matches more than one container.
	ErrAmbiguous = errors.New("engine: ambiguous container ID prefix")
	// ErrNameInUse reports that a container or image name is taken.
	ErrNameInUse = errors.New("engine: name already in use")
	// ErrBusy reports that another ckpt operation holds the container's lock.
	ErrBusy = errors.New("engine: container is busy")
	// ErrState reports that the container is not in a state that allows the
	// operation (for example restoring a running container).
	ErrState = errors.New("engine: wrong container state")
	// ErrUnsupported reports an option the engine does not implement.
	ErrUnsupported = errors.New("engine: unsupported")
	// ErrTimeout reports that runc and CRIU ran longer than their time
	// limit ([CRIULimits]) and were killed.
	ErrTimeout = errors.New("engine: CRIU ran past its time limit")
	// ErrLogLimit reports that CRIU's log grew past its size limit
	// ([CRIULimits.MaxLog]) and runc and CRIU were killed.
	ErrLogLimit = errors.New("engine: CRIU's log grew past its size limit")
	// ErrOptions reports options that contradict each other.
	ErrOptions = errors.New("engine: invalid options")
	// ErrNotRootfs reports an image import source that is not a root
	// filesystem (an image or checkpoint archive, a text file); the error
	// says what it looks like.
	ErrNotRootfs = errors.New("engine: not a root filesystem")
	// ErrImageReference reports an image reference or file ckpt cannot
	// use: an unknown transport, a malformed name, a file that is no
	// image archive, an image without a manifest to push.
	ErrImageReference = imagexfer.ErrImageReference
	// ErrHostileImage reports an image (archive, layout, registry) that
	// breaks the limits of untrusted images (internal/imagexfer) or is
	// malformed; nothing of it is left in the store.
	ErrHostileImage = imagexfer.ErrHostileImage
	// ErrNotCheckpointImage reports an image given to restore that
	// carries no checkpoint annotation (podman's or CRI-O's).
	ErrNotCheckpointImage = imagexfer.ErrNotCheckpointImage
	// ErrNotConfirmed reports a streamed export whose reader did not
	// confirm the restore (ExportOptions.Confirm): the container runs on.
	ErrNotConfirmed = errors.New("engine: the target did not confirm")
)

// Why the engine killed a tool ([ExitError.Killed]).
const (
	killedTimeout = "timeout"
	killedLog     = "log"
	killedCancel  = "cancel"
)

// ExitError reports that an external tool (runc, CRIU) failed. It is
// wrapped with %w on every path, so errors.As finds it.
type ExitError struct {
	// Tool is the program that failed, e.g. "runc checkpoint".
	Tool string
	// Code is its exit status, or -1 if it was killed by a signal.
	Code int
	// LogPath is the log file with the details (CRIU's dump.log or
	// restore.log, or runc's log), or "" if there is none.
	LogPath string
	// Stderr is the tool's standard error (or the relevant log lines).
	Stderr []byte
	// LogTail holds the last error lines of LogPath, quoted in Error.
	LogTail []string
	// Killed says why the engine killed the tool (its process group):
	// "timeout", "log" (the log outgrew its limit) or "cancel" (the
	// operation was interrupted); "" if it exited by itself. Unwrap
	// returns ErrTimeout, ErrLogLimit or context.Canceled accordingly.
	Killed string `json:",omitempty"`
	// Detail describes the kill in the user's terms (the limit passed).
	Detail string `json:",omitempty"`
}

// Unwrap returns the sentinel of a kill (see Killed), or nil.
func (e *ExitError) Unwrap() error {
	switch e.Killed {
	case killedTimeout:
		return ErrTimeout
	case killedLog:
		return ErrLogLimit
	case killedCancel:
		return context.Canceled
	}
	return nil
}

// Error returns a message that names the tool, its status, the log file and
// quotes the log's last error lines.
func (e *ExitError) Error() string {
	var b strings.Builder
	if e.Killed != "" {
		fmt.Fprintf(&b, "%s killed: %s", e.Tool, e.Detail)
	} else {
		fmt.Fprintf(&b, "%s exited with status %d", e.Tool, e.Code)
		if s := lastLine(e.Stderr); s != "" {
			fmt.Fprintf(&b, ": %s", s)
		}
	}
	if e.LogPath != "" {
		fmt.Fprintf(&b, " (log: %s)", e.LogPath)
	}
	for _, l := range e.LogTail {
		fmt.Fprintf(&b, "\n    %s", l)
	}
	return b.String()
}

// lastLine returns the message of a tool's stderr worth quoting: the first
// line of the last logrus-style msg="..." (runc), else the last line.
func lastLine(b []byte) string {
	s := string(b)
	if i := strings.LastIndex(s, `msg="`); i >= 0 {
		msg := s[i+len(`msg="`):]
		if j := strings.IndexAny(msg, "\"\n"); j >= 0 {
			msg = msg[:j]
		}
		if k := strings.Index(msg, `\n`); k >= 0 {
			msg = msg[:k]
		}
		if msg = strings.TrimSpace(msg); msg != "" {
			return msg
		}
	}
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if s := strings.TrimSpace(lines[i]); s != "" {
			return s
		}
	}
	return ""
}

// harmlessCRIU lists CRIU log lines that say "Error" but mean nothing:
// CRIU 4.2 logs the RLIMIT_NOFILE one on every run where the service's
// limit is below its own wish, and the dump or restore goes on.
var harmlessCRIU = []string{"Can't setup RLIMIT_NOFILE"}

// Bounds of what logTail reads and quotes.
const (
	// maxLogTailRead is how much of the end of a log logTail reads: a log
	// may be as large as CRIULimits.MaxLog.
	maxLogTailRead = 256 << 10
	// maxLogLine is the longest log line quoted in full.
	maxLogLine = 512
)

// logTail returns the last n error lines of a CRIU or runc log file,
// skipping known-harmless ones; if there are none it returns the last n
// lines. It reads only the file's last maxLogTailRead bytes and cuts long
// lines. It returns nil if the file cannot be read.
func logTail(path string, n int) []string {
	data, err := fileio.ReadTail(path, maxLogTailRead)
	if err != nil {
		return nil
	}
	if fi, err := os.Stat(path); err == nil && fi.Size() > int64(len(data)) {
		// The first line read is probably a part of one.
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	var all, errs []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), maxLogTailRead+1)
lines:
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if len(l) > maxLogLine {
			l = l[:maxLogLine] + " [...]"
		}
		if l == "" {
			continue
		}
		all = append(all, l)
		if strings.Contains(l, "Error") || strings.Contains(l, `"level":"error"`) || strings.Contains(l, `"level":"fatal"`) {
			for _, h := range harmlessCRIU {
				if strings.Contains(l, h) {
					continue lines
				}
			}
			errs = append(errs, l)
		}
	}
	pick := errs
	if len(pick) == 0 {
		pick = all
	}
	if len(pick) > n {
		pick = pick[len(pick)-n:]
	}
	for i, l := range pick {
		// runc's --log-format json lines: quote the message only.
		var j struct{ Msg string }
		if strings.HasPrefix(l, "{") && json.Unmarshal([]byte(l), &j) == nil && j.Msg != "" {
			pick[i] = j.Msg
		}
	}
	return pick
}

// LeftState says what a failed operation left of its container
// ([StateError]).
type LeftState int

// What a failed operation left.
const (
	// LeftUnknown: the error does not say (undoing the operation failed
	// too: an [UndoError] says what is left).
	LeftUnknown LeftState = iota
	// LeftRunning: the container runs as before the operation.
	LeftRunning
	// LeftRestored: the container was stopped, restored from the dump
	// just taken, and runs again.
	LeftRestored
	// LeftCheckpointed: the container stays checkpointed with its images;
	// [Engine.Restore] can restore it again.
	LeftCheckpointed
	// LeftRolledBack: an import was undone entirely: no container,
	// volume or staging directory of it is left.
	LeftRolledBack
)

// note is what Error adds to the message of a StateError.
func (s LeftState) note() string {
	switch s {
	case LeftRunning:
		return "the container keeps running"
	case LeftRestored:
		return "the container was restored from its dump and keeps running"
	case LeftCheckpointed:
		return "the container stays checkpointed and can be restored again"
	case LeftRolledBack:
		return "the import was rolled back: no container, volume or staging directory is left"
	}
	return ""
}

// StateError is the error of an operation that failed after it changed
// its container: Left says what it left. Callers find it with
// [errors.As]; an Engine method returns it on top of the chain.
type StateError struct {
	// Err is why the operation failed.
	Err error
	// Left is the container's state afterwards.
	Left LeftState
}

// Error returns Err's message and, in parentheses, what was left.
func (e *StateError) Error() string {
	if n := e.Left.note(); n != "" {
		return e.Err.Error() + " (" + n + ")"
	}
	return e.Err.Error()
}

// Unwrap returns Err.
func (e *StateError) Unwrap() error { return e.Err }

// RemedyError is an error a caller can get past by changing an option of
// the operation (or doing a step first): Remedy says which, Arg is the
// remedy's argument (a path, an image name) where it takes one. Its
// message is Err's, then the advice in this package's terms (option
// fields, methods); a command line phrases Remedy in its flags instead.
// An Engine method returns it itself, not wrapped, so that Err's message
// is the whole message without the advice.
type RemedyError struct {
	// Err is what went wrong; it wraps a sentinel (ErrState,
	// ErrHostResource, ...).
	Err error
	// Remedy is what would help.
	Remedy Remedy
	// Arg is the remedy's argument, or "".
	Arg string
}

// Error returns Err's message followed by the advice.
func (e *RemedyError) Error() string {
	return e.Err.Error() + ": " + e.Remedy.advice(e.Arg)
}

// Unwrap returns Err.
func (e *RemedyError) Unwrap() error { return e.Err }

// remedy returns err with the advice r (its argument arg).
func remedy(err error, r Remedy, arg string) error {
	return &RemedyError{Err: err, Remedy: r, Arg: arg}
}

// wrapf wraps err as fmt.Errorf(format+": %w", a..., err) does, but keeps
// a *RemedyError or *StateError on top of the chain (wrapping its Err
// instead): its advice or note stays the end of the message, and a caller
// can phrase the advice or, knowing more, change the state.
func wrapf(err error, format string, a ...any) error {
	switch x := err.(type) {
	case *RemedyError:
		return &RemedyError{Err: wrapf(x.Err, format, a...), Remedy: x.Remedy, Arg: x.Arg}
	case *StateError:
		return &StateError{Err: wrapf(x.Err, format, a...), Left: x.Left}
	}
	return fmt.Errorf(format+": %w", append(a, err)...)
}
