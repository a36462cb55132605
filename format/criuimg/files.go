package criuimg

import (
	"bytes"
	"fmt"
	"io"
)

// eachEntry calls fn with every entry of the image name held in data, with
// its index and offset, and wraps every error into an *Error naming name.
func eachEntry(name string, data []byte, fn func(i int, b []byte) error) error {
	r := NewReader(name, bytes.NewReader(data), int64(len(data)), nil)
	for i := 0; ; i++ {
		b, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(i, b); err != nil {
			return fileError(name, r.Offset(), err)
		}
	}
}

// readOne decodes the single entry of an image CRIU writes with
// pb_write_one (inventory, core, mm, ids).
func readOne[T any](name string, data []byte, decode func([]byte) (T, error)) (T, error) {
	var out T
	n := 0
	err := eachEntry(name, data, func(i int, b []byte) error {
		if i > 0 {
			return fmt.Errorf("read entry %d: image holds one entry: %w", i, ErrImage)
		}
		var err error
		out, err = decode(b)
		n++
		return err
	})
	if err == nil && n == 0 {
		err = fileError(name, -1, fmt.Errorf("read entry: no entry: %w", ErrImage))
	}
	return out, err
}

// readAll decodes every entry of an image.
func readAll[T any](name string, data []byte, decode func([]byte) (T, error)) ([]T, error) {
	var out []T
	err := eachEntry(name, data, func(_ int, b []byte) error {
		v, err := decode(b)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// ReadInventory decodes inventory.img, whose contents are data.
func ReadInventory(data []byte) (Inventory, error) {
	return readOne("inventory.img", data, DecodeInventory)
}

// ReadPstree decodes pstree.img, whose contents are data.
func ReadPstree(data []byte) ([]PstreeEntry, error) {
	return readAll("pstree.img", data, DecodePstreeEntry)
}

// ReadCore decodes a core image called name (core-<tid>.img).
func ReadCore(name string, data []byte) (CoreEntry, error) {
	return readOne(name, data, DecodeCoreEntry)
}

// ReadMm decodes an mm image called name (mm-<pid>.img).
func ReadMm(name string, data []byte) (MmEntry, error) {
	return readOne(name, data, DecodeMmEntry)
}

// ReadIDs decodes an ids image called name (ids-<pid>.img).
func ReadIDs(name string, data []byte) (TaskKobjIDs, error) {
	return readOne(name, data, DecodeTaskKobjIDs)
}

// ReadFiles decodes files.img, whose contents are data.
func ReadFiles(data []byte) ([]FileEntry, error) {
	return readAll("files.img", data, DecodeFileEntry)
}

// ReadFdinfo decodes an fdinfo image called name (fdinfo-<id>.img).
func ReadFdinfo(name string, data []byte) ([]FdinfoEntry, error) {
	return readAll(name, data, DecodeFdinfoEntry)
}

// ReadPagemap decodes a pagemap image called name (pagemap-<pid>.img,
// pagemap-shmem-<id>.img): its head, then its entries. An image without a
// head is an error wrapping [ErrImage].
func ReadPagemap(name string, data []byte) (PagemapHead, []PagemapEntry, error) {
	var head PagemapHead
	var out []PagemapEntry
	n := 0
	err := eachEntry(name, data, func(i int, b []byte) error {
		n++
		if i == 0 {
			var err error
			head, err = DecodePagemapHead(b)
			return err
		}
		e, err := DecodePagemapEntry(b)
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err == nil && n == 0 {
		err = fileError(name, -1, fmt.Errorf("read pagemap head: no entry: %w", ErrImage))
	}
	return head, out, err
}

// ReadMountpoints decodes a mountpoints image called name
// (mountpoints-<mnt ns id>.img).
func ReadMountpoints(name string, data []byte) ([]MntEntry, error) {
	return readAll(name, data, DecodeMntEntry)
}

// ReadRemaps decodes remap-fpath.img, whose contents are data.
func ReadRemaps(data []byte) ([]RemapFilePath, error) {
	return readAll("remap-fpath.img", data, DecodeRemapFilePath)
}

// ReadGhostFile decodes the first entry of a ghost file image called name
// (ghost-file-<id>.img) from head, the image's first bytes (at least
// [GhostHeadSize] of them, or all of a shorter image); the contents that
// follow are not read.
func ReadGhostFile(name string, head []byte) (GhostFile, error) {
	var out GhostFile
	r := NewReader(name, bytes.NewReader(head), int64(len(head)), nil)
	b, err := r.Next()
	if err == io.EOF {
		return out, fileError(name, -1, fmt.Errorf("read ghost file: no entry: %w", ErrImage))
	}
	if err != nil {
		return out, err
	}
	out, err = DecodeGhostFile(b)
	return out, fileError(name, r.Offset(), err)
}
