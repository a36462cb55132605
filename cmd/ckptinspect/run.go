package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ckpt/ckpt/fuzz"
	"github.com/ckpt/ckpt/inspect"
	"github.com/spf13/pflag"
)

const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const usage = `ckptinspect: show, inspect, verify, diff and fuzz checkpoint archives offline

Usage:
  ckptinspect COMMAND [flags] ARGS

Commands:
  show      one row per archive: container, engine, format, sizes
  inspect   process tree, command lines, open files, sockets, mounts, stats
  memparse  memory per process, hexdump of a process, memory search
  verify    check digests, member list, CRIU images, parent chain
  diff      compare two archives, memory page contents included
  fuzz      fuzz the archive reader, verifier and extractor
  signature name a sealed archive's signer; its message and signature for ssh-keygen
  completion  print a bash, zsh or fish completion script

An ARCHIVE may also be a checkpoint image (podman's or ckpt's --create-image): an
oci-archive or docker-archive file, an OCI layout directory, or oci:DIR[:NAME],
oci-archive:FILE[:NAME], docker-archive:FILE, docker://REF, containers-storage:[ROOT]NAME,
or containerd's (ctr c checkpoint --image): containerd:DIR[@sha256:DIGEST].

Run "ckptinspect COMMAND --help" for a command's flags.
Exit codes: 0 success, 1 failure (verify: problems; diff: differences), 2 usage or trouble.
Human output may change; use --json (or --format json, the same) in scripts.
`

type command struct {
	short    string
	synopsis string
	desc     string
	exits    string
	run      func(ctx context.Context, fs *pflag.FlagSet, args []string, stdout, stderr io.Writer) int
	flags    func(fs *pflag.FlagSet)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	if code, ok := generated(args, stdout, stderr); ok {
		return code
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	cmds := commands()
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "ckptinspect: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	fs := pflag.NewFlagSet(args[0], pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard)
	c.flags(fs)
	help := func(w io.Writer) {
		fmt.Fprintf(w, "ckptinspect %s: %s\n\nUsage:\n  ckptinspect %s\n\n%s\n\nFlags:\n%s\nExit codes:\n%s\nHuman output may change between releases; use JSON in scripts.\n",
			args[0], c.short, c.synopsis, c.desc, fs.FlagUsages(), c.exits)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			help(stdout)
			return exitOK
		}
		fmt.Fprintf(stderr, "ckptinspect %s: %v\n", args[0], err)
		help(stderr)
		return exitUsage
	}
	cargs := fs.Args()
	if fs.Lookup("decrypt-key") != nil {
		im, err := imageArgs(ctx, fs, cargs)
		if err != nil {
			fail(stderr, args[0], err)
			return imageExit(args[0])
		}
		defer im.close()
		u, err := unsealArgs(args[0], fs, cargs)
		if err != nil {
			fail(stderr, args[0], err)
			return exitUsage
		}
		defer u.close()
		u.names = append(u.names, im.names...)
		stdout, stderr = u.writers(stdout, stderr)
		ctx = u.withNames(ctx)
	}
	return explain(c.run(ctx, fs, cargs, stdout, stderr), cargs, stderr)
}

// imageExit is the exit code of cmd when an image could not be read: an
// archive that could not be read (1), trouble (2) for verify and diff.
func imageExit(cmd string) int {
	if cmd == "verify" || cmd == "diff" {
		return exitUsage
	}
	return exitFailure
}

func fail(stderr io.Writer, cmd string, err error) {
	fmt.Fprintf(stderr, "ckptinspect %s: %v\n", cmd, err)
}

func usageErr(stderr io.Writer, cmd, msg string) int {
	fmt.Fprintf(stderr, "ckptinspect %s: %s (see --help)\n", cmd, msg)
	return exitUsage
}

