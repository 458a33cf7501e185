package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// hub owns a registry's pub/sub connections and routes their messages to
// the watches. Without shard channels there is one connection (shard ""),
// carrying every watched channel, whatever their number. With shard channels
// (Cluster) there is one per node owning watched services, because a node
// accepts SSUBSCRIBE only for its own slots.
//
// Channels are subscribed when their first watch attaches and unsubscribed
// when their last one detaches. After a connection breaks, its shard
// reconnects with backoff and subscribes every channel again; each channel's
// watches are told when it went down and when it is confirmed again, and then
// read their service in full.
type hub struct {
	r       *Redis
	sharded atomic.Bool // shard channels; cleared for good if the server has none

	ctx    context.Context // cancelled by close; ends every shard
	cancel context.CancelFunc
	wg     sync.WaitGroup // shard goroutines

	// mu guards shards, closed and every shard's subs, ps and pending. Writes
	// to a connection (SUBSCRIBE, UNSUBSCRIBE) happen under it, so the replies
	// due are recorded in the order they are sent.
	mu     sync.Mutex
	shards map[string]*shard // by node address; "" without shard channels
	closed bool
}

// shard is one pub/sub connection and the channels it carries.
type shard struct {
	h      *hub
	node   string        // node address; "" without shard channels
	client *redis.Client // the node's client (shard channels only)
	wake   chan struct{} // capacity 1: there are channels to subscribe

	// Guarded by h.mu.
	subs map[string]*chanSub // wanted channels
	ps   *redis.PubSub       // the connection; nil while down
	// pending lists, per channel, the replies due on ps in the order the
	// commands were sent: true for a subscribe, false for an unsubscribe.
	pending map[string][]bool
}

// chanSub is one wanted channel and its watches.
type chanSub struct {
	watches map[*redisWatch]struct{}
	ready   chan struct{} // closed once confirmed on the current connection
	live    bool          // confirmed on the current connection
}

func newHub(r *Redis, sharded bool) *hub {
	ctx, cancel := context.WithCancel(context.Background())
	h := &hub{r: r, ctx: ctx, cancel: cancel, shards: make(map[string]*shard)}
	h.sharded.Store(sharded)
	return h
}

// shardedPublish reports whether changes go out with SPUBLISH.
func (h *hub) shardedPublish() bool { return h.sharded.Load() }

// place returns the shard key of channel and, with shard channels, the
// client of the node that owns it.
func (h *hub) place(ctx context.Context, channel string) (string, *redis.Client, error) {
	if !h.sharded.Load() {
		return "", nil, nil
	}
	cc, ok := h.r.rdb.(*redis.ClusterClient)
	if !ok {
		return "", nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.r.opts.opTimeout)
	defer cancel()
	c, err := cc.MasterForKey(ctx, channel)
	if err != nil {
		return "", nil, fmt.Errorf("registry: node of %s: %w", channel, err)
	}
	return c.Options().Addr, c, nil
}

// shardLocked returns the shard for node, starting it if needed.
func (h *hub) shardLocked(node string, client *redis.Client) *shard {
	s := h.shards[node]
	if s == nil {
		s = &shard{h: h, node: node, client: client, wake: make(chan struct{}, 1), subs: make(map[string]*chanSub)}
		h.shards[node] = s
		h.wg.Add(1)
		go s.run()
	}
	return s
}

// attach adds w to its channel, subscribing the channel if it is new. The
// returned channel is closed once the subscription is confirmed.
func (h *hub) attach(ctx context.Context, w *redisWatch) (<-chan struct{}, error) {
	node, client, err := h.place(ctx, w.channel)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	// The channel may already be carried by another shard (placed before a
	// move); keep one subscription per channel.
	s := h.findLocked(w.channel)
	if s == nil {
		s = h.shardLocked(node, client)
	}
	cs := s.subs[w.channel]
	if cs == nil {
		cs = &chanSub{watches: make(map[*redisWatch]struct{}), ready: make(chan struct{})}
		s.subs[w.channel] = cs
		if s.ps != nil {
			s.sendLocked(w.channel, true)
		} else {
			s.poke()
		}
	}
	cs.watches[w] = struct{}{}
	return cs.ready, nil
}

