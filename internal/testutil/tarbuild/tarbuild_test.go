package tarbuild

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestBuild(t *testing.T) {
	b := Build(t, Dir("d/", 0o755), WithXattrs(File("d/f", "body", 0o600), "user.k", "v"), Symlink("s", "d/f"), Huge("big", 1<<20))
	tr := tar.NewReader(bytes.NewReader(b))
	var names []string
	var err error
	for {
		var h *tar.Header
		h, err = tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
		if h.Name == "d/f" && h.PAXRecords["SCHILY.xattr.user.k"] != "v" {
			t.Errorf("d/f PAX records = %v, want user.k=v", h.PAXRecords)
		}
		if _, err = io.Copy(io.Discard, tr); err != nil {
			break
		}
	}
	if want := "[d/ d/f s big]"; fmt.Sprint(names) != want {
		t.Errorf("entries = %s, want %s", fmt.Sprint(names), want)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reading past Huge = %v, want io.ErrUnexpectedEOF", err)
	}
}