func commands() map[string]*command {
	return map[string]*command{
		"show":    showCommand(),
		"inspect": inspectCommand(),
		"memparse": {
			short:    "show, dump and search process memory",
			synopsis: "memparse ARCHIVE [--pid N] [-s STRING | -r REGEX] [-c N] [--json | --format table|json] [--parent FILE]...",
			desc: "without flags: a table of processes with their stored memory and shared memory sizes.\n" +
				"--pid N: hexdump of the process's stored memory (identical lines collapsed to '*').\n" +
				"-s/-r: search the memory of every process (or of --pid) for a string or a regular expression.\n" +
				"--parent FILE (repeatable, nearest first): the parent archives of an incremental checkpoint;\n" +
				"the chain is checked, then pages marked in parent are read from them by address. Without\n" +
				"them such pages are shown as \"in parent (not given)\" and not searched.",
			exits: "  0 done, 1 the archive could not be read, 2 usage\n",
			flags: func(fs *pflag.FlagSet) {
				addKeyFlag(fs)
				addImageFlags(fs)
				fs.Uint32("pid", 0, "process to dump or search")
				fs.StringP("search", "s", "", "search for a string")
				fs.StringP("search-regex", "r", "", "search for a regular expression (Go syntax)")
				fs.IntP("context", "c", 0, "bytes of context around each match (at most 4096)")
				addOutputFlags(fs, "table")
				fs.StringArray("parent", nil, "parent archive of an incremental checkpoint, nearest first (repeatable)")
			},
			run: runMemparse,
		},
		"verify": {
			short:    "verify archives and list every problem",
			synopsis: "verify ARCHIVE... [--json | --format text|json] [--require-manifest] [--parent FILE]...",
			desc: "verify archives in one pass each: member digests and sizes, the closed member list,\n" +
				"CRIU image magics, required images, pagemap and pages consistency, the parent chain.\n" +
				"Every problem is listed. Legacy archives (podman, CRI-O, containerd) get every structural\n" +
				"check and are noted \"no manifest: contents unverifiable\"; --require-manifest makes that a problem.",
			exits: "  0 clean, 1 problems found, 2 usage or trouble reading an archive\n",
			flags: func(fs *pflag.FlagSet) {
				addOutputFlags(fs, "text")
				addKeyFlag(fs)
				addImageFlags(fs)
				fs.Bool("require-manifest", false, "treat an archive without manifest as a problem")
				fs.StringArray("parent", nil, "parent archive of an incremental checkpoint, nearest first (repeatable)")
			},
			run: runVerify,
		},
		"diff": {
			short:    "compare two archives",
			synopsis: "diff A B [--json | --format tree|json] [--parent FILE]...",
			desc: "compare two archives: manifest, config and spec fields; members; process tree (+/-/=);\n" +
				"open files; sockets; memory pages whose contents changed, per process and mapping;\n" +
				"files added, removed or changed in the rootfs diff and volumes.\n" +
				"--parent FILE (repeatable, nearest first): the parent archives of whichever of A and B is an\n" +
				"incremental checkpoint; the chain is checked and memory in parent compared by contents.\n" +
				"Without them such memory is listed under \"Not compared\" and the archives are not identical.",
			exits: "  0 identical, 1 different, 2 usage or trouble reading an archive\n",
			flags: func(fs *pflag.FlagSet) {
				addKeyFlag(fs)
				addImageFlags(fs)
				addOutputFlags(fs, "tree")
				fs.StringArray("parent", nil, "parent archive of an incremental checkpoint, nearest first (repeatable)")
			},
			run: runDiff,
		},
		"fuzz":      fuzzCommand(),
		"signature": signatureCommand(),
	}
}

// showCommand is the show command (commands' table would otherwise be
// one long literal).
func showCommand() *command {
	return &command{
		short:    "summarize archives, one row each",
		synopsis: "show ARCHIVE... [--json | --format table|json] [--full] [--verify]",
		desc: "one row per archive: file, container, image, ID, runtime, created, checkpointed, engine,\n" +
			"format, checkpoint size, memory pages size, rootfs diff size, chain, verified.\n" +
			"CHAIN is full, pre-checkpoint, or \"delta of <parent manifest digest> depth N\" for an\n" +
			"incremental checkpoint, whose checkpoint size is then the delta's.\n" +
			"For a ckpt archive only the manifest is read (verified: unchecked) unless --verify, and\n" +
			"config.dump, for the creation time, when at most 64 MiB of members come before it.\n" +
			"Of an archive without manifest (podman, CRI-O, containerd) the tar headers and config.dump\n" +
			"and spec.dump are read, nothing hashed; an uncompressed one is read from header to header,\n" +
			"a compressed one up to spec.dump and config.dump: its sizes are then \"-\", with a note.\n" +
			"--full reads as far as every figure needs.",
		exits: "  0 shown, 1 an archive could not be read, 2 usage\n",
		flags: func(fs *pflag.FlagSet) {
			addKeyFlag(fs)
			addImageFlags(fs)
			addOutputFlags(fs, "table")
			fs.Bool("full", false, "read as far as every figure needs (a compressed archive without manifest: all of it)")
			fs.Bool("verify", false, "read and verify each whole archive")
		},
		run: runShow,
	}
}

