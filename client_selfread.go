package rpc

// A caller alone on its connection reads its own response.
//
// Normally the connection's reader goroutine reads every frame and wakes
// the caller whose response it read: one goroutine hand-off per call, and on
// an otherwise idle core that wake also wakes a thread that spins looking
// for work (docs/BENCHMARKS.md, "Where a single call's time goes"). rawtcp's
// client is one goroutine that writes then reads.
//
// The read role: exactly one goroutine at a time may read the connection
// (cc.br, cc.fr, cc.parts). sr.state says who has the role:
//
//   - roleReader: the reader goroutine (the only state at the start and,
//     under load, almost always).
//   - roleFree: lent. The reader lends the role right after it completed a
//     call when nothing else is pending on any connection of its pool (a
//     lone caller: with several callers at once passing the role around
//     costs more than it saves, measured), nothing is buffered and the
//     connection is usable (plain TCP on unix only), then waits on a
//     channel instead of reading. A synchronous caller that has just
//     written its request on its own goroutine takes the role (roleFree ->
//     roleCaller).
//   - roleCaller: a caller reads. It processes frames with the reader's own
//     loop (read), so a response for another call, a ping, a draining frame
//     or a continuation is handled exactly as the reader would, until its
//     own request is no longer pending. It waits only for whole frames that
//     fit the read buffer (bufio Peek, which consumes nothing), so stopping
//     never splits a frame: on its deadline (a read deadline set to the
//     call's), on a read error, on a frame larger than the buffer or a bad
//     header it stops between frames and hands the role back to the reader,
//     which takes the stream from where it is and sees the same error.
//
// When the caller's response came and the connection is still idle and
// usable, the caller leaves the role lent (roleFree): the next call's
// caller takes it again, so a lone caller doing call after call is read
// by its own goroutine and nothing is woken per call. Anything else
// (other calls pending, frames buffered, draining, an error) hands the
// role back to the reader (roleReader plus a wake).
//
// An idle connection must still be read promptly (a server's close, its
// draining frame, keepalive pings): while the role is lent, the reader
// wakes every selfReadIdle and takes the role back if no caller took it
// since its last look, so a connection nobody calls is read again within
// two selfReadIdle of its last call, as good as immediately next to the
// server's drain grace and idle timeout. Between a lone caller's calls
// nobody reads, so before writing on a connection lent for longer than
// selfReadFresh (100 µs; back-to-back calls never pay it) the caller peeks
// at the socket without waiting (lentCheck): anything there goes to the
// reader, and a close marks the connection dead before the request is
// written, so the call goes elsewhere as never sent rather than failing as
// maybe sent. The window left, at most selfReadFresh, is about what the
// reader's own wake-up took under load. A call that does not read its own
// response (Go, Callback, an interceptor chain, hedging, a retry on a
// goroutine of the client) takes the role back for the reader right after
// writing if it finds it lent, so its response is never left unread. A
// caller whose ctx can be cancelled reads its own too: a cancel ends its
// read as its deadline would (readInterrupt). Client.Close wakes a lending
// reader; a caller reading a closed connection gets an error and hands
// back.

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

// States of selfRead.state.
const (
	roleReader int32 = iota
	roleFree
	roleCaller
)

// selfReadIdle is how often a reader that lent its role looks whether
// callers still use it (tests change it). Each look is a timer that wakes
// a sleeping thread while a lone caller calls on: at 2 ms, a lone
// caller's calls took 2.5 µs longer at the median (6 alternated rounds of
// the harness, p50 43.5 against 41.0 µs) than at 10 ms.
var selfReadIdle atomic.Int64

func init() { selfReadIdle.Store(int64(10 * time.Millisecond)) }

// selfRead is a connection's read role (see the top of this file).
type selfRead struct {
	state atomic.Int32
	// used is set by every caller taking the role; the lending reader
	// clears it at each look.
	used atomic.Bool
	// taken counts the calls whose caller took the role.
	taken atomic.Uint64
	// wake hands the role back to the lending reader (state roleReader);
	// err, written before, is a frame error the caller met, for the reader
	// to end the connection with.
	wake  chan struct{}
	err   error
	timer *time.Timer // the reader's
	// since is when the role was last left lent (unix ns): lentCheck
	// looks into a connection lent for longer than selfReadFresh.
	since atomic.Int64
	// peeker looks into the socket for lentCheck; lending needs one.
	// looked says whether the reader made it (reader only).
	peeker *socketPeeker
	looked bool
}

