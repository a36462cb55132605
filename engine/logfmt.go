package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The container log (ctr.log) is podman's k8s-file format, which podman's
// checkpoint archives carry too: one record a line,
//
//	2026-01-02T15:04:05.123456789Z stdout F text of a whole line
//	2026-01-02T15:04:05.223456789Z stderr P text without its newline yet
//
// F ends a line, P is part of one (the next records complete it). The time
// is when the monitor read the output. The log stays readable as text,
// travels in an archive as it is, and a restored container's monitor
// appends to it, so it is one continuous history. Lines of an older
// ckpt's log (output as written) carry no time and are read as they are.

// logTimeFormat is RFC 3339 with fixed nanoseconds, so records align.
const logTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// logWriter writes output read from the container's stdout and stderr
// pipes to the log, each record in one write.
type logWriter struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// write logs one read p of stream ("stdout" or "stderr").
func (l *logWriter) write(stream string, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	ts := l.now().UTC().Format(logTimeFormat)
	var b bytes.Buffer
	for len(p) > 0 {
		line, rest, full := bytes.Cut(p, []byte("\n"))
		tag := " F "
		if !full {
			tag = " P "
		}
		b.WriteString(ts + " " + stream + tag)
		b.Write(line)
		b.WriteByte('\n')
		p = rest
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.w.Write(b.Bytes())
	return err
}

// logRecord is one line of the log.
type logRecord struct {
	Time    time.Time // zero for an untimed (older ckpt's) line
	Stream  string    // "stdout", "stderr" or "" (untimed)
	Text    string    // without the newline
	Partial bool      // P: the line goes on in the next record
}

// parseLogRecord parses one line of the log (without its newline). A line
// that is not a k8s-file record is an untimed line of output.
func parseLogRecord(line string) logRecord {
	f := strings.SplitN(line, " ", 4)
	if len(f) >= 3 && (f[1] == "stdout" || f[1] == "stderr") && (f[2] == "F" || f[2] == "P") {
		if t, err := time.Parse(time.RFC3339Nano, f[0]); err == nil {
			r := logRecord{Time: t, Stream: f[1], Partial: f[2] == "P"}
			if len(f) == 4 {
				r.Text = f[3]
			}
			return r
		}
	}
	return logRecord{Text: line}
}

// LogOptions selects what [Engine.ReadLogs] prints.
type LogOptions struct {
	// Follow keeps printing until the container stops running or the
	// context is done.
	Follow bool
	// Timestamps puts each line's time (RFC 3339, UTC) before it; untimed
	// lines of an older ckpt's log are printed without.
	Timestamps bool
	// Since and Until, if not zero, print only lines logged at or after
	// Since and before Until; untimed lines count as older than any time.
	Since, Until time.Time
	// Tail, if not negative, prints only the last Tail lines of what is
	// logged so far (and, with Follow, everything after them): the zero
	// value prints nothing of the past. [Engine.Logs] prints all (-1).
	Tail int
	// Offset is the byte offset of the log to begin at (a size the log
	// had, e.g. before a start).
	Offset int64
}

// logLine is a whole line of output: its records joined.
type logLine struct {
	time time.Time
	text string
}

// logReader turns the log's records into whole lines.
type logReader struct {
	o       *LogOptions
	pending *logLine // the parts of a line so far
}

// add takes one record and returns the line it completes, if any.
func (r *logReader) add(rec logRecord) (logLine, bool) {
	if r.pending == nil {
		r.pending = &logLine{time: rec.Time}
	}
	r.pending.text += rec.Text
	if rec.Partial {
		return logLine{}, false
	}
	l := *r.pending
	r.pending = nil
	return l, true
}

// keep reports whether l passes Since and Until.
func (r *logReader) keep(l logLine) bool {
	if !r.o.Since.IsZero() && l.time.Before(r.o.Since) {
		return false
	}
	return r.o.Until.IsZero() || l.time.Before(r.o.Until)
}

func (r *logReader) format(l logLine) string {
	if r.o.Timestamps && !l.time.IsZero() {
		return l.time.UTC().Format(logTimeFormat) + " " + l.text + "\n"
	}
	return l.text + "\n"
}

// ReadLogs copies the container's output to w as o selects: lines as the
// container wrote them (stdout and stderr interleaved as read).
func (e *Engine) ReadLogs(ctx context.Context, ref string, w io.Writer, o *LogOptions) error {
	c, err := e.Inspect(ctx, ref)
	if err != nil {
		return fmt.Errorf("logs of %s: %w", ref, err)
	}
	f, err := os.Open(filepath.Join(e.containerDir(c.ID), logFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("logs of %s: %w", ref, err)
	}
	defer f.Close()
	if _, err := f.Seek(o.Offset, io.SeekStart); err != nil {
		return fmt.Errorf("logs of %s: %w", ref, err)
	}
	if err := e.copyLog(ctx, c.ID, bufio.NewReader(f), w, o); err != nil {
		return fmt.Errorf("logs of %s: %w", ref, err)
	}
	return nil
}

// copyLog reads records from br until its end (and, with o.Follow, until
// container id stops running or ctx is done), writing the lines to w.
func (e *Engine) copyLog(ctx context.Context, id string, br *bufio.Reader, w io.Writer, o *LogOptions) error {
	r := &logReader{o: o}
	var tail []string // the last o.Tail lines, until the end of the log so far
	tailing := o.Tail >= 0
	emit := func(s string) error {
		if !tailing {
			_, err := io.WriteString(w, s)
			return err
		}
		if o.Tail > 0 {
			tail = append(tail, s)
			if len(tail) > o.Tail {
				tail = tail[1:]
			}
		}
		return nil
	}
	var partial string // a record not yet ended by its newline
	final := !o.Follow // read to the end once more, then stop
	for {
		s, err := br.ReadString('\n')
		if err == nil {
			if l, ok := r.add(parseLogRecord(partial + strings.TrimSuffix(s, "\n"))); ok && r.keep(l) {
				if err := emit(r.format(l)); err != nil {
					return err
				}
			}
			partial = ""
			continue
		}
		if !errors.Is(err, io.EOF) {
			return err
		}
		partial += s
		if final && partial != "" {
			// An older log's last output, without its newline.
			if l, ok := r.add(parseLogRecord(partial)); ok && r.keep(l) {
				if err := emit(r.format(l)); err != nil {
					return err
				}
			}
			partial = ""
		}
		if tailing {
			tailing = false
			if _, err := io.WriteString(w, strings.Join(tail, "")); err != nil {
				return err
			}
		}
		if final {
			return nil
		}
		if x, err := e.loadState(id); err != nil || x.Status != StatusRunning {
			// The monitor wrote the last output before the exit.
			final = true
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// logUntil returns the records of log read before cut: a checkpoint of a
// container left running (-R) carries its log as of the freeze, not the
// lines its process wrote afterwards, which a restored copy writes again.
// Untimed lines are kept; a zero cut keeps everything.
func logUntil(log []byte, cut time.Time) []byte {
	if cut.IsZero() {
		return log
	}
	for off := 0; off < len(log); {
		end := bytes.IndexByte(log[off:], '\n')
		if end < 0 {
			end = len(log) - off
		}
		if r := parseLogRecord(string(log[off : off+end])); !r.Time.IsZero() && r.Time.After(cut) {
			return log[:off]
		}
		off += end + 1
	}
	return log
}
