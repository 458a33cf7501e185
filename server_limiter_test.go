package rpc

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// limiterClock drives a limiter's windows by hand.
type limiterClock struct {
	l   *limiter
	now time.Time
}

func newTestLimiter(lo, hi int) *limiterClock {
	now := time.Unix(1000, 0)
	l := newLimiter(lo, hi, now)
	l.nextProbe = now.Add(time.Hour) // no probe unless a test asks
	return &limiterClock{l: l, now: now}
}

// window feeds n calls of method q with latency d, as if running calls
// ran each time one was admitted, and closes the window.
func (c *limiterClock) window(q *quietLatency, n int, d time.Duration, running int64) {
	for range n {
		c.l.refuse(running)
		tk := limitTicket{q: q, quiet: running <= c.l.min}
		c.l.record(&tk, d, c.now)
	}
	c.now = c.now.Add(limitWindow)
	c.l.update(c.now)
}

// quiet teaches q's quiet latency d.
func (c *limiterClock) quiet(q *quietLatency, d time.Duration) {
	for range 64 {
		tk := limitTicket{q: q, quiet: true}
		c.l.record(&tk, d, c.now)
	}
	c.now = c.now.Add(limitWindow)
	c.l.update(c.now)
	c.now = c.now.Add(limitWindow)
	c.l.update(c.now) // a window of no signal: the next two decide
}

func TestLimiterShrinksUnderQueueing(t *testing.T) {
	c := newTestLimiter(4, 1000)
	q := new(quietLatency)
	c.quiet(q, 10*time.Millisecond)
	start := c.l.limit.Load()
	prev := start
	for i := 0; prev > c.l.min; i++ {
		if i == 20 {
			t.Fatalf("limit %d after 20 congested windows, want the floor %d (from %d)", prev, c.l.min, start)
		}
		// Calls take 4× their quiet latency: a standing queue.
		c.window(q, 32, 40*time.Millisecond, c.l.limit.Load())
		got := c.l.limit.Load()
		if i > 0 && got >= prev {
			t.Fatalf("window %d: limit %d, was %d; want it to shrink while calls queue", i, got, prev)
		}
		prev = got
	}
}

func TestLimiterIgnoresOneSlowWindow(t *testing.T) {
	c := newTestLimiter(4, 1000)
	q := new(quietLatency)
	c.quiet(q, 10*time.Millisecond)
	c.l.limit.Store(100)
	for i := range 5 {
		c.window(q, 32, 10*time.Millisecond, 10) // fine, mostly unused
		c.window(q, 32, 80*time.Millisecond, 10) // one slow window (a GC pause)
		if got := c.l.limit.Load(); got != 100 {
			t.Fatalf("round %d: limit %d after single slow windows, want 100", i, got)
		}
	}
}

func TestLimiterGrowsOnlyWhenUsed(t *testing.T) {
	c := newTestLimiter(4, 1000)
	q := new(quietLatency)
	c.quiet(q, 10*time.Millisecond)
	c.l.limit.Store(20)
	for range 10 {
		c.window(q, 32, 10*time.Millisecond, 5) // a quarter used
	}
	if got := c.l.limit.Load(); got != 20 {
		t.Errorf("limit %d after unused windows, want 20 unchanged", got)
	}
	for range 3 {
		c.window(q, 32, 10*time.Millisecond, c.l.limit.Load()) // at the limit, no queueing
	}
	if got := c.l.limit.Load(); got <= 20 {
		t.Errorf("limit %d after windows at the limit without queueing, want it to grow from 20", got)
	}
}

// TestLimiterMethodMix: calls of a slow and a fast method, each at its
// quiet latency, in a changing mix: no congestion is seen.
func TestLimiterMethodMix(t *testing.T) {
	c := newTestLimiter(4, 1000)
	fast, slow := new(quietLatency), new(quietLatency)
	c.quiet(fast, time.Millisecond)
	c.quiet(slow, 100*time.Millisecond)
	c.l.limit.Store(50)
	for i := range 10 {
		nslow := 4 + 4*i // more and more slow calls
		for range nslow {
			tk := limitTicket{q: slow}
			c.l.record(&tk, 100*time.Millisecond, c.now)
		}
		c.window(fast, 32, time.Millisecond, 40)
		if got := c.l.limit.Load(); got < 50 {
			t.Fatalf("window %d (%d slow calls): limit %d, want no shrinking (50)", i, nslow, got)
		}
	}
}

