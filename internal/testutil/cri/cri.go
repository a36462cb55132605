// Package cri runs the peer containerd 2.x with its CRI plugin for tests,
// and drives it as the kubelet does, so that tests get real containerd CRI
// checkpoint archives (the kubelet's forensic checkpoints). [StartCtr]
// runs the peer containerd 1.7 without CRI, driven by its ctr, for its
// checkpoint images (`ctr containers checkpoint --task --image --rw`).
//
// Invariants:
//
//   - containerd runs from the private directory scripts/peer-containerd.sh
//     prints (nothing is installed), with its own config, root, state,
//     sockets, runc root and CNI directories under the test's temporary
//     directory: it shares nothing with a containerd of the host or of
//     another test.
//   - Pods get a network namespace of their own, as the kubelet's pods
//     do: the only CNI plugin is ckpt-dummy (a shell script written
//     here), which gives the namespace an eth0 with 10.88.0.2/24, a veth
//     whose peer stays in the namespace, nothing reaching the host;
//     containerd brings up lo itself.
//   - The pods' cgroups are under a parent cgroup named after that
//     directory, removed again by cleanup.
//   - The one other path outside it is containerd's fixed /run/containerd/s,
//     where its shims put their sockets (named by a hash of the socket
//     address, so they do not meet another containerd's); cleanup removes
//     the directory again if the test made it and it is empty.
//   - StartCtr's containers run in a ctr namespace named after that
//     directory, so their cgroups are under the same parent, with runc's
//     root and their logs under the directory.
//   - Cleanup removes every pod and ctr container the test made, stops containerd (the
//     process this package started, by its PID), and unmounts what is still
//     mounted under the temporary directory before removing it
//     (CKPT_CRI_KEEP=1 keeps the directory, containerd's log in it, to
//     look into a failure).
//   - A missing prerequisite (root, runc, CRIU, the peer containerd) fails
//     the test under CI=true (testutil.Missing).
package cri

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	rt "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ckpt/ckpt/internal/testutil"
)

// Containerd is a private containerd with its CRI plugin.
type Containerd struct {
	// Dir is its temporary directory; Bin the peer's usr/bin.
	Dir, Bin string
	// Version is `containerd --version`'s output.
	Version string
	// Runtime is the CRI runtime service.
	Runtime rt.RuntimeServiceClient
	socket  string
	// madeShimDir says shimRunDir did not exist before this containerd.
	madeShimDir bool
	cmd         *exec.Cmd
	conn        *grpc.ClientConn
	pods        []string
	// ns is ctr's namespace; ctrs the containers RunCtr made.
	ns   string
	ctrs []string
}

// shimRunDir is containerd 2.x's fixed directory for its shims' sockets
// (under s/), which no configuration moves.
const shimRunDir = "/run/containerd"

// SandboxImage is the image containerd runs its pause containers from;
// tests import it (OCIImage) before they run a pod.
const SandboxImage = "localhost/ckpt-counter:cri"

