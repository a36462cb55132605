package engine

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ckpt/ckpt/format"
)

// TestPodmanRecordNetwork: a podman spec.dump with a network namespace of
// the container's own records a private network; one without (podman
// --network host, as testdata/podman/tcp.tar.zst) the host's, which an
// import must be granted.
func TestPodmanRecordNetwork(t *testing.T) {
	cfg := []byte(`{"name":"c","id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","rootfsImageName":"localhost/x:1"}`)
	for _, c := range []struct {
		name, namespaces, want string
	}{
		{"own network namespace", `[{"type":"pid"},{"type":"network"},{"type":"mount"}]`, NetworkNone},
		{"podman's network namespace", `[{"type":"pid"},{"type":"network","path":"/run/netns/netns-1"},{"type":"mount"}]`, NetworkNone},
		{"host network", `[{"type":"pid"},{"type":"mount"}]`, NetworkHost},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			spec := `{"process":{"args":["/bin/x"],"cwd":"/"},"linux":{"namespaces":` + c.namespaces + `}}`
			if err := os.WriteFile(filepath.Join(dir, format.SpecName), []byte(spec), 0o600); err != nil {
				t.Fatal(err)
			}
			rec, err := readPodmanRecord(dir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Network != c.want {
				t.Errorf("Network = %q, want %q", rec.Network, c.want)
			}
		})
	}
}

// TestPodmanRecordMaskedAndTerminal: podman 4 masks /sys/dev/block beyond
// the engine's default set; the record keeps such a path (the spec of the
// restored container masks it too), drops what is not a clean path under
// /proc or /sys, and takes the terminal and open stdin.
func TestPodmanRecordMaskedAndTerminal(t *testing.T) {
	cfg := []byte(`{"name":"c","id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","stdin":true}`)
	dir := t.TempDir()
	spec := `{"process":{"args":["/bin/x"],"cwd":"/","terminal":true},"linux":{"namespaces":[{"type":"network"}],
		"maskedPaths":["/proc/kcore","/sys/dev/block","/etc","/proc/../etc","/sys/dev/block","relative"]}}`
	if err := os.WriteFile(filepath.Join(dir, format.SpecName), []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	rec, err := readPodmanRecord(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.Masked, []string{"/sys/dev/block"}) || !rec.Terminal || !rec.OpenStdin {
		t.Errorf("record: masked %q, terminal %v, stdin %v; want [/sys/dev/block], true, true", rec.Masked, rec.Terminal, rec.OpenStdin)
	}
	s, err := specFor(&Container{ID: "0123456789abcdef", Command: []string{"/bin/x"}, MaskedPaths: rec.Masked})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.Linux.MaskedPaths); n != len(defaultMasked)+1 || s.Linux.MaskedPaths[n-1] != "/sys/dev/block" {
		t.Errorf("spec masked paths %q, want the default set and /sys/dev/block", s.Linux.MaskedPaths)
	}
}
