package main

import (
	"errors"
	"fmt"

	"github.com/ckpt/ckpt/engine"
)

// message returns err's text for the user: the advice of an engine
// *RemedyError, which the engine words in its API's terms, worded in
// ckpt's flags. (The engine returns a *RemedyError unwrapped; one found
// deeper keeps the engine's words.)
func message(err error) string {
	var re *engine.RemedyError
	if errors.As(err, &re) && err == re {
		if a := advice(re.Remedy, re.Arg); a != "" {
			return re.Err.Error() + ": " + a
		}
	}
	return err.Error()
}

// advice words an engine remedy, with its argument arg, in ckpt's flags;
// "" for one it does not know.
func advice(r engine.Remedy, arg string) string {
	switch r {
	case engine.RemedyTCP:
		return "restore with --tcp-established (or --tcp-close)"
	case engine.RemedyTCPCopy:
		return "restore it with --tcp-close, or without --name and with --tcp-established"
	case engine.RemedyPrevious:
		return "pass each archive of the chain with --import-previous"
	case engine.RemedyNoPrevious:
		return "restore it without --import-previous"
	case engine.RemedyImportFinal:
		return fmt.Sprintf("restore the final checkpoint (checkpoint --with-previous --export) with --import-previous %s", arg)
	case engine.RemedyPreExport:
		return "only pre-checkpoint archives made by checkpoint -P --export can be parents"
	case engine.RemedyImageImport:
		return fmt.Sprintf("import the same root filesystem first with `ckpt image import ROOTFS.tar %s`", arg)
	case engine.RemedyName:
		return "restore with --name to choose another name"
	case engine.RemedyOtherName:
		return "choose another --name"
	case engine.RemedyCopy:
		return "restore with --name to make a copy with a new ID"
	case engine.RemedyBinds:
		return "give each a path of this host with -v SRC:DST, or restore them empty with --ignore-binds"
	case engine.RemedyNetworkHost:
		return "pass --network host to let it share this host's network"
	case engine.RemedyNoNetwork:
		return "restore it without --network host"
	case engine.RemedyIgnoreVolumes:
		return fmt.Sprintf("restore with --ignore-volumes to keep the existing volume and skip the archive's copy, or remove it first with `ckpt volume rm %s`", arg)
	case engine.RemedyRoom:
		return fmt.Sprintf("make room on the file system of %s (or stage on a tmpfs with --tmpdir)", arg)
	case engine.RemedyImportRootfs:
		return fmt.Sprintf("import it as an image with `ckpt image import %s NAME`", arg)
	case engine.RemedyImageArchive:
		return fmt.Sprintf("it is an image: load it with `ckpt image load -i %s`", arg)
	case engine.RemedyRestoreArchive:
		return fmt.Sprintf("restore it with `ckpt restore --import %s`", arg)
	case engine.RemedyVolumeForce:
		return fmt.Sprintf("remove those containers first (`ckpt rm`), or use `ckpt volume rm -f %s`, which removes them too", arg)
	case engine.RemedyCapAdd:
		return fmt.Sprintf("grant them with --cap-add %s", arg)
	case engine.RemedyImagePull:
		return fmt.Sprintf("fetch it first with `ckpt image pull %s` (or `ckpt image pull containers-storage:%s` for podman's, `ckpt image load -i FILE`, `ckpt image import ROOTFS.tar %s`)", arg, arg, arg)
	}
	return ""
}
