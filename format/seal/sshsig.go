package seal

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strings"

	"golang.org/x/crypto/ssh"
)

// OpenSSH's signature format, SSHSIG (openssh-portable PROTOCOL.sshsig),
// which `ssh-keygen -Y sign` writes and `ssh-keygen -Y verify` checks.
const (
	sshsigMagic   = "SSHSIG"
	sshsigVersion = 1
	armorBegin    = "-----BEGIN SSH SIGNATURE-----"
	armorEnd      = "-----END SSH SIGNATURE-----"
	// Namespace is the SSHSIG namespace of a sealed archive's signature:
	// a signature made for another purpose (git commits, files) does not
	// verify as one.
	Namespace = "ckpt-archive@ckpt"
)

// Signature is a parsed SSHSIG signature.
type Signature struct {
	Key       ssh.PublicKey
	Namespace string
	HashAlg   string // "sha256" or "sha512"
	Sig       *ssh.Signature
}

// Signer names a signature's key for messages: its type, SHA256
// fingerprint and, when a trusted key file gave one, its comment.
func (s *Signature) Signer() string {
	return ssh.FingerprintSHA256(s.Key) + " (" + s.Key.Type() + ")"
}

// newHash returns the hash of an SSHSIG hash algorithm.
func newHash(alg string) (hash.Hash, error) {
	switch alg {
	case "sha256":
		return sha256.New(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("%w: signature hash %q (want sha256 or sha512)", ErrSignature, alg)
}

// signedData is what an SSHSIG signature signs: the preamble, the
// namespace and the message's hash.
func signedData(namespace, alg string, digest []byte) []byte {
	b := []byte(sshsigMagic)
	b = appendString(b, []byte(namespace))
	b = appendString(b, nil) // reserved
	b = appendString(b, []byte(alg))
	return appendString(b, digest)
}

func appendString(b, s []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// signDigest signs digest, the alg hash of a message, with s in the
// archive namespace and returns the armored signature. RSA keys sign with
// rsa-sha2-512, as ssh-keygen does (ssh-rsa's SHA-1 is refused by it).
func signDigest(s ssh.Signer, alg string, digest []byte) ([]byte, error) {
	data := signedData(Namespace, alg, digest)
	var sig *ssh.Signature
	var err error
	if as, ok := s.(ssh.AlgorithmSigner); ok && s.PublicKey().Type() == ssh.KeyAlgoRSA {
		sig, err = as.SignWithAlgorithm(rand.Reader, data, ssh.KeyAlgoRSASHA512)
	} else {
		sig, err = s.Sign(rand.Reader, data)
	}
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	blob := []byte(sshsigMagic)
	blob = binary.BigEndian.AppendUint32(blob, sshsigVersion)
	blob = appendString(blob, s.PublicKey().Marshal())
	blob = appendString(blob, []byte(Namespace))
	blob = appendString(blob, nil)
	blob = appendString(blob, []byte(alg))
	blob = appendString(blob, ssh.Marshal(sig))
	return armor(blob), nil
}

func armor(blob []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(blob)
	var b bytes.Buffer
	b.WriteString(armorBegin + "\n")
	for len(enc) > 70 {
		b.WriteString(enc[:70] + "\n")
		enc = enc[70:]
	}
	b.WriteString(enc + "\n" + armorEnd + "\n")
	return b.Bytes()
}

// ParseSignature parses an armored SSHSIG signature (at most MaxTrailer
// bytes). Errors wrap ErrSignature.
func ParseSignature(armored []byte) (*Signature, error) {
	s := strings.TrimSpace(string(armored))
	if len(s) < len(armorBegin)+len(armorEnd) || !strings.HasPrefix(s, armorBegin) || !strings.HasSuffix(s, armorEnd) {
		return nil, fmt.Errorf("%w: not an armored SSH signature", ErrSignature)
	}
	body := strings.Join(strings.Fields(s[len(armorBegin):len(s)-len(armorEnd)]), "")
	blob, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	if !bytes.HasPrefix(blob, []byte(sshsigMagic)) || len(blob) < len(sshsigMagic)+4 {
		return nil, fmt.Errorf("%w: no SSHSIG preamble", ErrSignature)
	}
	rest := blob[len(sshsigMagic):]
	if v := binary.BigEndian.Uint32(rest); v != sshsigVersion {
		return nil, fmt.Errorf("%w: SSHSIG version %d", ErrSignature, v)
	}
	rest = rest[4:]
	var f [5][]byte // publickey, namespace, reserved, hash_algorithm, signature
	for i := range f {
		if f[i], rest, err = readString(rest); err != nil {
			return nil, err
		}
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the signature", ErrSignature, len(rest))
	}
	key, err := ssh.ParsePublicKey(f[0])
	if err != nil {
		return nil, fmt.Errorf("%w: its key is not an SSH public key ckpt reads", ErrSignature)
	}
	sig := new(ssh.Signature)
	if err := ssh.Unmarshal(f[4], sig); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	return &Signature{Key: key, Namespace: string(f[1]), HashAlg: string(f[3]), Sig: sig}, nil
}

func readString(b []byte) (s, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("%w: truncated", ErrSignature)
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, fmt.Errorf("%w: a field of %d bytes in %d", ErrSignature, n, len(b)-4)
	}
	return b[4 : 4+n], b[4+n:], nil
}

// verifyDigest checks s over digest, the s.HashAlg hash of the message, in
// the archive namespace.
func (s *Signature) verifyDigest(digest []byte) error {
	if s.Namespace != Namespace {
		return fmt.Errorf("%w: namespace %q, not %q: a signature made for something else", ErrSignature, s.Namespace, Namespace)
	}
	if s.Key.Type() == ssh.KeyAlgoRSA && s.Sig.Format == ssh.KeyAlgoRSA {
		return fmt.Errorf("%w: an RSA signature with SHA-1 (ssh-rsa)", ErrSignature)
	}
	if err := s.Key.Verify(signedData(s.Namespace, s.HashAlg, digest), s.Sig); err != nil {
		return fmt.Errorf("%w: it does not match the archive (altered after signing): %w", ErrSignature, err)
	}
	return nil
}

// ParseSigningKey reads --sign-key: an unencrypted OpenSSH (or PEM)
// private key, ed25519 or RSA.
func ParseSigningKey(path string) (ssh.Signer, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ssh.ParsePrivateKey(b)
	var pp *ssh.PassphraseMissingError
	if errors.As(err, &pp) {
		return nil, fmt.Errorf("%w: %s has a passphrase, which ckpt cannot ask for: use a key without one", ErrKey, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not an SSH private key: %w", ErrKey, path, err)
	}
	switch s.PublicKey().Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoRSA:
		return s, nil
	}
	return nil, fmt.Errorf("%w: %s is a %s key: sign with ed25519 or RSA", ErrKey, path, s.PublicKey().Type())
}
