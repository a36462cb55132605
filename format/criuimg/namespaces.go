package criuimg

import (
	"fmt"
	"strings"
)

// Namespace kinds for [CheckNamespaces].
const (
	NsPID = "pid"
	NsNet = "network"
	NsIPC = "IPC"
	NsUTS = "UTS"
	NsMnt = "mount"
)

// CheckNamespaces returns an error wrapping ErrPrivilege if a task whose
// ids are given shares one of the namespaces kinds with the CRIU that
// dumped it (the inventory's root_ids): CRIU restores such a task in its
// own namespace of that kind, which on the restoring host is the host's;
// so does a task whose ids lack the kind.
// A container's tasks have their own PID, IPC, UTS and mount namespaces,
// and their own network namespace unless they used the host's.
func CheckNamespaces(inv Inventory, tasks map[uint32]TaskKobjIDs, kinds []string) error {
	if inv.RootIDs == nil {
		return fmt.Errorf("inventory.img records no root_ids: %w", ErrImage)
	}
	root := nsIDs(*inv.RootIDs)
	for pid, ids := range tasks {
		own := nsIDs(ids)
		var shared []string
		for _, k := range kinds {
			if own[k] == 0 || own[k] == root[k] {
				shared = append(shared, k)
			}
		}
		if len(shared) > 0 {
			return fmt.Errorf("%w: task %d would be restored in the host's %s namespace", ErrPrivilege, pid, strings.Join(shared, ", "))
		}
	}
	return nil
}

func nsIDs(ids TaskKobjIDs) map[string]uint32 {
	return map[string]uint32{NsPID: ids.PidNsID, NsNet: ids.NetNsID, NsIPC: ids.IpcNsID, NsUTS: ids.UtsNsID, NsMnt: ids.MntNsID}
}
