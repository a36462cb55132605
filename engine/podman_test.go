package engine

import (
	"os"
	"path/filepath"
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
