package main

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// ipprotoMPTCP is IPPROTO_MPTCP from linux/in.h.
const ipprotoMPTCP = 262

// TestTCPNotMultipath checks that the listener and the client are plain TCP
// sockets: CRIU cannot dump Multipath TCP sockets ("inet: Unsupported proto
// 262"), and Go listeners use MPTCP by default since Go 1.24.
func TestTCPNotMultipath(t *testing.T) {
	t.Parallel()
	p, err := newTCPPair(0, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	if err := p.ping(1); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]syscall.Conn{
		"listener": p.ln.(*net.TCPListener),
		"client":   p.client.(*net.TCPConn),
	} {
		raw, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var proto int
		var serr error
		if err := raw.Control(func(fd uintptr) {
			proto, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PROTOCOL)
		}); err != nil || serr != nil {
			t.Fatalf("%s: getsockopt SO_PROTOCOL: %v %v", name, err, serr)
		}
		if proto != syscall.IPPROTO_TCP {
			t.Errorf("%s: SO_PROTOCOL = %d, want %d (IPPROTO_TCP, not %d MPTCP)", name, proto, syscall.IPPROTO_TCP, ipprotoMPTCP)
		}
	}
}
