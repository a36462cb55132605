package inspect

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/critoracle"
)

// critPs returns go-criu's crit's process tree of the image directory
// dir: "PID PGID SID COMM" rows, sorted.
func critPs(t *testing.T, dir string) []string {
	t.Helper()
	rows, err := critoracle.Ps(dir)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(rows)
	return rows
}

// critFds returns go-criu's crit's open files of the image directory dir:
// "fd path" rows per PID.
func critFds(t *testing.T, dir string) map[string][]string {
	t.Helper()
	m, err := critoracle.Fds(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// extractImages extracts the archive into a temporary directory for crit
// and returns its image directory.
func extractImages(t *testing.T, archive string) string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	if _, err := format.Extract(context.Background(), f, dir, &format.ExtractOptions{Filter: func(h *format.Header) bool {
		return h.Kind == format.KindImage
	}}); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, format.CheckpointDir)
}

// critSockets lists, per pid, "fd ino" of socket descriptors as go-criu's
// crit decodes fdinfo and files.img.
func critSockets(t *testing.T, dir string, pids []uint32) map[uint32][]string {
	t.Helper()
	type entries struct {
		Entries []map[string]any `json:"entries"`
	}
	decode := func(name string) entries {
		var e entries
		out, err := critoracle.Decode(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, &e); err != nil {
			t.Fatalf("parse crit decode %s: %v", name, err)
		}
		return e
	}
	files := decode("files.img")
	inoByID := map[float64]float64{}
	for _, f := range files.Entries {
		for _, k := range []string{"isk", "usk", "psk", "nlsk"} {
			if s, ok := f[k].(map[string]any); ok {
				ino, _ := s["ino"].(float64)
				inoByID[f["id"].(float64)] = ino
			}
		}
	}
	out := map[uint32][]string{}
	for _, pid := range pids {
		ids := decode(fmt.Sprintf("ids-%d.img", pid))
		fid := ids.Entries[0]["files_id"].(float64)
		fds := decode(fmt.Sprintf("fdinfo-%d.img", int(fid)))
		for _, fd := range fds.Entries {
			if ino, ok := inoByID[fd["id"].(float64)]; ok {
				out[pid] = append(out[pid], fmt.Sprintf("%d %d", int(fd["fd"].(float64)), int64(ino)))
			}
		}
	}
	return out
}

// checkAgainstCrit compares the process tree, fds and sockets of the
// archive with crit's on the same images.
func checkAgainstCrit(t *testing.T, archive string, fds bool) {
	dir := extractImages(t, archive)
	a, err := Load(context.Background(), archive, &LoadOptions{Images: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	roots, err := a.Tree()
	if err != nil {
		t.Fatal(err)
	}
	var ps []string
	var alive []uint32
	Walk(roots, func(p *Process, _ int) {
		ps = append(ps, fmt.Sprintf("%d %d %d %s", p.PID, p.PGID, p.SID, p.Comm))
		if p.State != "zombie" {
			alive = append(alive, p.PID)
		}
	})
	sort.Strings(ps)
	want := critPs(t, dir)
	if strings.Join(ps, "\n") != strings.Join(want, "\n") {
		t.Errorf("process tree = %q, crit x ps gives %q", ps, want)
	}
	if !fds {
		return
	}
	files, err := a.Files()
	if err != nil {
		t.Fatal(err)
	}
	cf := critFds(t, dir)
	for _, pid := range alive {
		var got []string
		for _, f := range files[pid] {
			got = append(got, f.Fd+" "+f.Path)
		}
		if w := cf[strconv.Itoa(int(pid))]; strings.Join(got, "\n") != strings.Join(w, "\n") {
			t.Errorf("fds of %d = %q, crit x fds gives %q", pid, got, w)
		}
	}
	sks, err := a.Sockets()
	if err != nil {
		t.Fatal(err)
	}
	cs := critSockets(t, dir, alive)
	for _, pid := range alive {
		var got []string
		for _, s := range sks[pid] {
			got = append(got, fmt.Sprintf("%d %d", s.Fd, s.Ino))
		}
		if strings.Join(got, "\n") != strings.Join(cs[pid], "\n") {
			t.Errorf("sockets of %d = %q, crit decode gives %q", pid, got, cs[pid])
		}
	}
}

func TestCritAgreement(t *testing.T) {
	// tiny has a zombie, on which `crit x fds` fails (no ids image): only
	// the process tree is compared there.
	t.Run("tiny", func(t *testing.T) {
		t.Parallel()
		checkAgainstCrit(t, writeTiny(t, t.TempDir(), "tiny.ckpt", tinyOptions{}), false)
	})
	// The CRI-O- and containerd-shaped archives hold the podman archive's
	// images: comparing them again would only cost time.
	for _, name := range []string{"podman/counter.tar.zst"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkAgainstCrit(t, filepath.Join(repoTestdata, name), true)
		})
	}
}
