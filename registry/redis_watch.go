package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// Watch subscribes to service's change channel, then reads the full list and
// sends it at once. A goroutine owned by the registry then re-reads and sends
// the list:
//
//   - on every change message;
//   - after every subscription break (an error, a killed connection, an
//     unanswered PING): it re-subscribes with jittered backoff and then reads
//     the full list, so a watcher never goes silently stale;
//   - periodically (WithResync), and when the earliest known instance is due
//     to expire: expiries publish nothing by themselves, so a dead server
//     leaves the list moments after its TTL runs out.
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
	ps, err := r.subscribe(wctx, service)
	if err != nil {
		release()
		return nil, err
	}
	insts, untilExpiry, err := r.list(wctx, service)
	if err != nil {
		_ = ps.Close()
		release()
		return nil, err
	}
	out := make(chan []Instance, 1)
	out <- insts
	w := &redisWatch{r: r, service: service, out: out, last: cloneInstances(insts), untilExpiry: untilExpiry}
	go func() {
		defer release()
		defer close(out)
		w.run(wctx, ps)
	}()
	return out, nil
}

// subscribe opens a subscription to service's channel and waits (bounded)
// for Redis to confirm it.
func (r *Redis) subscribe(ctx context.Context, service string) (*redis.PubSub, error) {
	_, _, channel := r.keys(service)
	octx, cancel := r.opCtx(ctx)
	defer cancel()
	ps := r.rdb.Subscribe(octx, channel)
	msg, err := ps.ReceiveTimeout(octx, r.opts.opTimeout)
	if err == nil {
		if _, ok := msg.(*redis.Subscription); !ok {
			err = errors.New("registry: unexpected first pubsub message")
		}
	}
	if err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("registry: subscribe %s: %w", channel, err)
	}
	return ps, nil
}

// redisWatch is the state of one watcher goroutine.
type redisWatch struct {
	r           *Redis
	service     string
	out         chan []Instance
	last        []Instance    // the last list sent
	untilExpiry time.Duration // from the last read; -1 when nothing is due
	lastRead    time.Time     // when untilExpiry was measured
}

// run follows subscriptions until ctx is done, re-subscribing and resyncing
// after each break. It owns ps.
func (w *redisWatch) run(ctx context.Context, ps *redis.PubSub) {
	log := w.r.opts.logger.With("service", w.service)
	w.lastRead = time.Now()
	bo := backoff{min: 50 * time.Millisecond, max: min(w.r.opts.resync, 5*time.Second)}
	for {
		if ps != nil {
			err := w.follow(ctx, ps)
			ps = nil
			if ctx.Err() != nil {
				return
			}
			log.Warn("registry: watch subscription broken; re-subscribing", "err", err)
		}
		if !sleepCtx(ctx, bo.next()) {
			return
		}
		var err error
		ps, err = w.r.subscribe(ctx, w.service)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("registry: watch re-subscribe failed", "err", err)
			}
			continue
		}
		if err := w.resync(ctx); err != nil {
			if ctx.Err() == nil {
				log.Warn("registry: watch resync failed", "err", err)
			}
			_ = ps.Close()
			ps = nil
			continue
		}
		bo.reset()
		log.Info("registry: watch re-subscribed")
	}
}

// follow reads ps until it breaks (the error is returned) or ctx is done
// (nil). It closes ps before returning.
func (w *redisWatch) follow(ctx context.Context, ps *redis.PubSub) error {
	// Closing ps is the only way to interrupt a blocked receive.
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = ps.Close()
		close(closed)
	})
	defer func() {
		if stop() {
			_ = ps.Close()
		} else {
			<-closed
		}
	}()

	log := w.r.opts.logger.With("service", w.service)
	resync := w.r.opts.resync
	nextResync := time.Now().Add(resync)
	var pingSent time.Time // zero when no PING is outstanding
	for {
		wait := time.Until(nextResync)
		if w.untilExpiry >= 0 {
			wait = min(wait, time.Until(w.lastRead.Add(w.untilExpiry+expiryWake)))
		}
		msg, err := ps.ReceiveTimeout(ctx, max(wait, time.Millisecond))
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return err
			}
			// Nothing arrived: a resync or an expiry is due.
			if !time.Now().Before(nextResync) {
				nextResync = time.Now().Add(resync)
				if !pingSent.IsZero() && time.Since(pingSent) > w.r.opts.opTimeout {
					return errUnresponsive
				}
				if pingSent.IsZero() {
					if err := ps.Ping(ctx); err != nil {
						return err
					}
					pingSent = time.Now()
				}
			}
			if err := w.resync(ctx); err != nil && ctx.Err() == nil {
				log.Warn("registry: watch resync failed", "err", err)
			}
			continue
		}
		switch msg.(type) {
		case *redis.Pong:
			pingSent = time.Time{}
		case *redis.Message:
			pingSent = time.Time{}
			if err := w.resync(ctx); err != nil && ctx.Err() == nil {
				log.Warn("registry: watch resync failed", "err", err)
			}
		}
	}
}

// resync reads the full list and sends it when it changed.
func (w *redisWatch) resync(ctx context.Context) error {
	insts, untilExpiry, err := w.r.list(ctx, w.service)
	if err != nil {
		// Keep waking on the periodic schedule only: no expiry known.
		w.untilExpiry = -1
		return err
	}
	w.untilExpiry, w.lastRead = untilExpiry, time.Now()
	if !equalInstances(insts, w.last) {
		w.last = cloneInstances(insts)
		offer(w.out, insts)
	}
	return nil
}
