package seal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
)

// maxKeyFile bounds a key or recipients file read.
const maxKeyFile = 1 << 20

// ParseRecipients reads what --encrypt-to names: an age recipient
// (age1…), an SSH public key line (ssh-ed25519, ssh-rsa), or a file of
// them, one per line (blank lines and # comments ignored), such as an
// id_ed25519.pub or an authorized_keys file without options.
func ParseRecipients(arg string) ([]age.Recipient, error) {
	if strings.HasPrefix(arg, "age1") || strings.HasPrefix(arg, "ssh-") {
		r, err := parseRecipient(arg)
		if err != nil {
			return nil, fmt.Errorf("%w: %s", ErrKey, err)
		}
		return []age.Recipient{r}, nil
	}
	b, err := readKeyFile(arg)
	if err != nil {
		return nil, err
	}
	var rs []age.Recipient
	for i, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		r, err := parseRecipient(l)
		if err != nil {
			return nil, fmt.Errorf("%w: %s line %d: %s", ErrKey, arg, i+1, err)
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("%w: %s holds no public key", ErrKey, arg)
	}
	return rs, nil
}

func parseRecipient(s string) (age.Recipient, error) {
	if strings.HasPrefix(s, "age1") {
		rs, err := age.ParseRecipients(strings.NewReader(s))
		if err != nil {
			return nil, err
		}
		return rs[0], nil
	}
	if strings.Contains(s, "PRIVATE KEY") || strings.HasPrefix(s, "AGE-SECRET-KEY") {
		return nil, errors.New("a private key, not a public one: give the .pub file or the age1… recipient")
	}
	r, err := agessh.ParseRecipient(s)
	if err != nil {
		// agessh quotes the whole line; the type is enough.
		typ, _, _ := strings.Cut(s, " ")
		if _, _, _, _, perr := ssh.ParseAuthorizedKey([]byte(s)); perr == nil {
			return nil, fmt.Errorf("an %s key: only ssh-ed25519 and ssh-rsa keys and age recipients can be encrypted to", typ)
		}
		return nil, errors.New("neither an age recipient (age1…) nor an SSH public key (ssh-ed25519, ssh-rsa)")
	}
	return r, nil
}

// ParseIdentities reads what --decrypt-key names: an SSH private key file
// (ed25519 or RSA, OpenSSH or PEM, without passphrase) or an age identity
// file (AGE-SECRET-KEY-1… lines).
func ParseIdentities(path string) ([]age.Identity, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	if bytes.Contains(b, []byte("-----BEGIN")) {
		id, err := agessh.ParseIdentity(b)
		if err != nil {
			var pp *ssh.PassphraseMissingError
			if errors.As(err, &pp) {
				return nil, fmt.Errorf("%w: %s is protected by a passphrase: give a copy without one (ssh-keygen -p) or an age identity", ErrKey, path)
			}
			return nil, fmt.Errorf("%w: %s: %w", ErrKey, path, err)
		}
		return []age.Identity{id}, nil
	}
	ids, err := age.ParseIdentities(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %s is neither an SSH private key nor an age identity file: %w", ErrKey, path, err)
	}
	return ids, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("%w: %s is over %d bytes: not a key file", ErrKey, path, maxKeyFile)
	}
	return b, nil
}
