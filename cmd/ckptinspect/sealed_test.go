package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/ckpt/ckpt/format/seal"
	"github.com/ckpt/ckpt/internal/testutil"
	"golang.org/x/crypto/ssh"
)

// sealFile seals the archive src to a new ed25519 key under dir and
// returns the sealed file, the private key file and another key's.
func sealFile(t *testing.T, src, dir string) (sealed, key, wrong string) {
	t.Helper()
	keyFile := func(name string) (string, age.Recipient) {
		pk, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		block, err := ssh.MarshalPrivateKey(sk, "")
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		spk, _ := ssh.NewPublicKey(pk)
		rs, err := seal.ParseRecipients(string(ssh.MarshalAuthorizedKey(spk)))
		if err != nil {
			t.Fatal(err)
		}
		return p, rs[0]
	}
	key, r := keyFile("id")
	wrong, _ = keyFile("other")
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	sealed = filepath.Join(dir, "counter.sealed")
	out, err := os.Create(sealed)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w, err := seal.NewWriter(out, []age.Recipient{r})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, in); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return sealed, key, wrong
}

// TestSealed: show of a sealed archive without key lists it sealed, with
// '-' and a note naming the recipient and --decrypt-key; with the key
// show, verify, inspect, memparse and diff read it as the unsealed
// archive, under its own name; without a key or with a wrong one the
// others refuse it naming the flag or the recipients.
func TestSealed(t *testing.T) {
	const plain = "../../testdata/ckpt/counter.tar.zst"
	dir := t.TempDir()
	sealed, key, wrong := sealFile(t, plain, dir)
	do := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	code, out, errOut := do("show", sealed)
	if code != exitOK || !strings.Contains(out, " sealed ") || !strings.Contains(errOut, "sealed for an ssh-ed25519 key") || !strings.Contains(errOut, "--decrypt-key") {
		t.Errorf("show without key = %d:\n%s%s", code, out, errOut)
	}
	if f := strings.Fields(strings.Split(strings.TrimSpace(out), "\n")[1]); f[len(f)-1] != "sealed" || f[len(f)-2] != "-" || f[len(f)-3] != "-" {
		t.Errorf("show without key: row %q", f)
	}
	_, want, _ := do("show", plain)
	code, out, errOut = do("show", "--decrypt-key", key, sealed)
	fields := func(out string) string { return strings.Join(strings.Fields(out), " ") }
	if code != exitOK || fields(strings.ReplaceAll(out, sealed, plain)) != fields(want) || errOut != "" {
		t.Errorf("show with key = %d:\n%s%s\nwant\n%s", code, out, errOut, want)
	}
	if strings.Contains(errOut, "not a checkpoint archive") {
		t.Errorf("show without key: %s", errOut)
	}
	for _, flag := range []string{"--full", "--verify"} {
		code, out, errOut = do("show", flag, "--decrypt-key", key, sealed)
		_, want, _ := do("show", flag, plain)
		if code != exitOK || fields(strings.ReplaceAll(out, sealed, plain)) != fields(want) || errOut != "" {
			t.Errorf("show %s with key = %d:\n%s%s\nwant\n%s", flag, code, out, errOut, want)
		}
	}
	code, _, errOut = do("show", "--decrypt-key", wrong, sealed)
	if code != exitFailure || !strings.Contains(errOut, "sealed for an ssh-ed25519 key") {
		t.Errorf("show with a wrong key = %d: %s", code, errOut)
	}
	for _, args := range [][]string{
		{"verify", sealed}, {"inspect", "--all", sealed}, {"memparse", sealed}, {"diff", plain, sealed},
	} {
		code, out, errOut := do(append(args, "--decrypt-key", key)...)
		if code != exitOK || strings.Contains(out+errOut, "/proc/self/fd") || !strings.Contains(out, filepath.Base(sealed)) && args[0] != "memparse" && args[0] != "diff" {
			t.Errorf("%s with key = %d:\n%s%s", args[0], code, out, errOut)
		}
		code, _, errOut = do(args...)
		if code != exitUsage || !strings.Contains(errOut, "give its key with --decrypt-key") {
			t.Errorf("%s without key = %d: %s", args[0], code, errOut)
		}
		code, _, errOut = do(append(args, "--decrypt-key", wrong)...)
		if code != exitUsage || !strings.Contains(errOut, "sealed for an ssh-ed25519 key") {
			t.Errorf("%s with a wrong key = %d: %s", args[0], code, errOut)
		}
	}
}