// Start unpacks the peer containerd if needed (scripts/peer-containerd.sh)
// and starts it; cleanup is registered on t.
func Start(t testing.TB) *Containerd {
	t.Helper()
	c := launch(t, "2", "k8s.io", (*Containerd).config)
	if c == nil {
		return nil
	}
	var err error
	c.conn, err = grpc.NewClient("unix://"+c.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	c.Runtime = rt.NewRuntimeServiceClient(c.conn)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Runtime.Version(ctx, &rt.VersionRequest{})
		cancel()
		if err == nil {
			t.Logf("%s answers on its CRI socket after %v", c.Version, time.Since(deadline.Add(-30*time.Second)).Round(time.Millisecond))
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd's CRI did not answer within 30 s: %v (log: %s)", err, c.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// launch unpacks the peer containerd of series ("2" or "1.7") if needed
// and starts it with the configuration config gives (from the runc
// binary's path), its ctr namespace ns; cleanup is registered on t. It
// returns nil after testutil.Missing.
func launch(t testing.TB, series, ns string, config func(c *Containerd, runc string) string) *Containerd {
	t.Helper()
	testutil.RequireRoot(t)
	runc := testutil.RequireTool(t, "runc")
	criu := testutil.RequireTool(t, "criu")
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "..", "scripts", "peer-containerd.sh")
	out, err := exec.Command("bash", script, series).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		testutil.Missing(t, "containerd %s.x: scripts/peer-containerd.sh %s could not unpack it: %s", series, series, msg)
		return nil
	}
	bin := filepath.Join(strings.TrimSpace(string(out)), "usr", "bin")
	// Not t.TempDir: containerd's state must be gone, mounts first, before
	// the directory is removed (Cleanup below).
	dir, err := os.MkdirTemp("/var/tmp", "ckpt-cri-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Containerd{Dir: dir, Bin: bin, socket: filepath.Join(dir, "containerd.sock"), ns: ns}
	if _, err := os.Stat(shimRunDir); os.IsNotExist(err) {
		c.madeShimDir = true
	}
	t.Cleanup(func() { c.stop(t) })
	conf := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(conf, []byte(config(c, runc)), 0o600); err != nil {
		t.Fatal(err)
	}
	writeCNI(t, dir)
	if v, err := exec.Command(filepath.Join(bin, "containerd"), "--version").Output(); err == nil {
		c.Version = strings.TrimSpace(string(v))
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	c.cmd = exec.Command(filepath.Join(bin, "containerd"), "--config", conf)
	// The shim is found on PATH, and runc's checkpoint runs the criu on PATH.
	c.cmd.Env = append(os.Environ(), "PATH="+bin+":"+filepath.Dir(runc)+":"+filepath.Dir(criu)+":"+os.Getenv("PATH"))
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	return c
}

// config is containerd's configuration: everything under c.Dir, the
// plugins that would reach outside it (NRI's socket, tracing) disabled.
func (c *Containerd) config(runc string) string {
	d := c.Dir
	return fmt.Sprintf(`version = 3
root = '%[1]s/root'
state = '%[1]s/state'
disabled_plugins = ['io.containerd.nri.v1.nri', 'io.containerd.snapshotter.v1.btrfs', 'io.containerd.snapshotter.v1.zfs',
  'io.containerd.snapshotter.v1.devmapper', 'io.containerd.snapshotter.v1.blockfile', 'io.containerd.snapshotter.v1.erofs',
  'io.containerd.tracing.processor.v1.otlp', 'io.containerd.internal.v1.tracing']
[grpc]
  address = '%[2]s'
[ttrpc]
  address = '%[2]s.ttrpc'
[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = '%[1]s/opt'
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '%[3]s'
  [plugins.'io.containerd.cri.v1.runtime']
    enable_cdi = false
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '%[4]s'
          Root = '%[1]s/runc'
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['%[1]s/cni/bin']
      conf_dir = '%[1]s/cni/net.d'
      use_internal_loopback = true
  [plugins.'io.containerd.grpc.v1.cri']
    disable_tcp_service = true
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
`, d, c.socket, SandboxImage, runc)
}

// dummyPlugin is a CNI plugin that gives a pod's network namespace an
// eth0 with an address (one end of a veth pair whose other end stays in
// the pod's namespace too: the dummy link type needs a kernel module), so that containerd's CRI runs pods with
// network namespaces of their own without any network behind them.
const dummyPlugin = `#!/bin/sh
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
ADD)
	cat >/dev/null
	nsenter --net="$CNI_NETNS" ip link add name "$CNI_IFNAME" type veth peer name ckpt0 || exit 1
	nsenter --net="$CNI_NETNS" ip link set ckpt0 up || exit 1
	nsenter --net="$CNI_NETNS" ip addr add 10.88.0.2/24 dev "$CNI_IFNAME" || exit 1
	nsenter --net="$CNI_NETNS" ip link set "$CNI_IFNAME" up || exit 1
	printf '{"cniVersion":"1.0.0","interfaces":[{"name":"%s","sandbox":"%s"}],"ips":[{"interface":0,"address":"10.88.0.2/24"}]}\n' "$CNI_IFNAME" "$CNI_NETNS" ;;
*) cat >/dev/null ;;
esac
`

// writeCNI writes the dummy plugin and the network configuration naming it.
func writeCNI(t testing.TB, dir string) {
	t.Helper()
	for _, d := range []string{"cni/bin", "cni/net.d"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := `{"cniVersion":"1.0.0","name":"ckpt-dummy","plugins":[{"type":"ckpt-dummy"}]}`
	if err := os.WriteFile(filepath.Join(dir, "cni/net.d/10-ckpt-dummy.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cni/bin/ckpt-dummy"), []byte(dummyPlugin), 0o755); err != nil {
		t.Fatal(err)
	}
}

func (c *Containerd) logTail() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "containerd.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// stop removes the test's pods, stops containerd and removes its directory.
func (c *Containerd) stop(t testing.TB) {
	if c.Runtime != nil {
		for _, id := range c.pods {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if _, err := c.Runtime.StopPodSandbox(ctx, &rt.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
				t.Logf("stop pod %s: %v", id, err)
			}
			if _, err := c.Runtime.RemovePodSandbox(ctx, &rt.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
				t.Logf("remove pod %s: %v", id, err)
			}
			cancel()
		}
	}
	if c.conn != nil {
		c.conn.Close()
	}
	c.removeCtrs(t)
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(unix.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = c.cmd.Process.Kill()
			<-done
		}
	}
	unmountUnder(t, c.Dir)
	c.removeCgroups(t)
	if c.madeShimDir {
		// Empty once the shims are gone; os.Remove leaves a directory
		// another containerd has put sockets in.
		_ = os.Remove(filepath.Join(shimRunDir, "s"))
		_ = os.Remove(shimRunDir)
	}
	if os.Getenv("CKPT_CRI_KEEP") != "" {
		t.Logf("kept %s", c.Dir)
		return
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		t.Logf("remove %s: %v", c.Dir, err)
	}
}

// unmountUnder unmounts every mount point below dir, deepest first.
func unmountUnder(t testing.TB, dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mnts []string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mnts = append(mnts, f[4])
		}
	}
	for i := len(mnts) - 1; i >= 0; i-- {
		if err := unix.Unmount(mnts[i], unix.MNT_DETACH); err != nil {
			t.Logf("unmount %s: %v", mnts[i], err)
		}
	}
}

// Ctr runs the peer's ctr against this containerd, in its namespace (the
// CRI's, k8s.io, for Start).
func (c *Containerd) Ctr(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(c.Bin, "ctr"), append([]string{"-a", c.socket, "-n", c.ns}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ctr %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ImportImage imports an OCI layout tar (OCIImage) into the CRI's images.
func (c *Containerd) ImportImage(t testing.TB, path string) {
	t.Helper()
	c.Ctr(t, "images", "import", path)
}

// Pod names a pod as the kubelet's API does.
type Pod struct {
	Name, Namespace, UID string
}

// RunContainer runs a pod with one container of
// image running command, with the labels and annotations the kubelet
// sets, and returns the container's ID once it runs.
func (c *Containerd) RunContainer(t testing.TB, pod Pod, name, image string, command []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logDir := filepath.Join(c.Dir, "pods", pod.Namespace+"_"+pod.Name+"_"+pod.UID)
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		t.Fatal(err)
	}
	podLabels := map[string]string{
		"io.kubernetes.pod.name": pod.Name, "io.kubernetes.pod.namespace": pod.Namespace, "io.kubernetes.pod.uid": pod.UID,
	}
	sc := &rt.PodSandboxConfig{
		Metadata:     &rt.PodSandboxMetadata{Name: pod.Name, Namespace: pod.Namespace, Uid: pod.UID},
		Hostname:     pod.Name,
		LogDirectory: logDir,
		Labels:       podLabels,
		Annotations:  map[string]string{"kubernetes.io/config.source": "api"},
		Linux: &rt.LinuxPodSandboxConfig{
			CgroupParent:    c.cgroupParent(),
			SecurityContext: &rt.LinuxSandboxSecurityContext{NamespaceOptions: kubeletNamespaces()},
		},
	}
	ps, err := c.Runtime.RunPodSandbox(ctx, &rt.RunPodSandboxRequest{Config: sc})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v (containerd log: %s)", err, c.logTail())
	}
	c.pods = append(c.pods, ps.PodSandboxId)
	labels := map[string]string{"io.kubernetes.container.name": name}
	for k, v := range podLabels {
		labels[k] = v
	}
	cc, err := c.Runtime.CreateContainer(ctx, &rt.CreateContainerRequest{
		PodSandboxId: ps.PodSandboxId,
		Config: &rt.ContainerConfig{
			Metadata:    &rt.ContainerMetadata{Name: name},
			Image:       &rt.ImageSpec{Image: image},
			Command:     command,
			LogPath:     name + "/0.log",
			Labels:      labels,
			Annotations: map[string]string{"io.kubernetes.container.restartCount": "0", "io.kubernetes.container.terminationMessagePolicy": "File"},
			Linux: &rt.LinuxContainerConfig{SecurityContext: &rt.LinuxContainerSecurityContext{
				NamespaceOptions: kubeletNamespaces(), MaskedPaths: kubeletMasked, ReadonlyPaths: kubeletReadonly,
			}},
		},
		SandboxConfig: sc,
	})
	if err != nil {
		t.Fatalf("CreateContainer: %v (containerd log: %s)", err, c.logTail())
	}
	if _, err := c.Runtime.StartContainer(ctx, &rt.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
		t.Fatalf("StartContainer: %v (containerd log: %s)", err, c.logTail())
	}
	return cc.ContainerId
}

// cgroupParent is the cgroup of this containerd's pods, named after its
// directory: without one, runc would make /k8s.io in every hierarchy and
// leave it.
func (c *Containerd) cgroupParent() string { return "/" + filepath.Base(c.Dir) }

// removeCgroups removes the pods' parent cgroup from every hierarchy
// (empty once containerd removed the pods).
func (c *Containerd) removeCgroups(t testing.TB) {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", filepath.Base(c.Dir)))
	if d := filepath.Join("/sys/fs/cgroup", filepath.Base(c.Dir)); isDir(d) {
		dirs = append(dirs, d) // cgroup v2
	}
	for _, d := range dirs {
		if err := os.Remove(d); err != nil {
			t.Logf("remove cgroup %s: %v", d, err)
		}
	}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// kubeletNamespaces are the namespaces the kubelet asks for a pod without
// hostNetwork and shareProcessNamespace: the pod's network and IPC
// namespaces, a PID namespace per container.
func kubeletNamespaces() *rt.NamespaceOption {
	return &rt.NamespaceOption{Network: rt.NamespaceMode_POD, Pid: rt.NamespaceMode_CONTAINER, Ipc: rt.NamespaceMode_POD}
}

// The paths the kubelet masks and makes read-only in every unprivileged
// container (its securitycontext defaults); containerd adds none itself.
var (
	kubeletMasked = []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"}
	kubeletReadonly = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// Logs returns the container's CRI log so far.
func (c *Containerd) Logs(t testing.TB, id string) string {
	t.Helper()
	st, err := c.Runtime.ContainerStatus(context.Background(), &rt.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(st.Status.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Checkpoint checkpoints container id into the archive at location, as the
// kubelet's checkpoint API does (the container keeps running).
func (c *Containerd) Checkpoint(t testing.TB, id, location string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	if _, err := c.Runtime.CheckpointContainer(ctx, &rt.CheckpointContainerRequest{ContainerId: id, Location: location, Timeout: 60}); err != nil {
		t.Fatalf("CheckpointContainer: %v (containerd log: %s)", err, c.logTail())
	}
	t.Logf("containerd's CheckpointContainer took %v", time.Since(start).Round(time.Millisecond))
}

// ArchiveName is the kubelet's name for a checkpoint archive:
// checkpoint-<pod>_<namespace>-<container>-<time>.tar.
func ArchiveName(pod Pod, container string, at time.Time) string {
	return fmt.Sprintf("checkpoint-%s_%s-%s-%s.tar", pod.Name, pod.Namespace, container, at.UTC().Format(time.RFC3339))
}

// OCIImage writes an OCI image layout tar of one uncompressed layer (the
// root filesystem tar rootfs) named name, whose command is cmd, and
// returns its path under dir.
func OCIImage(t testing.TB, dir, rootfs, name string, cmd []string) string {
	t.Helper()
	layer, err := os.ReadFile(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	blobs := map[string][]byte{}
	blob := func(b []byte) (string, int) {
		s := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(s[:])
		blobs[d] = b
		return d, len(b)
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ld, ls := blob(layer)
	cd, cs := blob(mustJSON(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"config": map[string]any{"Cmd": cmd, "WorkingDir": "/"},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{ld}},
	}))
	md, ms := blob(mustJSON(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}},
	}))
	index := mustJSON(map[string]any{"schemaVersion": 2, "manifests": []any{map[string]any{
		"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
		"annotations": map[string]string{"io.containerd.image.name": name},
	}}})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(n string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	add("index.json", index)
	for d, b := range blobs {
		add("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "image.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
