package format

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// Digest is a content digest in the form "sha256:<64 lowercase hex>". The
// zero value is the empty digest, which is only valid where a field is
// optional. Parsing (UnmarshalText, ParseDigest) accepts nothing else.
type Digest string

const digestPrefix = "sha256:"

// ParseDigest validates s and returns it as a Digest.
func ParseDigest(s string) (Digest, error) {
	hexPart, ok := strings.CutPrefix(s, digestPrefix)
	if !ok || len(hexPart) != 2*sha256.Size {
		return "", fmt.Errorf("digest %q: want sha256:<64 hex digits>", truncate(s, 80))
	}
	for _, c := range hexPart {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", fmt.Errorf("digest %q: want lowercase hex", truncate(s, 80))
		}
	}
	return Digest(s), nil
}

// DigestBytes returns the digest of b.
func DigestBytes(b []byte) Digest {
	sum := sha256.Sum256(b)
	return Digest(digestPrefix + hex.EncodeToString(sum[:]))
}

// digestOf returns the digest accumulated in h.
func digestOf(h hash.Hash) Digest {
	return Digest(digestPrefix + hex.EncodeToString(h.Sum(nil)))
}

// String returns the digest as text.
func (d Digest) String() string { return string(d) }

// Hex returns the hex part of the digest.
func (d Digest) Hex() string { return strings.TrimPrefix(string(d), digestPrefix) }

// MarshalText implements encoding.TextMarshaler.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it rejects anything
// that is not a well-formed sha256 digest.
func (d *Digest) UnmarshalText(b []byte) error {
	p, err := ParseDigest(string(b))
	if err != nil {
		return err
	}
	*d = p
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
