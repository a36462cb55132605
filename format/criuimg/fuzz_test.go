package criuimg

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fuzzNames are the image names FuzzImage feeds its input as; the first
// fuzz argument picks one, so that mutations keep hitting the decoders and
// the extra payload rules.
var fuzzNames = []string{
	"inventory.img", "pstree.img", "core-1.img", "mm-1.img", "ids-1.img",
	"pagemap-1.img", "files.img", "fdinfo-1.img", "pipes-data.img",
	"fifo-data.img", "sk-queues.img", "tcp-stream-1.img", "bpfmap-data.img",
	"ipcns-sem-1.img", "ipcns-shm-1.img", "ipcns-msg-1.img",
	"ghost-file-1.img", "stats-dump", "seccomp.img", "unknown.img",
	// The tiny set's root task is in mount namespace 6: this is its
	// mount namespace, judged with the root's rules.
	"mountpoints-6.img", "remap-fpath.img",
}

// fuzzMaxInput caps the input FuzzImage looks at: with it, and with the
// decoders allocating only in proportion to their input, one run stays
// within a few MiB.
const fuzzMaxInput = 1 << 20

// FuzzImage runs the Reader, the typed decoders and CheckImages on
// arbitrary image contents. None of them may panic; the Reader must
// consume no more than the input; the typed decoders must agree with the
// Reader on whether the framing is valid.
func FuzzImage(f *testing.F) {
	for _, dir := range realDirs {
		tiny := loadDir(f, dir)
		for i, name := range fuzzNames {
			m, _ := ExpectedMagic(name)
			for n, fi := range tiny {
				if m2, k := ExpectedMagic(n); k == KindProto && m2 == m {
					f.Add(uint8(i), fi.Data)
				}
			}
		}
	}
	// The mount namespaces of real containers, and the hostile ones
	// TestMountsHostile makes of them.
	mnts := slices.Index(fuzzNames, "mountpoints-6.img")
	for _, a := range mountArchives {
		files := loadArchive(f, a.file)
		f.Add(uint8(mnts), files[mountsImage(f, files)].Data)
	}
	for _, tt := range hostileMounts {
		files := loadArchive(f, ckptCounter)
		editMounts(f, files, func(ms []MntEntry) []MntEntry { return tt.edit(f, ms) })
		f.Add(uint8(mnts), files[mountsImage(f, files)].Data)
	}
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"remap-fpath.img", image("REMAP_FPATH", entry(enc(nil).u(1, 8).u(2, 1<<31|5)))},
		{"ghost-file-1.img", ghostImage(0o60600, 8<<8, 1<<40, "")},
		{"pipes-data.img", image("PIPES_DATA", entry(enc(nil).u(1, 1).u(2, 3)), []byte("abc"))},
		{"ipcns-msg-1.img", image("IPCNS_MSG", entry(enc(nil).u(3, 1)), entry(enc(nil).u(1, 1).u(2, 3)), make([]byte, 8))},
		{"ghost-file-1.img", image("GHOST_FILE", entry(enc(nil).u(9, 1)), entry(enc(nil).u(1, 2).u(2, 0)), []byte("ab"))},
		{"tcp-stream-1.img", image("TCP_STREAM", entry(enc(nil).u(1, 1).u(3, 1)), []byte("io"))},
	} {
		for i, n := range fuzzNames {
			if n == tt.name {
				f.Add(uint8(i), tt.data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, pick uint8, data []byte) {
		if len(data) > fuzzMaxInput {
			return
		}
		name := fuzzNames[int(pick)%len(fuzzNames)]
		r := NewReader(name, bytes.NewReader(data), int64(len(data)), &Limits{MaxEntrySize: fuzzMaxInput})
		var rerr error
		for {
			b, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				rerr = err
				break
			}
			if len(b) > len(data) || r.off > int64(len(data)) {
				t.Fatalf("Reader(%s) returned %d bytes at offset %d of %d", name, len(b), r.off, len(data))
			}
			decodeEntry(name, r.Count(), b)
		}
		derr := decodeImage(name, data)
		if rerr != nil && derr == nil {
			t.Fatalf("Reader(%s) = %v, but the typed decoder accepts the image", name, rerr)
		}
		files := make(map[string]Info, len(tinyFuzzSet))
		for k, v := range tinyFuzzSet {
			files[k] = v
		}
		files[name] = Info{Size: int64(len(data)), Data: data}
		_ = CheckImages(files, nil).Err()
		_ = CheckImages(files, &CheckOptions{Mounts: fuzzPolicy}).Err()
	})
}

// fuzzPolicy is the mount policy of the ckpt export's spec (nil, the
// default rules only, if it cannot be read: the seeds then fail loudly).
var fuzzPolicy, _ = readSpecPolicy("../../testdata/ckpt/counter.spec.json", onSourceHost)

// tinyFuzzSet is the committed image set, loaded once for FuzzImage.
var tinyFuzzSet = func() map[string]Info {
	files := map[string]Info{}
	ents, _ := os.ReadDir(tinyDir)
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join(tinyDir, e.Name())); err == nil {
			files[e.Name()] = Info{Size: int64(len(b)), Data: b}
		}
	}
	return files
}()

// decodeEntry runs every typed decoder that fits name on one entry.
func decodeEntry(name string, i int, b []byte) {
	m, _ := ExpectedMagic(name)
	switch m {
	case "INVENTORY":
		_, _ = DecodeInventory(b)
	case "PSTREE":
		_, _ = DecodePstreeEntry(b)
	case "CORE":
		_, _ = DecodeCoreEntry(b)
	case "MM":
		_, _ = DecodeMmEntry(b)
		_, _ = DecodeVmaEntry(b)
	case "IDS":
		_, _ = DecodeTaskKobjIDs(b)
	case "FILES":
		_, _ = DecodeFileEntry(b)
	case "FDINFO":
		_, _ = DecodeFdinfoEntry(b)
	case "PAGEMAP":
		if i == 1 {
			_, _ = DecodePagemapHead(b)
		} else {
			_, _ = DecodePagemapEntry(b)
		}
	case "MNTS":
		_, _ = DecodeMntEntry(b)
	case "REMAP_FPATH":
		_, _ = DecodeRemapFilePath(b)
	case "GHOST_FILE":
		if i == 1 {
			_, _ = DecodeGhostFile(b)
		}
	}
}
