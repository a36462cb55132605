package seal

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/ckpt/ckpt/internal/testutil"
)

// keygen makes a key pair of type typ with OpenSSH's ssh-keygen and
// returns the private key's path (the public key is path.pub).
func keygen(t *testing.T, dir, typ, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	args := []string{"-q", "-t", typ, "-N", "", "-C", name + "@example", "-f", p}
	if typ == "rsa" {
		args = append(args, "-b", "2048")
	}
	if out, err := exec.Command(testutil.RequireTool(t, "ssh-keygen"), args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	return p
}

// signedArchive seals payload to a fresh age key and signs it with the
// SSH key at keyPath.
func signedArchive(t *testing.T, keyPath string, payload []byte) []byte {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSigningKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w, err := NewSignedWriter(&b, []age.Recipient{id.Recipient()}, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func verify(b []byte, trust Trust) (*Signed, error) {
	return VerifyFile(bytes.NewReader(b), int64(len(b)), trust)
}

// TestSignVerify signs with ed25519 and RSA keys made by ssh-keygen and
// checks what VerifyFile accepts and refuses: the trusted key, another
// key, no signature, a flipped byte anywhere before the trailer or in the
// signature.
func TestSignVerify(t *testing.T) {
	dir := t.TempDir()
	for _, typ := range []string{"ed25519", "rsa"} {
		key := keygen(t, dir, typ, "signer-"+typ)
		other := keygen(t, dir, typ, "other-"+typ)
		trust, err := ParseTrustKeys(key + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		otherTrust, err := ParseTrustKeys(other + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		b := signedArchive(t, key, bytes.Repeat([]byte("checkpoint "), 30000))
		s, err := verify(b, trust)
		if err != nil || s == nil || s.Trusted == nil || !strings.Contains(s.Signer(), "signer-"+typ+"@example") {
			t.Fatalf("%s: VerifyFile(trusted) = %v, %v", typ, s, err)
		}
		if s, err := verify(b, nil); err != nil || s == nil || s.Trusted != nil {
			t.Errorf("%s: VerifyFile(no trust) = %v, %v; want the signature, verified", typ, s, err)
		}
		if _, err := verify(b, otherTrust); !errors.Is(err, ErrUntrusted) {
			t.Errorf("%s: VerifyFile(other key) = %v, want ErrUntrusted", typ, err)
		}
		_, signedLen, _ := ReadSignature(bytes.NewReader(b), int64(len(b)))
		if _, err := verify(b[:signedLen], trust); !errors.Is(err, ErrUnsigned) {
			t.Errorf("%s: VerifyFile(signature stripped) = %v, want ErrUnsigned", typ, err)
		}
		for _, at := range []int64{0, 3, int64(len(Magic)) + 10, signedLen / 2, signedLen - 1, signedLen + int64(len(TrailerIntro)) + 40} {
			c := bytes.Clone(b)
			c[at] ^= 1
			if _, err := verify(c, trust); err == nil {
				t.Errorf("%s: VerifyFile(byte %d of %d flipped) = nil, want an error", typ, at, len(b))
			}
		}
	}
}

// TestSSHKeygenInterop checks the signature against OpenSSH's own tools
// both ways: ssh-keygen -Y verify accepts what ckpt signed (the message
// being the file without its trailer), and ckpt accepts a trailer made
// of what ssh-keygen -Y sign wrote; a signature in another namespace is
// refused.
func TestSSHKeygenInterop(t *testing.T) {
	kg := testutil.RequireTool(t, "ssh-keygen")
	dir := t.TempDir()
	for _, typ := range []string{"ed25519", "rsa"} {
		key := keygen(t, dir, typ, "interop-"+typ)
		pub, err := os.ReadFile(key + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		allowed := filepath.Join(dir, "allowed_signers-"+typ)
		if err := os.WriteFile(allowed, []byte("ops@example "+string(pub)), 0o600); err != nil {
			t.Fatal(err)
		}
		b := signedArchive(t, key, []byte("a sealed checkpoint"))
		sig, signedLen, err := ReadSignature(bytes.NewReader(b), int64(len(b)))
		if err != nil || sig == nil {
			t.Fatalf("ReadSignature = %v, %v", sig, err)
		}
		msg := filepath.Join(dir, "msg-"+typ)
		sigFile := filepath.Join(dir, "msg-"+typ+".sig")
		if err := os.WriteFile(msg, b[:signedLen], 0o600); err != nil {
			t.Fatal(err)
		}
		trailer := b[signedLen+int64(len(TrailerIntro)) : int64(len(b))-int64(footerLen)]
		if err := os.WriteFile(sigFile, trailer, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(kg, "-Y", "verify", "-f", allowed, "-I", "ops@example", "-n", Namespace, "-s", sigFile)
		cmd.Stdin = bytes.NewReader(b[:signedLen])
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: ssh-keygen -Y verify of ckpt's signature: %v: %s", typ, err, out)
		}
		// The other way: ssh-keygen signs the same bytes.
		for _, ns := range []string{Namespace, "file"} {
			_ = os.Remove(sigFile)
			out, err := exec.Command(kg, "-Y", "sign", "-f", key, "-n", ns, msg).CombinedOutput()
			if err != nil {
				t.Fatalf("ssh-keygen -Y sign: %v: %s", err, out)
			}
			osig, err := os.ReadFile(sigFile)
			if err != nil {
				t.Fatal(err)
			}
			c := AppendTrailer(bytes.Clone(b[:signedLen]), osig)
			trust, err := ParseTrustKeys(allowed)
			if err != nil {
				t.Fatal(err)
			}
			s, err := verify(c, trust)
			if ns == Namespace && (err != nil || s.Trusted.Name != "ops@example") {
				t.Errorf("%s: ckpt's check of ssh-keygen's signature = %v, %v", typ, s, err)
			}
			if ns != Namespace && !errors.Is(err, ErrSignature) {
				t.Errorf("%s: a signature in namespace %q = %v, want ErrSignature", typ, ns, err)
			}
		}
	}
}

// TestSignedOpen checks that a signed archive opens as any sealed one
// (the trailer stripped) and that a signing key with a passphrase or of
// another type is refused in one line.
func TestSignedOpen(t *testing.T) {
	dir := t.TempDir()
	key := keygen(t, dir, "ed25519", "open")
	id, _ := age.GenerateX25519Identity()
	s, _ := ParseSigningKey(key)
	var b bytes.Buffer
	w, err := NewSignedWriter(&b, []age.Recipient{id.Recipient()}, s)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("plaintext"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, h, err := Open(&b, []age.Identity{id})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "plaintext" || h.Trailer == nil {
		t.Errorf("Open(signed) = %q, %v, trailer %d bytes", got, err, len(h.Trailer))
	}
	pp := filepath.Join(dir, "pp")
	if out, err := exec.Command(testutil.RequireTool(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "secret", "-f", pp).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	if _, err := ParseSigningKey(pp); !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "passphrase") {
		t.Errorf("ParseSigningKey(passphrase) = %v", err)
	}
	ec := keygen(t, dir, "ecdsa", "ec")
	if _, err := ParseSigningKey(ec); !errors.Is(err, ErrKey) {
		t.Errorf("ParseSigningKey(ecdsa) = %v, want ErrKey", err)
	}
	if _, err := ParseTrustKeys(key); !errors.Is(err, ErrKey) {
		t.Errorf("ParseTrustKeys(a private key) = %v, want ErrKey", err)
	}
}

// TestParseSignatureHostile feeds malformed signatures: each is
// ErrSignature, never a panic.
func TestParseSignatureHostile(t *testing.T) {
	for name, in := range map[string]string{
		"empty":     "",
		"no armor":  "AAAA",
		"bad b64":   armorBegin + "\n!!!\n" + armorEnd,
		"no magic":  string(armor([]byte("XXXXXX\x00\x00\x00\x01"))),
		"version 2": string(armor([]byte("SSHSIG\x00\x00\x00\x02"))),
		"truncated": string(armor([]byte("SSHSIG\x00\x00\x00\x01\x00\x00\x00\x10ab"))),
		"huge len":  string(armor([]byte("SSHSIG\x00\x00\x00\x01\xff\xff\xff\xff"))),
	} {
		if _, err := ParseSignature([]byte(in)); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: ParseSignature = %v, want ErrSignature", name, err)
		}
	}
}

// FuzzParseSignature: any trailer body parses to a signature or an
// ErrSignature, never a panic, and a parsed one never verifies against a
// digest it was not made for.
func FuzzParseSignature(f *testing.F) {
	f.Add([]byte(armorBegin + "\nU1NIU0lHAAAAAQ==\n" + armorEnd))
	f.Add(armor([]byte("SSHSIG\x00\x00\x00\x01\x00\x00\x00\x00")))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSignature(b)
		if err != nil {
			if !errors.Is(err, ErrSignature) {
				t.Fatalf("ParseSignature = %v, want ErrSignature", err)
			}
			return
		}
		if s.verifyDigest(make([]byte, 32)) == nil {
			t.Fatal("a fuzzed signature verified")
		}
	})
}
