package registry

import (
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/redistest"
)

// TestRedisLastSync: a watch's full read and every change it applies move
// the service's LastSync forward; a service nobody watches has none.
func TestRedisLastSync(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	r := newRedisReg(t, newClient(t, srv.Addr()), WithTTL(time.Minute))
	ctx := testCtx(t)
	if got := r.LastSync("Calc"); !got.IsZero() {
		t.Fatalf("LastSync(Calc) before any watch = %v, want zero", got)
	}
	before := time.Now()
	ch, err := r.Watch(ctx, "Calc")
	if err != nil {
		t.Fatal(err)
	}
	<-ch // the first full list
	first := r.LastSync("Calc")
	if first.Before(before) {
		t.Fatalf("LastSync(Calc) after Watch = %v, want at or after %v", first, before)
	}
	if err := r.Register(ctx, Instance{Service: "Calc", Addr: "10.0.0.1:9000"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not deliver the registered instance within 10s")
	}
	if got := r.LastSync("Calc"); !got.After(first) {
		t.Errorf("LastSync(Calc) after a change = %v, want after %v", got, first)
	}
	if got := r.LastSync("Other"); !got.IsZero() {
		t.Errorf("LastSync(Other), never watched = %v, want zero", got)
	}
}