// inspectCommand is the inspect command.
func inspectCommand() *command {
	return &command{
		short:    "show what a checkpoint holds",
		synopsis: "inspect ARCHIVE... [flags] [--json | --format tree|json] [--parent FILE]...",
		desc: "show a checkpoint's process tree, command lines, environment, open files,\nsockets, mounts, CRIU statistics and metadata; reads each archive once.\n" +
			"--parent gives the parent archives of an incremental checkpoint (nearest first): the chain\n" +
			"is checked, then memory marked in parent is read from them; without them it is reported\n" +
			"as \"in parent (not given)\".",
		exits: "  0 shown, 1 an archive could not be read or decoded, 2 usage\n",
		flags: func(fs *pflag.FlagSet) {
			addKeyFlag(fs)
			addImageFlags(fs)
			fs.Bool("ps-tree", false, "show the process tree")
			fs.Bool("ps-tree-cmd", false, "show each process's command line (from its memory)")
			fs.Bool("ps-tree-env", false, "show each process's environment (from its memory)")
			fs.Uint32P("pid", "p", 0, "only the subtree of this process")
			fs.Bool("files", false, "show open files")
			fs.Bool("sockets", false, "show sockets")
			fs.Bool("mounts", false, "show the spec's mounts")
			fs.Bool("stats", false, "show CRIU's dump statistics")
			fs.Bool("metadata", false, "show manifest metadata, annotations and deleted files")
			fs.Bool("all", false, "all of the above")
			addOutputFlags(fs, "tree")
			fs.StringArray("parent", nil, "parent archive of an incremental checkpoint, nearest first (repeatable)")
		},
		run: runInspect,
	}
}

// fuzzCommand is the fuzz command (commands' table would otherwise be one
// long literal).
func fuzzCommand() *command {
	return &command{
		short:    "fuzz the archive reader, verifier and extractor",
		synopsis: "fuzz SEED... [--duration D | --iterations N] [--seed S] [--sealed] [--out DIR] [--json | --format text|json]",
		desc: "mutate seed archives (tar headers, manifest fields, member bytes, compression frames,\n" +
			"CRIU image entry sizes, names with .. and links) and run each through the reader,\n" +
			"verifier and extractor in a sandbox with a sentinel file beside it. Panics, hangs,\n" +
			"escapes and unbounded allocations are saved to --out. One input in four (all with\n" +
			"--sealed) is the seed sealed to a key made for the run, its envelope mutated (the\n" +
			"clear line, the stanzas, the header's MAC, truncated chunks, flipped payload bytes, a\n" +
			"malformed trailer), which must be refused with a named error (findings \"accepted\",\n" +
			"\"unnamed\"), or its contents mutated, then sealed.",
		exits: "  0 nothing found, 1 findings saved, 2 usage or trouble\n",
		flags: func(fs *pflag.FlagSet) {
			fs.Duration("duration", 0, "how long to run (default 10s unless --iterations)")
			fs.Int("iterations", 0, "how many inputs to run")
			fs.Int64("seed", 0, "random seed (0: from the clock)")
			fs.String("out", "fuzz-findings", "directory for findings")
			fs.Duration("timeout", 10*time.Second, "time limit of one execution")
			fs.Int64("max-alloc-mb", 1024, "heap limit of one execution, MiB")
			fs.String("sandbox", "", "directory for the extraction sandbox (default $TMPDIR; a tmpfs such as /dev/shm is much faster)")
			fs.Bool("sealed", false, "make every input a sealed archive")
			addOutputFlags(fs, "text")
		},
		run: runFuzz,
	}
}

// addOutputFlags gives a command that prints data both spellings of JSON
// output, --json and --format json, with human its default format's name.
func addOutputFlags(fs *pflag.FlagSet, human string) {
	fs.Bool("json", false, "write one JSON document (version 1); the same as --format json")
	fs.String("format", human, "output format: "+human+" or json")
}

