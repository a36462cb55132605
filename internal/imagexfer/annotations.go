package imagexfer

// The annotations of a checkpoint image's manifest: podman's
// (libpod/define/annotations.go), by which podman recognizes one
// (runtime.name), and CRI-O's, by which CRI-O and the kubelet do.
const (
	AnnotationCheckpointName          = "io.podman.annotations.checkpoint.name"
	AnnotationCheckpointRawImageName  = "io.podman.annotations.checkpoint.rawImageName"
	AnnotationCheckpointRootfsImageID = "io.podman.annotations.checkpoint.rootfsImageID"
	AnnotationCheckpointRootfsImage   = "io.podman.annotations.checkpoint.rootfsImageName"
	AnnotationCheckpointRuntimeName   = "io.podman.annotations.checkpoint.runtime.name"
	AnnotationCheckpointRuntime       = "io.podman.annotations.checkpoint.runtime.version"
	AnnotationCheckpointCRIUVersion   = "io.podman.annotations.checkpoint.criu.version"
	AnnotationCheckpointHostArch      = "io.podman.annotations.checkpoint.host.arch"
	AnnotationCheckpointHostKernel    = "io.podman.annotations.checkpoint.host.kernel"
	AnnotationCheckpointCgroups       = "io.podman.annotations.checkpoint.cgroups.version"
	AnnotationCheckpointDistName      = "io.podman.annotations.checkpoint.distribution.name"
	AnnotationCheckpointDistVersion   = "io.podman.annotations.checkpoint.distribution.version"
	AnnotationCRIOCheckpointName      = "io.kubernetes.cri-o.annotations.checkpoint.name"
)

// IsCheckpoint reports whether annotations mark a checkpoint image:
// podman's (runtime.name, which podman checks, or name) or CRI-O's.
func IsCheckpoint(annotations map[string]string) bool {
	for _, k := range []string{AnnotationCheckpointRuntimeName, AnnotationCheckpointName, AnnotationCRIOCheckpointName} {
		if _, ok := annotations[k]; ok {
			return true
		}
	}
	return false
}
