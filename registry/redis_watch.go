package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// Watch subscribes to service's channel on the registry's shared pub/sub
// connection, then reads the full list and sends it at once. A goroutine
// owned by the registry then keeps the list current and sends it after every
// change:
//
//   - a change message is applied as it stands (no read) when its version
//     follows the one the watcher holds; a message already seen is ignored
//     and a gap in versions makes the watcher read the service in full;
//   - after the subscription breaks (an error, a killed connection, an
//     unanswered PING) the registry re-subscribes with jittered backoff and
//     the watcher reads the full list once its channel is confirmed again, so
//     a watcher never goes silently stale;
//   - when the earliest instance it knows of is due to expire, the watcher
//     (the first of the service's watchers to get there; the others hear its
//     answer) asks Redis to prune and announce what it found;
//   - every WithResync it reads the full list anyway.
//
// Only lists that differ from the last one sent are sent. While Redis is
// unreachable nothing is sent: the reader keeps its last list. The channel is
// closed when ctx is done or the registry closes.
func (r *Redis) Watch(ctx context.Context, service string) (<-chan []Instance, error) {
	if err := validateService(service); err != nil {
		return nil, err
	}
	if r.closed() {
		return nil, ErrClosed
	}
	wctx, release, err := r.watches.add(ctx)
	if err != nil {
		return nil, err
	}
	w := &redisWatch{
		r:       r,
		service: service,
		channel: r.keys(service).channel,
		out:     make(chan []Instance, 1),
		wake:    make(chan struct{}, 1),
	}
	fail := func(err error) (<-chan []Instance, error) {
		r.hub.detach(w)
		release()
		return nil, err
	}
	ready, err := r.hub.attach(wctx, w)
	if err != nil {
		release()
		return nil, err
	}
	timer := time.NewTimer(r.opts.opTimeout)
	select {
	case <-ready:
		timer.Stop()
	case <-wctx.Done():
		timer.Stop()
		return fail(wctx.Err())
	case <-timer.C:
		return fail(fmt.Errorf("registry: subscribe %s: %w", w.channel, context.DeadlineExceeded))
	}
	// The read below covers every re-subscription so far.
	w.mu.Lock()
	w.sub = subOK
	w.mu.Unlock()
	s, err := r.read(wctx, service)
	if err != nil {
		return fail(err)
	}
	now := time.Now()
	w.install(s, now)
	r.syncs.mark(service, now)
	w.dirty = false
	w.out <- cloneInstances(w.insts)
	go func() {
		defer release()
		defer close(w.out)
		defer r.hub.detach(w)
		w.run(wctx)
	}()
	return w.out, nil
}

// subState is what a watch knows of its channel's subscription.
type subState int

const (
	subOK   subState = iota // confirmed, and the list was read since
	subDown                 // the connection broke; messages may be lost
	subUp                   // confirmed again; a full read is due
)

// inbound is one message received on the watch's channel.
type inbound struct {
	payload string
	at      time.Time // local receive time
}

// maxInbox bounds the messages a watch buffers; beyond it they are dropped
// and the service is read in full instead.
const maxInbox = 1024

// redisWatch is one Watch: the hub feeds its inbox, its goroutine keeps its
// list.
type redisWatch struct {
	r                *Redis
	service, channel string
	out              chan []Instance
	wake             chan struct{} // capacity 1: the inbox has news

	mu       sync.Mutex // guards inbox, overflow, sub
	inbox    []inbound
	overflow bool
	sub      subState

	// Owned by the goroutine (by Watch before it starts).
	insts   []Instance // the current list, sorted by Addr
	version int64      // the version insts reflect; 0 for none (empty)
	at      int64      // Redis's clock (ms) when insts was last confirmed
	checkAt time.Time  // when to run the expiry check; zero for never
	quiet   time.Time  // no expiry check before then (one ran lately)
	dirty   bool       // insts changed since the last list sent
}

// deliver queues a message; it is called by the hub under its lock.
func (w *redisWatch) deliver(payload string, at time.Time) {
	w.mu.Lock()
	if len(w.inbox) < maxInbox {
		w.inbox = append(w.inbox, inbound{payload: payload, at: at})
	} else {
		w.inbox, w.overflow = nil, true
	}
	w.mu.Unlock()
	w.poke()
}