// outputJSON reports whether the command writes JSON, or a usage message
// for an unknown format or a --json contradicted by --format.
func outputJSON(fs *pflag.FlagSet) (bool, string) {
	human := fs.Lookup("format").DefValue
	f := getString(fs, "format")
	if f != human && f != "json" {
		return false, fmt.Sprintf("unknown format %q: want %s or json", f, human)
	}
	if getBool(fs, "json") && f == human && fs.Changed("format") {
		return false, fmt.Sprintf("--json and --format %s contradict each other", human)
	}
	return getBool(fs, "json") || f == "json", ""
}

func getBool(fs *pflag.FlagSet, name string) bool { v, _ := fs.GetBool(name); return v }
func getString(fs *pflag.FlagSet, name string) string {
	v, _ := fs.GetString(name)
	return v
}

func runShow(ctx context.Context, fs *pflag.FlagSet, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return usageErr(stderr, "show", "no archive given")
	}
	asJSON, msg := outputJSON(fs)
	if msg != "" {
		return usageErr(stderr, "show", msg)
	}
	ids, err := flagIdentities(fs)
	if err != nil {
		return usageErr(stderr, "show", err.Error())
	}
	code := exitOK
	var rows []*inspect.Summary
	for _, a := range args {
		s, err := inspect.Show(ctx, a, &inspect.ShowOptions{Verify: getBool(fs, "verify"), Full: getBool(fs, "full"), Identities: ids})
		if err != nil {
			fail(stderr, "show", err)
			code = exitFailure
			continue
		}
		s.Path = shownName(ctx, a)
		rows = append(rows, s)
	}
	if asJSON {
		err = inspect.WriteJSON(stdout, inspect.ShowJSON{Version: inspect.JSONVersion, Archives: rows})
	} else {
		err = inspect.WriteShow(stdout, rows)
	}
	if err != nil {
		fail(stderr, "show", err)
		return exitFailure
	}
	for _, s := range rows {
		if n := s.Note(); n != "" && !asJSON {
			fmt.Fprintf(stderr, "show: note: %s: %s\n", s.Path, n)
		}
	}
	return code
}

func runInspect(ctx context.Context, fs *pflag.FlagSet, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return usageErr(stderr, "inspect", "no archive given")
	}
	asJSON, msg := outputJSON(fs)
	if msg != "" {
		return usageErr(stderr, "inspect", msg)
	}
	var o inspect.InspectOptions
	if getBool(fs, "all") {
		o = inspect.All()
	}
	set := func(p *bool, name string) {
		if getBool(fs, name) {
			*p = true
		}
	}
	set(&o.PsTree, "ps-tree")
	set(&o.Cmd, "ps-tree-cmd")
	set(&o.Env, "ps-tree-env")
	set(&o.Files, "files")
	set(&o.Sockets, "sockets")
	set(&o.Mounts, "mounts")
	set(&o.Stats, "stats")
	set(&o.Metadata, "metadata")
	o.PID, _ = fs.GetUint32("pid")
	o.Parents, _ = fs.GetStringArray("parent")
	if len(o.Parents) > 0 && len(args) != 1 {
		return usageErr(stderr, "inspect", "--parent needs exactly one archive")
	}
	code := exitOK
	var all []*inspect.Inspection
	for _, a := range args {
		in, err := inspect.Inspect(ctx, a, &o)
		if err != nil {
			fail(stderr, "inspect", err)
			code = exitFailure
			continue
		}
		all = append(all, in)
	}
	if asJSON {
		if err := inspect.WriteJSON(stdout, inspect.InspectJSON{Version: inspect.JSONVersion, Archives: all}); err != nil {
			fail(stderr, "inspect", err)
			return exitFailure
		}
		return code
	}
	for i, in := range all {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		if err := inspect.WriteInspection(stdout, in); err != nil {
			fail(stderr, "inspect", err)
			return exitFailure
		}
	}
	return code
}

