//go:build !linux

package rpc

import "net"

// limitUnsent is a no-op where TCP_NOTSENT_LOWAT is not used.
func limitUnsent(nc net.Conn, limit int) {}
