package fuzz

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/ckpt/ckpt/format"
)

// A Mutator changes a decoded seed in place.
type Mutator struct {
	// Name names the mutation in findings.
	Name string
	// Apply mutates s using r.
	Apply func(r *rand.Rand, s *Seed)
}

// Mutators are the structural mutations Mutate picks from.
var Mutators = []Mutator{
	{"header-size", mutHeaderSize},
	{"header-type", mutHeaderType},
	{"header-fields", mutHeaderFields},
	{"manifest-field", mutManifestField},
	{"member-bytes", mutMemberBytes},
	{"member-bytes-resigned", mutMemberBytesResigned},
	{"image-entry-size", mutImageEntrySize},
	{"name-dotdot", mutNameDotDot},
	{"link-escape", mutLinkEscape},
	{"duplicate-member", mutDuplicate},
	{"drop-member", mutDrop},
	{"swap-members", mutSwap},
}

// pick returns a random entry index, preferring CRIU images when images
// is set, or -1 for an empty seed.
func pick(r *rand.Rand, s *Seed, images bool) int {
	if len(s.Entries) == 0 {
		return -1
	}
	if images {
		var idx []int
		for i, e := range s.Entries {
			if strings.HasSuffix(e.Header.Name, ".img") && !strings.Contains(e.Header.Name, "pages-") && len(e.Data) >= 12 {
				idx = append(idx, i)
			}
		}
		if len(idx) > 0 {
			return idx[r.IntN(len(idx))]
		}
	}
	return r.IntN(len(s.Entries))
}

var interesting = []int64{0, 1, -1, 511, 512, 513, 1 << 20, 1<<31 - 1, 1 << 32, 1<<33 - 1, 64 << 30, 1<<63 - 1}

func mutHeaderSize(r *rand.Rand, s *Seed) {
	i := pick(r, s, false)
	if i < 0 {
		return
	}
	e := &s.Entries[i]
	n := interesting[r.IntN(len(interesting))]
	switch r.IntN(3) {
	case 0: // the data follows the new size
		if n >= 0 && n <= int64(len(e.Data)) {
			e.Data = e.Data[:n]
		} else if n > 0 && n < 1<<16 {
			e.Data = append(e.Data, make([]byte, n-int64(len(e.Data)))...)
		}
	case 1: // only the manifest claims it
		if s.Manifest != nil {
			if m := s.Manifest.Member(e.Header.Name); m != nil {
				m.Size = n
				s.syncManifest()
			}
		}
	default: // PAX size record that disagrees with the data
		if e.Header.PAXRecords == nil {
			e.Header.PAXRecords = map[string]string{}
		}
		e.Header.PAXRecords["size"] = itoa(n)
		e.Header.Format = tar.FormatPAX
	}
}

func itoa(n int64) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

var types = []byte{tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo, tar.TypeGNUSparse, 'x' + 1, tar.TypeCont, 'V'}

func mutHeaderType(r *rand.Rand, s *Seed) {
	i := pick(r, s, false)
	if i < 0 {
		return
	}
	h := &s.Entries[i].Header
	h.Typeflag = types[r.IntN(len(types))]
	if isLink(h.Typeflag) {
		h.Linkname = escapes[r.IntN(len(escapes))]
	}
}

func mutHeaderFields(r *rand.Rand, s *Seed) {
	i := pick(r, s, false)
	if i < 0 {
		return
	}
	h := &s.Entries[i].Header
	switch r.IntN(6) {
	case 0:
		h.Mode = []int64{0, 0o7777, 0o4755, -1, 1 << 40}[r.IntN(5)]
	case 1:
		h.ModTime = []time.Time{{}, time.Unix(0, 0), time.Unix(1<<33, 0), time.Unix(-1<<33, 0)}[r.IntN(4)]
	case 2:
		h.Uid, h.Gid = r.IntN(1<<21), r.IntN(1<<21)
		h.Uname = "root"
	case 3:
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords[[]string{"GNU.sparse.map", "SCHILY.xattr.user.x", "path", "linkpath", "mtime"}[r.IntN(5)]] = escapes[r.IntN(len(escapes))]
		h.Format = tar.FormatPAX
	case 4:
		h.Name = h.Name + strings.Repeat("/a", r.IntN(12))
	default:
		h.Name = []string{strings.ToUpper(h.Name), h.Name + "/", "./" + h.Name, h.Name + "\x00x", h.Name + "\\x", strings.Repeat("n", 300)}[r.IntN(6)]
	}
}

