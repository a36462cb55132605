package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/seal"
)

// TestSignedMigrate: a counter is exported sealed to an ssh-keygen key and
// signed with another (as a file, and streamed). On a second root, with
// --trust-key's keys, the archive is refused when signed by an untrusted
// key, with its signature stripped, with a byte flipped in the signature,
// the header or the payload, and re-packed as an unsealed archive (its
// plaintext, which the key holder can write): each with its named error,
// before any staging, and nothing left. With the signer trusted both
// archives restore and the counter goes on; without --trust-key the
// signer is reported.
func TestSignedMigrate(t *testing.T) {
	t.Parallel()
	src, dst := realEngine(t), realEngine(t)
	ctx := context.Background()
	keys := t.TempDir()
	enc, signer, stranger := sshKeygen(t, keys, "enc"), sshKeygen(t, keys, "signer"), sshKeygen(t, keys, "stranger")
	to, err := seal.ParseRecipients(enc + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	sk, err := seal.ParseSigningKey(signer)
	if err != nil {
		t.Fatal(err)
	}
	strangerKey, err := seal.ParseSigningKey(stranger)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := seal.ParseTrustKeys(signer + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Run(ctx, "workload", &RunOptions{Name: "signed", Command: []string{"/bin/counter", "-interval", "50ms"}}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, src, "signed", "counter 3", func(l string) bool { return lastCounter(l) >= 3 })
	dir := t.TempDir()
	path := func(n string) string { return filepath.Join(dir, n) }
	lr := CheckpointOptions{LeaveRunning: true}
	for n, o := range map[string]*ExportOptions{
		"signed":   {CheckpointOptions: lr, SealTo: to, SignKey: sk},
		"streamed": {CheckpointOptions: lr, SealTo: to, SignKey: sk, Stream: true},
		"stranger": {CheckpointOptions: lr, SealTo: to, SignKey: strangerKey, Compression: format.None},
	} {
		if _, err := src.Export(ctx, "signed", path(n), o); err != nil {
			t.Fatalf("export %s: %v", n, err)
		}
	}
	if _, err := src.Export(ctx, "signed", path("plainsig"), &ExportOptions{CheckpointOptions: lr, SignKey: sk}); !errors.Is(err, ErrOptions) {
		t.Errorf("a signed unsealed export = %v, want ErrOptions", err)
	}
	b := []byte(readFile(t, path("signed")))
	sig, signedLen, err := seal.ReadSignature(bytes.NewReader(b), int64(len(b)))
	if err != nil || sig == nil {
		t.Fatalf("the signed export has no signature: %v", err)
	}
	write := func(n string, data []byte) string {
		if err := os.WriteFile(path(n), data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path(n)
	}
	flip := func(at int64) []byte { c := bytes.Clone(b); c[at] ^= 1; return c }
	write("stripped", b[:signedLen])
	write("sigflip", flip(signedLen+int64(len(seal.TrailerIntro))+60))
	write("headerflip", flip(int64(len(seal.Magic))+30))
	write("payloadflip", flip(signedLen/2))
	// The key holder re-packs the plaintext as an unsealed archive.
	pr, _, err := seal.Open(bytes.NewReader(b), identities(t, enc))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(pr)
	if err != nil {
		t.Fatal(err)
	}
	write("repacked", plain)

	ids := identities(t, enc)
	for _, c := range []struct {
		name string
		want error
	}{
		{"stranger", seal.ErrUntrusted},
		{"stripped", seal.ErrUnsigned},
		{"sigflip", seal.ErrSignature},
		{"headerflip", seal.ErrSignature},
		{"payloadflip", seal.ErrSignature},
		{"repacked", seal.ErrUnsigned},
	} {
		_, err := dst.Import(ctx, path(c.name), &ImportOptions{Identities: ids, Trust: trust})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if _, serr := os.Stat(filepath.Join(dst.root(), "import")); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("%s: the import directory exists (%v): something was staged before the signature was checked", c.name, serr)
		}
		t.Logf("%s: %v", c.name, err)
		noLeftovers(t, dst, 0)
	}
	// Without --trust-key a bad signature is still refused.
	if _, err := dst.Import(ctx, path("payloadflip"), &ImportOptions{Identities: ids}); !errors.Is(err, seal.ErrSignature) {
		t.Errorf("payloadflip without trust: %v, want ErrSignature", err)
	}
	noLeftovers(t, dst, 0)

	ir, err := dst.Import(ctx, path("signed"), &ImportOptions{Identities: ids, Trust: trust})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ir.Signer, "signer") {
		t.Errorf("Signer = %q, want the trusted key's comment", ir.Signer)
	}
	at := lastCounter(logsOf(t, src, "signed"))
	waitLog(t, dst, ir.Container.ID, "the counter to go on", func(l string) bool { return lastCounter(l) >= at+3 })
	ir2, err := dst.Import(ctx, path("streamed"), &ImportOptions{Name: "signed2", Identities: ids})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ir2.Signer, "SHA256:") {
		t.Errorf("Signer without trust = %q, want the key's fingerprint", ir2.Signer)
	}
	waitLog(t, dst, ir2.Container.ID, "the streamed copy's counter to go on", func(l string) bool { return lastCounter(l) >= 3 })
}

// TestImportStreamTrust: --trust-key with a stream is refused before
// anything is read or made: the signature is checked over a whole file.
func TestImportStreamTrust(t *testing.T) {
	e := &Engine{Root: t.TempDir(), RunRoot: t.TempDir()}
	_, err := e.ImportStream(context.Background(), strings.NewReader("anything"), "stdin", &ImportOptions{Trust: seal.Trust{{Name: "x"}}})
	if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "--trust-key needs the archive as a file") {
		t.Errorf("ImportStream with Trust = %v, want ErrOptions", err)
	}
	if ents, _ := os.ReadDir(e.Root); len(ents) != 0 {
		t.Errorf("ImportStream with Trust made %d entries under the root", len(ents))
	}
}