// selfReadFresh is how long a lent connection may go unread before a
// caller about to write on it first looks whether the server closed it.
const selfReadFresh = 100 * time.Microsecond

// errPeerClosed: a lent connection was found closed by the server before
// a request was written on it (the request goes elsewhere).
var errPeerClosed = errors.New("connection closed by the server")

// afterResponse runs on the goroutine holding the role after it completed a
// call with the frame read from the buffer. The reader lends the role if
// the connection is idle, else lets the caller it woke run first.
func (cc *clientConn) afterResponse(self *selfReader) error {
	if self != nil {
		return nil
	}
	if cc.br.Buffered() == 0 && cc.load.Load() == 0 && cc.usable() && cc.pool.idle() {
		s := &cc.sr
		if !s.looked {
			s.looked, s.peeker = true, newSocketPeeker(cc.nc)
		}
		if s.peeker != nil {
			return cc.lend()
		}
	}
	cc.yieldToCaller()
	return nil
}

// lend lends the read role and waits until it is the reader's again. It
// returns the error a caller met while it read, if any.
func (cc *clientConn) lend() error {
	s := &cc.sr
	idle := time.Duration(selfReadIdle.Load())
	if s.wake == nil {
		s.wake = make(chan struct{}, 1)
		s.timer = time.NewTimer(idle)
	} else {
		s.timer.Reset(idle)
	}
	s.used.Store(false)
	s.since.Store(time.Now().UnixNano())
	s.state.Store(roleFree)
	// A call that registered meanwhile may have missed the lending
	// (resumeReader): take the role back for it, unless a caller took the
	// role since (it hands it back itself if calls are left pending; taking
	// it after that caller left it lent would have the reader read an idle
	// connection again).
	if cc.load.Load() > 0 && !s.used.Load() && s.state.CompareAndSwap(roleFree, roleReader) {
		s.timer.Stop()
		return nil
	}
	stop := cc.pool.client.stop
	for {
		select {
		case <-s.wake:
			s.timer.Stop()
			err := s.err
			s.err = nil
			return err
		case <-s.timer.C:
			if !s.used.Swap(false) && s.state.CompareAndSwap(roleFree, roleReader) {
				return nil
			}
			s.timer.Reset(idle)
		case <-stop:
			if s.state.CompareAndSwap(roleFree, roleReader) {
				s.timer.Stop()
				return nil
			}
			// A caller reads: Close closed the connection, so its read
			// fails and it hands the role back.
			stop = nil
		}
	}
}

// resumeReader gives a lent role back to the reader: a call whose caller
// does not read its response was written. If no call is pending any more,
// its response was already read (the reader read it, then lent the role
// again, before this writer got here): the role stays lent.
func (cc *clientConn) resumeReader() {
	s := &cc.sr
	if s.state.Load() == roleFree && cc.load.Load() > 0 && s.state.CompareAndSwap(roleFree, roleReader) {
		s.wake <- struct{}{}
	}
}

// selfReader is a caller reading with the reader's loop until its request
// (seq) is no longer pending.
type selfReader struct {
	seq uint64
}

// next reports whether the caller goes on reading: its request is still
// pending and a whole frame that fits the buffer is buffered (it waits for
// one, up to the read deadline). Otherwise it stops between frames. It
// also leaves to the reader the frames whose reading may wait for read
// budget (compressed bodies, pieces of chunked messages): a wait the
// caller's deadline and cancel do not end.
func (cc *clientConn) next(self *selfReader) bool {
	cc.mu.Lock()
	_, pending := cc.pending[self.seq]
	cc.mu.Unlock()
	if !pending {
		return false
	}
	b, err := cc.br.Peek(wire.HeaderSize)
	if err != nil {
		return false
	}
	h, err := wire.ParseHeader(b, hardLimit(cc.pool.client.opts.maxFrame))
	if err != nil || wire.HeaderSize+h.PayloadLen() > cc.br.Size() ||
		h.Type == wire.TypeContinuation || h.Codec&(wire.FlagMore|wire.CompressMask) != 0 {
		return false // the reader deals with it
	}
	_, err = cc.br.Peek(wire.HeaderSize + h.PayloadLen())
	return err == nil
}

