//go:build !linux

package notify

import "net"

// smtpQuickAckWorks: not here, so messages go by DATA (see canChunk).
const smtpQuickAckWorks = false

// smtpQuickAck does nothing here: TCP_QUICKACK is Linux's.
func smtpQuickAck(net.Conn) {}
