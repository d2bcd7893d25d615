//go:build linux

package notify

import (
	"net"
	"syscall"
)

// smtpQuickAckWorks: smtpQuickAck does what it says on this system.
const smtpQuickAckWorks = true

// smtpQuickAck asks the kernel to acknowledge what the server sends next at
// once rather than after the delayed-ACK timer (TCP_QUICKACK, which lasts
// until the kernel's own heuristics switch back). See smtpClient.chunk.
func smtpQuickAck(conn net.Conn) {
	if tc, ok := conn.(interface{ NetConn() net.Conn }); ok { // *tls.Conn
		conn = tc.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
