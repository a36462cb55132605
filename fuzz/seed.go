package fuzz

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/ckpt/ckpt/format"
)

// MaxSeedSize bounds a seed archive, compressed and decompressed.
const MaxSeedSize = 64 << 20

// Entry is one tar entry of a seed.
type Entry struct {
	// Header is the entry's tar header.
	Header tar.Header
	// Data is the entry's content.
	Data []byte
}

// Seed is a decoded seed archive.
type Seed struct {
	// Compression is the seed's outer compression.
	Compression format.Compression
	// Entries are the tar entries in order.
	Entries []Entry
	// Manifest is the parsed manifest of a v1 archive, nil for legacy.
	Manifest *format.Manifest
}

// ParseSeed decodes an archive into a Seed. It trusts the seed only as
// far as building the structure: it needs to be a readable tar.
func ParseSeed(b []byte) (*Seed, error) {
	if len(b) > MaxSeedSize {
		return nil, fmt.Errorf("parse seed: %d bytes over %d", len(b), MaxSeedSize)
	}
	s := &Seed{Compression: format.None}
	var r io.Reader = bytes.NewReader(b)
	switch {
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		s.Compression = format.Zstd
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxSeedSize))
		if err != nil {
			return nil, fmt.Errorf("parse seed: %w", err)
		}
		defer d.Close()
		r = d
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		s.Compression = format.Gzip
		g, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("parse seed: %w", err)
		}
		r = g
	}
	tr := tar.NewReader(io.LimitReader(r, MaxSeedSize))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse seed: %w", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("parse seed: %w", err)
		}
		s.Entries = append(s.Entries, Entry{Header: *h, Data: data})
	}
	if len(s.Entries) == 0 {
		return nil, errors.New("parse seed: empty archive")
	}
	if s.Entries[0].Header.Name == format.ManifestName {
		m, err := format.ParseManifest(s.Entries[0].Data)
		if err == nil {
			s.Manifest = m
		}
	}
	return s, nil
}

// clone returns a deep copy of s.
func (s *Seed) clone() *Seed {
	c := &Seed{Compression: s.Compression, Entries: make([]Entry, len(s.Entries))}
	for i, e := range s.Entries {
		h := e.Header
		if e.Header.PAXRecords != nil {
			h.PAXRecords = map[string]string{}
			for k, v := range e.Header.PAXRecords {
				h.PAXRecords[k] = v
			}
		}
		c.Entries[i] = Entry{Header: h, Data: bytes.Clone(e.Data)}
	}
	if s.Manifest != nil {
		m := *s.Manifest
		m.Members = append([]format.Member(nil), s.Manifest.Members...)
		if m.Parent != nil {
			p := *m.Parent
			m.Parent = &p
		}
		c.Manifest = &m
	}
	return c
}

// syncManifest rewrites the manifest entry from Manifest, so that sizes
// and digests match mutated members.
func (s *Seed) syncManifest() {
	if s.Manifest == nil || len(s.Entries) == 0 || s.Entries[0].Header.Name != format.ManifestName {
		return
	}
	b, err := json.MarshalIndent(s.Manifest, "", "  ")
	if err != nil {
		return
	}
	s.Entries[0].Data = append(b, '\n')
	s.Entries[0].Header.Size = int64(len(s.Entries[0].Data))
}

// fixMember updates the manifest's size and digest of entry i.
func (s *Seed) fixMember(i int) {
	if s.Manifest == nil {
		return
	}
	e := &s.Entries[i]
	e.Header.Size = int64(len(e.Data))
	if m := s.Manifest.Member(e.Header.Name); m != nil {
		m.Size = int64(len(e.Data))
		m.Digest = format.DigestBytes(e.Data)
	}
	s.syncManifest()
}

// tarBytes encodes the entries as a tar stream. The manifest is written
// as its own segment so that encode can put it in a frame of its own.
func (s *Seed) tarBytes() (first, rest []byte) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	split := 0
	for i, e := range s.Entries {
		h := e.Header
		if isLink(h.Typeflag) || h.Typeflag == tar.TypeDir || h.Typeflag == tar.TypeFifo || h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock {
			h.Size = 0
		} else {
			h.Size = int64(len(e.Data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			// A header tar cannot encode: write it as a plain file.
			h = tar.Header{Name: "x", Typeflag: tar.TypeReg, Size: int64(len(e.Data)), Mode: 0o600}
			if tw.WriteHeader(&h) != nil {
				continue
			}
		}
		if h.Size > 0 {
			tw.Write(e.Data)
		}
		tw.Flush()
		if i == 0 {
			split = buf.Len()
		}
	}
	tw.Close()
	b := buf.Bytes()
	return b[:split], b[split:]
}

func isLink(t byte) bool { return t == tar.TypeSymlink || t == tar.TypeLink }

// zstdEncoder is shared by every encode: EncodeAll is safe for
// concurrent use and writes one frame per call.
var zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))

// encode compresses the tar stream: the first member in a frame of its
// own, as a v1 writer does.
func encode(c format.Compression, first, rest []byte) []byte {
	var out bytes.Buffer
	switch c {
	case format.Zstd:
		for _, part := range [][]byte{first, rest} {
			if len(part) > 0 {
				out.Write(zstdEncoder.EncodeAll(part, nil))
			}
		}
	case format.Gzip:
		for _, part := range [][]byte{first, rest} {
			w, _ := gzip.NewWriterLevel(&out, gzip.BestSpeed)
			w.Write(part)
			w.Close()
		}
	default:
		out.Write(first)
		out.Write(rest)
	}
	return out.Bytes()
}

// Bytes encodes the seed as an archive.
func (s *Seed) Bytes() []byte {
	first, rest := s.tarBytes()
	return encode(s.Compression, first, rest)
}
