package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"filippo.io/age"
	"github.com/ckpt/ckpt/engine"
	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/seal"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

// exportFlags are checkpoint's --export flags; --ignore-rootfs and
// --ignore-volumes fill the ExportOptions given to addExportFlags.
type exportFlags struct {
	path, compress string
	confirmCmd     string
	stream         bool
	encryptTo      []string
	signKey        string
}

func addExportFlags(fs *pflag.FlagSet, o *engine.ExportOptions) *exportFlags {
	x := &exportFlags{}
	fs.StringVarP(&x.path, "export", "e", "", "export the checkpoint to a tar archive `FILE` (for restore --import on another host); - writes a streamed archive to stdout")
	fs.BoolVar(&x.stream, "stream", false, "with --export: write a streamed archive in one pass, the memory pages going into it while CRIU dumps them (implied by -e -)")
	fs.StringVarP(&x.compress, "compress", "c", "zstd", "compression of the --export archive: zstd, gzip or none")
	fs.BoolVar(&o.IgnoreRootfs, "ignore-rootfs", false, "with --export: leave the container layer's changes out")
	fs.BoolVar(&o.IgnoreVolumes, "ignore-volumes", false, "with --export: leave the named volumes' content out")
	fs.StringVar(&x.signKey, "sign-key", "", "with --export and --encrypt-to: sign the sealed archive with the SSH private key `FILE` (ed25519, RSA; no passphrase), which restore --trust-key and ssh-keygen -Y verify check")
	fs.StringVar(&x.confirmCmd, "confirm-cmd", "", "with --export -: pipe the archive into the shell command `CMD` (e.g. 'ssh HOST ckpt restore -i -') instead of stdout, and stop the container only once CMD exits 0 (it restored it); otherwise the container runs on")
	fs.StringArrayVar(&x.encryptTo, "encrypt-to", nil, "with --export: seal the archive to `KEY`, an SSH public key file (ed25519, RSA), an age recipient (age1…) or a file of them; repeatable, any one key opens it")
	return x
}

// used reports whether any export flag was given.
func (x *exportFlags) used(fs *pflag.FlagSet) bool {
	for _, n := range []string{"export", "compress", "ignore-rootfs", "ignore-volumes", "stream", "encrypt-to", "sign-key", "confirm-cmd"} {
		if fs.Changed(n) {
			return true
		}
	}
	return false
}

// sealOptions reads --encrypt-to and --sign-key into o, or returns a
// usage message.
func (x *exportFlags) sealOptions(o *engine.ExportOptions) string {
	for _, k := range x.encryptTo {
		rs, err := seal.ParseRecipients(k)
		if err != nil {
			return fmt.Sprintf("--encrypt-to %s: %v", k, err)
		}
		o.SealTo = append(o.SealTo, rs...)
	}
	if x.signKey == "" {
		return ""
	}
	if len(o.SealTo) == 0 {
		return "--sign-key signs a sealed archive: give --encrypt-to too"
	}
	s, err := seal.ParseSigningKey(x.signKey)
	if err != nil {
		return fmt.Sprintf("--sign-key %s: %v", x.signKey, err)
	}
	o.SignKey = s
	return ""
}

// exportRun is `checkpoint --export` as its flags and arguments say.
type exportRun struct {
	fs         *pflag.FlagSet
	flags      *exportFlags
	opts       engine.ExportOptions // all but Compression and Progress
	sel        selection
	printStats bool
}