// notify records a subscription change; it is called by the hub under its
// lock.
func (w *redisWatch) notify(st subState) {
	w.mu.Lock()
	w.sub = st
	w.mu.Unlock()
	w.poke()
}

func (w *redisWatch) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// take empties the inbox. A subUp state becomes subOK: the caller reads.
func (w *redisWatch) take() (msgs []inbound, overflow bool, st subState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	msgs, overflow, st = w.inbox, w.overflow, w.sub
	w.inbox, w.overflow = nil, false
	if st == subUp {
		w.sub = subOK
	}
	return msgs, overflow, st
}

// run keeps the list current until ctx is done.
func (w *redisWatch) run(ctx context.Context) {
	o := w.r.opts
	log := o.logger.With("service", w.service)
	// Retries of failed reads and checks back off from a quarter second: a
	// Redis too slow to answer must not be answered with more requests.
	bo := backoff{min: 250 * time.Millisecond, max: min(o.resync, 5*time.Second)}
	nextResync := time.Now().Add(jitter(o.resync))
	needRead := false
	var retryAt time.Time // a failed read or check waits until then
	down := false
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if !down { // while down, only the hub's news wakes us
			due := nextResync
			switch {
			case needRead:
				due = laterOf(time.Now(), retryAt)
			case !w.checkAt.IsZero() && w.checkAt.Before(due):
				due = laterOf(w.checkAt, retryAt)
			}
			timer.Reset(max(time.Until(due), 0))
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C:
		}
		timer.Stop()

		msgs, overflow, st := w.take()
		down = st == subDown
		for _, m := range msgs {
			reason := w.handle(m)
			if reason == "" {
				w.r.syncs.mark(w.service, m.at)
			} else if !needRead {
				log.Debug("registry: watch reads the service in full", "reason", reason)
				needRead = true
			}
		}
		if overflow || st == subUp {
			reason := "re-subscribed"
			if overflow {
				reason = "inbox overflow"
			}
			if !needRead {
				log.Debug("registry: watch reads the service in full", "reason", reason)
			}
			needRead = true
			retryAt = time.Time{}
		}
		now := time.Now()
		switch {
		case down || now.Before(retryAt):
		case needRead || !now.Before(nextResync):
			if err := w.resync(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Warn("registry: watch read failed", "err", err)
				needRead, retryAt = true, now.Add(bo.next())
				break
			}
			needRead, retryAt = false, time.Time{}
			bo.reset()
			nextResync = time.Now().Add(jitter(o.resync))
		case !w.checkAt.IsZero() && !now.Before(w.checkAt):
			if err := w.check(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Warn("registry: watch expiry check failed", "err", err)
				retryAt = now.Add(bo.next())
				break
			}
			bo.reset()
		}
		w.emit()
	}
}

