package inspect

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/fileio"
)

// Verified values of a [Summary].
const (
	VerifiedYes          = "yes"
	VerifiedNo           = "no"
	VerifiedUnverifiable = "unverifiable"
	VerifiedUnchecked    = "unchecked"
)

// Summary is one row of `ckptinspect show`.
type Summary struct {
	// Path is the archive's file name.
	Path string `json:"path"`
	Info
	// CheckpointSize is the size of the CRIU images; for an incremental
	// checkpoint (Parent set) the size of the delta only.
	CheckpointSize int64 `json:"checkpointSize"`
	// PagesSize is the size of the memory pages images.
	PagesSize int64 `json:"memoryPagesSize"`
	// RootfsDiffSize is the size of rootfs-diff.tar.
	RootfsDiffSize int64 `json:"rootfsDiffSize"`
	// Verified is VerifiedYes or VerifiedNo after a full verification,
	// VerifiedUnverifiable for a legacy archive and VerifiedUnchecked for a
	// v1 archive of which only the manifest was read. In an [Inspection]
	// VerifiedYes means every member was read and matched its manifest
	// digest; `verify` also checks the CRIU images.
	Verified string `json:"verified"`
	// Problems are the verification problems, when verified.
	Problems []string `json:"problems,omitempty"`
	// PreCheckpoint reports a pre-checkpoint archive (images under
	// pre-checkpoint/, manifest option preCheckpoint).
	PreCheckpoint bool `json:"preCheckpoint,omitempty"`
	// Parent is the manifest's parent reference of an incremental
	// checkpoint: the parent's manifest digest, image-set digest and
	// chain depth. Nil for a full checkpoint and for legacy archives.
	Parent *format.Parent `json:"parent,omitempty"`
}

// chainOf fills the chain fields of s from m.
func (s *Summary) chainOf(m *format.Manifest) {
	if m == nil {
		return
	}
	s.PreCheckpoint = m.Options.PreCheckpoint
	if !s.PreCheckpoint {
		for _, e := range m.Members {
			if strings.HasPrefix(e.Name, format.PreCheckpointDir+"/") {
				s.PreCheckpoint = true
				break
			}
		}
	}
	if m.Parent != nil {
		p := *m.Parent
		s.Parent = &p
	}
}

// MaxShowScan bounds how many bytes of members Show of a v1 archive reads
// past the manifest to reach config.dump, the container's creation time:
// members are sorted, so the CRIU images, memory pages included, come
// first, and decompressing gigabytes would make show as slow as verify.
const MaxShowScan = 64 << 20

// ShowOptions configure Show.
type ShowOptions struct {
	// Verify reads and verifies the whole archive; without it a v1
	// archive's manifest is all that is read.
	Verify bool
}

// Show summarizes the archive at name. For a v1 archive it reads the
// manifest (a few KiB whatever the archive's size) and, for the creation
// time, streams on to config.dump when at most [MaxShowScan] bytes of
// members come before it or with opts.Verify; Created stays zero
// otherwise, or when that part cannot be read (verification is Verify's
// business). A legacy archive is read once, keeping its small metadata
// files.
func Show(ctx context.Context, name string, opts *ShowOptions) (*Summary, error) {
	var o ShowOptions
	if opts != nil {
		o = *opts
	}
	s := &Summary{Path: name}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("show archive: %w", err)
	}
	// No buffering here: the reader's own 4 KiB buffer reads only what
	// the manifest's frame needs.
	m, _, err := format.ReadManifest(f)
	f.Close()
	switch {
	case err == nil:
		s.Info = manifestInfo(m)
		s.CheckpointSize, s.PagesSize, s.RootfsDiffSize = sizes(m)
		s.chainOf(m)
		s.Verified = VerifiedUnchecked
		if o.Verify || sizeBefore(m, format.ConfigName) <= MaxShowScan {
			s.Created = scanCreated(ctx, name)
		}
	case errors.Is(err, format.ErrNoManifest):
		a, err := Load(ctx, name, nil)
		if err != nil {
			return nil, err
		}
		defer a.Close()
		if s.Info, err = a.Info(); err != nil {
			return nil, fmt.Errorf("show %s: %w", name, err)
		}
		s.CheckpointSize, s.PagesSize, s.RootfsDiffSize = sizes(a.Manifest)
		s.Verified = VerifiedUnverifiable
	default:
		return nil, fmt.Errorf("show %s: %w", name, err)
	}
	if o.Verify {
		r, err := Verify(ctx, name, nil)
		if err != nil {
			return nil, err
		}
		s.Problems = r.Problems
		switch {
		case len(r.Problems) > 0:
			s.Verified = VerifiedNo
		case r.Legacy:
			s.Verified = VerifiedUnverifiable
		default:
			s.Verified = VerifiedYes
		}
	}
	return s, nil
}

// sizeBefore sums the sizes of the members listed before name.
func sizeBefore(m *format.Manifest, name string) int64 {
	var n int64
	for _, e := range m.Members {
		if e.Name >= name {
			break
		}
		n += e.Size
	}
	return n
}

// scanCreated reads the v1 archive at name up to config.dump, verifying
// what it reads, and returns the creation time it records; zero when
// absent or unreadable.
func scanCreated(ctx context.Context, name string) time.Time {
	f, err := os.Open(name)
	if err != nil {
		return time.Time{}
	}
	defer f.Close()
	zr, err := format.NewReader(fileio.ContextReader(ctx, bufio.NewReaderSize(f, 1<<20)), nil)
	if err != nil {
		return time.Time{}
	}
	defer zr.Close()
	for {
		h, err := zr.Next()
		if err != nil || h.Name > format.ConfigName {
			return time.Time{}
		}
		if h.Name != format.ConfigName {
			continue
		}
		if h.Size > MaxSmallFile {
			return time.Time{}
		}
		b, err := io.ReadAll(zr) // the digest is checked at the member's end
		if err != nil {
			return time.Time{}
		}
		return ckptCreated(b)
	}
}