// runExport is `ckpt checkpoint --export`: podman's flag rules, then
// engine.Export.
func runExport(ctx context.Context, env *cmdEnv, c *command, r *exportRun) int {
	x := r.flags
	if x.path == "" {
		switch {
		case r.fs.Changed("ignore-rootfs"):
			return usageError(env, c, "--ignore-rootfs can only be used with --export")
		case r.fs.Changed("ignore-volumes"):
			return usageError(env, c, "--ignore-volumes can only be used with --export")
		case r.fs.Changed("stream"):
			return usageError(env, c, "--stream can only be used with --export")
		case r.fs.Changed("encrypt-to"):
			return usageError(env, c, "--encrypt-to can only be used with --export")
		case r.fs.Changed("sign-key"):
			return usageError(env, c, "--sign-key can only be used with --export and --encrypt-to")
		case r.fs.Changed("confirm-cmd"):
			return usageError(env, c, "--confirm-cmd can only be used with --export -")
		default:
			return usageError(env, c, "--compress can only be used with --export")
		}
	}
	comp, err := format.ParseCompression(x.compress)
	if err != nil {
		return usageError(env, c, "--compress: %q is not one of zstd, gzip, none", x.compress)
	}
	refs, msg, err := selectContainers(ctx, env, &r.sel)
	if msg != "" {
		return usageError(env, c, "%s", msg)
	}
	if err != nil {
		return env.fail(err)
	}
	if len(refs) != 1 {
		return usageError(env, c, "--export needs exactly one container (%d selected)", len(refs))
	}
	xo := r.opts
	xo.Compression = comp
	xo.Stream = x.stream
	if msg := x.sealOptions(&xo); msg != "" {
		return usageError(env, c, "%s", msg)
	}
	out, name := env.stdout, x.path
	var target *confirmTarget
	switch {
	case x.confirmCmd != "" && x.path != "-":
		return usageError(env, c, "--confirm-cmd can only be used with --export - (the archive goes to the command)")
	case x.confirmCmd != "":
		if target, err = startConfirmTarget(env, x.confirmCmd); err != nil {
			return env.fail(err)
		}
		xo.Output, xo.Confirm, name = target.stdin, target.confirm, "the --confirm-cmd command"
		stopSIGPIPE()
	case x.path == "-":
		// The archive goes to stdout; what ckpt says goes to stderr.
		if f, ok := env.stdout.(*os.File); ok && isTerminal(f) {
			return usageError(env, c, "--export -: stdout is a terminal: redirect it to a file or pipe it (e.g. | ssh HOST ckpt restore -i -)")
		}
		xo.Output, name, out = env.stdout, "stdout", env.stderr
		stopSIGPIPE()
	}
	bar := newProgress(env.stderr, "export "+name)
	if bar != nil {
		xo.Progress = func(n int64) { bar.set(n, 0) }
	}
	res, err := env.eng.Export(ctx, refs[0], name, &xo)
	bar.done(err == nil)
	if target != nil {
		if terr := target.wait(); err != nil && terr != nil && !errors.Is(err, engine.ErrNotConfirmed) {
			// The command's own failure (ssh could not connect) is the
			// cause of a broken pipe.
			env.errorf("--confirm-cmd: %v", terr)
		}
	}
	if err != nil {
		return env.fail(err)
	}
	if !r.printStats {
		fmt.Fprintln(out, refs[0])
		return exitOK
	}
	stats := checkpointStatsJSON{Duration: res.Total.Microseconds(), Containers: []checkpointContainerJSON{newCheckpointStats(&res.DumpResult)}}
	if err := writeJSON(out, stats); err != nil {
		return env.fail(err)
	}
	return exitOK
}

// importFlags are restore's --import flags.
type importFlags struct {
	path, name                                    string
	previous                                      []string
	ignoreRootfs, ignoreVols, ignoreIP, ignoreMAC bool
	binds                                         []string
	ignoreBinds                                   bool
	network                                       string
	capAdd                                        []string
	decryptKeys                                   []string
	trustKeys                                     []string
}

