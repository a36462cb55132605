package criuimg

import (
	"errors"
	"math/bits"
	"os"
	"strings"
	"testing"
)

// containerCaps is the default capability set of container engines
// (Docker's, and podman's before 5 and on Debian's containers.conf).
var containerCaps = []string{
	"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
	"SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
}

// podmanCore reads checkpoint/core-1.img of the podman archive shared by
// the packages' tests.
func podmanCore(t *testing.T) []byte { return podmanMember(t, "checkpoint/core-1.img") }

func TestReadCreds(t *testing.T) {
	dflt, err := CapMask(containerCaps)
	if err != nil {
		t.Fatal(err)
	}
	// podman's container: its 11 default capabilities in every set but
	// the inheritable and ambient ones (read with crit).
	c, err := ReadCreds("core-1.img", podmanCore(t))
	if err != nil || c == nil {
		t.Fatalf("ReadCreds(podman core-1.img) = %v, %v", c, err)
	}
	const podman = 0x800405fb
	if c.CapPrm != podman || c.CapEff != podman || c.CapBnd != podman || c.CapInh != 0 || c.CapAmb != 0 {
		t.Errorf("ReadCreds(podman core-1.img) = %+v, want prm, eff, bnd %#x", c, podman)
	}
	if err := c.CheckCaps(dflt); err != nil {
		t.Errorf("CheckCaps(container default) of podman's container = %v", err)
	}
	noSetfcap, _ := CapMask([]string{"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
	if err := c.CheckCaps(noSetfcap); !errors.Is(err, ErrPrivilege) || !strings.HasSuffix(err.Error(), ": capabilities CAP_SETFCAP") {
		t.Errorf("CheckCaps(without SETFCAP) = %v, want ErrPrivilege naming CAP_SETFCAP alone", err)
	}

	// A host process dumped by root: every capability.
	host, err := os.ReadFile("testdata/tiny-4.2.1/core-19163.img")
	if err != nil {
		t.Fatal(err)
	}
	c, err = ReadCreds("core-19163.img", host)
	if err != nil || c == nil || bits.OnesCount64(c.CapBnd) < 40 || c.CapEff != c.CapBnd {
		t.Fatalf("ReadCreds(host process) = %+v, %v, want a bounding set of 40 or 41 capabilities, all effective", c, err)
	}
	err = c.CheckCaps(dflt)
	if !errors.Is(err, ErrPrivilege) || !strings.Contains(err.Error(), "CAP_SYS_ADMIN") || strings.Contains(err.Error(), "CAP_CHOWN") {
		t.Errorf("CheckCaps(host process) = %v, want ErrPrivilege naming CAP_SYS_ADMIN and not CAP_CHOWN", err)
	}
}

func TestReadCredsMalformed(t *testing.T) {
	core := func(creds []byte) []byte {
		thread := enc(nil).u(1, 0).u(2, 0)
		if creds != nil {
			thread = thread.bytes(10, creds)
		}
		return image("CORE", entry(enc(nil).u(1, 1).bytes(5, thread)))
	}
	packed := func(num int, vs ...uint64) []byte {
		var p enc
		for _, v := range vs {
			p = p.varint(v)
		}
		return enc(nil).bytes(num, p)
	}
	for _, tc := range []struct {
		name    string
		img     []byte
		want    *Creds
		wantErr error
	}{
		{name: "no thread core", img: image("CORE", entry(enc(nil).u(1, 1)))},
		{name: "no creds", img: core(nil)},
		{name: "three words", img: core(packed(12, 1, 2, 3)), wantErr: ErrTooLarge},
		{name: "three words unpacked", img: core(enc(nil).u(10, 1).u(10, 2).u(10, 3)), wantErr: ErrTooLarge},
		{name: "high word", img: core(packed(12, 0, 1)), want: &Creds{CapBnd: 1 << 32}},
		{name: "every set", img: core(enc(nil).u(9, 1).u(10, 2).u(11, 4).u(12, 8).u(19, 16).u(13, 3)),
			want: &Creds{CapInh: 1, CapPrm: 2, CapEff: 4, CapBnd: 8, CapAmb: 16, Secbits: 3}},
		{name: "cut short", img: core([]byte{12<<3 | wireBytes, 5, 1}), wantErr: ErrProto},
		{name: "two entries", img: append(core(nil), entry(enc(nil).u(1, 1))...), wantErr: ErrImage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadCreds("core-1.img", tc.img)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("ReadCreds() error = %v, want %v", err, tc.wantErr)
			}
			if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
				t.Errorf("ReadCreds() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCapMask(t *testing.T) {
	m, err := CapMask([]string{"CAP_CHOWN", "sys_admin", "CHECKPOINT_RESTORE"})
	if err != nil || m != 1|1<<21|1<<40 {
		t.Errorf("CapMask() = %#x, %v", m, err)
	}
	if _, err := CapMask([]string{"CAP_FLY"}); err == nil {
		t.Errorf("CapMask(CAP_FLY) succeeded")
	}
	if got := CapNames(1<<21 | 1<<63); got != "CAP_SYS_ADMIN, CAP_63" {
		t.Errorf("CapNames() = %q", got)
	}
}
