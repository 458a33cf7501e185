//go:build unix

package rpc

import (
	"net"
	"syscall"
)

// rawPeeker returns the raw connection lentCheck looks into, nil if nc is
// not plain TCP.
func rawPeeker(nc net.Conn) syscall.RawConn {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// peekConn reports, without waiting and consuming nothing, whether rc has
// bytes to read (ready) or was closed by its peer or broke (err).
func peekConn(rc syscall.RawConn) (ready bool, err error) {
	var b [1]byte
	var n int
	var rerr error
	cerr := rc.Read(func(fd uintptr) bool {
		for {
			n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if rerr != syscall.EINTR {
				return true
			}
		}
	})
	switch {
	case cerr != nil:
		return false, cerr
	case rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK:
		return false, nil
	case rerr != nil:
		return false, rerr
	case n == 0:
		return false, errPeerClosed
	}
	return true, nil
}