func addImportFlags(fs *pflag.FlagSet) *importFlags {
	x := &importFlags{}
	fs.StringVarP(&x.path, "import", "i", "", "restore a new container from the checkpoint archive `FILE` (from checkpoint --export or podman); - reads it from stdin")
	fs.StringVarP(&x.name, "name", "n", "", "with --import: restore under this name with a new container ID")
	fs.StringArrayVar(&x.previous, "import-previous", nil, "with --import: a pre-checkpoint archive `FILE` the imported checkpoint depends on (checkpoint --with-previous); repeat it for each of a chain, in any order")
	fs.BoolVar(&x.ignoreRootfs, "ignore-rootfs", false, "with --import: do not apply the archive's container layer changes")
	fs.BoolVar(&x.ignoreVols, "ignore-volumes", false, "with --import: do not import the archive's named volumes (use this host's)")
	fs.StringArrayVarP(&x.binds, "volume", "v", nil, "with --import: mount this host's path for the checkpoint's bind mount at DST (`SRC:DST[:ro]`); every bind mount needs one, or --ignore-binds")
	fs.BoolVar(&x.ignoreBinds, "ignore-binds", false, "with --import: restore the checkpoint's bind mounts not given with -v as empty directories")
	fs.StringVar(&x.network, "network", "", "with --import: `host` lets a checkpoint that ran in its host's network namespace share this host's")
	fs.BoolVar(&x.ignoreIP, "ignore-static-ip", false, "with --import: ignore a static IP address (ckpt containers have none)")
	fs.BoolVar(&x.ignoreMAC, "ignore-static-mac", false, "with --import: ignore a static MAC address (ckpt containers have none)")
	fs.StringArrayVar(&x.decryptKeys, "decrypt-key", nil, "with --import: open a sealed archive with the private key `FILE`: an SSH private key (ed25519, RSA; no passphrase) or an age identity file; repeatable")
	fs.StringArrayVar(&x.trustKeys, "trust-key", nil, "with --import: require the archive to be sealed and signed by the SSH public key `FILE` (a .pub, authorized_keys or allowed_signers file), checked before anything is made; repeatable")
	fs.StringSliceVar(&x.capAdd, "cap-add", nil, "with --import: grant the container these capabilities (`CAP[,CAP...]`) beyond the default set, which the checkpoint's processes held (containerd's pods hold CAP_NET_RAW, CAP_MKNOD and CAP_AUDIT_WRITE more)")
	return x
}

func (x *importFlags) used(fs *pflag.FlagSet) bool {
	for _, n := range []string{"import", "import-previous", "name", "ignore-rootfs", "ignore-volumes", "ignore-static-ip", "ignore-static-mac", "volume", "ignore-binds", "network", "cap-add", "decrypt-key", "trust-key"} {
		if fs.Changed(n) {
			return true
		}
	}
	return false
}

// importRun is one `ckpt restore --import`: what restore's flags and
// arguments gave.
type importRun struct {
	c           *command
	fs          *pflag.FlagSet
	flags       *importFlags
	o           *engine.RestoreOptions
	all, latest bool
	args        []string // positional: there must be none
	printStats  bool
	// image is the checkpoint image to restore from instead of the
	// --import archive.
	image string
}

// runImport is `ckpt restore --import`: podman's flag rules, then
// engine.Import.
func runImport(ctx context.Context, env *cmdEnv, r *importRun) int {
	im, msg := r.options()
	if msg != "" {
		if r.image == "" && r.flags.path == "" && unknownArg(ctx, env, r) {
			msg += fmt.Sprintf(" (and no container or image is called %q)", r.args[0])
		}
		return usageError(env, r.c, "%s", msg)
	}
	src := r.flags.path
	if src == "-" {
		src = "stdin"
	}
	if r.image != "" {
		src = "image " + r.image
	}
	bar := newProgress(env.stderr, "import "+src)
	if bar != nil {
		im.Progress, im.Phase = bar.set, bar.setPhase
	}
	var res *engine.ImportResult
	var err error
	if r.image != "" {
		res, err = env.eng.RestoreImage(ctx, r.image, im)
	} else if r.flags.path == "-" {
		if isTerminal(os.Stdin) {
			bar.done(false)
			return usageError(env, r.c, "--import -: stdin is a terminal: pipe the archive in (e.g. ckpt checkpoint -e - CONTAINER | ssh HOST ckpt restore -i -)")
		}
		res, err = env.eng.ImportStream(ctx, os.Stdin, "stdin", im)
	} else {
		res, err = env.eng.Import(ctx, r.flags.path, im)
	}
	bar.done(err == nil)
	if err != nil {
		return env.fail(err)
	}
	if res.Signer != "" && len(r.flags.trustKeys) == 0 {
		env.errorf("note: %s is signed by %s (signature checked; --trust-key requires a signer)", src, res.Signer)
	}
	if res.Legacy {
		env.errorf("warning: %s has no manifest (made by another engine): its structure was checked, its contents could not be verified", src)
	}
	if k := res.Kube; k != nil {
		env.errorf("note: container %s of pod %s/%s (%s) restored as a standalone container; not restored: %s",
			k.Container, k.Namespace, k.Pod, k.Engine, strings.Join(res.PodLost, "; "))
	}
	if !r.printStats {
		fmt.Fprintln(env.stdout, res.Container.ID)
		return exitOK
	}
	stats := restoreStatsJSON{Duration: res.Total.Microseconds(), Containers: []restoreContainerJSON{{
		ID: res.Container.ID, RuntimeDuration: res.Restore.Runtime.Microseconds(), CRIU: res.Restore.CRIU,
		Phases: append(res.Phases, res.Restore.Phases...),
	}}}
	if err := writeJSON(env.stdout, stats); err != nil {
		return env.fail(err)
	}
	return exitOK
}

