//go:build linux

package rpc

import (
	"net"
	"syscall"
)

// tcpNotSentLowat is TCP_NOTSENT_LOWAT (linux/tcp.h).
const tcpNotSentLowat = 25

// limitUnsent asks the kernel to hold at most limit bytes that were
// written but not yet sent on nc (TCP_NOTSENT_LOWAT): a write beyond that
// waits in the process, where frames of other calls can still pass it,
// instead of in a kernel queue that no frame can jump. Window autotuning,
// hence throughput on long links, is unaffected. Errors are ignored: the
// option only improves latency.
func limitUnsent(nc net.Conn, limit int) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat, limit)
	})
}
