package volumes

import (
	"path/filepath"
	"testing"

	"github.com/ckpt/ckpt/format"
)

func TestMemberName(t *testing.T) {
	for _, name := range []string{"data", "a.b-c_d", "0"} {
		m := MemberName(name)
		if m != "volumes/"+name+".tar" || format.KindOf(m) != format.KindVolume {
			t.Errorf("MemberName(%q) = %q (kind %q)", name, m, format.KindOf(m))
		}
		if got, ok := NameOfMember(m); !ok || got != name {
			t.Errorf("NameOfMember(%q) = %q, %v, want %q, true", m, got, ok, name)
		}
	}
	for _, m := range []string{"volumes/.tar", "volumes/../x.tar", "volumes/a/b.tar", "volumes/x", "x.tar", "rootfs-diff.tar", "volumes/-x.tar"} {
		if got, ok := NameOfMember(m); ok {
			t.Errorf("NameOfMember(%q) = %q, true, want false", m, got)
		}
	}
}

func TestDataPath(t *testing.T) {
	s := &Store{Root: "/var/lib/ckpt/volumes"}
	p, err := s.DataPath("data")
	if err != nil || p != filepath.FromSlash("/var/lib/ckpt/volumes/data/_data") {
		t.Errorf("DataPath(data) = %q, %v", p, err)
	}
}