// laterOf returns the later of a and b (a zero time is the earliest).
func laterOf(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

// jitter spreads d over [d/2, d], so watchers started together do not read
// together.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// emit sends the list when it changed since the last one sent.
func (w *redisWatch) emit() {
	if w.dirty {
		w.dirty = false
		offer(w.out, cloneInstances(w.insts))
	}
}

// resync reads the service in full.
func (w *redisWatch) resync(ctx context.Context) error {
	s, err := w.r.read(ctx, w.service)
	if err != nil {
		return err
	}
	now := time.Now()
	w.install(s, now)
	w.r.syncs.mark(w.service, now)
	return nil
}

// install replaces the state with a full read received at recv.
func (w *redisWatch) install(s snapshot, recv time.Time) {
	if !equalInstances(w.insts, s.insts) {
		w.dirty = true
	}
	w.insts, w.version, w.at = s.insts, s.version, s.now
	w.setExpiry(s.now, s.expiry, recv)
}

// check runs the expiry check: Redis prunes and announces (to every watcher
// of the service, this one included) the version and earliest expiry.
func (w *redisWatch) check(ctx context.Context) error {
	tk, err := w.r.runCheck(ctx, w.service)
	if err != nil {
		return err
	}
	if tk.version == w.version {
		w.at = max(w.at, tk.now)
	}
	// A newer version is on its way as a message (this check's own prune,
	// or a change it raced); a gap shows when the tick arrives.
	now := time.Now()
	w.quiet = now.Add(w.checkGap())
	w.setExpiry(tk.now, tk.expiry, now)
	return nil
}

// checkGap is the least time between two expiry checks of one service by
// one watcher, counted from the last check any watcher announced: when
// heartbeats are late and many members near their expiry, checks must not
// chase them one by one. TTL/10 (1s by default).
func (w *redisWatch) checkGap() time.Duration { return w.r.opts.ttl / 10 }

// setExpiry schedules the expiry check for the earliest expiry (Redis ms,
// -1 for none) seen at Redis time now, received locally at recv. Each
// watcher adds its own random delay of up to TTL/20 (at most 500ms): the
// first to check announces the answer and the others, hearing it, move on.
func (w *redisWatch) setExpiry(now, expiry int64, recv time.Time) {
	if expiry < 0 {
		w.checkAt = time.Time{}
		return
	}
	spread := min(w.r.opts.ttl/20, 500*time.Millisecond)
	w.checkAt = laterOf(recv.Add(toDuration(expiry-now)+expiryWake+rand.N(spread+1)), w.quiet)
}

// wireMsg is a change message (see redis_scripts.go).
type wireMsg struct {
	V int64               `json:"v"`
	T int64               `json:"t"`
	X int64               `json:"x"`
	C [][]json.RawMessage `json:"c"`
}

// handle applies one message. When the service must be read in full (a
// gap, or a message it cannot use) it says why; otherwise it returns "".
func (w *redisWatch) handle(m inbound) (readReason string) {
	var msg wireMsg
	if err := json.Unmarshal([]byte(m.payload), &msg); err != nil || msg.V < 0 {
		return "foreign message" // an older registry's
	}
	switch {
	case msg.V < w.version || (msg.V == w.version && msg.C != nil):
		// Seen already, unless it is newer than what we hold: then the
		// version counter restarted (the service emptied and came back).
		if msg.T > w.at {
			return "version restarted"
		}
		return ""
	case msg.V == w.version: // a tick confirming our version
		w.at = max(w.at, msg.T)
		w.quiet = m.at.Add(w.checkGap())
		w.setExpiry(msg.T, msg.X, m.at)
		return ""
	case msg.C == nil || w.version == 0 || msg.V != w.version+1:
		return "version gap" // missed at least one change
	}
	for _, c := range msg.C {
		if err := w.apply(c); err != nil {
			w.r.opts.logger.Warn("registry: bad change message", "service", w.service, "err", err)
			return "bad change"
		}
	}
	w.version, w.at = msg.V, msg.T
	w.quiet = m.at.Add(w.checkGap())
	w.setExpiry(msg.T, msg.X, m.at)
	return ""
}

// apply applies one change: ["+"|"~", addr, expiry, data] or ["-", addr].
func (w *redisWatch) apply(c []json.RawMessage) error {
	var op, addr string
	if len(c) < 2 || json.Unmarshal(c[0], &op) != nil || json.Unmarshal(c[1], &addr) != nil {
		return fmt.Errorf("%w: change %s", errReply, c)
	}
	i, found := slices.BinarySearchFunc(w.insts, addr, func(in Instance, a string) int { return strings.Compare(in.Addr, a) })
	switch op {
	case "-":
		if found {
			w.insts = slices.Delete(w.insts, i, i+1)
			w.dirty = true
		}
		return nil
	case "+", "~":
		var data string
		if len(c) < 4 || json.Unmarshal(c[3], &data) != nil {
			return fmt.Errorf("%w: change %s", errReply, c)
		}
		inst, err := decodeRecord(w.service, addr, data)
		if err != nil {
			return err
		}
		switch {
		case !found:
			w.insts = slices.Insert(w.insts, i, inst)
		case equalInstances(w.insts[i:i+1], []Instance{inst}):
			return nil // re-announced unchanged (Redis had lost it)
		default:
			w.insts[i] = inst
		}
		w.dirty = true
		return nil
	}
	return fmt.Errorf("%w: change op %q", errReply, op)
}
