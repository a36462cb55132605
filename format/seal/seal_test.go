package seal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/ckpt/ckpt/format"
	"golang.org/x/crypto/ssh"
)

// sshKey writes an ed25519 key pair in OpenSSH's files under dir and
// returns the private and public key file names.
func sshKey(t *testing.T, dir, name string) (priv, pub string) {
	t.Helper()
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(sk, "")
	if err != nil {
		t.Fatal(err)
	}
	spk, err := ssh.NewPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub = filepath.Join(dir, name), filepath.Join(dir, name+".pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, ssh.MarshalAuthorizedKey(spk), 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// ageKey writes an age identity file under dir and returns its name and
// recipient.
func ageKey(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("# test\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, id.Recipient().String()
}

func seal(t *testing.T, plain []byte, to ...string) []byte {
	t.Helper()
	var rs []age.Recipient
	for _, a := range to {
		r, err := ParseRecipients(a)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r...)
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, rs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func open(sealed []byte, key string) ([]byte, error) {
	var ids []age.Identity
	if key != "" {
		var err error
		if ids, err = ParseIdentities(key); err != nil {
			return nil, err
		}
	}
	r, _, err := Open(bytes.NewReader(sealed), ids)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// TestRoundTrip seals to an SSH key, an age recipient and a file of both
// and opens with each private key; the plaintext appears nowhere in the
// sealed bytes, which Sniff names.
func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	priv, pub := sshKey(t, dir, "id_ed25519")
	priv2, pub2 := sshKey(t, dir, "other")
	ageID, ageRcpt := ageKey(t, dir, "age.key")
	list := filepath.Join(dir, "recipients")
	b2, _ := os.ReadFile(pub2)
	if err := os.WriteFile(list, []byte("# team\n"+string(b2)+"\n"+ageRcpt+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := []byte("SECRET_TOKEN=hunter2-" + strings.Repeat("x", 200<<10))
	sealed := seal(t, secret, pub, list)
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatal("the plaintext is in the sealed bytes")
	}
	if l, err := format.Sniff(bytes.NewReader(sealed), int64(len(sealed))); err != nil || l != format.LooksSealed {
		t.Fatalf("Sniff = %q, %v", l, err)
	}
	for _, key := range []string{priv, priv2, ageID} {
		got, err := open(sealed, key)
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("open with %s: %v (equal %v)", filepath.Base(key), err, bytes.Equal(got, secret))
		}
	}
	h, _, err := ReadHeader(bytes.NewReader(sealed))
	if err != nil || len(h.Stanzas) != 3 || h.Stanzas[0].Type != "ssh-ed25519" || h.Stanzas[2].Type != "X25519" {
		t.Fatalf("header %+v, %v", h, err)
	}
}

// TestRefused: no key, a wrong key, a truncated file and a flipped byte
// anywhere are refused with their named errors, and no plaintext of an
// altered chunk comes out.
func TestRefused(t *testing.T) {
	dir := t.TempDir()
	priv, pub := sshKey(t, dir, "id")
	wrong, _ := sshKey(t, dir, "wrong")
	plain := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 5 chunks
	sealed := seal(t, plain, pub)
	if _, err := open(sealed, ""); !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), "--decrypt-key") {
		t.Errorf("no key: %v", err)
	}
	if _, err := open(sealed, wrong); !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), "ssh-ed25519 key (tag") {
		t.Errorf("wrong key: %v", err)
	}
	h, _, err := ReadHeader(bytes.NewReader(sealed))
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int64{h.Size - 5, h.Size + 10, int64(len(sealed)) - 1, h.Size + 16 + 64<<10 + 16} {
		if _, err := open(sealed[:cut], priv); err == nil {
			t.Errorf("cut at %d of %d: opened", cut, len(sealed))
		}
	}
	for _, at := range []int64{int64(len(Magic)) + 30, h.Size - 3, h.Size + 40, int64(len(sealed)) / 2, int64(len(sealed)) - 1} {
		bad := bytes.Clone(sealed)
		bad[at] ^= 0x01
		got, err := open(bad, priv)
		if err == nil {
			t.Errorf("flip at %d: opened", at)
		}
		if at > h.Size && !errors.Is(err, ErrCorrupt) {
			t.Errorf("flip at %d: %v, want ErrCorrupt", at, err)
		}
		_ = got
	}
}

