package incremental

import (
	"encoding/binary"

	"github.com/ckpt/ckpt/format/criuimg"
)

// pagemapMagic is the PAGEMAP image magic (criu/include/magic.h), written
// after criuimg.MagicCommon.
const pagemapMagic uint32 = 0x56084025

// pagemapHeader returns the 8 header bytes of a pagemap image.
func pagemapHeader() []byte {
	b := binary.LittleEndian.AppendUint32(nil, criuimg.MagicCommon)
	return binary.LittleEndian.AppendUint32(b, pagemapMagic)
}

// Protobuf keys (field number << 3 | wire type 0, varint) of the fields
// written.
const (
	keyPagesID       = 0x08 // pagemap_head.pages_id = 1
	keyVaddr         = 0x08 // pagemap_entry.vaddr = 1
	keyCompatNrPages = 0x10 // pagemap_entry.compat_nr_pages = 2
	keyFlags         = 0x20 // pagemap_entry.flags = 4
	keyNrPages       = 0x28 // pagemap_entry.nr_pages = 5
)

// appendVarint appends v as a protobuf varint.
func appendVarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// appendEntry appends one image entry: the message's u32 little-endian
// size, then the message.
func appendEntry(b, msg []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(msg)))
	return append(b, msg...)
}

// encodePagemapHead encodes a pagemap_head message {pages_id = 1}.
func encodePagemapHead(pagesID uint32) []byte {
	return appendVarint([]byte{keyPagesID}, uint64(pagesID))
}

// encodePagemapEntry encodes a pagemap_entry message as CRIU 4.x writes
// it (criu/page-xfer.c): vaddr (1), compat_nr_pages (2) always 0, flags
// (4) always present, nr_pages (5); in_parent (3) is never written, the
// flags say it.
func encodePagemapEntry(b []byte, vaddr, nrPages uint64, flags uint32) []byte {
	b = append(b, keyVaddr)
	b = appendVarint(b, vaddr)
	b = append(b, keyCompatNrPages, 0)
	b = append(b, keyFlags)
	b = appendVarint(b, uint64(flags))
	b = append(b, keyNrPages)
	return appendVarint(b, nrPages)
}

// pmEntry is one pagemap entry to write.
type pmEntry struct {
	vaddr, nrPages uint64
	flags          uint32
}

// encodePagemap returns a whole pagemap image: header (hdr, the original
// image's 8 header bytes, or the standard one when nil), head, entries.
func encodePagemap(hdr []byte, pagesID uint32, entries []pmEntry) []byte {
	if hdr == nil {
		hdr = pagemapHeader()
	}
	b := make([]byte, 0, len(hdr)+8+len(entries)*24)
	b = append(b, hdr...)
	b = appendEntry(b, encodePagemapHead(pagesID))
	var msg []byte
	for _, e := range entries {
		msg = encodePagemapEntry(msg[:0], e.vaddr, e.nrPages, e.flags)
		b = appendEntry(b, msg)
	}
	return b
}
