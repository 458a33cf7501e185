package rpc

import (
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// listenNoBacklog returns a loopback listener whose accept queue holds a
// single connection (listen backlog 0). Once that slot is taken and not
// accepted, the kernel drops further SYNs, so a dial to it hangs until its
// ctx ends: a blackholed address, on loopback.
func listenNoBacklog(t *testing.T) net.Listener {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "backlog0")
	defer f.Close() // FileListener dups it
	lis, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	return lis
}

// fillBacklog dials addr until a dial hangs (at most 8 dials of 200ms
// each), so that later dials hang too. The connections are closed when
// the test ends.
func fillBacklog(t *testing.T, addr string) {
	t.Helper()
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return // timed out: the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("the kernel kept accepting connections into a full listen queue")
}
