package engine

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/ckpt/ckpt/internal/fsutil"
	"github.com/ckpt/ckpt/internal/testutil"
)

// counterProcess is the image config of the counter images: the image's
// entrypoint and environment alone make it count every 50 ms.
var counterProcess = &imageProcess{Entrypoint: []string{"/bin/counter"}, Env: []string{"COUNTER_INTERVAL=50ms"}, WorkingDir: "/"}

// counterLayout writes an OCI layout of the workload's root filesystem
// with counterProcess as its config.
func counterLayout(t *testing.T, tarPath, name string) *layout {
	t.Helper()
	layer, err := os.ReadFile(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	return writeLayout(t, t.TempDir(), layer, counterProcess, name)
}

// runsImageCommand runs image on e without a command and checks that the
// image's entrypoint and environment run (it counts every 50 ms).
func runsImageCommand(t *testing.T, e *Engine, image, name string) {
	t.Helper()
	c, err := e.Run(context.Background(), image, &RunOptions{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Command, counterProcess.Entrypoint) || !slices.Contains(c.Env, "COUNTER_INTERVAL=50ms") {
		t.Errorf("Run(%s) without a command: command %q env %q, want the image's", image, c.Command, c.Env)
	}
	waitLog(t, e, name, "the image's command counting", func(l string) bool { return lastCounter(l) >= 3 })
}

// TestIntegrationRegistry pushes an image from engine root A to a real
// registry (Debian's docker-registry, started on a free localhost port),
// pulls it on root B by a bare name and runs it there with the image's
// own command.
func TestIntegrationRegistry(t *testing.T) {
	a := realEngine(t)
	b := realEngine(t)
	addr := testutil.StartRegistry(t, "")
	ctx := context.Background()
	l := counterLayout(t, workloadTar(t), "")
	img, err := a.ImageLoad(ctx, l.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ref := addr + "/ckpt/counter:v1"
	insecure := &TransferOptions{TLSVerifyOff: true}
	if err := a.ImagePush(ctx, img.ID, "docker://"+ref, nil); err == nil {
		t.Errorf("ImagePush() to a plain-HTTP registry with TLS verification = nil, want an error")
	}
	if err := a.ImagePush(ctx, img.ID, "docker://"+ref, insecure); err != nil {
		t.Fatal(err)
	}
	got, err := b.ImagePull(ctx, ref, insecure)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != img.ID || !slices.Contains(got.Names, ref) {
		t.Fatalf("ImagePull(%s) = %+v, want ID %s named %s", ref, got, img.ID, ref)
	}
	runsImageCommand(t, b, ref, "from-registry")
}

// TestIntegrationPodmanImages loads the oci-archive and docker-archive
// podman saves, and pulls the image from podman's store
// (containers-storage:[GRAPHROOT]NAME): each gives podman's image ID and
// name, and the image's entrypoint (set by podman import --change) runs.
func TestIntegrationPodmanImages(t *testing.T) {
	e := realEngine(t)
	tarPath := workloadTar(t)
	podman := testutil.RequirePodman(t)
	dir := t.TempDir()
	graph := filepath.Join(dir, "graph")
	runroot, err := os.MkdirTemp("", "prun") // podman 4.3 refuses long runroots
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(runroot) })
	// podman's overlay driver mounts graph/overlay on itself.
	t.Cleanup(func() { _ = fsutil.UnmountAll(graph, true) })
	pod := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(podman.Path, append([]string{"--root", graph, "--runroot", runroot, "--storage-driver", "overlay"}, args...)...)
		cmd.Env = append(os.Environ(), "PODMAN_IGNORE_CGROUPSV1_WARNING=1")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	pod("import", podman.PolicyFlag, "--change", `ENTRYPOINT ["/bin/counter"]`, "--change", "ENV COUNTER_INTERVAL=50ms", tarPath, "podimg")
	id := pod("image", "inspect", "--format", "{{.Id}}", "localhost/podimg:latest")
	ctx := context.Background()
	for _, f := range []string{"oci-archive", "docker-archive"} {
		file := filepath.Join(dir, f+".tar")
		pod("save", podman.PolicyFlag, "--format", f, "-o", file, "localhost/podimg:latest")
		img, err := e.ImageLoad(ctx, file, nil)
		if err != nil {
			t.Fatalf("ImageLoad(podman's %s): %v", f, err)
		}
		if img.ID != id || !slices.Contains(img.Names, "localhost/podimg:latest") {
			t.Errorf("ImageLoad(podman's %s) = %s %q, want podman's %s named localhost/podimg:latest", f, img.ID, img.Names, id)
		}
		if err := e.ImageRemove(ctx, img.ID); err != nil {
			t.Fatal(err)
		}
	}
	img, err := e.ImagePull(ctx, "containers-storage:["+graph+"]localhost/podimg:latest", nil)
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != id || !slices.Contains(img.Names, "localhost/podimg:latest") {
		t.Fatalf("ImagePull(containers-storage:) = %+v, want podman's ID %s and name", img, id)
	}
	runsImageCommand(t, e, "podimg", "from-podman")
}

// TestIntegrationRegistryAuth: a registry that asks for credentials
// refuses a push without them, and takes the ones of --authfile
// (TransferOptions.AuthFile) and of $REGISTRY_AUTH_FILE, podman's
// auth.json format.
func TestIntegrationRegistryAuth(t *testing.T) {
	e := imageEngine(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	addr := testutil.StartRegistry(t, "ckpt:"+string(hash)+"\n")
	ctx := context.Background()
	l := writeLayout(t, t.TempDir(), layerTar(t, plainLayer...), nil, "")
	img, err := e.ImageLoad(ctx, l.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	auth := filepath.Join(t.TempDir(), "auth.json")
	cred := base64.StdEncoding.EncodeToString([]byte("ckpt:s3cret"))
	if err := os.WriteFile(auth, []byte(`{"auths":{"`+addr+`":{"auth":"`+cred+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir()) // no credentials where podman looks by default
	dest := "docker://" + addr + "/ckpt/auth:v1"
	if err := e.ImagePush(ctx, img.ID, dest, &TransferOptions{TLSVerifyOff: true}); err == nil || !strings.Contains(err.Error(), "authentication required") {
		t.Errorf("ImagePush() without credentials = %v, want authentication required", err)
	}
	if err := e.ImagePush(ctx, img.ID, dest, &TransferOptions{TLSVerifyOff: true, AuthFile: auth}); err != nil {
		t.Fatalf("ImagePush(AuthFile) = %v", err)
	}
	t.Setenv("REGISTRY_AUTH_FILE", auth)
	if err := e.ImageRemove(ctx, img.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ImagePull(ctx, dest, &TransferOptions{TLSVerifyOff: true}); err != nil {
		t.Fatalf("ImagePull() with $REGISTRY_AUTH_FILE = %v", err)
	}
}
