package hostile

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/ckpt/ckpt/format/seal"
	"golang.org/x/crypto/ssh"
)

// Placeholders of restoreFlags for the sealed cases' keys, made per run.
const (
	keyFlag   = "{key}"
	wrongFlag = "{wrong}"
	pubFlag   = "{key.pub}"
)

// flags returns restoreFlags with the key placeholders replaced by key
// files made once per corpus.
func (c *corpus) flags(t *testing.T, fs []string) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		switch f {
		case keyFlag:
			f, _ = c.key(t, "id")
		case wrongFlag:
			f, _ = c.key(t, "wrong")
		case pubFlag:
			f, _ = c.key(t, "id")
			f += ".pub"
		}
		out[i] = f
	}
	return out
}

// key returns the private key file name under c.dir, made on first use,
// and its recipient.
func (c *corpus) key(t *testing.T, name string) (string, age.Recipient) {
	t.Helper()
	p := filepath.Join(c.dir, name+".key")
	if _, err := os.Stat(p); err != nil {
		pk, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		block, err := ssh.MarshalPrivateKey(sk, "")
		if err != nil {
			t.Fatal(err)
		}
		spk, _ := ssh.NewPublicKey(pk)
		if err := os.WriteFile(p+".pub", ssh.MarshalAuthorizedKey(spk), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := seal.ParseRecipients(p + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return p, rs[0]
}

// sealed seals the base archive to the corpus key, then lets edit change
// the sealed bytes.
func (c *corpus) sealed(t *testing.T, edit func(b []byte) []byte) string {
	t.Helper()
	_, r := c.key(t, "id")
	in, err := os.Open(c.path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var buf strings.Builder
	w, err := seal.NewWriter(&buf, []age.Recipient{r})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, in); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b := []byte(buf.String())
	if edit != nil {
		b = edit(b)
	}
	p := c.out()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sealedCases: a sealed base archive restores with its key; without one,
// with another, with too many stanzas, truncated or with a byte of its
// ciphertext flipped it is refused, naming why, with nothing left; verify
// without a key refuses each (exit 2, naming --decrypt-key or the header).
func sealedCases() []hostileCase {
	ignore := []string{"--ignore-binds"}
	key := append([]string{"--decrypt-key", keyFlag}, ignore...)
	plain := func(t *testing.T, c *corpus) string { return c.sealed(t, nil) }
	return []hostileCase{
		{name: "sealed", verify: 2, build: plain, restoreFlags: key, restored: true},
		{name: "sealed-no-key", verify: 2, build: plain, restoreFlags: ignore, want: "give its key with --decrypt-key"},
		{name: "sealed-wrong-key", verify: 2, build: plain, restoreFlags: append([]string{"--decrypt-key", wrongFlag}, ignore...), want: "it is sealed for an ssh-ed25519 key"},
		{
			name: "sealed-many-stanzas", verify: 2, restoreFlags: key, want: "more than 64 recipients",
			build: func(t *testing.T, c *corpus) string {
				return c.sealed(t, func(b []byte) []byte {
					intro := len(seal.Magic) + len("age-encryption.org/v1\n")
					stanza := "-> X25519 " + strings.Repeat("A", 43) + "\n" + strings.Repeat("A", 43) + "\n"
					return append([]byte(string(b[:intro])+strings.Repeat(stanza, seal.MaxStanzas)), b[intro:]...)
				})
			},
		},
		{
			name: "sealed-truncated", verify: 2, restoreFlags: key, want: "sealed archive corrupt or altered",
			build: func(t *testing.T, c *corpus) string {
				return c.sealed(t, func(b []byte) []byte { return b[:len(b)*3/4] })
			},
		},
		{
			name: "sealed-flipped", verify: 2, restoreFlags: key, want: "sealed archive corrupt or altered",
			build: func(t *testing.T, c *corpus) string {
				return c.sealed(t, func(b []byte) []byte { b[len(b)*3/4] ^= 1; return b })
			},
		},
		// Classes ckptinspect fuzz's sealed mutations brought.
		{
			name: "sealed-bad-mac", verify: 2, restoreFlags: key, want: "bad header MAC",
			build: func(t *testing.T, c *corpus) string {
				return c.sealed(t, func(b []byte) []byte {
					// Another base64 letter: a flipped bit could make an
					// invalid one, refused as a malformed header instead.
					i := bytes.Index(b, []byte("\n--- ")) + 6
					if b[i] == 'A' {
						b[i] = 'B'
					} else {
						b[i] = 'A'
					}
					return b
				})
			},
		},
		{
			name: "sealed-chunks-swapped", verify: 2, restoreFlags: key, want: "sealed archive corrupt or altered",
			build: func(t *testing.T, c *corpus) string {
				return c.sealed(t, func(b []byte) []byte {
					const chunk = 64<<10 + 16
					at := bytes.Index(b, []byte("\n--- "))
					at += bytes.IndexByte(b[at+1:], '\n') + 2 + 16 // past the MAC line and the nonce
					if len(b) < at+3*chunk {
						t.Fatalf("the sealed base archive has fewer than three chunks")
					}
					first := bytes.Clone(b[at : at+chunk])
					copy(b[at:], b[at+chunk:at+2*chunk])
					copy(b[at+chunk:], first)
					return b
				})
			},
		},
		{
			name: "sealed-bad-trailer", verify: 2, restoreFlags: key, want: "sealed archive corrupt or altered",
			build: func(t *testing.T, c *corpus) string {
				return c.sealed(t, func(b []byte) []byte {
					tr := seal.AppendTrailer(nil, []byte("signature"))
					tr[0] = 'X' // the intro: not a trailer, so bytes after the age stream
					return append(b, tr...)
				})
			},
		},
		{
			// A well-formed trailer whose signature is garbage: a
			// signature that is present is checked, trusted or not.
			name: "signed-forged", verify: 2, restoreFlags: key, want: "bad signature: not an armored SSH signature", pipeRestores: true,
			build: func(t *testing.T, c *corpus) string {
				return c.sealed(t, func(b []byte) []byte { return seal.AppendTrailer(b, []byte("forged signature")) })
			},
		},
		{
			name: "signed-armor-garbage", verify: 2, restoreFlags: key, want: "bad signature", pipeRestores: true,
			build: func(t *testing.T, c *corpus) string {
				return c.sealed(t, func(b []byte) []byte {
					return seal.AppendTrailer(b, []byte("-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAf////8=\n-----END SSH SIGNATURE-----\n"))
				})
			},
		},
		{
			name: "signed-required", verify: 2, restoreFlags: append([]string{"--trust-key", pubFlag}, key...), want: "the archive is not signed", pipeWant: "--trust-key needs the archive as a file",
			build: plain,
		},
		{
			name: "sealed-envelope-v2", verify: 2, restoreFlags: key, want: "envelope version \"v2\", which this ckpt does not read",
			build: func(t *testing.T, c *corpus) string {
				return c.sealed(t, func(b []byte) []byte {
					return append([]byte(strings.Replace(seal.Magic, "/v1", "/v2", 1)), b[len(seal.Magic):]...)
				})
			},
		},
	}
}
