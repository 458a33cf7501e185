package rpc

import (
	"context"
	"testing"
)

// Record is a message shaped like bench's BenchmarkMessage in what costs
// allocations: several short strings next to scalars.
type Record struct {
	Name, Kind, Owner, Region, Zone, Host, Path, Note string
	ID, Size                                          int64
	Live                                              bool
}

// Records echoes records, in the ctx-first pointer form.
type Records struct{}

// Echo copies args into reply.
func (Records) Echo(_ context.Context, args *Record, reply *Record) error {
	*reply = *args
	return nil
}

// maxMessageAllocs bounds the allocations of one sync call of a Record,
// client and server together: the Call, the server's call state, the
// server's args and reply, and one chunk per side for the decoded short
// strings (issue 15's target is at most 10).
const maxMessageAllocs = 6

func TestMessageAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("the race detector changes allocation counts")
	}
	if testing.Short() {
		t.Skip("allocation guard skipped in -short mode")
	}
	srv := NewServer()
	if err := srv.Register(&Records{}); err != nil {
		t.Fatal(err)
	}
	cli, _ := serveAndDial(t, srv)
	const s = "许多往事在眼前一幕一幕" // 33 bytes, as the benchmark's strings
	req := &Record{Name: s, Kind: s, Owner: s, Region: s, Zone: s, Host: s, Path: s, Note: s, ID: 1 << 40, Size: 1000, Live: true}
	var reply Record
	call := func() {
		if err := cli.Call("Records.Echo", req, &reply); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 { // warm pools and connections
		call()
	}
	if reply != *req {
		t.Fatalf("reply %+v, want %+v", reply, *req)
	}
	n := testing.AllocsPerRun(500, call)
	t.Logf("allocations per sync call of a Record (client + server): %.1f", n)
	if n > maxMessageAllocs {
		t.Errorf("a sync call of a Record allocates %.1f times, want at most %d", n, maxMessageAllocs)
	}
}
