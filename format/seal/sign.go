package seal

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
)

// NewSignedWriter is NewWriter whose Close also signs the archive with s:
// an SSHSIG signature (namespace [Namespace], SHA-256) over every byte
// written to w before the trailer (Magic, the age header, the payload),
// appended as the trailer (docs/FORMAT.md rule 37).
func NewSignedWriter(w io.Writer, rs []age.Recipient, s ssh.Signer) (*Writer, error) {
	sum := sha256.New()
	sw, err := NewWriter(io.MultiWriter(w, sum), rs)
	if err != nil {
		return nil, err
	}
	sw.signer, sw.sum, sw.out = s, sum, w
	return sw, nil
}

// TrustedKey is a key --trust-key names, with the name the file gives it
// (a comment or an allowed_signers principal).
type TrustedKey struct {
	Key  ssh.PublicKey
	Name string
}

// Trust is the keys whose signatures are accepted.
type Trust []TrustedKey

// ParseTrustKeys reads a --trust-key file: an SSH public key file, an
// authorized_keys file or an OpenSSH allowed_signers file (principals,
// options, then the key); blank lines and # comments are skipped.
func ParseTrustKeys(path string) (Trust, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	var t Trust
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 64<<10), maxKeyFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, ok := parseTrustLine(line)
		if !ok {
			return nil, fmt.Errorf("%w: %s line %d: no SSH public key (want a .pub, authorized_keys or allowed_signers line)", ErrKey, path, n)
		}
		t = append(t, k)
	}
	if len(t) == 0 {
		return nil, fmt.Errorf("%w: %s holds no public key", ErrKey, path)
	}
	return t, nil
}

// parseTrustLine parses a public key line ("TYPE BASE64 [COMMENT]"), or
// an allowed_signers or authorized_keys line: principals or options
// before the key, whose first field names the key (a principal) in an
// allowed_signers line.
func parseTrustLine(line string) (TrustedKey, bool) {
	f := strings.Fields(line)
	for i := 0; i+1 < len(f) && i <= 2; i++ {
		k, err := ssh.ParsePublicKey(decodeB64(f[i+1]))
		if err != nil || k.Type() != f[i] {
			continue
		}
		name := strings.Join(f[i+2:], " ")
		if i > 0 {
			name = f[0]
		}
		return TrustedKey{Key: k, Name: name}, true
	}
	return TrustedKey{}, false
}

func decodeB64(s string) []byte {
	b, _ := base64.StdEncoding.DecodeString(s)
	return b
}

// find returns the trusted key k, if t holds it.
func (t Trust) find(k ssh.PublicKey) (TrustedKey, bool) {
	for _, tk := range t {
		if string(tk.Key.Marshal()) == string(k.Marshal()) {
			return tk, true
		}
	}
	return TrustedKey{}, false
}

// Signed is what VerifyFile found: the signature and, when trust was
// given, the trusted key that made it.
type Signed struct {
	*Signature
	Trusted *TrustedKey
}

// Signer names the signing key, with its trusted name if known.
func (s *Signed) Signer() string {
	if s.Trusted != nil && s.Trusted.Name != "" {
		return s.Signature.Signer() + " " + s.Trusted.Name
	}
	return s.Signature.Signer()
}

// ReadSignature returns the signature in the trailer of the sealed file
// r of size bytes, not verified, or nil if it has none, and the length of
// what it signs (the file before the trailer). Errors: ErrSignature for a
// trailer that is not a signature.
func ReadSignature(r io.ReaderAt, size int64) (*Signature, int64, error) {
	sig, n, _, err := ReadSignatureArmor(r, size)
	return sig, n, err
}

// ReadSignatureArmor is ReadSignature that also returns the armored
// signature as stored (for `ssh-keygen -Y verify -s`).
func ReadSignatureArmor(r io.ReaderAt, size int64) (*Signature, int64, []byte, error) {
	n := min(size, int64(hold))
	tail := make([]byte, n)
	if _, err := r.ReadAt(tail, size-n); err != nil && err != io.EOF {
		return nil, 0, nil, err
	}
	cut, ok := findTrailer(tail)
	if !ok {
		return nil, size, nil, nil
	}
	armored := tail[cut+len(TrailerIntro) : len(tail)-footerLen]
	sig, err := ParseSignature(armored)
	if err != nil {
		return nil, 0, nil, err
	}
	return sig, size - n + int64(cut), armored, nil
}

// VerifyFile checks the signature of the sealed file r of size bytes
// before anything of it is used: with trust, a file without a signature
// is ErrUnsigned and one signed by another key ErrUntrusted; a signature
// that does not match every byte before it is ErrSignature. Without trust
// it returns the signature, verified, or nil if there is none.
func VerifyFile(r io.ReaderAt, size int64, trust Trust) (*Signed, error) {
	sig, signedLen, err := ReadSignature(r, size)
	if err != nil {
		return nil, err
	}
	if sig == nil {
		if len(trust) > 0 {
			return nil, fmt.Errorf("%w, and --trust-key requires a signature by one of its keys", ErrUnsigned)
		}
		return nil, nil
	}
	s := &Signed{Signature: sig}
	if len(trust) > 0 {
		tk, ok := trust.find(sig.Key)
		if !ok {
			return nil, fmt.Errorf("%w: %s is not among the --trust-key keys", ErrUntrusted, sig.Signer())
		}
		s.Trusted = &tk
	}
	h, err := newHash(sig.HashAlg)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, signedLen)); err != nil {
		return nil, fmt.Errorf("read the signed archive: %w", err)
	}
	if err := sig.verifyDigest(h.Sum(nil)); err != nil {
		return nil, err
	}
	return s, nil
}