// findLocked returns the shard carrying channel, or nil.
func (h *hub) findLocked(channel string) *shard {
	for _, s := range h.shards {
		if _, ok := s.subs[channel]; ok {
			return s
		}
	}
	return nil
}

// detach removes w, unsubscribing its channel when it was the last watch.
func (h *hub) detach(w *redisWatch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.findLocked(w.channel)
	if s == nil {
		return
	}
	cs := s.subs[w.channel]
	delete(cs.watches, w)
	if len(cs.watches) > 0 {
		return
	}
	delete(s.subs, w.channel)
	if s.ps != nil { // every wanted channel was subscribed on ps
		s.sendLocked(w.channel, false)
	}
}

// close stops every shard and waits for them.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
}

// poke wakes the shard's goroutine if it waits for channels.
func (s *shard) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// sendLocked writes SUBSCRIBE (sub) or UNSUBSCRIBE for channel on s.ps and
// records the reply due. A failed write closes the connection: the reader
// then sees the break and the shard starts over.
func (s *shard) sendLocked(channel string, sub bool) {
	ctx, cancel := context.WithTimeout(s.h.ctx, s.h.r.opts.opTimeout)
	defer cancel()
	var err error
	switch {
	case sub && s.client != nil:
		err = s.ps.SSubscribe(ctx, channel)
	case sub:
		err = s.ps.Subscribe(ctx, channel)
	case s.client != nil:
		err = s.ps.SUnsubscribe(ctx, channel)
	default:
		err = s.ps.Unsubscribe(ctx, channel)
	}
	s.pending[channel] = append(s.pending[channel], sub)
	if err != nil {
		s.h.r.opts.logger.Warn("registry: pub/sub write failed; reconnecting", "channel", channel, "node", s.node, "err", err)
		_ = s.ps.Close()
	}
}

// errIdle ends a connection that carries no channel any more.
var errIdle = errors.New("registry: no channel to follow")

// errUnresponsive breaks a subscription whose PING went unanswered.
var errUnresponsive = errors.New("registry: subscription unresponsive")

// run keeps the shard's connection up while it has channels, until the hub
// closes.
func (s *shard) run() {
	defer s.h.wg.Done()
	r := s.h.r
	bo := backoff{min: 50 * time.Millisecond, max: min(r.opts.resync, 5*time.Second)}
	for {
		ps, err := s.connect()
		if s.h.ctx.Err() != nil {
			return
		}
		if err == nil {
			err = s.follow(ps)
			s.down(ps)
			if s.h.ctx.Err() != nil {
				return
			}
			if errors.Is(err, errIdle) {
				bo.reset()
				continue
			}
		}
		r.opts.logger.Warn("registry: subscription broken; reconnecting", "node", s.node, "err", err)
		if s.client != nil {
			s.replace()
		}
		if !sleepCtx(s.h.ctx, bo.next()) {
			return
		}
	}
}