// TestHostileHeaders: the clear header's bounds and shape.
func TestHostileHeaders(t *testing.T) {
	dir := t.TempDir()
	priv, _ := sshKey(t, dir, "id")
	stanza := "-> X25519 " + strings.Repeat("A", 43) + "\n" + strings.Repeat("A", 43) + "\n"
	for name, c := range map[string]struct {
		in   string
		want error
	}{
		"no magic":        {"age-encryption.org/v1\n", ErrEnvelope},
		"other version":   {"ckpt-sealed-archive/v2\nage-encryption.org/v1\n", ErrEnvelope},
		"no age":          {Magic + "hello\n", ErrEnvelope},
		"no stanza":       {Magic + ageIntro + "--- AAAA\n", ErrEnvelope},
		"truncated":       {Magic + ageIntro + stanza, ErrEnvelope},
		"many stanzas":    {Magic + ageIntro + strings.Repeat(stanza, MaxStanzas+1) + "--- " + strings.Repeat("A", 43) + "\n", ErrEnvelope},
		"huge line":       {Magic + ageIntro + "-> X25519 " + strings.Repeat("A", MaxHeader), ErrEnvelope},
		"bad mac":         {Magic + ageIntro + stanza + "--- " + strings.Repeat("A", 43) + "\n", ErrWrongKey},
		"stray line":      {Magic + ageIntro + "junk\n--- AAAA\n", ErrEnvelope},
		"empty":           {"", ErrEnvelope},
		"magic only":      {Magic, ErrEnvelope},
		"max stanzas ok?": {Magic + ageIntro + strings.Repeat(stanza, MaxStanzas) + "--- " + strings.Repeat("A", 43) + "\n", ErrWrongKey},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := open([]byte(c.in), priv)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestKeyErrors: what cannot be a key is refused naming the file.
func TestKeyErrors(t *testing.T) {
	dir := t.TempDir()
	priv, pub := sshKey(t, dir, "id")
	if _, err := ParseRecipients(priv); !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "private key") {
		t.Errorf("private key as recipient: %v", err)
	}
	if _, err := ParseIdentities(pub); !errors.Is(err, ErrKey) {
		t.Errorf("public key as identity: %v", err)
	}
	if _, err := ParseRecipients(filepath.Join(dir, "missing")); !errors.Is(err, ErrKey) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	ecdsa := "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg="
	if _, err := ParseRecipients(ecdsa); !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "ecdsa") {
		t.Errorf("ecdsa: %v", err)
	}
	_ = fmt.Sprint()
}

// FuzzOpen: no input panics or yields plaintext without the right key.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	pk, sk, _ := ed25519.GenerateKey(rand.Reader)
	spk, _ := ssh.NewPublicKey(pk)
	r, err := ParseRecipients(string(ssh.MarshalAuthorizedKey(spk)))
	if err != nil {
		f.Fatal(err)
	}
	block, _ := ssh.MarshalPrivateKey(sk, "")
	key := filepath.Join(dir, "id")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		f.Fatal(err)
	}
	ids, err := ParseIdentities(key)
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, r)
	_, _ = w.Write([]byte("plain"))
	_ = w.Close()
	f.Add(buf.Bytes())
	f.Add([]byte(Magic + ageIntro + "-> X25519 AAAA\nBBBB\n--- AAAA\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		pr, _, err := Open(bytes.NewReader(in), ids)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(pr, 1<<20))
	})
}

// TestTrailer: a trailer after the age stream (reserved for a signature)
// is stripped and kept; a malformed one is left to age, which refuses it.
func TestTrailer(t *testing.T) {
	dir := t.TempDir()
	priv, pub := sshKey(t, dir, "id")
	for _, size := range []int{0, 10, 64<<10 - 1, 64 << 10, 300 << 10} {
		plain := bytes.Repeat([]byte{'p'}, size)
		sealed := seal(t, plain, pub)
		signed := AppendTrailer(bytes.Clone(sealed), []byte("signature"))
		ids, _ := ParseIdentities(priv)
		r, h, err := Open(bytes.NewReader(signed), ids)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, plain) || string(h.Trailer) != TrailerIntro+"signature" {
			t.Fatalf("size %d: %v, plaintext equal %v, trailer %q", size, err, bytes.Equal(got, plain), h.Trailer)
		}
		bad := bytes.Clone(signed)
		bad[len(sealed)] = 'X' // the intro
		if _, err := open(bad, priv); !errors.Is(err, ErrCorrupt) {
			t.Errorf("size %d, bad trailer: %v", size, err)
		}
		if _, err := open(sealed, priv); err != nil {
			t.Errorf("size %d, no trailer: %v", size, err)
		}
	}
}