func TestLimiterProbe(t *testing.T) {
	c := newTestLimiter(4, 1000)
	q := new(quietLatency)
	c.quiet(q, 10*time.Millisecond)
	c.l.limit.Store(30)
	// Refusing nothing: no probe.
	c.l.nextProbe = c.now.Add(limitWindow / 2)
	c.window(q, 32, 10*time.Millisecond, 10)
	if got := c.l.limit.Load(); got != 30 {
		t.Fatalf("limit %d after the probe time of a server that refused nothing, want 30 (no probe)", got)
	}
	// Refusing, and no quiet call for long: a probe.
	c.now = c.now.Add(probeEvery)
	c.l.refuse(31)
	c.l.nextProbe = c.now.Add(limitWindow / 2)
	c.window(q, 32, 10*time.Millisecond, 10)
	if got := c.l.limit.Load(); got != c.l.min {
		t.Fatalf("limit during a probe = %d, want the floor %d", got, c.l.min)
	}
	if !c.l.refuse(c.l.min + 1) {
		t.Errorf("refuse(%d) during a probe = false", c.l.min+1)
	}
	for range int(probeFor/limitWindow) + 1 {
		c.window(q, 32, 10*time.Millisecond, 2)
	}
	if got := c.l.limit.Load(); got != 30 {
		t.Errorf("limit after the probe = %d, want 30 restored", got)
	}
	if !c.l.nextProbe.After(c.now) {
		t.Errorf("next probe at %v, want after %v", c.l.nextProbe, c.now)
	}
}

// slotCalc runs each call in one of a few slots, as a service in front of
// a small connection pool does.
type slotCalc struct{ slots chan struct{} }

// LimiterArgs counts its decodes in decodes.
type LimiterArgs struct{ N int }

var decodes atomic.Int64

func (a *LimiterArgs) DecodeMsgpack(dec *msgpack.Decoder) error {
	decodes.Add(1)
	n, err := dec.DecodeInt()
	a.N = n
	return err
}

func (a LimiterArgs) EncodeMsgpack(enc *msgpack.Encoder) error { return enc.EncodeInt(int64(a.N)) }

func (s *slotCalc) Do(ctx context.Context, args *LimiterArgs, reply *int) error {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	time.Sleep(2 * time.Millisecond)
	<-s.slots
	*reply = args.N
	return nil
}

// TestAdaptiveLimitRejectsUndecoded: a server with WithAdaptiveLimit under
// far more callers than it has room for refuses some calls with
// ErrOverloaded, and never decodes the args of a refused call.
func TestAdaptiveLimitRejectsUndecoded(t *testing.T) {
	srv := NewServer(WithAdaptiveLimit(true))
	if err := srv.RegisterName("Slot", &slotCalc{slots: make(chan struct{}, 2)}); err != nil {
		t.Fatal(err)
	}
	cli, _ := serveAndDial(t, srv)

	decodes.Store(0)
	var ok, over, other atomic.Int64
	var firstOther atomic.Value
	var wg sync.WaitGroup
	stop := time.Now().Add(3 * time.Second)
	for i := range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) && over.Load() < 200 {
				var r int
				err := cli.Call("Slot.Do", LimiterArgs{N: i}, &r, WithTimeout(2*time.Second))
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrOverloaded):
					over.Add(1)
				default:
					other.Add(1)
					firstOther.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d succeeded, %d refused as overloaded, %d other errors (%v); limit now %d", ok.Load(), over.Load(), other.Load(), firstOther.Load(), srv.limiter.limit.Load())
	if over.Load() == 0 {
		t.Errorf("no call refused with 48 callers and 2 slots; want the adaptive limit to refuse some")
	}
	if other.Load() > 0 {
		t.Errorf("%d calls failed otherwise, e.g. %v", other.Load(), firstOther.Load())
	}
	if got, want := decodes.Load(), ok.Load(); got != want {
		t.Errorf("%d args decoded for %d calls run; refused calls must not be decoded", got, want)
	}
}