func runMemparse(ctx context.Context, fs *pflag.FlagSet, args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		return usageErr(stderr, "memparse", "want exactly one archive")
	}
	pid, _ := fs.GetUint32("pid")
	s, r := getString(fs, "search"), getString(fs, "search-regex")
	c, _ := fs.GetInt("context")
	asJSON, msg := outputJSON(fs)
	if msg != "" {
		return usageErr(stderr, "memparse", msg)
	}
	if s != "" && r != "" {
		return usageErr(stderr, "memparse", "--search and --search-regex exclude each other")
	}
	if c < 0 || c > inspect.MaxSearchContext {
		return usageErr(stderr, "memparse", fmt.Sprintf("--context must be in 0..%d", inspect.MaxSearchContext))
	}
	search := s != "" || r != ""
	if pid != 0 && !search && asJSON {
		return usageErr(stderr, "memparse", "JSON output (--json, --format json) is not available for a hexdump")
	}
	parents, _ := fs.GetStringArray("parent")
	a, err := inspect.Load(ctx, args[0], &inspect.LoadOptions{Images: true, Pages: search || pid != 0, Parents: parents})
	if err != nil {
		fail(stderr, "memparse", err)
		return exitFailure
	}
	defer a.Close()
	doc := inspect.MemparseJSON{Version: inspect.JSONVersion, Path: args[0]}
	owner := ""
	if in, err := a.Info(); err == nil && in.Pod != "" {
		// A kubelet checkpoint: say whose memory this is.
		doc.Pod, doc.Namespace, doc.Container = in.Pod, in.Namespace, in.Name
		owner = fmt.Sprintf("Container %s of pod %s/%s (%s)\n", in.Name, in.Namespace, in.Pod, in.Engine)
	}
	switch {
	case search:
		if a.Manifest.Parent != nil && len(parents) == 0 {
			fmt.Fprintf(stderr, "memparse: note: %s is an incremental checkpoint: its memory in parent (not given) is not searched; pass the parent with --parent\n", args[0])
		}
		ms, err := a.Search(inspect.SearchOptions{String: s, Regexp: r, Context: c, PID: pid})
		if err != nil {
			fail(stderr, "memparse", err)
			return exitFailure
		}
		if asJSON {
			doc.Matches = ms
			err = inspect.WriteJSON(stdout, doc)
		} else {
			err = inspect.WriteMatches(stdout, ms)
		}
		if err != nil {
			fail(stderr, "memparse", err)
			return exitFailure
		}
	case pid != 0:
		if err := a.HexDump(stdout, pid); err != nil {
			fail(stderr, "memparse", err)
			return exitFailure
		}
	default:
		rows, err := a.MemoryUsage()
		if err != nil {
			fail(stderr, "memparse", err)
			return exitFailure
		}
		if asJSON {
			doc.Processes = rows
			err = inspect.WriteJSON(stdout, doc)
		} else {
			_, err = io.WriteString(stdout, owner)
			if err == nil {
				err = inspect.WriteMemUsage(stdout, rows)
			}
		}
		if err != nil {
			fail(stderr, "memparse", err)
			return exitFailure
		}
	}
	return exitOK
}

func runVerify(ctx context.Context, fs *pflag.FlagSet, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return usageErr(stderr, "verify", "no archive given")
	}
	asJSON, msg := outputJSON(fs)
	if msg != "" {
		return usageErr(stderr, "verify", msg)
	}
	parents, _ := fs.GetStringArray("parent")
	if len(parents) > 0 && len(args) != 1 {
		return usageErr(stderr, "verify", "--parent needs exactly one archive")
	}
	o := &inspect.VerifyOptions{RequireManifest: getBool(fs, "require-manifest"), Parents: parents}
	code := exitOK
	var rs []*inspect.VerifyResult
	for _, a := range args {
		r, err := inspect.Verify(ctx, a, o)
		if err != nil {
			fail(stderr, "verify", err)
			code = exitUsage
			continue
		}
		r.Path = shownName(ctx, a)
		if !r.OK() && code == exitOK {
			code = exitFailure
		}
		rs = append(rs, r)
	}
	var err error
	if asJSON {
		err = inspect.WriteJSON(stdout, inspect.VerifyJSON{Version: inspect.JSONVersion, Archives: rs})
	} else {
		err = inspect.WriteVerify(stdout, rs)
	}
	if err != nil {
		fail(stderr, "verify", err)
		return exitUsage
	}
	return code
}

