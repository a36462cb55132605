package engine

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"filippo.io/age"
	"github.com/ckpt/ckpt/format/seal"
)

// TestUnsealAhead: the read-ahead gives the plaintext exactly, in reads
// of any size; a truncated or altered archive ends in seal.ErrCorrupt,
// never in a clean end; stop ends the goroutine whenever it is called.
func TestUnsealAhead(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{0, 1, aheadSlab - 1, aheadSlab, 5*aheadSlab + 123} {
		plain := make([]byte, size)
		_, _ = rand.Read(plain)
		var buf bytes.Buffer
		w, err := seal.NewWriter(&buf, []age.Recipient{id.Recipient()})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(plain)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		sealed := buf.Bytes()
		r, stop, err := unsealAhead(bytes.NewReader(sealed), []age.Identity{id})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(r, 100)))
		if err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(r)
		stop()
		if err != nil || !bytes.Equal(append(got, rest...), plain) {
			t.Fatalf("size %d: %v, plaintext equal %v", size, err, bytes.Equal(append(got, rest...), plain))
		}
		if size < aheadSlab {
			continue
		}
		bad := bytes.Clone(sealed)
		bad[len(bad)-aheadSlab/2] ^= 1
		for name, in := range map[string][]byte{"truncated": sealed[:len(sealed)-aheadSlab/2], "flipped": bad} {
			r, stop, err := unsealAhead(bytes.NewReader(in), []age.Identity{id})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, r); !errors.Is(err, seal.ErrCorrupt) {
				t.Errorf("size %d, %s: %v, want ErrCorrupt", size, name, err)
			}
			stop()
		}
		// Stopped before anything is read: the goroutine, blocked
		// handing a slab over, ends.
		_, stop, _ = unsealAhead(bytes.NewReader(sealed), []age.Identity{id})
		stop()
	}
}
