package seal

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/format"
)

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r io.ReaderAt
	n int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

// TestOpenAt: random access gives the plaintext Open gives, reading only
// the chunks asked for, with or without a trailer; no key, a wrong key,
// a truncated file and a flipped byte are refused as by Open, a flipped
// byte in a chunk when that chunk is read.
func TestOpenAt(t *testing.T) {
	dir := t.TempDir()
	priv, pub := sshKey(t, dir, "id")
	wrong, _ := sshKey(t, dir, "wrong")
	ids, _ := ParseIdentities(priv)
	wids, _ := ParseIdentities(wrong)
	plain := make([]byte, 40<<20+123)
	for i := range plain {
		plain[i] = byte(i * 7 >> 3)
	}
	sealed := seal(t, plain, pub)
	signed := AppendTrailer(bytes.Clone(sealed), []byte("sig"))
	for name, in := range map[string][]byte{"plain": sealed, "trailer": signed} {
		c := &countingReaderAt{r: bytes.NewReader(in)}
		pr, n, h, err := OpenAt(c, int64(len(in)), ids)
		if err != nil || n != int64(len(plain)) {
			t.Fatalf("%s: size %d, %v", name, n, err)
		}
		if name == "trailer" && string(h.Trailer) != TrailerIntro+"sig" {
			t.Errorf("trailer %q", h.Trailer)
		}
		for _, off := range []int64{0, 100, 64<<10 - 5, 20 << 20, n - 70000, n - 10} {
			got := make([]byte, 10)
			if k, err := pr.ReadAt(got, off); (err != nil && err != io.EOF) || !bytes.Equal(got[:k], plain[off:off+int64(k)]) || k != 10 {
				t.Errorf("%s: ReadAt %d: %d, %v", name, off, k, err)
			}
		}
		if c.n > 1<<20 {
			t.Errorf("%s: %d bytes read for a few reads of a %d-byte file", name, c.n, len(in))
		}
	}
	if _, _, _, err := OpenAt(bytes.NewReader(sealed), int64(len(sealed)), nil); !errors.Is(err, ErrNoKey) {
		t.Errorf("no key: %v", err)
	}
	if _, _, _, err := OpenAt(bytes.NewReader(sealed), int64(len(sealed)), wids); !errors.Is(err, ErrWrongKey) {
		t.Errorf("wrong key: %v", err)
	}
	if _, _, _, err := OpenAt(bytes.NewReader(sealed), int64(len(sealed))-1, ids); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated: %v", err)
	}
	if _, _, _, err := OpenAt(bytes.NewReader(sealed[:20]), 20, ids); !errors.Is(err, ErrEnvelope) {
		t.Errorf("header cut: %v", err)
	}
	bad := bytes.Clone(sealed)
	bad[len(bad)/2] ^= 1
	pr, n, _, err := OpenAt(bytes.NewReader(bad), int64(len(bad)), ids)
	if err != nil {
		t.Fatal(err) // the final chunk is intact
	}
	if _, err := pr.ReadAt(make([]byte, 10), 0); err != nil {
		t.Errorf("an intact chunk: %v", err)
	}
	if _, err := io.Copy(io.Discard, io.NewSectionReader(pr, 0, n)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("flipped byte: %v, want ErrCorrupt", err)
	}
}

// TestNewerEnvelope: a file of another envelope version is named as a
// sealed archive (IsSealed, format.Sniff) and refused naming its version.
func TestNewerEnvelope(t *testing.T) {
	dir := t.TempDir()
	priv, pub := sshKey(t, dir, "id")
	b := seal(t, []byte("x"), pub)
	v2 := append([]byte("ckpt-sealed-archive/v2\n"), b[len(Magic):]...)
	if !IsSealed(v2) {
		t.Error("IsSealed(v2) = false")
	}
	if l, err := format.Sniff(bytes.NewReader(v2), int64(len(v2))); err != nil || l != format.LooksSealed {
		t.Errorf("Sniff(v2) = %q, %v", l, err)
	}
	if _, err := open(v2, priv); !errors.Is(err, ErrEnvelope) || !strings.Contains(err.Error(), `envelope version "v2"`) {
		t.Errorf("open(v2) = %v", err)
	}
}
