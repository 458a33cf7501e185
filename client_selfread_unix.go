//go:build unix

package rpc

import (
	"net"
	"syscall"
)

// socketPeeker looks into a TCP connection's socket without waiting and
// without consuming anything (lentCheck). Its function and result fields
// are made once, so that a look allocates nothing; only the goroutine
// holding the connection's read role uses it.
type socketPeeker struct {
	rc   syscall.RawConn
	fn   func(fd uintptr) bool
	b    [1]byte
	n    int
	rerr error
}

// newSocketPeeker returns the peeker of nc, nil if nc is not plain TCP.
func newSocketPeeker(nc net.Conn) *socketPeeker {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &socketPeeker{rc: rc}
	p.fn = p.recv
	return p
}

func (p *socketPeeker) recv(fd uintptr) bool {
	for {
		p.n, _, p.rerr = syscall.Recvfrom(int(fd), p.b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if p.rerr != syscall.EINTR {
			return true
		}
	}
}

// peek reports whether the socket has bytes to read (ready) or was closed
// by its peer or broke (err).
func (p *socketPeeker) peek() (ready bool, err error) {
	if err := p.rc.Read(p.fn); err != nil {
		return false, err
	}
	switch {
	case p.rerr == syscall.EAGAIN || p.rerr == syscall.EWOULDBLOCK:
		return false, nil
	case p.rerr != nil:
		return false, p.rerr
	case p.n == 0:
		return false, errPeerClosed
	}
	return true, nil
}
