package criuimg

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckNamespaces(t *testing.T) {
	inv, err := ReadInventory(podmanMember(t, "checkpoint/inventory.img"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := ReadIDs("ids-1.img", podmanMember(t, "checkpoint/ids-1.img"))
	if err != nil {
		t.Fatal(err)
	}
	all := []string{NsPID, NsNet, NsIPC, NsUTS, NsMnt}
	if err := CheckNamespaces(inv, map[uint32]TaskKobjIDs{1: ids}, all); err != nil {
		t.Fatalf("CheckNamespaces(podman's container) = %v", err)
	}
	root := *inv.RootIDs
	for _, tc := range []struct {
		name  string
		edit  func(*TaskKobjIDs)
		kinds []string
		want  string
	}{
		{"host pid", func(x *TaskKobjIDs) { x.PidNsID = root.PidNsID }, all, "host's pid namespace"},
		{"host mount and uts", func(x *TaskKobjIDs) { x.MntNsID, x.UtsNsID = root.MntNsID, root.UtsNsID }, all, "host's UTS, mount namespace"},
		{"no ipc id", func(x *TaskKobjIDs) { x.IpcNsID = 0 }, all, "host's IPC namespace"},
		{"host network", func(x *TaskKobjIDs) { x.NetNsID = root.NetNsID }, all, "host's network namespace"},
		{"host network granted", func(x *TaskKobjIDs) { x.NetNsID = root.NetNsID }, []string{NsPID, NsIPC, NsUTS, NsMnt}, ""},
		{"user namespace shared", func(x *TaskKobjIDs) { x.UserNsID = root.UserNsID }, all, ""},
	} {
		x := ids
		tc.edit(&x)
		err := CheckNamespaces(inv, map[uint32]TaskKobjIDs{1: ids, 7: x}, tc.kinds)
		if tc.want == "" && err != nil || tc.want != "" && (!errors.Is(err, ErrPrivilege) || !strings.Contains(err.Error(), "task 7 would be restored in the "+tc.want)) {
			t.Errorf("%s: CheckNamespaces() = %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := CheckNamespaces(Inventory{}, nil, all); !errors.Is(err, ErrImage) {
		t.Errorf("CheckNamespaces(no root_ids) = %v, want ErrImage", err)
	}
}