// readOwn is a synchronous caller's turn after it started call: if its
// first attempt was written on this goroutine to a connection whose read
// role is lent, it reads the connection until that attempt is answered,
// ctx ends (see readInterrupt) or the call's deadline passes.
func (c *Client) readOwn(ctx context.Context, call *Call) {
	st := &call.st
	a := &st.first
	st.mu.Lock()
	cc, seq, ok := a.cc, a.seq, a.selfRead
	st.mu.Unlock()
	if !ok || cc == nil {
		return
	}
	s := &cc.sr
	if s.state.Load() != roleFree || !s.state.CompareAndSwap(roleFree, roleCaller) {
		return
	}
	s.used.Store(true)
	s.taken.Add(1)
	if !st.deadline.IsZero() {
		_ = cc.nc.SetReadDeadline(st.deadline)
	}
	var ri *readInterrupt
	if ctx.Done() != nil {
		ri = &readInterrupt{nc: cc.nc, armed: true}
		ri.stop = context.AfterFunc(ctx, ri.fire)
	}
	err := cc.read(&selfReader{seq: seq})
	if ri != nil {
		ri.disarm()
	}
	if !st.deadline.IsZero() || ri != nil {
		_ = cc.nc.SetReadDeadline(time.Time{})
	}
	if err == nil && cc.load.Load() == 0 && cc.br.Buffered() == 0 && cc.usable() {
		s.since.Store(time.Now().UnixNano())
		s.state.Store(roleFree) // stays lent: the next call reads its own
		return
	}
	s.err = err
	s.state.Store(roleReader)
	s.wake <- struct{}{}
}

// readInterrupt ends a caller's read of its own response when its ctx
// ends before the call's deadline (a cancel): it moves the read deadline
// to the past, so the caller stops between frames as at its deadline, and
// the call ends with ctx's error as any other. Once disarmed (the caller
// is done reading, before it gives the role up and clears the deadline)
// it does nothing, so a late cancel never touches a read that is not the
// caller's.
type readInterrupt struct {
	nc    interface{ SetReadDeadline(time.Time) error }
	stop  func() bool
	mu    sync.Mutex
	armed bool
}

func (ri *readInterrupt) fire() {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	if ri.armed {
		_ = ri.nc.SetReadDeadline(time.Unix(1, 0))
	}
}

func (ri *readInterrupt) disarm() {
	ri.mu.Lock()
	ri.armed = false
	ri.mu.Unlock()
	ri.stop()
}

// lentCheck runs before a caller that will read its own response writes
// its request. A connection whose role has been lent for longer than
// selfReadFresh was read by nobody meanwhile: if the server wrote
// something (a draining frame, a ping) or closed it, the reader gets the
// role back to deal with it, and a closed connection fails the request as
// never sent, so that it goes elsewhere instead of being written onto a
// connection that is gone (where it would fail as maybe sent).
func (cc *clientConn) lentCheck() error {
	s := &cc.sr
	if s.state.Load() != roleFree || time.Now().UnixNano()-s.since.Load() < int64(selfReadFresh) {
		return nil
	}
	if !s.state.CompareAndSwap(roleFree, roleCaller) {
		return nil
	}
	ready, err := s.peeker.peek()
	if !ready && err == nil {
		s.state.Store(roleFree) // nothing came: readOwn takes it again
		return nil
	}
	if err != nil {
		// What the reader does when it meets the close (readLoop), done
		// now, so that the retry never picks this connection again.
		if !cc.dead.Load() && !cc.draining.Load() {
			cc.pool.suspectAll(cc)
		}
		cc.dead.Store(true)
		// Out of the pool now, not when the reader gets to it: the retry
		// must dial afresh, and the address's schema verdicts go with
		// the connection (the server may have been replaced).
		cc.pool.remove(cc)
	}
	s.state.Store(roleReader)
	s.wake <- struct{}{}
	return err
}

// idle reports whether no call is pending on any connection of the pool:
// only then does a reader lend its role. With several callers at once the
// role would pass back and forth (a wake of the reader each time the
// caller hands it back with other calls pending) and a connection lent
// between their calls would be looked into before each write, costing
// more than the hand-off it saves.
//
// It never waits for the pool's lock: a pool busy enough to have it taken
// is not idle.
func (p *connPool) idle() bool {
	if !p.mu.TryLock() {
		return false
	}
	defer p.mu.Unlock()
	for _, cc := range p.conns {
		if cc.load.Load() > 0 {
			return false
		}
	}
	return true
}
