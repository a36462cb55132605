package main

import (
	"fmt"
	"io"

	"github.com/ckpt/ckpt/format"
)

// explain follows a command with a line for each of its arguments that is
// a file but no checkpoint archive at all, saying what it looks like
// (format.Sniff): whether the command failed on it, or read it as a
// legacy archive (any tar is one); it returns code. A sealed archive is
// left out: the commands name it as sealed themselves.
func explain(code int, args []string, stderr io.Writer) int {
	for _, a := range args {
		if looks, err := format.SniffFile(a); err == nil && looks != format.LooksSealed && looks.NotCheckpoint() != nil {
			fmt.Fprintf(stderr, "ckptinspect: %s is not a checkpoint archive: it looks like %s\n", a, looks)
		}
	}
	return code
}