// options applies podman's flag rules and returns the import's options,
// or a usage message.
func (r *importRun) options() (*engine.ImportOptions, string) {
	x, o := r.flags, r.o
	if r.image != "" && x.path != "" {
		return nil, "--import and an image cannot be used together"
	}
	if x.path == "" && r.image == "" {
		for _, n := range []string{"import-previous", "name", "ignore-rootfs", "ignore-volumes", "ignore-static-ip", "ignore-static-mac", "volume", "ignore-binds", "network", "cap-add", "decrypt-key", "trust-key"} {
			if r.fs.Changed(n) {
				return nil, fmt.Sprintf("--%s can only be used with --import or a checkpoint image", n)
			}
		}
	}
	switch {
	case r.all || r.latest:
		return nil, "--import cannot be used with --all or --latest"
	case len(r.args) > 0:
		return nil, "--import restores a new container: do not name one (use --name to choose its name)"
	case x.name != "" && o.TCPEstablished:
		return nil, "--tcp-established cannot be used with --name"
	case o.TCPEstablished && o.TCPClose:
		return nil, "--tcp-established and --tcp-close cannot be used together"
	}
	binds, err := parseBindMaps(x.binds)
	if err != nil {
		return nil, err.Error()
	}
	var ids []age.Identity
	for _, k := range x.decryptKeys {
		is, err := seal.ParseIdentities(k)
		if err != nil {
			return nil, fmt.Sprintf("--decrypt-key %s: %v", k, err)
		}
		ids = append(ids, is...)
	}
	var trust seal.Trust
	for _, k := range x.trustKeys {
		t, err := seal.ParseTrustKeys(k)
		if err != nil {
			return nil, fmt.Sprintf("--trust-key %s: %v", k, err)
		}
		trust = append(trust, t...)
	}
	return &engine.ImportOptions{
		Identities:     ids,
		Trust:          trust,
		RestoreOptions: *o,
		Binds:          binds, IgnoreBinds: x.ignoreBinds, Network: x.network,
		Name: x.name, IgnoreRootfs: x.ignoreRootfs, IgnoreVolumes: x.ignoreVols,
		IgnoreStaticIP: x.ignoreIP, IgnoreStaticMAC: x.ignoreMAC, Previous: x.previous, CapAdd: x.capAdd,
	}, ""
}

