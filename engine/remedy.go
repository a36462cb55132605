package engine

import "fmt"

// Remedy is a piece of advice a [RemedyError] carries: the option (or
// the step) that would get the caller past the error. Each has a message
// in this package's terms; cmd/ckpt words each in its flags.
type Remedy int

// Remedies.
const (
	// RemedyTCP: restore with TCPEstablished (or TCPClose).
	RemedyTCP Remedy = iota + 1
	// RemedyTCPCopy: a copy under a new [ImportOptions.Name] cannot take
	// the checkpoint's TCP connections: TCPClose, or TCPEstablished
	// without Name.
	RemedyTCPCopy
	// RemedyPrevious: give every pre-checkpoint archive the archive
	// depends on in [ImportOptions.Previous].
	RemedyPrevious
	// RemedyNoPrevious: import the archive without
	// [ImportOptions.Previous].
	RemedyNoPrevious
	// RemedyImportFinal: the archive (Arg) is a pre-checkpoint: import the
	// final checkpoint with it in [ImportOptions.Previous].
	RemedyImportFinal
	// RemedyPreExport: only the archives of a pre-checkpoint export
	// ([CheckpointOptions.PreCheckpoint]) can be parents.
	RemedyPreExport
	// RemedyImageImport: import the base image's root filesystem first
	// ([Engine.ImageImport]) under the name Arg.
	RemedyImageImport
	// RemedyName: import under another name ([ImportOptions.Name]).
	RemedyName
	// RemedyOtherName: choose another [ImportOptions.Name].
	RemedyOtherName
	// RemedyCopy: import a copy with a new ID ([ImportOptions.Name]).
	RemedyCopy
	// RemedyBinds: give each bind mount a source of this host
	// ([ImportOptions.Binds]) or an empty one ([ImportOptions.IgnoreBinds]).
	RemedyBinds
	// RemedyNetworkHost: let the container share this host's network
	// ([ImportOptions.Network] NetworkHost).
	RemedyNetworkHost
	// RemedyNoNetwork: leave [ImportOptions.Network] empty.
	RemedyNoNetwork
	// RemedyIgnoreVolumes: keep the existing volume Arg
	// ([ImportOptions.IgnoreVolumes]), or remove it first
	// ([Engine.VolumeRemove]).
	RemedyIgnoreVolumes
	// RemedyRoom: make room on the file system of Arg, or stage on a tmpfs
	// ([Engine.TmpDir]).
	RemedyRoom
	// RemedyImportRootfs: the file Arg is a root filesystem tar: import it
	// as an image ([Engine.ImageImport]).
	RemedyImportRootfs
	// RemedyImageArchive: the file Arg is an image archive: load it
	// ([Engine.ImageLoad]).
	RemedyImageArchive
	// RemedyRestoreArchive: the file Arg is a checkpoint archive: import
	// it as a container ([Engine.Import]).
	RemedyRestoreArchive
	// RemedyVolumeForce: the volume Arg is in use: remove its containers
	// first, or force [Engine.VolumeRemove], which removes them.
	RemedyVolumeForce
	// RemedyCapAdd: grant the capabilities Arg (comma-separated) the
	// checkpoint's processes held ([ImportOptions.CapAdd]).
	RemedyCapAdd
	// RemedyImagePull: the image Arg is not in the store: pull or load it
	// first ([Engine.ImagePull], [Engine.ImageLoad]).
	RemedyImagePull
	remedyEnd
)

// remedyNames name the remedies for String.
var remedyNames = [...]string{
	RemedyTCP: "RemedyTCP", RemedyTCPCopy: "RemedyTCPCopy", RemedyPrevious: "RemedyPrevious",
	RemedyNoPrevious: "RemedyNoPrevious", RemedyImportFinal: "RemedyImportFinal", RemedyPreExport: "RemedyPreExport",
	RemedyImageImport: "RemedyImageImport", RemedyName: "RemedyName", RemedyOtherName: "RemedyOtherName",
	RemedyCopy: "RemedyCopy", RemedyBinds: "RemedyBinds", RemedyNetworkHost: "RemedyNetworkHost",
	RemedyNoNetwork: "RemedyNoNetwork", RemedyIgnoreVolumes: "RemedyIgnoreVolumes", RemedyRoom: "RemedyRoom",
	RemedyImportRootfs: "RemedyImportRootfs", RemedyImageArchive: "RemedyImageArchive", RemedyRestoreArchive: "RemedyRestoreArchive",
	RemedyVolumeForce: "RemedyVolumeForce", RemedyCapAdd: "RemedyCapAdd", RemedyImagePull: "RemedyImagePull",
}

// String returns the remedy's Go name, or "Remedy(N)" for one this
// package does not define.
func (r Remedy) String() string {
	if r > 0 && r < remedyEnd {
		return remedyNames[r]
	}
	return fmt.Sprintf("Remedy(%d)", int(r))
}

// advice words r, with its argument arg, in this package's terms.
func (r Remedy) advice(arg string) string {
	switch r {
	case RemedyTCP:
		return "restore with TCPEstablished (or TCPClose)"
	case RemedyTCPCopy:
		return "import it with TCPClose, or with TCPEstablished and without ImportOptions.Name"
	case RemedyPrevious:
		return "give each archive of the chain in ImportOptions.Previous"
	case RemedyNoPrevious:
		return "import it without ImportOptions.Previous"
	case RemedyImportFinal:
		return fmt.Sprintf("import the final checkpoint (an Export with WithPrevious) with %s in ImportOptions.Previous", arg)
	case RemedyPreExport:
		return "only archives of an Export with PreCheckpoint can be parents"
	case RemedyImageImport:
		return fmt.Sprintf("import the same root filesystem first with Engine.ImageImport under the name %s", arg)
	case RemedyName:
		return "import it with ImportOptions.Name to choose another name"
	case RemedyOtherName:
		return "choose another ImportOptions.Name"
	case RemedyCopy:
		return "import it with ImportOptions.Name to make a copy with a new ID"
	case RemedyBinds:
		return "give each a path of this host in ImportOptions.Binds, or restore them empty with ImportOptions.IgnoreBinds"
	case RemedyNetworkHost:
		return "set ImportOptions.Network to NetworkHost to let it share this host's network"
	case RemedyNoNetwork:
		return "leave ImportOptions.Network empty"
	case RemedyIgnoreVolumes:
		return fmt.Sprintf("set ImportOptions.IgnoreVolumes to keep the existing volume and skip the archive's copy, or remove it first with Engine.VolumeRemove(%q)", arg)
	case RemedyRoom:
		return fmt.Sprintf("make room on the file system of %s (or stage on a tmpfs with Engine.TmpDir)", arg)
	case RemedyImportRootfs:
		return fmt.Sprintf("import %s as an image with Engine.ImageImport", arg)
	case RemedyImageArchive:
		return fmt.Sprintf("load it with Engine.ImageLoad(%q)", arg)
	case RemedyRestoreArchive:
		return fmt.Sprintf("import %s as a container with Engine.Import", arg)
	case RemedyVolumeForce:
		return fmt.Sprintf("remove those containers first, or call Engine.VolumeRemove(%q) with force, which removes them", arg)
	case RemedyCapAdd:
		return fmt.Sprintf("grant them with ImportOptions.CapAdd (%s)", arg)
	case RemedyImagePull:
		return fmt.Sprintf("pull it first with Engine.ImagePull(%q) (or load or import it)", arg)
	}
	return r.String()
}