var escapes = []string{"../escape", "../../sentinel", "/etc/passwd", "/", "..", "checkpoint/../../x", "../pre-checkpoint", "a/../../b", strings.Repeat("../", 40) + "tmp"}

func mutNameDotDot(r *rand.Rand, s *Seed) {
	name := escapes[r.IntN(len(escapes))]
	e := Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o600, Size: 5}, Data: []byte("owned")}
	if r.IntN(2) == 0 {
		if i := pick(r, s, false); i >= 0 {
			s.Entries[i].Header.Name = name
			return
		}
	}
	s.Entries = insertAt(s.Entries, r.IntN(len(s.Entries)+1), e)
	if s.Manifest != nil && r.IntN(2) == 0 {
		s.Manifest.Members = append(s.Manifest.Members, format.Member{Name: name, Kind: format.KindImage, Size: 5, Digest: format.DigestBytes(e.Data)})
		s.syncManifest()
	}
}

func mutLinkEscape(r *rand.Rand, s *Seed) {
	link := []string{format.ParentLinkName, "checkpoint", "checkpoint/x", "config.dump", "l"}[r.IntN(5)]
	target := escapes[r.IntN(len(escapes))]
	typ := byte(tar.TypeSymlink)
	if r.IntN(3) == 0 {
		typ = tar.TypeLink
	}
	at := 0
	if len(s.Entries) > 0 {
		at = 1 + r.IntN(len(s.Entries))
	}
	s.Entries = insertAt(s.Entries, min(at, len(s.Entries)), Entry{Header: tar.Header{Name: link, Typeflag: typ, Linkname: target, Mode: 0o777}})
	// A file written through the link.
	if r.IntN(2) == 0 {
		through := link + "/owned"
		s.Entries = insertAt(s.Entries, min(at+1, len(s.Entries)), Entry{Header: tar.Header{Name: through, Typeflag: tar.TypeReg, Mode: 0o600, Size: 5}, Data: []byte("owned")})
	}
}

func insertAt(es []Entry, i int, e Entry) []Entry {
	es = append(es, Entry{})
	copy(es[i+1:], es[i:])
	es[i] = e
	return es
}

