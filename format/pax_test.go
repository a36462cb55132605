package format

import (
	"archive/tar"
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil/tarbuild"
)

// TestCheckPAX: a v1 header may carry the PAX records the Writer writes
// (a name USTAR cannot hold, a size of 8 GiB or more) and no other.
func TestCheckPAX(t *testing.T) {
	long := "volumes/" + strings.Repeat("v", 120) + ".tar"
	big := int64(maxUSTARSize + 1)
	for _, c := range []struct {
		name string
		hdr  tar.Header
		ok   bool
	}{
		{"none", tar.Header{Name: ConfigName}, true},
		{"path of a long name", tar.Header{Name: long, PAXRecords: map[string]string{"path": long}}, true},
		{"path of a short name", tar.Header{Name: ConfigName, PAXRecords: map[string]string{"path": ConfigName}}, false},
		{"path of another name", tar.Header{Name: long, PAXRecords: map[string]string{"path": long + "x"}}, false},
		{"size over 8 GiB", tar.Header{Name: "checkpoint/pages-1.img", Size: big, PAXRecords: map[string]string{"size": strconv.FormatInt(big, 10)}}, true},
		{"size under 8 GiB", tar.Header{Name: "checkpoint/pages-1.img", Size: 5, PAXRecords: map[string]string{"size": "5"}}, false},
		{"size other than the header's", tar.Header{Name: "checkpoint/pages-1.img", Size: big, PAXRecords: map[string]string{"size": "1"}}, false},
		{"xattr", tar.Header{Name: ConfigName, PAXRecords: map[string]string{"SCHILY.xattr.user.x": "y"}}, false},
	} {
		if err := checkPAX(&c.hdr); (err == nil) != c.ok {
			t.Errorf("checkPAX(%s) = %v, want ok %v", c.name, err, c.ok)
		}
	}
	if f := formatFor("checkpoint/pages-1.img", big); f != tar.FormatPAX {
		t.Errorf("formatFor(member of 8 GiB) = %v, want PAX (USTAR cannot hold its size)", f)
	}
}

// TestLegacyPAX: legacy archives may carry PAX records (podman's archive
// code writes extended attributes and times); they are read, verified and
// extracted like the others, and the records are ignored.
func TestLegacyPAX(t *testing.T) {
	b := tarbuild.RawTar(
		tarbuild.Raw{Name: ConfigName, Content: []byte("{}"), PAX: []string{"SCHILY.xattr.security.selinux=system_u:object_r:container_file_t:s0", "atime=1795435200.5"}},
		tarbuild.Raw{Name: SpecName, Content: []byte("{}"), PAX: []string{"comment=made by hand", "mtime=1795435200.25"}},
	)
	rep, err := Verify(bytes.NewReader(b), nil)
	if err != nil || rep.Err() != nil || !rep.Legacy {
		t.Fatalf("Verify(legacy with PAX) = %v, %v, legacy %v; want no problem", rep.Err(), err, rep.Legacy)
	}
	if _, err := Extract(context.Background(), bytes.NewReader(b), t.TempDir(), nil); err != nil {
		t.Errorf("Extract(legacy with PAX) = %v", err)
	}
}
