package format

import "encoding/json"

// The engines a legacy archive may come from, as [LegacyEngine] names them.
const (
	EnginePodman     = "Podman"
	EngineCRIO       = "CRI-O"
	EngineContainerd = "containerd"
)

// Members only the kubelet's checkpoint archives (the CRI's
// CheckpointContainer) carry, besides the podman-compatible names.
const (
	// BindMountsName is CRI-O's list of the container's bind mounts with
	// their file types.
	BindMountsName = "bind.mounts"
	// CRIOLogName is the container's log in a CRI-O archive: CRI-O names
	// the member after its annotation key.
	CRIOLogName = "io.kubernetes.cri-o.LogPath"
	// CRILogName is the container's log in a containerd archive.
	CRILogName = "container.log"
	// StatusName and StatusDumpName are containerd's container status: its
	// internal record and the CRI ContainerStatus as JSON.
	StatusName     = "status"
	StatusDumpName = "status.dump"
)

// Kube is the Kubernetes identity of a container checkpointed through the
// kubelet's checkpoint API (/checkpoint/{namespace}/{pod}/{container}),
// read from the annotations CRI-O and containerd put in spec.dump.
type Kube struct {
	// Engine is EngineCRIO or EngineContainerd.
	Engine string
	// Pod, Namespace and Container are the names in the kubelet's API;
	// PodUID the pod's UID, SandboxID the runtime's ID of the pod sandbox.
	Pod, Namespace, Container, PodUID, SandboxID string
	// IP is the pod's first IP address (CRI-O only).
	IP string
}

// LegacyEngine names the engine that wrote a legacy archive from its
// spec.dump, by the io.container.manager annotation as checkpointctl does:
// "libpod" is Podman, "cri-o" CRI-O, anything else containerd (which sets
// no such annotation). A spec that is not JSON is "".
func LegacyEngine(spec []byte) string {
	var s struct {
		Annotations map[string]string `json:"annotations"`
	}
	if json.Unmarshal(spec, &s) != nil {
		return ""
	}
	return engineOf(s.Annotations)
}

func engineOf(an map[string]string) string {
	switch an["io.container.manager"] {
	case "libpod":
		return EnginePodman
	case "cri-o":
		return EngineCRIO
	}
	return EngineContainerd
}

// ReadKube returns the Kubernetes identity recorded in spec.dump, and
// false for an archive that is not the kubelet's: podman's, or one whose
// spec names no pod.
func ReadKube(spec []byte) (Kube, bool) {
	var s struct {
		Annotations map[string]string `json:"annotations"`
	}
	if json.Unmarshal(spec, &s) != nil {
		return Kube{}, false
	}
	an := s.Annotations
	k := Kube{Engine: engineOf(an)}
	switch k.Engine {
	case EngineCRIO:
		// CRI-O copies the kubelet's labels into the annotations and
		// records the CRI metadata as JSON.
		var md struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal([]byte(an["io.kubernetes.cri-o.Metadata"]), &md)
		k.Pod, k.Namespace, k.PodUID = an["io.kubernetes.pod.name"], an["io.kubernetes.pod.namespace"], an["io.kubernetes.pod.uid"]
		k.Container = firstNonEmpty(an["io.kubernetes.container.name"], md.Name)
		k.SandboxID, k.IP = an["io.kubernetes.cri-o.SandboxID"], an["io.kubernetes.cri-o.IP.0"]
	case EngineContainerd:
		k.Pod, k.Namespace, k.PodUID = an["io.kubernetes.cri.sandbox-name"], an["io.kubernetes.cri.sandbox-namespace"], an["io.kubernetes.cri.sandbox-uid"]
		k.Container, k.SandboxID = an["io.kubernetes.cri.container-name"], an["io.kubernetes.cri.sandbox-id"]
	default:
		return Kube{}, false
	}
	if k.Pod == "" || k.Container == "" {
		return Kube{}, false
	}
	return k, true
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
