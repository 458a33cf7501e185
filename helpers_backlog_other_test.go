//go:build !linux

package rpc

import (
	"net"
	"testing"
)

func listenNoBacklog(t *testing.T) net.Listener {
	t.Skip("needs Linux's listen backlog behaviour")
	return nil
}

func fillBacklog(t *testing.T, addr string) {}