func mutManifestField(r *rand.Rand, s *Seed) {
	if s.Manifest == nil || len(s.Entries) == 0 {
		mutMemberBytes(r, s)
		return
	}
	m := s.Manifest
	switch r.IntN(9) {
	case 0:
		m.Version = []int{0, 2, -1, 1 << 30}[r.IntN(4)]
	case 1:
		if len(m.Members) > 0 {
			k := r.IntN(len(m.Members))
			m.Members[k].Name = escapes[r.IntN(len(escapes))]
		}
	case 2:
		if len(m.Members) > 0 {
			m.Members[r.IntN(len(m.Members))].Kind = format.Kind([]string{"other", "volume", "", "config"}[r.IntN(4)])
		}
	case 3:
		if len(m.Members) > 0 {
			m.Members[r.IntN(len(m.Members))].Size = interesting[r.IntN(len(interesting))]
		}
	case 4:
		if len(m.Members) > 0 {
			m.Members[r.IntN(len(m.Members))].Digest = format.DigestBytes([]byte{byte(r.IntN(256))})
		}
	case 5:
		m.Parent = &format.Parent{Manifest: format.DigestBytes(nil), Images: format.DigestBytes(nil), Depth: []int{0, 1, 16, 17, 1 << 30}[r.IntN(5)]}
	case 6:
		// Many members: a manifest claiming more than the archive holds.
		for j := 0; j < 1+r.IntN(2000); j++ {
			m.Members = append(m.Members, format.Member{Name: "checkpoint/zz-" + itoa(int64(j)) + ".img", Kind: format.KindImage, Size: 64 << 30, Digest: format.DigestBytes(nil)})
		}
	case 7:
		s.syncManifest()
		d := s.Entries[0].Data
		s.Entries[0].Data = append(d[:len(d)-1:len(d)-1], []string{`{"x":1}`, ` trailing`, `,"unknown":true}`, "\x00"}[r.IntN(4)]...)
		s.Entries[0].Header.Size = int64(len(s.Entries[0].Data))
		return
	default:
		if len(m.Members) > 1 {
			a, b := r.IntN(len(m.Members)), r.IntN(len(m.Members))
			m.Members[a], m.Members[b] = m.Members[b], m.Members[a]
		}
	}
	s.syncManifest()
}

func flipBytes(r *rand.Rand, d []byte) []byte {
	if len(d) == 0 {
		return []byte{byte(r.IntN(256))}
	}
	switch r.IntN(4) {
	case 0:
		for k := 0; k < 1+r.IntN(4); k++ {
			d[r.IntN(len(d))] ^= byte(1 << r.IntN(8))
		}
	case 1:
		return d[:r.IntN(len(d))]
	case 2:
		at := r.IntN(len(d) + 1)
		ins := make([]byte, 1+r.IntN(64))
		for k := range ins {
			ins[k] = byte(r.IntN(256))
		}
		return append(d[:at:at], append(ins, d[at:]...)...)
	default:
		v := interesting[r.IntN(len(interesting))]
		if len(d) >= 4 {
			binary.LittleEndian.PutUint32(d[r.IntN(len(d)-3):], uint32(v))
		}
	}
	return d
}

func mutMemberBytes(r *rand.Rand, s *Seed) {
	if i := pick(r, s, false); i >= 0 {
		s.Entries[i].Data = flipBytes(r, s.Entries[i].Data)
		s.Entries[i].Header.Size = int64(len(s.Entries[i].Data))
	}
}

func mutMemberBytesResigned(r *rand.Rand, s *Seed) {
	if i := pick(r, s, true); i >= 0 && i < len(s.Entries) {
		s.Entries[i].Data = flipBytes(r, s.Entries[i].Data)
		s.fixMember(i)
	}
}

// mutImageEntrySize sets the u32 size of an entry of a CRIU image (the
// first after the 8-byte header, or a later one found by walking the
// sizes) and fixes the digest so that the change reaches the image
// checks.
func mutImageEntrySize(r *rand.Rand, s *Seed) {
	i := pick(r, s, true)
	if i < 0 {
		return
	}
	d := s.Entries[i].Data
	off := 8
	if strings.HasSuffix(s.Entries[i].Header.Name, "inventory.img") {
		off = 4
	}
	// Walk to a random entry.
	for n := r.IntN(8); n > 0 && off+4 <= len(d); n-- {
		sz := int(binary.LittleEndian.Uint32(d[off:]))
		if off+4+sz > len(d) || sz < 0 {
			break
		}
		off += 4 + sz
	}
	if off+4 > len(d) {
		return
	}
	cur := binary.LittleEndian.Uint32(d[off:])
	vals := []uint32{0, 1, cur + 1, cur - 1, 1<<31 - 1, 1<<32 - 1, 16<<20 + 1, uint32(len(d))}
	binary.LittleEndian.PutUint32(d[off:], vals[r.IntN(len(vals))])
	s.fixMember(i)
}

