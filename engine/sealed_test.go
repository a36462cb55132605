package engine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"filippo.io/age"
	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/seal"
	"github.com/ckpt/ckpt/internal/testutil"
)

// sshKeygen makes an ed25519 key pair with OpenSSH's ssh-keygen under dir
// and returns the private key file's name (the public one adds .pub).
func sshKeygen(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	out, err := exec.Command(testutil.RequireTool(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", p).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	return p
}

func identities(t *testing.T, key string) []age.Identity {
	t.Helper()
	ids, err := seal.ParseIdentities(key)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestSealedMigrate: a container whose environment holds a secret is
// exported unsealed (the control: the secret is in the file) and sealed
// to an ssh-keygen ed25519 key, as a file and streamed (the secret is in
// neither). On a second root the sealed archive is refused without a key,
// with a wrong key, truncated and with a byte of its ciphertext flipped,
// each with its named error and nothing left (no container, no staging);
// with the private key both sealed archives restore and the counter goes
// on.
func TestSealedMigrate(t *testing.T) {
	t.Parallel()
	src, dst := realEngine(t), realEngine(t)
	ctx := context.Background()
	keys := t.TempDir()
	priv, wrong := sshKeygen(t, keys, "id_ed25519"), sshKeygen(t, keys, "other")
	to, err := seal.ParseRecipients(priv + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	const secret = "s3cr3t-t0ken-4f9a1c"
	cmd := []string{"/bin/counter", "-interval", "50ms"}
	if _, err := src.Run(ctx, "workload", &RunOptions{Name: "sealed", Command: cmd, Env: []string{"API_TOKEN=" + secret}}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, src, "sealed", "counter 3", func(l string) bool { return lastCounter(l) >= 3 })
	dir := t.TempDir()
	plain, streamed, sealed := filepath.Join(dir, "plain.tar"), filepath.Join(dir, "streamed.sealed"), filepath.Join(dir, "sealed")
	run := ExportOptions{CheckpointOptions: CheckpointOptions{LeaveRunning: true}, Compression: format.None}
	if _, err := src.Export(ctx, "sealed", plain, &run); err != nil {
		t.Fatal(err)
	}
	st := run
	st.Stream, st.SealTo = true, to
	if _, err := src.Export(ctx, "sealed", streamed, &st); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Export(ctx, "sealed", sealed, &ExportOptions{Compression: format.None, SealTo: to}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains([]byte(readFile(t, plain)), []byte(secret)) {
		t.Fatalf("the control export does not hold the secret: the test proves nothing")
	}
	for _, p := range []string{streamed, sealed} {
		b := []byte(readFile(t, p))
		if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte("API_TOKEN")) || bytes.Contains(b, []byte("counter")) {
			t.Errorf("%s holds the secret, its name or the command in clear", filepath.Base(p))
		}
		if l, _ := format.SniffFile(p); l != format.LooksSealed {
			t.Errorf("Sniff(%s) = %q", filepath.Base(p), l)
		}
	}

	b := []byte(readFile(t, sealed))
	truncated, flipped := filepath.Join(dir, "truncated"), filepath.Join(dir, "flipped")
	if err := os.WriteFile(truncated, b[:len(b)*2/3], 0o600); err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(flipped, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path, key string
		want            error
	}{
		{"no key", sealed, "", seal.ErrNoKey},
		{"wrong key", sealed, wrong, seal.ErrWrongKey},
		{"truncated", truncated, priv, seal.ErrCorrupt},
		{"flipped", flipped, priv, seal.ErrCorrupt},
	} {
		var ids []age.Identity
		if c.key != "" {
			ids = identities(t, c.key)
		}
		_, err := dst.Import(ctx, c.path, &ImportOptions{Identities: ids})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		t.Logf("%s: %v", c.name, err)
		noLeftovers(t, dst, 0)
	}

	ir, err := dst.Import(ctx, sealed, &ImportOptions{Identities: identities(t, priv)})
	if err != nil {
		t.Fatal(err)
	}
	at := lastCounter(logsOf(t, src, "sealed"))
	waitLog(t, dst, ir.Container.ID, "the counter to go on", func(l string) bool { return lastCounter(l) >= at+3 })
	ir2, err := dst.Import(ctx, streamed, &ImportOptions{Name: "sealed2", Identities: identities(t, priv)})
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, dst, ir2.Container.ID, "the streamed copy's counter to go on", func(l string) bool { return lastCounter(l) >= 3 })
}
