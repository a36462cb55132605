// Command gen makes the legacy-shaped corpus in testdata/legacy from the
// podman-made golden archive: a CRI-O-shaped and a containerd-shaped
// checkpoint archive that carry podman's real CRIU 4.1.1 images. It is run by
// testdata/legacy/gen.sh; see testdata/README.md for what each member is.
//
// Usage:
//
//	gen -podman PODMAN.tar -dump-log DUMP.log -out DIR
//
// PODMAN.tar is an uncompressed podman export (gen.sh decompresses
// testdata/podman/counter.tar.zst), DUMP.log is the CRIU log of that dump.
// The output is deterministic: members sorted by name, mtime 0, owner 0:0,
// gzip without name or time, and every value derived from the inputs.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func main() {
	podman := flag.String("podman", "", "uncompressed podman checkpoint archive")
	dumpLog := flag.String("dump-log", "", "CRIU dump.log of that checkpoint")
	out := flag.String("out", "", "output directory")
	flag.Parse()
	if *podman == "" || *dumpLog == "" || *out == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*podman, *dumpLog, *out); err != nil {
		fmt.Fprintf(os.Stderr, "gen: %v\n", err)
		os.Exit(1)
	}
}

// member is one file of an archive to write.
type member struct {
	name string
	mode int64
	data []byte
	dir  bool
}

// source is what gen takes from the podman archive.
type source struct {
	checkpoint []member // checkpoint/ and its files, as podman stored them
	spec       map[string]any
	config     map[string]any
	statsDump  []byte
	ctrLog     []byte
	rootfsDiff []byte
	deleted    []byte
}

func run(podmanPath, dumpLogPath, outDir string) error {
	src, err := readPodman(podmanPath)
	if err != nil {
		return err
	}
	dumpLog, err := os.ReadFile(dumpLogPath)
	if err != nil {
		return err
	}
	created, err := time.Parse(time.RFC3339Nano, str(src.config["createdTime"]))
	if err != nil {
		return fmt.Errorf("config.dump createdTime: %w", err)
	}
	checkpointed, err := lastLogTime(src.ctrLog)
	if err != nil {
		return err
	}
	imageID := str(src.config["rootfsImageID"])
	imageName := str(src.config["rootfsImageName"])
	if imageID == "" || imageName == "" {
		return errors.New("config.dump has no rootfsImageID or rootfsImageName")
	}
	t := times{created: created.UTC(), checkpointed: checkpointed.UTC()}

	crio, err := crioMembers(src, dumpLog, imageID, imageName, t)
	if err != nil {
		return err
	}
	ctrd, err := containerdMembers(src, dumpLog, imageID, imageName, t)
	if err != nil {
		return err
	}
	if err := writeTar(filepath.Join(outDir, "crio.tar"), crio); err != nil {
		return err
	}
	return writeTar(filepath.Join(outDir, "containerd.tar"), ctrd)
}

type times struct{ created, checkpointed time.Time }