// parseBindMaps parses restore --import's -v SRC:DST[:ro|rw] values.
func parseBindMaps(specs []string) ([]engine.BindMap, error) {
	var out []engine.BindMap
	for _, s := range specs {
		parts := strings.Split(s, ":")
		if len(parts) < 2 || len(parts) > 3 || !filepath.IsAbs(parts[0]) || !filepath.IsAbs(parts[1]) {
			return nil, fmt.Errorf("-v %s: want SRC:DST[:ro] with absolute paths (SRC on this host, DST the checkpoint's bind mount)", s)
		}
		b := engine.BindMap{Source: filepath.Clean(parts[0]), Destination: filepath.Clean(parts[1])}
		if len(parts) == 3 {
			switch parts[2] {
			case "ro":
				b.Options = []string{"ro"}
			case "rw":
			default:
				return nil, fmt.Errorf("-v %s: unknown option %q (want ro or rw)", s, parts[2])
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// progress draws a one-line progress indicator on a terminal: the bytes
// read, then, once the archive is read, the step the engine is in, redrawn
// every half second so that the elapsed time shows the wait is alive. A
// nil *progress (stderr is not a terminal) does nothing: no bar, no
// control characters in a log.
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	label  string
	start  time.Time
	last   time.Time
	n, t   int64
	phase  string        // the engine's step after reading ("" while reading)
	failed string        // " failed" once done(false) ran
	tick   chan struct{} // closed by done to stop the redraws of a phase
}

// phaseText says what each of engine.ImportOptions.Phase's steps does.
var phaseText = map[string]string{
	"check":        "checking the host",
	"volumes":      "restoring volumes",
	"create":       "creating the container",
	"apply_rootfs": "applying root filesystem changes",
	"restore":      "restoring (CRIU)",
	"record":       "recording",
}

// newProgress returns a progress line on w, or nil if w is not a terminal.
func newProgress(w io.Writer, label string) *progress {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err != nil {
		return nil
	}
	return &progress{w: w, label: label, start: time.Now()}
}

// set records n bytes done of total (0: unknown) and redraws at most ten
// times a second.
func (p *progress) set(n, total int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n, p.t = n, total
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.draw()
	}
}

// setPhase shows the engine's step name after the bar, now and every half
// second until done.
func (p *progress) setPhase(name string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.t > 0 {
		p.n = p.t // a step after reading: the archive is read
	}
	p.phase = name
	if t, ok := phaseText[name]; ok {
		p.phase = t
	}
	p.draw()
	if p.tick == nil {
		p.tick = make(chan struct{})
		go p.redraw(p.tick)
	}
}

// redraw redraws the line every half second until stop is closed.
func (p *progress) redraw(stop chan struct{}) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.mu.Lock()
			if p.tick == stop { // done has not run
				p.draw()
			}
			p.mu.Unlock()
		}
	}
}

func (p *progress) draw() {
	const mib = 1 << 20
	el := time.Since(p.start).Truncate(100 * time.Millisecond)
	var line string
	if p.t > 0 {
		pct := 100 * p.n / p.t
		width := 30
		fill := int(int64(width) * p.n / p.t)
		bar := make([]byte, width)
		for i := range bar {
			bar[i] = '.'
			if i < fill {
				bar[i] = '#'
			}
		}
		line = fmt.Sprintf("%s [%s] %3d%% %.1f/%.1f MiB %v", p.label, bar, pct, float64(p.n)/mib, float64(p.t)/mib, el)
	} else {
		line = fmt.Sprintf("%s %.1f MiB %v", p.label, float64(p.n)/mib, el)
	}
	if p.phase != "" {
		line += " " + p.phase + "…" + p.failed
	}
	// \x1b[K erases what a longer earlier line left.
	fmt.Fprintf(p.w, "\r%s \x1b[K", line)
}

// done draws the final state and ends the line: the step that failed, if
// one did.
func (p *progress) done(ok bool) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tick != nil {
		close(p.tick)
		p.tick = nil
	}
	if ok && p.t > 0 {
		p.n = p.t
	}
	switch {
	case ok:
		p.phase = ""
	default:
		p.failed = " failed"
	}
	p.draw()
	fmt.Fprintln(p.w)
}

// stopSIGPIPE makes a write to a closed stdout pipe an error (EPIPE) for
// the export to handle, leaving the container running, rather than a
// signal that kills ckpt mid-export. A handler, not SIG_IGN: runc and
// CRIU do not inherit it.
func stopSIGPIPE() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
}

// confirmTarget is the --confirm-cmd command: the archive goes to its
// stdin, and its exit status 0 confirms the restore at the other end.
type confirmTarget struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	once  sync.Once
	err   error
}

// startConfirmTarget starts command with sh -c, its output going to
// ckpt's (the target's restored container ID to stdout).
func startConfirmTarget(env *cmdEnv, command string) (*confirmTarget, error) {
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Stdout, cmd.Stderr = env.stdout, env.stderr
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("--confirm-cmd %q: %w", command, err)
	}
	return &confirmTarget{cmd: cmd, stdin: w}, nil
}

// confirm ends the archive's stream and waits for the command: nil if it
// exited 0.
func (t *confirmTarget) confirm() error { return t.wait() }

// wait closes the command's stdin and returns how it ended, once.
func (t *confirmTarget) wait() error {
	t.once.Do(func() {
		_ = t.stdin.Close()
		if err := t.cmd.Wait(); err != nil {
			t.err = fmt.Errorf("the command %q: %w", strings.Join(t.cmd.Args[2:], " "), err)
		}
	})
	return t.err
}