func mutDuplicate(r *rand.Rand, s *Seed) {
	if i := pick(r, s, false); i >= 0 {
		e := s.Entries[i]
		e.Data = bytes.Clone(e.Data)
		s.Entries = insertAt(s.Entries, i+1, e)
	}
}

func mutDrop(r *rand.Rand, s *Seed) {
	if len(s.Entries) > 1 {
		i := r.IntN(len(s.Entries))
		s.Entries = append(s.Entries[:i], s.Entries[i+1:]...)
	}
}

func mutSwap(r *rand.Rand, s *Seed) {
	if len(s.Entries) > 1 {
		a, b := r.IntN(len(s.Entries)), r.IntN(len(s.Entries))
		s.Entries[a], s.Entries[b] = s.Entries[b], s.Entries[a]
	}
}

// byteMutation changes the encoded tar stream or the compressed archive.
type byteMutation struct {
	name  string
	apply func(r *rand.Rand, first, rest []byte, c format.Compression) []byte
}

var byteMutations = []byteMutation{
	{"raw-header-bytes", func(r *rand.Rand, first, rest []byte, c format.Compression) []byte {
		t := append(bytes.Clone(first), rest...)
		blocks := len(t) / 512
		if blocks > 0 {
			b := r.IntN(blocks) * 512
			// Size (124..136), checksum (148..156), type (156) or magic (257..265).
			field := []int{124, 130, 135, 148, 156, 257, 345}[r.IntN(7)]
			t[b+field] = []byte{'7', '8', 0, ' ', 'x', 0xff}[r.IntN(6)]
		}
		return encode(c, t, nil)
	}},
	{"recompress", func(r *rand.Rand, first, rest []byte, _ format.Compression) []byte {
		return encode([]format.Compression{format.Zstd, format.Gzip, format.None}[r.IntN(3)], first, rest)
	}},
	{"manifest-shares-frame", func(r *rand.Rand, first, rest []byte, c format.Compression) []byte {
		return encode(c, append(bytes.Clone(first), rest...), nil)
	}},
	{"truncate", func(r *rand.Rand, first, rest []byte, c format.Compression) []byte {
		b := encode(c, first, rest)
		return b[:r.IntN(len(b)+1)]
	}},
	{"append-garbage", func(r *rand.Rand, first, rest []byte, c format.Compression) []byte {
		b := encode(c, first, rest)
		g := [][]byte{{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0}, {0x1f, 0x8b, 8, 0}, bytes.Repeat([]byte{0}, 2<<20), []byte("trailing")}
		return append(b, g[r.IntN(len(g))]...)
	}},
	{"frame-header", func(r *rand.Rand, first, rest []byte, c format.Compression) []byte {
		b := encode(c, first, rest)
		if len(b) > 6 && c != format.None {
			// zstd frame header descriptor / window byte; gzip flags.
			b[4+r.IntN(2)] = byte(r.IntN(256))
		}
		return b
	}},
	{"flip-compressed", func(r *rand.Rand, first, rest []byte, c format.Compression) []byte {
		b := encode(c, first, rest)
		if len(b) > 0 {
			b[r.IntN(len(b))] ^= byte(1 << r.IntN(8))
		}
		return b
	}},
}

// Mutate returns a mutated copy of seed, encoded as an archive, and the
// names of the mutations applied.
func Mutate(r *rand.Rand, seed *Seed) ([]byte, string) {
	s := seed.clone()
	var names []string
	for n := 1 + r.IntN(3); n > 0; n-- {
		m := Mutators[r.IntN(len(Mutators))]
		m.Apply(r, s)
		names = append(names, m.Name)
	}
	first, rest := s.tarBytes()
	if r.IntN(3) == 0 {
		bm := byteMutations[r.IntN(len(byteMutations))]
		names = append(names, bm.name)
		return bm.apply(r, first, rest, s.Compression), strings.Join(names, "+")
	}
	return encode(s.Compression, first, rest), strings.Join(names, "+")
}
