package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/criuimg"
	"google.golang.org/protobuf/proto"
)

// MaxImageSize is the largest CRIU metadata image (anything but pages) the
// inspector decodes: larger images are refused before decoding, so that
// the protobuf decoders, which allocate from the data, stay bounded. It is
// format.MaxParsedImageSize, the verifier's and the extractor's limit.
const MaxImageSize = format.MaxParsedImageSize

// MaxImagesTotal bounds the metadata images one archive may hold in
// memory while it is inspected (format.MaxParsedImagesTotal).
const MaxImagesTotal = format.MaxParsedImagesTotal

// ErrImage reports a CRIU image that the inspector cannot decode: a bad
// framing, a protobuf that does not parse, or an image over
// [MaxImageSize].
var ErrImage = errors.New("inspect: bad CRIU image")

// frame checks the framing of the image called name whose contents are
// data with criuimg's bounded reader and returns each entry's message,
// copied. Every entry is at most criuimg.MaxEntrySize bytes and the
// entries together at most len(data), so decoding them allocates in
// proportion to the image, not to sizes it declares.
func frame(name string, data []byte) ([][]byte, error) {
	if len(data) > MaxImageSize {
		return nil, fmt.Errorf("decode %s: %d bytes over %d: %w", name, len(data), MaxImageSize, ErrImage)
	}
	r := criuimg.NewReader(name, bytes.NewReader(data), int64(len(data)), nil)
	var out [][]byte
	for {
		b, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w: %w", name, ErrImage, err)
		}
		out = append(out, bytes.Clone(b))
	}
}

// decodeAll decodes every entry of the image called name into a new T
// (a go-criu protobuf message) after checking its framing.
func decodeAll[T proto.Message](name string, data []byte, mk func() T) ([]T, error) {
	msgs, err := frame(name, data)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(msgs))
	for i, b := range msgs {
		m := mk()
		if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, m); err != nil {
			return nil, fmt.Errorf("decode %s entry %d: %w: %v", name, i, ErrImage, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// decodeOne decodes the single entry of the image called name.
func decodeOne[T proto.Message](name string, data []byte, mk func() T) (T, error) {
	all, err := decodeAll(name, data, mk)
	if err != nil {
		var zero T
		return zero, err
	}
	if len(all) != 1 {
		var zero T
		return zero, fmt.Errorf("decode %s: %d entries, want 1: %w", name, len(all), ErrImage)
	}
	return all[0], nil
}

// DecodeImage decodes the CRIU image called name (its base name, which
// selects the expected magic) from data through the bounded path the
// inspector uses for every image: size cap, framing check, then go-criu's
// protobuf types. It returns the number of entries. It exists for fuzzing
// and for tools that want to check an image the way the inspector reads it.
func DecodeImage(name string, data []byte) (int, error) {
	magic, kind := criuimg.ExpectedMagic(name)
	if kind == criuimg.KindRaw {
		return 0, nil
	}
	mk := messageFor(magic)
	if mk == nil {
		msgs, err := frame(name, data)
		return len(msgs), err
	}
	if magic == "PAGEMAP" {
		_, entries, err := readPagemap(name, data)
		return len(entries), err
	}
	all, err := decodeAll(name, data, mk)
	return len(all), err
}

// isMetadataImage reports whether the inspector keeps the image called
// base (in an image directory) in memory.
func isMetadataImage(base string) bool {
	switch base {
	case "inventory.img", "pstree.img", "files.img":
		return true
	}
	for _, p := range []string{"core-", "mm-", "pagemap-", "ids-", "fdinfo-", "fs-"} {
		if strings.HasPrefix(base, p) && strings.HasSuffix(base, ".img") {
			return true
		}
	}
	return false
}

// isPagesImage reports whether base names a pages image.
func isPagesImage(base string) bool {
	return strings.HasPrefix(base, "pages-") && strings.HasSuffix(base, ".img")
}
