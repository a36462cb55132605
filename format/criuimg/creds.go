package criuimg

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// ErrPrivilege reports images that would give the restored processes
// more privilege than the restoring engine grants its containers:
// capabilities outside its set, or threads without recorded credentials
// (CRIU would leave them with its own, full ones).
var ErrPrivilege = errors.New("criuimg: restored processes would gain privilege")

// Creds is the part of a thread's creds_entry (core_entry field 5,
// thread_core, field 10, creds) that decides what the thread may do once
// CRIU has restored it: CRIU sets these capability sets as recorded.
type Creds struct {
	// CapInh, CapPrm, CapEff, CapBnd and CapAmb are the inheritable,
	// permitted, effective, bounding and ambient sets (fields 9, 10, 11,
	// 12 and 19), bit n for capability n.
	CapInh, CapPrm, CapEff, CapBnd, CapAmb uint64
	// Secbits is field 13, the securebits.
	Secbits uint32
}

// maxCapWords bounds a capability set: the kernel's sets are two 32-bit
// words.
const maxCapWords = 2

// ReadCreds returns the credentials recorded in a core-<tid>.img, or nil
// if the image records none.
func ReadCreds(name string, data []byte) (*Creds, error) {
	var out *Creds
	err := eachEntry(name, data, func(i int, b []byte) error {
		if i > 0 {
			return fmt.Errorf("read entry %d: image holds one entry: %w", i, ErrImage)
		}
		tc, err := embedded(b, 5)
		if err != nil || tc == nil {
			return err
		}
		cr, err := embedded(tc, 10)
		if err != nil || cr == nil {
			return err
		}
		c, err := decodeCreds(cr)
		out = &c
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// embedded returns the last occurrence of the embedded message num of the
// message b, or nil if there is none.
func embedded(b []byte, num int) ([]byte, error) {
	var out []byte
	d := decoder{b: b}
	for !d.done() {
		n, wt, err := d.key()
		if err != nil {
			return nil, err
		}
		if n != num {
			if err := d.skip(wt); err != nil {
				return nil, err
			}
			continue
		}
		if out, err = d.message(n, wt); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func decodeCreds(b []byte) (Creds, error) {
	var c Creds
	var words [20][]uint32
	d := decoder{b: b}
	for !d.done() {
		num, wt, err := d.key()
		if err != nil {
			return c, err
		}
		switch num {
		case 9, 10, 11, 12, 19:
			words[num], err = d.repeatedU32(words[num], num, wt, maxCapWords)
		case 13:
			c.Secbits, err = d.u32(num, wt)
		default:
			err = d.skip(wt)
		}
		if err != nil {
			return c, fmt.Errorf("decode creds_entry field %d: %w", num, err)
		}
	}
	set := func(w []uint32) uint64 {
		var v uint64
		for i, x := range w {
			v |= uint64(x) << (32 * i)
		}
		return v
	}
	c.CapInh, c.CapPrm, c.CapEff = set(words[9]), set(words[10]), set(words[11])
	c.CapBnd, c.CapAmb = set(words[12]), set(words[19])
	return c, nil
}

// CheckCaps returns an error wrapping ErrPrivilege if any of c's
// capability sets holds a capability outside allowed, naming them.
func (c *Creds) CheckCaps(allowed uint64) error {
	extra := (c.CapInh | c.CapPrm | c.CapEff | c.CapBnd | c.CapAmb) &^ allowed
	if extra == 0 {
		return nil
	}
	return fmt.Errorf("%w: capabilities %s", ErrPrivilege, CapNames(extra))
}

// capNames are the kernel's capability names by number.
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// CapNames returns the names of the capabilities in mask, comma-separated,
// lowest first; unknown ones as CAP_<n>.
func CapNames(mask uint64) string {
	var names []string
	for mask != 0 {
		n := bits.TrailingZeros64(mask)
		mask &^= 1 << n
		if n < len(capNames) {
			names = append(names, capNames[n])
		} else {
			names = append(names, fmt.Sprintf("CAP_%d", n))
		}
	}
	return strings.Join(names, ", ")
}

// CapMask returns the mask of the named capabilities ("CAP_CHOWN" or
// "CHOWN"), or an error naming one it does not know.
func CapMask(names []string) (uint64, error) {
	var m uint64
	for _, name := range names {
		n := strings.ToUpper(name)
		if !strings.HasPrefix(n, "CAP_") {
			n = "CAP_" + n
		}
		i := slices.Index(capNames, n)
		if i < 0 {
			return 0, fmt.Errorf("unknown capability %q", name)
		}
		m |= 1 << i
	}
	return m, nil
}
