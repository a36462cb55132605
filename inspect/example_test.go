package inspect_test

import (
	"context"
	"fmt"
	"os"

	"github.com/ckpt/ckpt/inspect"
)

// Show reads only the manifest of a ckpt archive; a legacy archive is
// read once.
func ExampleShow() {
	s, err := inspect.Show(context.Background(), "../testdata/legacy/crio.tar", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Name, s.Engine, s.Format, s.Verified)
	// Output: counter CRI-O legacy unverifiable
}

// Inspect builds the views its options select, reading the archive once.
func ExampleInspect() {
	o := inspect.InspectOptions{PsTree: true, Cmd: true}
	in, err := inspect.Inspect(context.Background(), "../testdata/legacy/containerd.tar", &o)
	if err != nil {
		fmt.Println(err)
		return
	}
	inspect.Walk(in.Processes, func(p *inspect.Process, depth int) {
		fmt.Println(p.PID, p.Comm, p.State, p.Cmdline)
	})
	// Output: 1 counter alive [/bin/counter -write-files -file /data/counter]
}

// Verify lists every problem; a legacy archive gets a note.
func ExampleVerify() {
	r, err := inspect.Verify(context.Background(), "../testdata/podman/counter.tar.zst", nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Println(r.Format, r.OK(), r.Notes)
	// Output: legacy true [no manifest: contents unverifiable]
}
