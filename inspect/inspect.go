package inspect

import (
	"bytes"
	"context"
	"fmt"

	"github.com/ckpt/ckpt/format"
)

// InspectOptions select the views Inspect builds. The zero value gives
// the summary only.
type InspectOptions struct {
	// PsTree adds the process tree.
	PsTree bool
	// Cmd adds each process's command line (read from its memory; implies
	// PsTree).
	Cmd bool
	// Env adds each process's environment (implies PsTree).
	Env bool
	// PID restricts the process views to the subtree of this process.
	PID uint32
	// Files adds open files (implies PsTree).
	Files bool
	// Sockets adds sockets (implies PsTree).
	Sockets bool
	// Mounts adds the spec's mounts.
	Mounts bool
	// Stats adds CRIU's dump statistics.
	Stats bool
	// Metadata adds the manifest's host, options and parent, the spec's
	// annotations and the deleted files.
	Metadata bool
	// TempDir is where pages are copied for Cmd and Env; empty means
	// os.TempDir().
	TempDir string
	// Parents are the parent archives of an incremental checkpoint,
	// nearest first (see [LoadOptions.Parents]): checked with
	// format.CheckChain, then read for the command lines and environments
	// stored in parent. Without them those are reported in
	// Process.MemoryNote.
	Parents []string
}

// All returns options with every view.
func All() InspectOptions {
	return InspectOptions{PsTree: true, Cmd: true, Env: true, Files: true, Sockets: true, Mounts: true, Stats: true, Metadata: true}
}

// Metadata is the archive metadata Inspect shows with
// InspectOptions.Metadata.
type Metadata struct {
	// Engine is the writing program (the engine's name for legacy
	// archives); Host, Options and Parent are the manifest's (v1 only).
	Engine  format.Engine   `json:"engine"`
	Host    *format.Host    `json:"host,omitempty"`
	Options *format.Options `json:"options,omitempty"`
	Parent  *format.Parent  `json:"parent,omitempty"`
	// Compression is the outer compression; Members the member count.
	Compression string `json:"compression"`
	Members     int    `json:"members"`
	// Annotations are spec.dump's; DeletedFiles deleted.files' paths.
	Annotations  map[string]string `json:"annotations,omitempty"`
	DeletedFiles []string          `json:"deletedFiles,omitempty"`
	// ParentLink reports a legacy checkpoint/parent link.
	ParentLink bool `json:"parentLink,omitempty"`
}

// Inspection is the result of Inspect.
type Inspection struct {
	Summary
	// Processes is the process tree; Mounts, Stats and Metadata the other
	// views, each set when asked for.
	Processes []*Process `json:"processTree,omitempty"`
	Mounts    []Mount    `json:"mounts,omitempty"`
	Stats     *DumpStats `json:"stats,omitempty"`
	Metadata  *Metadata  `json:"metadata,omitempty"`
	// Stale lists the CRIU images the dump does not lead to (read with
	// the process tree only): nothing above comes from them; omitted
	// when none.
	Stale []StaleImage `json:"staleImages,omitempty"`
}

// Inspect reads the archive at name once and builds the views opts
// selects. CRIU images are decoded through the bounded path of
// DecodeImage; pages are copied to a private temporary directory only for
// Cmd and Env.
func Inspect(ctx context.Context, name string, opts *InspectOptions) (*Inspection, error) {
	var o InspectOptions
	if opts != nil {
		o = *opts
	}
	procs := o.PsTree || o.Cmd || o.Env || o.Files || o.Sockets || o.PID != 0
	a, err := Load(ctx, name, &LoadOptions{Images: procs, Args: o.Cmd || o.Env, TempDir: o.TempDir, Parents: o.Parents})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	in, err := inspectArchive(a, o, procs)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", name, err)
	}
	return in, nil
}

func inspectArchive(a *Archive, o InspectOptions, procs bool) (*Inspection, error) {
	in := &Inspection{Summary: Summary{Path: a.Path}}
	var err error
	if in.Info, err = a.Info(); err != nil {
		return nil, err
	}
	in.CheckpointSize, in.PagesSize, in.RootfsDiffSize = sizes(a.Manifest)
	if !a.Legacy {
		in.chainOf(a.Manifest)
	}
	// Load read every member: v1 contents matched their digests.
	in.Verified = VerifiedYes
	if a.Legacy {
		in.Verified = VerifiedUnverifiable
	}
	if procs {
		roots, err := a.Tree()
		if err != nil {
			return nil, err
		}
		if o.PID != 0 {
			var sel *Process
			Walk(roots, func(p *Process, _ int) {
				if p.PID == o.PID {
					sel = p
				}
			})
			if sel == nil {
				return nil, fmt.Errorf("find process %d: not in the checkpoint", o.PID)
			}
			roots = []*Process{sel}
		}
		if o.Cmd || o.Env {
			if err := a.ProcessArgs(roots, o.Env); err != nil {
				return nil, err
			}
			if !o.Cmd {
				Walk(roots, func(p *Process, _ int) { p.Cmdline = nil })
			}
		}
		if o.Files {
			files, err := a.Files()
			if err != nil {
				return nil, err
			}
			Walk(roots, func(p *Process, _ int) { p.Files = files[p.PID] })
		}
		if o.Sockets {
			sks, err := a.Sockets()
			if err != nil {
				return nil, err
			}
			Walk(roots, func(p *Process, _ int) { p.Sockets = sks[p.PID] })
		}
		in.Processes = roots
		for _, st := range a.Stale {
			in.Stale = append(in.Stale, StaleImage{Member: a.ImageDir + "/" + st.File, Reason: st.Reason})
		}
	}
	if o.Mounts {
		if in.Mounts, err = a.Mounts(); err != nil {
			return nil, err
		}
	}
	if o.Stats {
		if in.Stats, err = a.Stats(); err != nil {
			return nil, err
		}
	}
	if o.Metadata {
		md := &Metadata{Engine: a.Manifest.Engine, Compression: string(a.Compression), Members: len(a.Manifest.Members), ParentLink: a.HasParentLink}
		if !a.Legacy {
			h, op := a.Manifest.Host, a.Manifest.Options
			md.Host, md.Options, md.Parent = &h, &op, a.Manifest.Parent
		} else {
			md.Engine.Name = in.Engine
		}
		s, err := a.spec()
		if err != nil {
			return nil, err
		}
		if s != nil {
			md.Annotations = s.Annotations
		}
		if b, ok := a.Meta[format.DeletedFilesName]; ok {
			// The engine's reader, with its limits on the paths.
			if md.DeletedFiles, err = format.ReadDeletedFiles(bytes.NewReader(b)); err != nil {
				return nil, fmt.Errorf("parse %s: %w", format.DeletedFilesName, err)
			}
		}
		in.Metadata = md
	}
	return in, nil
}