func runDiff(ctx context.Context, fs *pflag.FlagSet, args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 {
		return usageErr(stderr, "diff", "want exactly two archives")
	}
	asJSON, msg := outputJSON(fs)
	if msg != "" {
		return usageErr(stderr, "diff", msg)
	}
	parents, _ := fs.GetStringArray("parent")
	d, err := inspect.DiffArchives(ctx, args[0], args[1], &inspect.DiffOptions{Parents: parents})
	if err != nil {
		fail(stderr, "diff", err)
		return exitUsage
	}
	if asJSON {
		err = inspect.WriteJSON(stdout, inspect.DiffJSON{Version: inspect.JSONVersion, Diff: d})
	} else {
		err = inspect.WriteDiff(stdout, d)
	}
	if err != nil {
		fail(stderr, "diff", err)
		return exitUsage
	}
	if d.Identical {
		return exitOK
	}
	return exitFailure
}

func runFuzz(ctx context.Context, fs *pflag.FlagSet, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return usageErr(stderr, "fuzz", "no seed archive given")
	}
	dur, _ := fs.GetDuration("duration")
	iters, _ := fs.GetInt("iterations")
	if dur != 0 && iters != 0 {
		return usageErr(stderr, "fuzz", "--duration and --iterations exclude each other")
	}
	if dur < 0 || iters < 0 {
		return usageErr(stderr, "fuzz", "--duration and --iterations must be positive")
	}
	if dur == 0 && iters == 0 {
		dur = 10 * time.Second
	}
	asJSON, msg := outputJSON(fs)
	if msg != "" {
		return usageErr(stderr, "fuzz", msg)
	}
	seed, _ := fs.GetInt64("seed")
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	timeout, _ := fs.GetDuration("timeout")
	maxMB, _ := fs.GetInt64("max-alloc-mb")
	opts := &fuzz.Options{
		Duration:   dur,
		Iterations: iters,
		Seed:       seed,
		OutDir:     getString(fs, "out"),
		Timeout:    timeout,
		MaxAlloc:   maxMB << 20,
		TempDir:    getString(fs, "sandbox"),
		Log:        stderr,
		Sealed:     getBool(fs, "sealed"),
	}
	res, err := fuzz.Run(ctx, args, opts)
	if err != nil {
		fail(stderr, "fuzz", err)
		return exitUsage
	}
	if err := writeFuzz(stdout, res, seed, asJSON); err != nil {
		fail(stderr, "fuzz", err)
		return exitUsage
	}
	if len(res.Findings) > 0 {
		return exitFailure
	}
	return exitOK
}

// fuzzJSON is fuzz's JSON document.
type fuzzJSON struct {
	Version        int           `json:"version"`
	Seed           int64         `json:"seed"`
	Execs          int           `json:"execs"`
	ElapsedSeconds float64       `json:"elapsedSeconds"`
	ExecsPerSecond float64       `json:"execsPerSecond"`
	Findings       []fuzzFinding `json:"findings"`
}

// fuzzFinding is a fuzz.Finding without its input, which is in File.
type fuzzFinding struct {
	Kind     string `json:"kind"`
	Detail   string `json:"detail"`
	Mutation string `json:"mutation"`
	File     string `json:"file,omitempty"`
}

func writeFuzz(w io.Writer, res *fuzz.Result, seed int64, asJSON bool) error {
	if asJSON {
		doc := fuzzJSON{Version: inspect.JSONVersion, Seed: seed, Execs: res.Execs, ElapsedSeconds: res.Elapsed.Seconds(),
			ExecsPerSecond: res.ExecsPerSec(), Findings: []fuzzFinding{}}
		for _, f := range res.Findings {
			doc.Findings = append(doc.Findings, fuzzFinding{Kind: f.Kind, Detail: f.Detail, Mutation: f.Mutation, File: f.File})
		}
		return inspect.WriteJSON(w, doc)
	}
	if _, err := fmt.Fprintf(w, "%d execs in %s (%.0f execs/s), seed %d, %d finding(s)\n",
		res.Execs, res.Elapsed.Round(time.Millisecond), res.ExecsPerSec(), seed, len(res.Findings)); err != nil {
		return err
	}
	for _, f := range res.Findings {
		if _, err := fmt.Fprintf(w, "  %s: %s (%s)\n", f.Kind, f.Detail, f.File); err != nil {
			return err
		}
	}
	return nil
}
