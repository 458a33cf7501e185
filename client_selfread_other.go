//go:build !unix

package rpc

import (
	"net"
	"syscall"
)

// rawPeeker: callers read their own responses only where lentCheck can
// look into the socket.
func rawPeeker(net.Conn) syscall.RawConn { return nil }

func peekConn(syscall.RawConn) (bool, error) { return false, nil }
