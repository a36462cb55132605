package cri

import (
	"archive/tar"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// CRIOSource is what BuildCRIO takes from a real checkpoint: a directory
// holding checkpoint/ (CRIU images), spec.dump and optionally
// rootfs-diff.tar (a plain tar), deleted.files, stats-dump, dump.log and
// the container's log (ctr.log), as an extracted ckpt or podman archive
// has them.
type CRIOSource struct {
	Dir string
	// Pod and Container name the container as the kubelet's API does.
	Pod       Pod
	Container string
	// ID is the container's ID; Image and ImageID its base image.
	ID, Image, ImageID string
	Created            time.Time
}

// BuildCRIO writes, at path, a checkpoint archive laid out as CRI-O's
// CheckpointContainer writes it (cri-o internal/lib/checkpoint.go:
// exportCheckpoint): an uncompressed tar of stats-dump, dump.log,
// checkpoint/, config.dump (checkpointctl's ContainerConfig), spec.dump
// (with the annotations CRI-O adds, io.container.manager "cri-o" among
// them), bind.mounts, then rootfs-diff.tar, deleted.files and the log
// under the member name io.kubernetes.cri-o.LogPath. It is built, not
// produced by CRI-O: CRI-O is not packaged for Debian.
func BuildCRIO(t testing.TB, src CRIOSource, path string) {
	t.Helper()
	spec, name := crioSpec(t, src)
	specOut, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	configOut, err := json.MarshalIndent(map[string]any{
		"id": src.ID, "name": name, "rootfsImage": src.Image, "rootfsImageRef": src.ImageID, "rootfsImageName": src.Image,
		"runtime": "runc", "createdTime": src.Created, "checkpointedTime": time.Now().UTC(), "restoredTime": time.Time{}, "restored": false,
	}, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	bindMounts, _ := json.MarshalIndent([]map[string]any{
		{"source": "/var/lib/kubelet/pods/" + src.Pod.UID + "/etc-hosts", "destination": "/etc/hosts", "file_type": "file", "permissions": 0o644},
		{"source": "/var/lib/kubelet/pods/" + src.Pod.UID + "/containers/" + src.Container + "/0a1b2c3d", "destination": "/dev/termination-log", "file_type": "file", "permissions": 0o644},
	}, "", "\t")

	writeCRIO(t, src, path, configOut, specOut, bindMounts)
}

// crioSpec returns src's spec.dump as CRI-O writes it (with its
// annotations and the pod's pinned namespaces) and the CRI-O name of the
// container.
func crioSpec(t testing.TB, src CRIOSource) (map[string]any, string) {
	t.Helper()
	specData, err := os.ReadFile(filepath.Join(src.Dir, "spec.dump"))
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(specData, &spec); err != nil {
		t.Fatal(err)
	}
	an, _ := spec["annotations"].(map[string]any)
	if an == nil {
		an = map[string]any{}
	}
	labels := map[string]string{
		"io.kubernetes.pod.name": src.Pod.Name, "io.kubernetes.pod.namespace": src.Pod.Namespace,
		"io.kubernetes.pod.uid": src.Pod.UID, "io.kubernetes.container.name": src.Container,
	}
	for k, v := range labels {
		an[k] = v
	}
	name := "k8s_" + src.Container + "_" + src.Pod.Name + "_" + src.Pod.Namespace + "_" + src.Pod.UID + "_0"
	metadata, _ := json.Marshal(map[string]any{"name": src.Container})
	labelsJSON, _ := json.Marshal(labels)
	for k, v := range map[string]string{
		"io.container.manager":              "cri-o",
		"io.kubernetes.cri-o.ContainerID":   src.ID,
		"io.kubernetes.cri-o.ContainerType": "container",
		"io.kubernetes.cri-o.Created":       src.Created.UTC().Format(time.RFC3339Nano),
		"io.kubernetes.cri-o.Image":         src.Image,
		"io.kubernetes.cri-o.ImageName":     src.Image,
		"io.kubernetes.cri-o.ImageRef":      src.ImageID,
		"io.kubernetes.cri-o.IP.0":          "10.85.0.7",
		"io.kubernetes.cri-o.Labels":        string(labelsJSON),
		"io.kubernetes.cri-o.LogPath":       "/var/log/pods/" + src.Pod.Namespace + "_" + src.Pod.Name + "_" + src.Pod.UID + "/" + src.Container + "/0.log",
		"io.kubernetes.cri-o.Metadata":      string(metadata),
		"io.kubernetes.cri-o.Name":          name,
		"io.kubernetes.cri-o.SandboxID":     "0f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170",
		"io.kubernetes.cri-o.SandboxName":   "k8s_" + src.Pod.Name + "_" + src.Pod.Namespace + "_" + src.Pod.UID + "_0",
		"io.kubernetes.cri-o.TTY":           "false",
	} {
		an[k] = v
	}
	spec["annotations"] = an
	// CRI-O's containers join the pod's network, IPC and UTS namespaces,
	// which it pins under /var/run.
	if linux, ok := spec["linux"].(map[string]any); ok {
		nss, _ := linux["namespaces"].([]any)
		for _, n := range nss {
			if m, ok := n.(map[string]any); ok {
				switch m["type"] {
				case "network", "ipc", "uts":
					m["path"] = "/var/run/" + map[any]string{"network": "netns", "ipc": "ipcns", "uts": "utsns"}[m["type"]] + "/" + src.Pod.UID
				}
			}
		}
	}
	return spec, name
}

// writeCRIO writes the archive's members in CRI-O's order to path.
func writeCRIO(t testing.TB, src CRIOSource, path string, configOut, specOut, bindMounts []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	now := time.Now()
	addFile := func(name string, data []byte, mode int64) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: now, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	copyFile := func(member, file string, mode int64) {
		b, err := os.ReadFile(filepath.Join(src.Dir, file))
		if err == nil {
			addFile(member, b, mode)
		}
	}
	copyFile("stats-dump", "stats-dump", 0o644)
	copyFile("dump.log", "dump.log", 0o600)
	if err := tw.WriteHeader(&tar.Header{Name: "checkpoint/", Mode: 0o700, ModTime: now, Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Join(src.Dir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for _, n := range names {
		copyFile("checkpoint/"+n, filepath.Join("checkpoint", n), 0o600)
	}
	addFile("config.dump", configOut, 0o600)
	addFile("spec.dump", specOut, 0o600)
	addFile("bind.mounts", bindMounts, 0o600)
	copyFile("rootfs-diff.tar", "rootfs-diff.tar", 0o600)
	copyFile("deleted.files", "deleted.files", 0o600)
	copyFile("io.kubernetes.cri-o.LogPath", "ctr.log", 0o600)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}
