package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// sealKeys makes two key pairs with ssh-keygen, the one sealed to and
// another, and returns their private key files and the recipients of the
// first.
func sealKeys(t *testing.T) (priv, other string, to []age.Recipient) {
	t.Helper()
	keys := t.TempDir()
	priv, other = sshKeygen(t, keys, "id_ed25519"), sshKeygen(t, keys, "other")
	to, err := seal.ParseRecipients(priv + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return priv, other, to
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
	priv, wrong, to := sealKeys(t)
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
		// Refused at the header: no staging directory was ever made
		// (dst has imported nothing yet).
		if _, serr := os.Stat(filepath.Join(dst.root(), "import")); c.want != seal.ErrCorrupt && !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("%s: the import directory exists (%v): something was staged before the key was checked", c.name, serr)
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

// TestSealedPodman: podman's archive (legacy, no manifest) sealed to an
// age recipient restores with the age identity file: the envelope is
// opened before the lookalike check, which would otherwise name the
// sealed file for what its envelope looks like.
func TestSealedPodman(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	ctx := context.Background()
	if _, err := e.ImageImport(ctx, "../testdata/podman/rootfs.tar.gz", "localhost/ckpt-counter:mkpodman"); err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "age.key")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	to, err := seal.ParseRecipients(id.Recipient().String())
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../testdata/podman/counter.tar.zst")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := seal.NewWriter(&buf, to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(src); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sealed := filepath.Join(dir, "podman.sealed")
	if err := os.WriteFile(sealed, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := e.Import(ctx, sealed, &ImportOptions{Identities: identities(t, keyFile)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Legacy {
		t.Errorf("a sealed podman archive imported as non-legacy")
	}
	waitLog(t, e, "ckpt-mkpodman", "the counter to go on", func(l string) bool { return lastCounter(l) >= 38 })
}

// TestSealedChain: a pre-copy chain whose every level is sealed (two
// pre-checkpoints and the final checkpoint, each to an ssh-keygen key)
// restores on a second root with the key, the levels given in any order,
// and the counter goes on from the final's count. Without a key, and with
// one level re-sealed to another key (the same archive inside, so the
// chain's digests still match: only the key is wrong), the import is
// refused with the named error before anything is staged, and leaves
// nothing.
func TestSealedChain(t *testing.T) {
	t.Parallel()
	src, dst := realEngine(t), realEngine(t)
	src.memoryTrackingCheck = noMemoryTracking // the deduplicated chain, on any host
	ctx := context.Background()
	priv, other, to := sealKeys(t)
	cmd := []string{"/bin/counter", "-ballast-mb", "16", "-dirty-percent", "1", "-interval", "100ms", "-file", ""}
	if _, err := src.Run(ctx, "workload", &RunOptions{Name: "schain", Command: cmd}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, src, "schain", "counter 3", func(l string) bool { return lastCounter(l) >= 3 })
	dir := t.TempDir()
	pre1, pre2, final := filepath.Join(dir, "pre1"), filepath.Join(dir, "pre2"), filepath.Join(dir, "final")
	for _, p := range []string{pre1, pre2} {
		if _, err := src.Export(ctx, "schain", p, &ExportOptions{CheckpointOptions: CheckpointOptions{PreCheckpoint: true}, SealTo: to}); err != nil {
			t.Fatal(err)
		}
	}
	fr, err := src.Export(ctx, "schain", final, &ExportOptions{CheckpointOptions: CheckpointOptions{WithPrevious: true}, SealTo: to})
	if err != nil {
		t.Fatal(err)
	}
	if p := fr.Manifest.Parent; p == nil || p.Depth != 2 {
		t.Fatalf("final's parent %+v, want a chain of 2", p)
	}
	for _, p := range []string{pre1, pre2, final} {
		if l, _ := format.SniffFile(p); l != format.LooksSealed {
			t.Errorf("%s is not sealed: Sniff says %q", filepath.Base(p), l)
		}
	}
	at := lastCounter(logsOf(t, src, "schain"))

	// pre2 re-sealed to the other key: the same archive inside.
	pre2other := filepath.Join(dir, "pre2-other")
	reseal(t, pre2, pre2other, priv, other+".pub")
	for _, c := range []struct {
		name string
		prev []string
		key  string
		want error
	}{
		{"no key", []string{pre1, pre2}, "", seal.ErrNoKey},
		{"a level sealed to another key", []string{pre1, pre2other}, priv, seal.ErrWrongKey},
		{"only the other key", []string{pre1, pre2other}, other, seal.ErrWrongKey},
	} {
		var ids []age.Identity
		if c.key != "" {
			ids = identities(t, c.key)
		}
		_, err := dst.Import(ctx, final, &ImportOptions{Previous: c.prev, Identities: ids})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		t.Logf("%s: %v", c.name, err)
		if _, serr := os.Stat(filepath.Join(dst.root(), "import")); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("%s: the import directory exists (%v): something was staged before the keys were checked", c.name, serr)
		}
		noLeftovers(t, dst, 0)
	}

	ir, err := dst.Import(ctx, final, &ImportOptions{Previous: []string{pre2, pre1}, Identities: identities(t, priv)})
	if err != nil {
		t.Fatal(err)
	}
	log := waitLog(t, dst, ir.Container.ID, "the counter to go on", func(l string) bool { return lastCounter(l) >= at+3 })
	if !slices.Contains(counters(log), at+1) {
		t.Errorf("the restored counter does not go on from %d: %v", at, tail(log, 5))
	}
}

// reseal writes to dst the sealed archive src opened with the key file
// priv, sealed to the recipients file pub instead.
func reseal(t *testing.T, src, dst, priv, pub string) {
	t.Helper()
	to, err := seal.ParseRecipients(pub)
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	pr, _, err := seal.Open(in, identities(t, priv))
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w, err := seal.NewWriter(out, to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, pr); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
