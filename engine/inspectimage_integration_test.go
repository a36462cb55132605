package engine

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil"
)

// buildCkptinspect builds cmd/ckptinspect into a temporary directory.
func buildCkptinspect(t *testing.T) string {
	t.Helper()
	goBin := testutil.RequireTool(t, "go")
	bin := filepath.Join(t.TempDir(), "ckptinspect")
	out, err := exec.Command(goBin, "build", "-tags="+testutil.BuildTags, "-o", bin, "../cmd/ckptinspect").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/ckptinspect: %v\n%s", err, out)
	}
	return bin
}

// emptyRow is a show row of an empty archive (a checkpoint size of 0 B
// after the format), what an image read as a plain tar gave.
var emptyRow = regexp.MustCompile(`(legacy|v1)\s+0 B`)

// inspectImage runs ckptinspect's show, verify, inspect and memparse on
// the checkpoint image arg: each succeeds, show's row names the image as
// given, container name and the format, and inspect the counter process.
func inspectImage(t *testing.T, bin, arg, name, format string) {
	t.Helper()
	run := func(args ...string) (int, string) {
		var out bytes.Buffer
		cmd := exec.Command(bin, append(args, "--tls-verify=false")...)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), out.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, out.String()
	}
	row := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(arg) + `\s+` + name + `\s.*\s` + format + `\s`)
	if code, out := run("show", arg); code != 0 || !row.MatchString(out) || emptyRow.MatchString(out) {
		t.Errorf("show %s = %d, want a row of %s, %s:\n%s", arg, code, name, format, out)
	}
	if code, out := run("verify", arg); code != 0 || !strings.HasPrefix(out, arg+": ok") {
		t.Errorf("verify %s = %d:\n%s", arg, code, out)
	}
	if code, out := run("inspect", "--ps-tree", arg); code != 0 || !strings.Contains(out, "counter") {
		t.Errorf("inspect --ps-tree %s = %d, want the counter process:\n%s", arg, code, out)
	}
	if code, out := run("memparse", arg); code != 0 || !strings.Contains(out, "counter") {
		t.Errorf("memparse %s = %d, want the counter process:\n%s", arg, code, out)
	}
}

// TestIntegrationInspectCheckpointImages runs ckptinspect (built, no
// engine) on real checkpoint images: ckpt's own --create-image (real
// CRIU) saved as an oci-archive and an OCI layout and pushed to a local
// registry (docker://), and podman 4.3.1's --create-image read from its
// store (containers-storage:) and saved as an oci-archive. Each reads as
// the archive it holds; the oci-archive and the pushed image are
// identical to diff. Podman's docker-archive of its image, which keeps no
// annotations, is named as no checkpoint image in one line.
func TestIntegrationInspectCheckpointImages(t *testing.T) {
	bin := buildCkptinspect(t)
	t.Run("ckpt", func(t *testing.T) {
		e := realEngine(t)
		ctx := context.Background()
		startCounter(t, e, "ci")
		o := &ExportOptions{CheckpointOptions: CheckpointOptions{LeaveRunning: true}}
		if _, err := e.CheckpointImage(ctx, "ci", "ckpt-ci:r", o); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		archive, layout := filepath.Join(dir, "ci.oci.tar"), filepath.Join(dir, "ci-layout")
		if err := e.ImageSave(ctx, "ckpt-ci:r", SaveOCIArchive, archive); err != nil {
			t.Fatal(err)
		}
		if err := e.ImageSave(ctx, "ckpt-ci:r", SaveOCIDir, layout); err != nil {
			t.Fatal(err)
		}
		ref := testutil.StartRegistry(t, "") + "/ckpt/ci:r"
		if err := e.ImagePush(ctx, "ckpt-ci:r", "docker://"+ref, &TransferOptions{TLSVerifyOff: true}); err != nil {
			t.Fatal(err)
		}
		for _, arg := range []string{archive, layout, "oci:" + layout, "oci-archive:" + archive, "docker://" + ref} {
			inspectImage(t, bin, arg, "ci", "ckpt v1")
		}
		if out, err := exec.Command(bin, "diff", archive, "docker://"+ref, "--tls-verify=false").CombinedOutput(); err != nil {
			t.Errorf("diff of the oci-archive and the pushed image: %v, want identical:\n%s", err, out)
		}
	})
	t.Run("podman4", func(t *testing.T) {
		p := podmanWithPolicy(t, testutil.RequirePodman(t))
		podman, dir := podmanCounter(t, p, []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"})
		podman("container", "checkpoint", "--create-image", "localhost/pd-cp:1", "pd")
		archive := filepath.Join(dir, "pd-cp.oci.tar")
		podman("save", "--format", "oci-archive", "-o", archive, "localhost/pd-cp:1")
		for _, arg := range []string{archive, "containers-storage:[" + filepath.Join(dir, "graph") + "]localhost/pd-cp:1"} {
			inspectImage(t, bin, arg, "pd", "legacy")
		}
		// A docker-archive drops the annotations: named in one line, not
		// shown as an archive.
		docker := filepath.Join(dir, "pd-cp.docker.tar")
		podman("save", "--format", "docker-archive", "-o", docker, "localhost/pd-cp:1")
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, "show", docker)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		want := "ckptinspect show: " + docker + ": not a checkpoint image: its manifest is Docker's"
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || stdout.Len() != 0 || !strings.HasPrefix(stderr.String(), want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("show of podman's docker-archive = %v, stdout %q, stderr %q; want exit 1 and one line beginning %q", err, stdout.String(), stderr.String(), want)
		}
	})
}

// podmanWithPolicy returns p run in a mount namespace of its own whose
// /etc is overlaid with containers/policy.json accepting anything: podman
// 4.3's checkpoint --create-image reads /etc/containers/policy.json, and
// ckpt writes nothing to the host's /etc.
func podmanWithPolicy(t *testing.T, p testutil.Podman) testutil.Podman {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "podman")
	body := `#!/bin/sh
# podman in a private mount namespace with an /etc/containers/policy.json
o=$(mktemp -d ` + dir + `/etc.XXXXXX)
mkdir "$o/upper" "$o/work" "$o/upper/containers"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$o/upper/containers/policy.json"
exec unshare -m --propagation private sh -c 'mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/upper,workdir=$1/work" /etc && shift && exec "$@"' sh "$o" ` + p.Path + ` "$@"
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return testutil.Podman{Path: script, PolicyFlag: p.PolicyFlag}
}
