package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/seal"
)

// An import from a stream (restore -i -) reads the archive once, front
// to back, as it arrives: the sealed envelope's header and the manifest
// are read ahead (a bounded head, kept and replayed to the extraction),
// everything else flows through the one extraction into staging. It
// never reads to the stream's end after a failure: the writer (a
// `checkpoint -e -` on the other end of a pipe) sees its pipe break
// before its last byte and keeps its container.

// streamHead is how much of a stream is peeked to name what it is when
// it has no manifest (format.Sniff reads its first 4 KiB; a tar header
// and the start of its first entry fit too).
const streamHead = 64 << 10

// ImportStream is [Engine.Import] of an archive read from r (a pipe:
// `ckpt restore -i -`), named name in errors: a v1 or streamed (v2)
// archive, compressed or not, sealed (opened with o.Identities) or not,
// or a legacy archive. It makes the same checks in the same order and
// leaves nothing on failure; r is read once and only as far as the
// import got, so a failed import leaves the rest of r unread.
// o.Previous are files, as for Import.
func (e *Engine) ImportStream(ctx context.Context, r io.Reader, name string, o *ImportOptions) (_ *ImportResult, err error) {
	if o == nil {
		o = &ImportOptions{}
	}
	defer func() {
		if err != nil {
			err = wrapf(err, "import %s", name)
		}
	}()
	if err := o.check(); err != nil {
		return nil, err
	}
	if len(o.Trust) > 0 {
		// A signature is checked over the whole file before anything is
		// made, which a stream read once cannot give.
		return nil, fmt.Errorf("%w: --trust-key needs the archive as a file (its signature is checked over the whole file before anything is made): save the stream to a file, then restore -i FILE", ErrOptions)
	}
	if err := e.preflight(ctx); err != nil {
		return nil, err
	}
	src, head, stop, err := openStream(r, o)
	if err != nil {
		return nil, err
	}
	defer stop()
	x, err := e.beginImport(name, src, o)
	if err != nil {
		return nil, err
	}
	defer x.end()
	if x.declared == nil {
		// Name a stream that is no checkpoint archive for what it looks
		// like, before anything is extracted, as Import does for a file.
		if err := streamNotCheckpoint(head, name); err != nil {
			return nil, err
		}
	} else if err := x.e.precheck(ctx, x.declared, o); err != nil {
		return nil, err
	}
	return x.run(ctx)
}

// openStream returns r as an archive source and its first bytes (for
// format.Sniff): a sealed stream is opened with o.Identities first (a
// missing or wrong key is refused here, before staging) and decrypted
// ahead in a goroutine of its own, which stop ends. Nothing drains r.
func openStream(r io.Reader, o *ImportOptions) (_ *layerSource, head []byte, stop func(), _ error) {
	br := bufio.NewReaderSize(r, streamHead)
	magic, _ := br.Peek(len(seal.Magic))
	stop = func() {}
	if seal.IsSealed(magic) {
		pr, _, err := seal.Open(br, o.Identities)
		if err != nil {
			return nil, nil, nil, err
		}
		var ahead io.Reader
		ahead, stop = readAhead(pr)
		br = bufio.NewReaderSize(ahead, streamHead)
	}
	// Peeked bytes stay in br: the extraction reads them again.
	head, err := br.Peek(streamHead)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		// A sealed stream altered in its first chunks: named as such,
		// not sniffed as an empty file.
		stop()
		return nil, nil, nil, err
	}
	src := &layerSource{size: -1, open: func() (io.ReadCloser, error) { return io.NopCloser(br), nil }}
	return src, bytes.Clone(head), stop, nil
}

// readAhead reads r a MiB ahead in a goroutine, so that what produces r
// (decryption) overlaps what consumes it; stop ends the goroutine.
func readAhead(r io.Reader) (io.Reader, func()) {
	rp, wp := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := io.CopyBuffer(wp, r, make([]byte, 1<<20))
		wp.CloseWithError(err)
	}()
	return rp, func() {
		rp.CloseWithError(errors.New("extraction ended"))
		<-done
	}
}

// streamNotCheckpoint is notCheckpoint for the head of a stream.
func streamNotCheckpoint(head []byte, name string) error {
	looks, err := format.Sniff(bytes.NewReader(head), int64(len(head)))
	if err != nil {
		return nil
	}
	err = looks.NotCheckpoint()
	switch {
	case err == nil:
		return nil
	case looks == format.LooksRootfs:
		return remedy(err, RemedyImportRootfs, name)
	case looks.ImageArchive():
		return remedy(err, RemedyImageArchive, name)
	}
	return fmt.Errorf("%w (read from %s)", err, name)
}

// precheck refuses, from the stream's declared manifest alone, what the
// checks after its extraction would refuse on this host: another
// architecture, a base image not in the store, a name or ID in use.
// Refused before the pages are read, the writer of a plain pipe
// (`checkpoint -e - | restore -i -`, no confirmation) sees its pipe break
// and keeps its container. The manifest is not trusted: this only
// refuses earlier; the full checks run on the verified archive.
func (e *Engine) precheck(ctx context.Context, m *format.Manifest, o *ImportOptions) error {
	if err := checkArch(m); err != nil {
		return err
	}
	if m.Container.Image != "" || m.Container.ImageID != "" {
		if _, err := e.baseImage(m.Container.Image, m.Container.ImageID); err != nil {
			return err
		}
	}
	if m.Container.Name == "" && o.Name == "" {
		return nil
	}
	id := m.Container.ID
	if !fullID(id) {
		id = "" // not a path to look at: the verified record decides
	}
	_, _, err := e.freeName(ctx, m.Container.Name, id, o)
	return err
}

// fullID reports whether id is a full container ID (64 lowercase hex).
func fullID(id string) bool {
	if len(id) != 64 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
