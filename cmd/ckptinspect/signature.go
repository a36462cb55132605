package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/ckpt/ckpt/format/seal"
	"github.com/spf13/pflag"
)

// signatureCommand is the signature command: a signed archive's signer,
// and its message and signature as files for `ssh-keygen -Y verify`.
func signatureCommand() *command {
	return &command{
		short:    "name a sealed archive's signer; write its message and signature for ssh-keygen",
		synopsis: "signature ARCHIVE [--message FILE] [--signature FILE]",
		desc: "print the key that signed a sealed archive (not checked: verify --trust-key checks it).\n" +
			"--message and --signature write the signed message (the archive without its trailer) and the\n" +
			"armored SSHSIG signature, so OpenSSH checks it too:\n" +
			"  ssh-keygen -Y verify -f allowed_signers -I NAME -n " + seal.Namespace + " -s SIG < MESSAGE",
		exits: "  0 signed, 1 not signed or unreadable, 2 usage\n",
		flags: func(fs *pflag.FlagSet) {
			fs.String("message", "", "write the signed message to `FILE`")
			fs.String("signature", "", "write the armored signature to `FILE`")
		},
		run: runSignature,
	}
}

func runSignature(_ context.Context, fs *pflag.FlagSet, args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		return usageErr(stderr, "signature", "want one archive")
	}
	msg, _ := fs.GetString("message")
	sigOut, _ := fs.GetString("signature")
	if err := writeSignature(args[0], msg, sigOut, stdout); err != nil {
		fmt.Fprintf(stderr, "ckptinspect signature: %s: %v\n", args[0], err)
		return exitFailure
	}
	return exitOK
}

// writeSignature prints the signer of the sealed archive name and writes
// its signed message and signature to msg and sigOut, if given.
func writeSignature(name, msg, sigOut string, stdout io.Writer) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if !isSealed(name) {
		return fmt.Errorf("%w: it is not sealed (only sealed archives are signed)", seal.ErrUnsigned)
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	sig, signedLen, armored, err := seal.ReadSignatureArmor(f, fi.Size())
	if err != nil {
		return err
	}
	if sig == nil {
		return seal.ErrUnsigned
	}
	fmt.Fprintf(stdout, "signed by %s, namespace %s, hash %s (not checked: verify --trust-key checks it)\n", sig.Signer(), sig.Namespace, sig.HashAlg)
	if msg != "" {
		if err := copyTo(msg, io.NewSectionReader(f, 0, signedLen)); err != nil {
			return err
		}
	}
	if sigOut != "" {
		if err := os.WriteFile(sigOut, armored, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func copyTo(path string, r io.Reader) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
