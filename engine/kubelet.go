package engine

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/rootfs"
	"github.com/ckpt/ckpt/volumes"
)

// kubeletConfig is checkpointctl's ContainerConfig as CRI-O and containerd
// write it into config.dump of a kubelet checkpoint archive.
type kubeletConfig struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	RootfsImage     string `json:"rootfsImage"`
	RootfsImageRef  string `json:"rootfsImageRef"`
	RootfsImageName string `json:"rootfsImageName"`
}

// kubeletProvided are the bind mounts the kubelet and the CRI runtime
// provide to every container of a pod; an import provides them from the
// new container's directory (/dev/termination-log as an empty file).
var kubeletProvided = map[string]bool{
	"/etc/hosts": true, "/etc/hostname": true, "/etc/resolv.conf": true,
	"/dev/shm": true, "/dev/termination-log": true,
}

// serviceAccountDirs are where the kubelet mounts the pod's service account
// token: bound to the pod and its cluster, it is restored as an empty
// directory, never asked of the user.
var serviceAccountDirs = map[string]bool{
	"/var/run/secrets/kubernetes.io/serviceaccount": true,
	"/run/secrets/kubernetes.io/serviceaccount":     true,
}

// readKubeletRecord reads the record of a kubelet checkpoint archive (made
// by CRI-O or containerd through the CRI) from its config.dump (cfg) and
// the staged spec.dump. The container is restored standalone, named after
// its Kubernetes container name; rec.Lost says what of the pod is not.
func readKubeletRecord(staging string, cfg []byte, k format.Kube) (*importRecord, error) {
	var kc kubeletConfig
	if err := json.Unmarshal(cfg, &kc); err != nil {
		return nil, fmt.Errorf("%w: decode config.dump: %w", format.ErrFormat, err)
	}
	ps, err := readSpecDump(staging)
	if err != nil {
		return nil, err
	}
	rec := specRecord(ps)
	rec.Name, rec.ID = k.Container, kc.ID
	rec.Image = firstNonEmpty(kc.RootfsImageName, kc.RootfsImage)
	// containerd records the image's config digest, CRI-O the image ID:
	// both are the ID of the same image in a containers/storage store.
	rec.ImageID = strings.TrimPrefix(kc.RootfsImageRef, "sha256:")
	rec.Kube = &k
	for _, m := range ps.Mounts {
		switch {
		case (m.Type == "bind" && kubeletProvided[m.Destination]) ||
			(m.Type == "cgroup" && m.Destination == "/sys/fs/cgroup"):
			rec.Extra = append(rec.Extra, m.Destination)
		case m.Type == "bind" && serviceAccountDirs[m.Destination]:
			rec.Dropped = append(rec.Dropped, m.Destination)
		case m.Type == "bind":
			b := volumes.BindMount{Source: m.Source, Destination: m.Destination}
			if slices.Contains(m.Options, "ro") {
				b.Options = []string{"ro"}
			}
			if err := b.Validate(); err != nil {
				return nil, fmt.Errorf("%w: spec.dump: %w", format.ErrFormat, err)
			}
			rec.Binds = append(rec.Binds, b)
		}
	}
	rec.Lost = podLost(ps, rec.Dropped)
	if err := rec.check(); err != nil {
		return nil, err
	}
	return rec, nil
}

// podLost lists what of the pod a standalone restore leaves behind: the
// namespaces the container shared with the pod's sandbox (joined by path
// in the spec), the pod's other containers, and the service account token.
func podLost(ps *podmanSpec, dropped []string) []string {
	var shared []string
	if ps.Linux != nil {
		for _, ns := range ps.Linux.Namespaces {
			if ns.Path != "" {
				shared = append(shared, ns.Type)
			}
		}
	}
	var lost []string
	if len(shared) > 0 {
		lost = append(lost, "the pod's "+strings.Join(shared, ", ")+" namespaces (shared with its sandbox; the container gets its own)")
	}
	lost = append(lost, "the pod's other containers")
	if len(dropped) > 0 {
		lost = append(lost, "the service account token ("+strings.Join(dropped, ", ")+" is empty)")
	}
	return lost
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// maxWhiteouts bounds the whiteouts read from a containerd rootfs diff, as
// deleted.files is bounded.
const maxWhiteouts = format.MaxDeletedFiles

// ociWhiteouts reads the staged rootfs diff of a containerd archive, an
// OCI layer (gzip-compressed), and returns the paths its whiteouts delete:
// "d/.wh.x" deletes d/x, "d/.wh..wh..opq" (an opaque directory) deletes d,
// which the layer's entries then make anew. rootfs.Apply removes deleted
// paths before it extracts, so this is the layer's meaning.
func ociWhiteouts(diff string) ([]string, error) {
	f, err := os.Open(diff)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := gunzipMaybe(f)
	if err != nil {
		return nil, err
	}
	var deleted []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return deleted, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: read rootfs-diff.tar: %w", format.ErrFormat, err)
		}
		// Not cleaned: Apply refuses a deleted path with "..", like a name.
		dir, base := path.Split(strings.TrimSuffix(h.Name, "/"))
		switch {
		case base == rootfs.WhiteoutPrefix+rootfs.WhiteoutPrefix+".opq":
			if dir == "" {
				return nil, fmt.Errorf("%w: rootfs-diff.tar hides the whole root (an opaque whiteout at the top)", format.ErrFormat)
			}
			deleted = append(deleted, strings.TrimSuffix(dir, "/"))
		case strings.HasPrefix(base, rootfs.WhiteoutPrefix):
			deleted = append(deleted, dir+strings.TrimPrefix(base, rootfs.WhiteoutPrefix))
		default:
			continue
		}
		if len(deleted) > maxWhiteouts {
			return nil, fmt.Errorf("%w: rootfs-diff.tar has more than %d whiteouts", format.ErrTooLarge, maxWhiteouts)
		}
	}
}

// withoutWhiteouts copies the tar stream r (gzip-compressed or not) without
// its whiteout entries, which ociWhiteouts turned into deletions. The
// caller closes the reader, which stops the copy if it did not read to the
// end.
func withoutWhiteouts(r io.Reader) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		err := func() error {
			zr, err := gunzipMaybe(r)
			if err != nil {
				return err
			}
			tr, tw := tar.NewReader(zr), tar.NewWriter(pw)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					return tw.Close()
				}
				if err != nil {
					return err
				}
				if strings.HasPrefix(path.Base(h.Name), rootfs.WhiteoutPrefix) {
					continue
				}
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
				if _, err := io.Copy(tw, tr); err != nil {
					return err
				}
			}
		}()
		pw.CloseWithError(err)
	}()
	return pr
}

// gunzipMaybe returns r decompressed if it starts with gzip's magic.
func gunzipMaybe(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	if magic, err := br.Peek(2); err != nil || magic[0] != 0x1f || magic[1] != 0x8b {
		return br, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("%w: rootfs-diff.tar: %w", format.ErrFormat, err)
	}
	zr.Multistream(false)
	return zr, nil
}
