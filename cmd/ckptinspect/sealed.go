package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"filippo.io/age"
	"github.com/ckpt/ckpt/format/seal"
	"github.com/spf13/pflag"
)

// addKeyFlag gives a command that reads archives --decrypt-key.
func addKeyFlag(fs *pflag.FlagSet) {
	fs.StringArray("decrypt-key", nil, "open sealed archives with the private key `FILE` (SSH ed25519 or RSA without passphrase, or an age identity file); repeatable")
	fs.StringArray("trust-key", nil, "require each archive to be sealed and signed by the SSH public key `FILE` (a .pub, authorized_keys or allowed_signers file), checked over the whole file first; repeatable")
}

// unsealed are the sealed archives of a command line, opened: each one's
// plaintext in an anonymous memory file, never on disk.
type unsealed struct {
	files   []*os.File
	removes []func() // remove the named temporary files (not on Linux)
	names   []string // "/proc/self/fd/N" → the name given, pairs for a Replacer
}

func (u *unsealed) close() {
	for _, f := range u.files {
		f.Close()
	}
	for _, r := range u.removes {
		r()
	}
}

// unsealArgs replaces each sealed archive among args and --parent by a
// path to its plaintext, decrypted with the --decrypt-key identities into
// a memfd (so the whole archive is read, and authenticated, first).
// Without keys a sealed archive is left for show, which lists it as
// sealed, and refused, naming the flag, by the others.
func unsealArgs(cmd string, fs *pflag.FlagSet, args []string) (*unsealed, error) {
	ids, err := flagIdentities(fs)
	if err != nil {
		return nil, err
	}
	trust, err := flagTrust(fs)
	if err != nil {
		return nil, err
	}
	u := &unsealed{}
	open := func(name string) (string, error) {
		if err := checkSignature(cmd, name, trust); err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		if !isSealed(name) || cmd == "show" && (len(ids) == 0 || showsAt(fs)) {
			return name, nil
		}
		p, err := u.open(name, ids)
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return p, nil
	}
	if err := replaceArgs(fs, args, open); err != nil {
		u.close()
		return nil, err
	}
	return u, nil
}

// flagIdentities reads the keys of --decrypt-key.
func flagIdentities(fs *pflag.FlagSet) ([]age.Identity, error) {
	keys, _ := fs.GetStringArray("decrypt-key")
	var ids []age.Identity
	for _, k := range keys {
		is, err := seal.ParseIdentities(k)
		if err != nil {
			return nil, fmt.Errorf("--decrypt-key %s: %w", k, err)
		}
		ids = append(ids, is...)
	}
	return ids, nil
}

// flagTrust reads the keys of --trust-key.
func flagTrust(fs *pflag.FlagSet) (seal.Trust, error) {
	keys, _ := fs.GetStringArray("trust-key")
	var t seal.Trust
	for _, k := range keys {
		ks, err := seal.ParseTrustKeys(k)
		if err != nil {
			return nil, fmt.Errorf("--trust-key %s: %w", k, err)
		}
		t = append(t, ks...)
	}
	return t, nil
}

// checkSignature checks the signature of the archive name, as restore
// does: with trust it must be sealed and signed by one of its keys; a
// signature is checked by every command but show (which names the signer
// unchecked, to stay quick) without trust too.
func checkSignature(cmd, name string, trust seal.Trust) error {
	if !isSealed(name) {
		if len(trust) > 0 {
			return fmt.Errorf("%w: it is not sealed, so it carries no signature, and --trust-key requires one", seal.ErrUnsigned)
		}
		return nil
	}
	if cmd == "show" && len(trust) == 0 {
		return nil
	}
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	_, err = seal.VerifyFile(f, fi.Size(), trust)
	return err
}

// showsAt reports whether show reads sealed archives itself, decrypting
// only the chunks it reads (inspect.ShowOptions.Identities): all but
// --verify, which reads the archive whole.
func showsAt(fs *pflag.FlagSet) bool {
	v, _ := fs.GetBool("verify")
	return !v
}

// open decrypts the sealed archive name into a memfd and returns its
// path.
func (u *unsealed) open(name string, ids []age.Identity) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	pr, _, err := seal.Open(f, ids)
	if err != nil {
		return "", err
	}
	mf, p, err := memFile()
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(mf, pr); err != nil {
		mf.Close()
		return "", err
	}
	u.files = append(u.files, mf)
	u.names = append(u.names, p, name)
	return p, nil
}

// isSealed reports whether the file name begins a sealed archive.
func isSealed(name string) bool {
	f, err := os.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, len(seal.Magic))
	_, _ = io.ReadFull(f, head)
	return seal.IsSealed(head)
}

// renamer writes to w with the memfd paths replaced by the names given.
type renamer struct {
	w io.Writer
	r *strings.Replacer
}

func (r *renamer) Write(p []byte) (int, error) {
	if !bytes.Contains(p, []byte("/proc/self/fd/")) {
		return r.w.Write(p)
	}
	if _, err := io.WriteString(r.w, r.r.Replace(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// namesKey is the context key of the names given for the memfd paths.
type namesKey struct{}

// withNames returns ctx carrying u's names, for shownName.
func (u *unsealed) withNames(ctx context.Context) context.Context {
	m := map[string]string{}
	for i := 0; i+1 < len(u.names); i += 2 {
		m[u.names[i]] = u.names[i+1]
	}
	return context.WithValue(ctx, namesKey{}, m)
}

// shownName is the name the user gave for the archive at p: where a
// table is aligned, the renaming writer would come too late.
func shownName(ctx context.Context, p string) string {
	if m, ok := ctx.Value(namesKey{}).(map[string]string); ok && m[p] != "" {
		return m[p]
	}
	return p
}

// writers returns stdout and stderr naming the archives as given.
func (u *unsealed) writers(stdout, stderr io.Writer) (io.Writer, io.Writer) {
	if len(u.names) == 0 {
		return stdout, stderr
	}
	// Longest first: /proc/self/fd/3 is a prefix of /proc/self/fd/30,
	// and the Replacer tries its pairs in order.
	pairs := make([][2]string, 0, len(u.names)/2)
	for i := 0; i+1 < len(u.names); i += 2 {
		pairs = append(pairs, [2]string{u.names[i], u.names[i+1]})
	}
	sort.Slice(pairs, func(i, j int) bool { return len(pairs[i][0]) > len(pairs[j][0]) })
	var old []string
	for _, p := range pairs {
		old = append(old, p[0], p[1])
	}
	r := strings.NewReplacer(old...)
	return &renamer{w: stdout, r: r}, &renamer{w: stderr, r: r}
}