// BenchmarkSeal and BenchmarkOpen measure the envelope alone, per byte of
// plaintext, to an ed25519 key.
func BenchmarkSeal(b *testing.B) {
	pk, _, _ := ed25519.GenerateKey(rand.Reader)
	spk, _ := ssh.NewPublicKey(pk)
	rs, err := ParseRecipients(string(ssh.MarshalAuthorizedKey(spk)))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	b.SetBytes(64 << 20)
	for b.Loop() {
		w, _ := NewWriter(io.Discard, rs)
		for range 64 {
			_, _ = w.Write(buf)
		}
		_ = w.Close()
	}
}

func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	pk, sk, _ := ed25519.GenerateKey(rand.Reader)
	spk, _ := ssh.NewPublicKey(pk)
	rs, _ := ParseRecipients(string(ssh.MarshalAuthorizedKey(spk)))
	block, _ := ssh.MarshalPrivateKey(sk, "")
	key := filepath.Join(dir, "id")
	_ = os.WriteFile(key, pem.EncodeToMemory(block), 0o600)
	ids, err := ParseIdentities(key)
	if err != nil {
		b.Fatal(err)
	}
	var sealed bytes.Buffer
	w, _ := NewWriter(&sealed, rs)
	_, _ = w.Write(make([]byte, 64<<20))
	_ = w.Close()
	b.SetBytes(64 << 20)
	for b.Loop() {
		r, _, err := Open(bytes.NewReader(sealed.Bytes()), ids)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, r, make([]byte, 1<<20)); err != nil {
			b.Fatal(err)
		}
	}
}

// sshRecipient makes an ed25519 key pair and returns the private key's
// file and the public key as recipients.
func sshRecipient(t *testing.T) (string, []age.Recipient) {
	t.Helper()
	priv, pub := sshKey(t, t.TempDir(), "id")
	b, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ParseRecipients(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return priv, rs
}

// TestWriterSlabs writes more than the Writer's slabs hold, in pieces
// that straddle their ends, and opens the same bytes back.
func TestWriterSlabs(t *testing.T) {
	priv, rs := sshRecipient(t)
	plain := make([]byte, writeSlabs*writeSlab*2+12345)
	_, _ = rand.Read(plain)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, rs)
	if err != nil {
		t.Fatal(err)
	}
	for p, n := plain, 1; len(p) > 0; n = (n*3 + 7) % 1000003 {
		k := min(n%(writeSlab+4097), len(p))
		if _, err := w.Write(p[:k]); err != nil {
			t.Fatal(err)
		}
		p = p[k:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := open(buf.Bytes(), priv)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Fatalf("opened %d bytes, not the %d sealed", len(got), len(plain))
	}
}

// failAfter fails every write once n bytes were written.
type failAfter struct{ n int }

var errFull = errors.New("device full")

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n < len(p) {
		return 0, errFull
	}
	f.n -= len(p)
	return len(p), nil
}

// TestWriterError: an error of the underlying writer, met by the Writer's
// goroutine, comes back from a later Write or from Close.
func TestWriterError(t *testing.T) {
	_, rs := sshRecipient(t)
	w, err := NewWriter(&failAfter{n: 4096}, rs)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	var werr error
	for range 64 {
		if _, werr = w.Write(buf); werr != nil {
			break
		}
	}
	cerr := w.Close()
	if !errors.Is(werr, errFull) && !errors.Is(cerr, errFull) {
		t.Fatalf("Write: %v, Close: %v; want %v from one", werr, cerr, errFull)
	}
}

// stalled blocks every write once armed, until release closes.
type stalled struct {
	armed   bool
	release chan struct{}
}

func (s *stalled) Write(p []byte) (int, error) {
	if s.armed {
		<-s.release
	}
	return len(p), nil
}

// TestWriterAbort: Abort returns while the goroutine is stuck writing
// (a stalled pipe), and the goroutine ends once the write returns.
func TestWriterAbort(t *testing.T) {
	_, rs := sshRecipient(t)
	s := &stalled{release: make(chan struct{})}
	w, err := NewWriter(s, rs)
	if err != nil {
		t.Fatal(err)
	}
	s.armed = true // the header went through; every write now stalls
	for range 3 {
		if _, err := w.Write(make([]byte, writeSlab)); err != nil {
			t.Fatal(err)
		}
	}
	w.Abort()
	w.Abort() // twice is harmless
	close(s.release)
	<-w.done
	if err := w.Close(); err == nil {
		t.Fatal("Close after Abort succeeded")
	}
}