// connect waits until the shard has channels, opens a connection and
// subscribes every channel on it.
func (s *shard) connect() (*redis.PubSub, error) {
	h := s.h
	for {
		h.mu.Lock()
		n := len(s.subs)
		h.mu.Unlock()
		if n > 0 {
			break
		}
		select {
		case <-s.wake:
		case <-h.ctx.Done():
			return nil, h.ctx.Err()
		}
	}
	var ps *redis.PubSub
	if s.client != nil {
		ps = s.client.SSubscribe(h.ctx)
	} else {
		ps = h.r.rdb.Subscribe(h.ctx)
	}
	// A PING opens the connection outside the lock and proves it works.
	ctx, cancel := context.WithTimeout(h.ctx, h.r.opts.opTimeout)
	err := ps.Ping(ctx)
	cancel()
	if err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("registry: connect pub/sub %s: %w", s.node, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s.ps = ps
	s.pending = make(map[string][]bool)
	for ch := range s.subs {
		s.sendLocked(ch, true)
	}
	return ps, nil
}

// down ends a connection: every channel of the shard is marked not live and
// its watches are told, so they stop trusting their lists' freshness until
// the channel is confirmed again.
func (s *shard) down(ps *redis.PubSub) {
	_ = ps.Close()
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.ps = nil
	s.pending = nil
	for _, cs := range s.subs {
		if cs.live {
			cs.live = false
			cs.ready = make(chan struct{})
		}
		for w := range cs.watches {
			w.notify(subDown)
		}
	}
}

// replace re-checks, after a break with shard channels, which node owns each
// channel (a slot may have moved, or a replica been promoted), and hands the
// channels that moved to their node's shard.
func (s *shard) replace() {
	h := s.h
	if cc, ok := h.r.rdb.(*redis.ClusterClient); ok {
		cc.ReloadState(h.ctx)
	}
	h.mu.Lock()
	channels := make([]string, 0, len(s.subs))
	for ch := range s.subs {
		channels = append(channels, ch)
	}
	h.mu.Unlock()
	for _, ch := range channels {
		node, client, err := h.place(h.ctx, ch)
		if err != nil || node == s.node {
			continue // retried after the next break
		}
		h.mu.Lock()
		if cs, ok := s.subs[ch]; ok && !h.closed {
			delete(s.subs, ch)
			to := h.shardLocked(node, client)
			to.subs[ch] = cs
			if to.ps != nil {
				to.sendLocked(ch, true)
			} else {
				to.poke()
			}
		}
		h.mu.Unlock()
	}
}

// follow reads ps until it breaks (the error is returned), carries no
// channel any more (errIdle) or the hub closes.
func (s *shard) follow(ps *redis.PubSub) error {
	h := s.h
	ctx := h.ctx
	// Closing ps is the only way to interrupt a blocked receive.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()

	opts := h.r.opts
	lastRecv := time.Now()
	var pingSent time.Time // zero when no PING is outstanding
	for {
		wait := opts.ping - time.Since(lastRecv)
		if !pingSent.IsZero() {
			wait = opts.opTimeout - time.Since(pingSent)
		}
		msg, err := ps.ReceiveTimeout(ctx, max(wait, time.Millisecond))
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				if s.client != nil && isUnknownCommand(err) {
					// Redis 6: no shard channels. Fall back to plain pub/sub
					// for good; the scripts do the same on their side.
					h.sharded.Store(false)
					opts.logger.Info("registry: server has no shard channels; using plain pub/sub")
				}
				return err
			}
			if !pingSent.IsZero() {
				return errUnresponsive
			}
			if s.idle() {
				return errIdle
			}
			if time.Since(lastRecv) >= opts.ping {
				if err := ps.Ping(ctx); err != nil {
					return err
				}
				pingSent = time.Now()
			}
			continue
		}
		lastRecv, pingSent = time.Now(), time.Time{}
		if err := s.handle(msg, lastRecv); err != nil {
			return err
		}
	}
}

// handle processes one item read from the connection.
func (s *shard) handle(msg any, at time.Time) error {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	switch m := msg.(type) {
	case *redis.Message:
		if cs := s.subs[m.Channel]; cs != nil {
			for w := range cs.watches {
				w.deliver(m.Payload, at)
			}
		}
	case *redis.Subscription:
		sub := m.Kind == "subscribe" || m.Kind == "ssubscribe"
		due := s.pending[m.Channel]
		if len(due) == 0 || due[0] != sub {
			if _, wanted := s.subs[m.Channel]; wanted {
				// Not a reply to us: the server dropped the channel (its
				// slot moved). Start over.
				return fmt.Errorf("registry: unexpected %s of %s", m.Kind, m.Channel)
			}
			return nil
		}
		due = due[1:]
		if len(due) == 0 {
			delete(s.pending, m.Channel)
		} else {
			s.pending[m.Channel] = due
		}
		cs := s.subs[m.Channel]
		if sub && len(due) == 0 && cs != nil && !cs.live {
			cs.live = true
			// Notify first: a Watch waiting for ready marks its state after
			// ready closes, and its own read covers this confirmation.
			for w := range cs.watches {
				w.notify(subUp)
			}
			close(cs.ready)
		}
		if len(s.subs) == 0 && len(s.pending) == 0 {
			return errIdle
		}
	}
	return nil
}

// idle reports whether the shard has no channel and no reply due.
func (s *shard) idle() bool {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	return len(s.subs) == 0 && len(s.pending) == 0
}

// isUnknownCommand reports whether err is Redis refusing a command it does
// not know (SSUBSCRIBE on Redis 6). Redis errors carry no code beyond their
// text.
func isUnknownCommand(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.Contains(strings.ToLower(re.Error()), "unknown command")
}