func readPodman(path string) (*source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src := &source{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		data, err := io.ReadAll(io.LimitReader(tr, 64<<20))
		if err != nil {
			return nil, fmt.Errorf("read %s: %s: %w", path, h.Name, err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		switch {
		case name == "checkpoint" && h.Typeflag == tar.TypeDir:
			src.checkpoint = append(src.checkpoint, member{name: name, mode: 0o700, dir: true})
		case strings.HasPrefix(name, "checkpoint/") && h.Typeflag == tar.TypeReg:
			src.checkpoint = append(src.checkpoint, member{name: name, mode: h.Mode & 0o777, data: data})
		case name == "spec.dump":
			src.spec, err = decodeJSON(data)
		case name == "config.dump":
			src.config, err = decodeJSON(data)
		case name == "stats-dump":
			src.statsDump = data
		case name == "ctr.log":
			src.ctrLog = data
		case name == "rootfs-diff.tar":
			src.rootfsDiff = data
		case name == "deleted.files":
			src.deleted = data
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if len(src.checkpoint) < 2 || src.spec == nil || src.config == nil || src.statsDump == nil ||
		src.ctrLog == nil || src.rootfsDiff == nil || src.deleted == nil {
		return nil, fmt.Errorf("%s: not a complete podman checkpoint export", path)
	}
	return src, nil
}

func decodeJSON(data []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// lastLogTime returns the timestamp of the last line of a CRI-format log
// ("TIME STREAM TAG MESSAGE"): the workload's last output before the freeze.
func lastLogTime(log []byte) (time.Time, error) {
	var last string
	sc := bufio.NewScanner(bytes.NewReader(log))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			last = f[0]
		}
	}
	t, err := time.Parse(time.RFC3339Nano, last)
	if err != nil {
		return time.Time{}, fmt.Errorf("ctr.log: last line: %w", err)
	}
	return t, nil
}

// id makes a 64-hex-digit ID from a label, so the IDs are fixed.
func id(label string) string {
	sum := sha256.Sum256([]byte("ckpt testdata/legacy " + label))
	return hex.EncodeToString(sum[:])
}

// uid makes a Kubernetes-style UID from a label.
func uid(label string) string {
	h := id(label)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// checkpointConfig mirrors the reduced ContainerConfig that CRI-O and
// containerd write as config.dump (checkpointctl lib/metadata.go); field
// order and JSON names follow it.
type checkpointConfig struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	RootfsImage     string    `json:"rootfsImage,omitempty"`
	RootfsImageRef  string    `json:"rootfsImageRef,omitempty"`
	RootfsImageName string    `json:"rootfsImageName,omitempty"`
	OCIRuntime      string    `json:"runtime,omitempty"`
	CreatedTime     time.Time `json:"createdTime"`
	CheckpointedAt  time.Time `json:"checkpointedTime"`
	RestoredAt      time.Time `json:"restoredTime"`
	Restored        bool      `json:"restored"`
}

// withAnnotations returns a copy of the podman spec whose annotations are
// replaced by ann (so io.container.manager=libpod is gone).
func withAnnotations(spec map[string]any, ann map[string]string) map[string]any {
	s := make(map[string]any, len(spec))
	for k, v := range spec {
		s[k] = v
	}
	a := make(map[string]any, len(ann))
	for k, v := range ann {
		a[k] = v
	}
	s["annotations"] = a
	return s
}

func marshalIndent(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }

// crioMembers builds the CRI-O shape (cri-o internal/lib/checkpoint.go):
// uncompressed; config.dump (reduced struct) and spec.dump written with
// indentation; bind.mounts; dump.log; stats-dump; checkpoint/;
// rootfs-diff.tar (plain tar) and deleted.files; the container log stored
// under the member name of its annotation key, io.kubernetes.cri-o.LogPath.
func crioMembers(src *source, dumpLog []byte, imageID, imageName string, t times) ([]member, error) {
	ctrID, sbID, podUID := id("crio container"), id("crio sandbox"), uid("crio pod")
	name := "k8s_counter_counter_default_" + podUID + "_0"
	logPath := "/var/log/pods/default_counter_" + podUID + "/counter/0.log"
	cfg, err := marshalIndent(checkpointConfig{
		ID: ctrID, Name: name,
		RootfsImage: imageName, RootfsImageRef: imageID, RootfsImageName: imageName,
		OCIRuntime: "runc", CreatedTime: t.created, CheckpointedAt: t.checkpointed,
	})
	if err != nil {
		return nil, err
	}
	spec, err := marshalIndent(withAnnotations(src.spec, map[string]string{
		"io.container.manager":                     "cri-o",
		"io.kubernetes.container.name":             "counter",
		"io.kubernetes.cri-o.ContainerID":          ctrID,
		"io.kubernetes.cri-o.ContainerName":        name,
		"io.kubernetes.cri-o.ContainerType":        "container",
		"io.kubernetes.cri-o.Created":              t.created.Format(time.RFC3339Nano),
		"io.kubernetes.cri-o.IP.0":                 "10.85.0.12",
		"io.kubernetes.cri-o.Image":                imageID,
		"io.kubernetes.cri-o.ImageName":            imageName,
		"io.kubernetes.cri-o.ImageRef":             imageID,
		"io.kubernetes.cri-o.LogPath":              logPath,
		"io.kubernetes.cri-o.Metadata":             `{"name":"counter"}`,
		"io.kubernetes.cri-o.SandboxID":            sbID,
		"io.kubernetes.cri-o.SandboxName":          "k8s_counter_default_" + podUID + "_0",
		"io.kubernetes.cri-o.TTY":                  "false",
		"io.kubernetes.pod.name":                   "counter",
		"io.kubernetes.pod.namespace":              "default",
		"io.kubernetes.pod.uid":                    podUID,
		"io.kubernetes.pod.terminationGracePeriod": "30",
	}))
	if err != nil {
		return nil, err
	}
	type bindMount struct {
		Source      string `json:"source"`
		Destination string `json:"destination"`
		FileType    string `json:"file_type"`
		Permissions uint32 `json:"permissions"`
	}
	pod := "/var/lib/kubelet/pods/" + podUID
	binds, err := marshalIndent([]bindMount{
		{pod + "/volumes/kubernetes.io~empty-dir/data", "/data", "directory", 0o777},
		{pod + "/etc-hosts", "/etc/hosts", "file", 0o644},
		{pod + "/containers/counter/" + ctrID[:8], "/dev/termination-log", "file", 0o644},
		{"/run/containers/storage/overlay-containers/" + sbID + "/userdata/hostname", "/etc/hostname", "file", 0o644},
	})
	if err != nil {
		return nil, err
	}
	ms := []member{
		{name: "bind.mounts", mode: 0o600, data: binds},
		{name: "config.dump", mode: 0o600, data: cfg},
		{name: "deleted.files", mode: 0o600, data: src.deleted},
		{name: "dump.log", mode: 0o600, data: dumpLog},
		{name: "io.kubernetes.cri-o.LogPath", mode: 0o600, data: src.ctrLog},
		{name: "rootfs-diff.tar", mode: 0o644, data: src.rootfsDiff},
		{name: "spec.dump", mode: 0o600, data: spec},
		{name: "stats-dump", mode: 0o644, data: src.statsDump},
	}
	return append(ms, src.checkpoint...), nil
}

// containerdMembers builds the containerd shape (containerd
// internal/cri/server/container_checkpoint_linux.go): config.dump (reduced
// struct, compact), spec.dump (compact, no io.container.manager), status
// (containerd's own container status), status.dump (the CRI
// ContainerStatus), container.log, dump.log, stats-dump, checkpoint/, and a
// rootfs-diff.tar that is a gzip-compressed OCI layer despite its name:
// deletions are whiteouts there, so there is no deleted.files.
func containerdMembers(src *source, dumpLog []byte, imageID, imageName string, t times) ([]member, error) {
	ctrID, sbID, podUID := id("containerd container"), id("containerd sandbox"), uid("containerd pod")
	imageRef := "sha256:" + imageID
	logPath := "/var/log/pods/default_counter_" + podUID + "/counter/0.log"
	cfg, err := json.Marshal(checkpointConfig{
		ID: ctrID, Name: "counter",
		RootfsImage: imageName, RootfsImageRef: imageRef, RootfsImageName: imageName,
		OCIRuntime: "io.containerd.runc.v2", CreatedTime: t.created, CheckpointedAt: t.checkpointed,
	})
	if err != nil {
		return nil, err
	}
	annotations := map[string]string{
		"io.kubernetes.cri.container-name":    "counter",
		"io.kubernetes.cri.container-type":    "container",
		"io.kubernetes.cri.image-name":        imageName,
		"io.kubernetes.cri.sandbox-id":        sbID,
		"io.kubernetes.cri.sandbox-name":      "counter",
		"io.kubernetes.cri.sandbox-namespace": "default",
		"io.kubernetes.cri.sandbox-uid":       podUID,
	}
	spec, err := json.Marshal(withAnnotations(src.spec, annotations))
	if err != nil {
		return nil, err
	}
	// containerd's status file: a versioned JSON of its container status.
	status, err := json.Marshal(map[string]any{
		"Version":    "v1",
		"Pid":        4242,
		"CreatedAt":  t.created.UnixNano(),
		"StartedAt":  t.created.Add(150 * time.Millisecond).UnixNano(),
		"FinishedAt": 0,
		"ExitCode":   0,
		"Reason":     "",
		"Message":    "",
		"Starting":   false,
		"Removing":   false,
		"Unknown":    false,
	})
	if err != nil {
		return nil, err
	}
	// status.dump: the CRI ContainerStatus as encoding/json writes the
	// generated Go type (snake_case names, omitempty, enums as numbers).
	statusDump, err := json.Marshal(map[string]any{
		"id":          ctrID,
		"metadata":    map[string]any{"name": "counter"},
		"state":       1, // CONTAINER_RUNNING
		"created_at":  t.created.UnixNano(),
		"started_at":  t.created.Add(150 * time.Millisecond).UnixNano(),
		"image":       map[string]any{"image": imageName},
		"image_ref":   imageRef,
		"labels":      map[string]string{"io.kubernetes.container.name": "counter", "io.kubernetes.pod.name": "counter", "io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.uid": podUID},
		"annotations": map[string]string{"io.kubernetes.container.restartCount": "0", "io.kubernetes.container.terminationMessagePath": "/dev/termination-log"},
		"mounts": []map[string]any{
			{"container_path": "/data", "host_path": "/var/lib/kubelet/pods/" + podUID + "/volumes/kubernetes.io~empty-dir/data"},
			{"container_path": "/etc/hosts", "host_path": "/var/lib/kubelet/pods/" + podUID + "/etc-hosts"},
		},
		"log_path": logPath,
	})
	if err != nil {
		return nil, err
	}
	layer, err := ociLayer()
	if err != nil {
		return nil, err
	}
	ms := []member{
		{name: "config.dump", mode: 0o600, data: cfg},
		{name: "container.log", mode: 0o600, data: src.ctrLog},
		{name: "dump.log", mode: 0o644, data: dumpLog},
		{name: "rootfs-diff.tar", mode: 0o644, data: layer},
		{name: "spec.dump", mode: 0o644, data: spec},
		{name: "stats-dump", mode: 0o644, data: src.statsDump},
		{name: "status", mode: 0o600, data: status},
		{name: "status.dump", mode: 0o600, data: statusDump},
	}
	return append(ms, src.checkpoint...), nil
}

// ociLayer is the rw layer of the counter -write-files container as
// containerd exports it: gzip-compressed, with an OCI whiteout for the
// deleted file and the modified file's new content.
func ociLayer() ([]byte, error) {
	var raw bytes.Buffer
	if err := tarTo(&raw, []member{
		{name: "added.txt", mode: 0o644, data: []byte("added by counter\n")},
		{name: "etc", mode: 0o755, dir: true},
		{name: "etc/.wh.deleted.txt", mode: 0o644},
		{name: "etc/modified.txt", mode: 0o644, data: []byte("modified by counter\n")},
	}); err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return gz.Bytes(), nil
}

func writeTar(path string, ms []member) error {
	var buf bytes.Buffer
	if err := tarTo(&buf, ms); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// tarTo writes ms sorted by name, with fixed times and owners.
func tarTo(w io.Writer, ms []member) error {
	ms = append([]member(nil), ms...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].name < ms[j].name })
	tw := tar.NewWriter(w)
	for _, m := range ms {
		h := &tar.Header{
			Name:    m.name,
			Mode:    m.mode,
			ModTime: time.Unix(0, 0),
			Format:  tar.FormatUSTAR,
		}
		if m.dir {
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(m.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		if _, err := tw.Write(m.data); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	return tw.Close()
}