// TestSignedInspect: a sealed archive signed with an ed25519 key. show
// without key names its signer (unchecked); verify --trust-key with the
// signer's public key passes, with another key refuses it (untrusted),
// and refuses the unsigned sealed and the plain archive (unsigned); a
// flipped byte fails the signature.
func TestSignedInspect(t *testing.T) {
	const plain = "../../testdata/ckpt/counter.tar.zst"
	dir := t.TempDir()
	_, key, wrong := sealFile(t, plain, dir)
	unsigned := filepath.Join(dir, "counter.sealed")
	pub := func(priv, name string) string {
		b, _ := os.ReadFile(priv)
		k, err := ssh.ParsePrivateKey(b)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.PublicKey()))) + " " + name + "\n"
		if err := os.WriteFile(p, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyPub, wrongPub := pub(key, "ops@example"), pub(wrong, "other@example")
	signer, err := seal.ParseSigningKey(key)
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := seal.ParseRecipients(keyPub)
	in, _ := os.ReadFile(plain)
	var b bytes.Buffer
	w, err := seal.NewSignedWriter(&b, rs, signer)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write(in)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	signed, flipped := filepath.Join(dir, "signed.sealed"), filepath.Join(dir, "flipped.sealed")
	_ = os.WriteFile(signed, b.Bytes(), 0o600)
	fb := bytes.Clone(b.Bytes())
	fb[len(fb)/2] ^= 1
	_ = os.WriteFile(flipped, fb, 0o600)
	do := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	if code, out, errOut := do("show", signed); code != exitOK || !strings.Contains(errOut, "signed by SHA256:") {
		t.Errorf("show of a signed archive = %d:\n%s%s", code, out, errOut)
	}
	// The signature command's files, checked by OpenSSH itself.
	msg, sigFile, allowed := filepath.Join(dir, "msg"), filepath.Join(dir, "msg.sig"), filepath.Join(dir, "allowed")
	if code, out, errOut := do("signature", signed, "--message", msg, "--signature", sigFile); code != exitOK || !strings.Contains(out, "signed by SHA256:") {
		t.Errorf("signature = %d:\n%s%s", code, out, errOut)
	}
	pubLine, _ := os.ReadFile(keyPub)
	_ = os.WriteFile(allowed, []byte("ops@example "+string(pubLine)), 0o600)
	m, _ := os.Open(msg)
	cmd := exec.Command(testutil.RequireTool(t, "ssh-keygen"), "-Y", "verify", "-f", allowed, "-I", "ops@example", "-n", seal.Namespace, "-s", sigFile)
	cmd.Stdin = m
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("ssh-keygen -Y verify of the signature command's files: %v: %s", err, out)
	}
	m.Close()
	if code, _, errOut := do("signature", unsigned); code != exitFailure || !strings.Contains(errOut, "not signed") {
		t.Errorf("signature of an unsigned archive = %d: %s", code, errOut)
	}
	if code, out, errOut := do("verify", "--decrypt-key", key, "--trust-key", keyPub, signed); code != exitOK {
		t.Errorf("verify --trust-key (the signer) = %d:\n%s%s", code, out, errOut)
	}
	for _, c := range []struct{ name, path, trust, want string }{
		{"untrusted", signed, wrongPub, "signed by a key not trusted"},
		{"unsigned sealed", unsigned, keyPub, "not signed"},
		{"plain", plain, keyPub, "not signed"},
		{"flipped", flipped, keyPub, "bad signature"},
	} {
		code, _, errOut := do("verify", "--decrypt-key", key, "--trust-key", c.trust, c.path)
		if code == exitOK || !strings.Contains(errOut, c.want) {
			t.Errorf("verify --trust-key of %s = %d: %s, want %q", c.name, code, errOut, c.want)
		}
	}
}
