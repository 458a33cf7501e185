package rpc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
	"github.com/seedrpc/rpc/lb"
)

// Call is one remote call in flight or done, as in net/rpc.
type Call struct {
	ServiceMethod string     // "Service.Method"
	Args          any        // the arguments
	Reply         any        // the reply, a pointer, filled on success
	Error         error      // set when the call is done
	Done          chan *Call // receives the Call when it is done
	// Header holds the request headers client interceptors see and may
	// add to (those of WithHeader first); nil on a client without
	// interceptors, whose calls send WithHeader's headers directly.
	Header map[string]string
	// ResponseHeader holds the headers the server set with SetHeader,
	// filled when the reply arrives; nil if there were none.
	ResponseHeader map[string]string

	st callState // unexported machinery, below
}

// callState is the machinery behind a Call: its deadline, its attempts on
// one or more connections (retries, hedges), and the once-only finish.
type callState struct {
	call     *Call // the Call that embeds this state
	client   *Client
	opts     callOptions
	service  string
	oneway   bool
	invoked  bool // the interceptors' innermost Invoker ran
	start    time.Time
	deadline time.Time // zero: none
	callback func(*Call)
	// wait, when set, receives the finished call instead of its owner:
	// the interceptor chain delivers it once the chain has returned.
	wait   chan *Call
	timer  *time.Timer
	hedger *time.Timer
	// pin, when set, is the one address the call goes to, whatever the
	// service (the schema check's describe).
	pin string
	// owner, when set, is told of the finished call in place of Done or
	// callback (typed calls).
	owner completer
	// finished is set by whoever finishes the call; everyone else backs off.
	finished atomic.Bool
	// checkSchema says whether to check the shapes of the call's Args and
	// Reply types against the server's method before sending
	// (schema_check.go).
	checkSchema bool
	// selfRead says whether the caller may read its own response
	// (client_selfread.go): set by callSync before start.
	selfRead bool

	mu sync.Mutex // guards the fields below
	// live are the attempts that may still complete.
	live []*attempt
	// tried are the addresses attempted, so retries and hedges go elsewhere.
	tried []string
	// retries counts retries used; safeRetries counts retries of requests
	// that never ran (not sent, or refused by a draining server);
	// overloads counts retries after an overloaded server's refusal.
	retries, safeRetries, overloads int
	// first is the first attempt, kept inline to save an allocation, as
	// are the backing arrays of live and tried for the common cases.
	first    attempt
	liveBuf  [2]*attempt
	triedBuf [2]string
}

// attempt is one request on one connection.
type attempt struct {
	call   *Call
	target *target // nil for a client of one server
	cc     *clientConn
	addr   string
	seq    uint64
	start  time.Time
	lbDone func(lb.DoneInfo)
	// reported is set by the first report; later ones do nothing.
	reported atomic.Bool
	// wend is where the request ends in cc's stream once written, or
	// wendNone, wendClaimed (see clientConn.fail).
	wend atomic.Int64
	// canSkip is set when the call may go to another instance instead of
	// waiting for this one's suspect address.
	canSkip bool
	// selfRead is set on a first attempt written on the goroutine of a
	// synchronous caller that reads its own response (client_selfread.go).
	selfRead bool
}

// maxSafeRetries bounds retries of requests that never ran.
const maxSafeRetries = 3

// maxOverloadRetries bounds the other instances a call refused as
// overloaded tries, so that an overloaded fleet answers at once.
const maxOverloadRetries = 2

// completed is called by the reader with a response for a: its metadata
// and body, which alias the reader's buffer.
func (a *attempt) completed(status wire.Status, meta, body []byte) {
	call := a.call
	st := &call.st
	var (
		hdr   map[string]string
		code  int64
		coded bool
	)
	if len(meta) > 0 {
		var err error
		if hdr, code, coded, err = parseResponseMeta(meta); err != nil {
			a.report(nil, nil)
			if st.finished.CompareAndSwap(false, true) {
				st.done(a, callError(call.ServiceMethod, a.addr, fmt.Errorf("response metadata: %w", err)))
			}
			return
		}
	}
	if status != wire.StatusOK {
		var err error
		if coded && status == wire.StatusServerError {
			err = codedError(code, string(body))
		} else {
			err = statusError(status, string(body))
		}
		if status == wire.StatusOverloaded {
			st.overloaded(a, err)
			return
		}
		if status == wire.StatusShuttingDown {
			// The call did not run: safe to try another instance.
			st.attemptFailed(a, err, false)
			return
		}
		if status == wire.StatusTimeout {
			a.report(err, err)
			err = callError(call.ServiceMethod, a.addr, err)
		} else {
			a.report(err, nil)
		}
		if st.finished.CompareAndSwap(false, true) {
			call.ResponseHeader = hdr
			st.done(a, err)
		}
		return
	}
	if !st.finished.CompareAndSwap(false, true) {
		a.report(nil, nil)
		return // a hedge or the timer won
	}
	call.ResponseHeader = hdr
	var err error
	if call.Reply != nil {
		if derr := st.client.opts.codec.Unmarshal(body, call.Reply); derr != nil {
			err = callError(call.ServiceMethod, a.addr, fmt.Errorf("decoding reply: %w", derr))
		}
	}
	a.report(nil, nil)
	st.done(a, err)
}

// failed is called when a's connection broke; sent says whether the
// request may have reached the server. The call's error is ErrShutdown
// itself, as in net/rpc, so err == ErrShutdown holds; the cause is logged.
func (a *attempt) failed(cause error, sent bool) {
	a.call.st.client.opts.logger.Debug("rpc: connection lost during a call", "method", a.call.ServiceMethod, "addr", a.addr, "err", cause)
	a.call.st.attemptFailed(a, ErrShutdown, sent)
}

// report feeds the outcome to the balancer and to outlier detection.
// transportErr is nil for answers from the server (even error answers).
func (a *attempt) report(err, transportErr error) {
	if a.reported.Swap(true) {
		return // exactly once, whoever gets here first
	}
	if a.lbDone != nil {
		a.lbDone(lb.DoneInfo{Err: err, Latency: time.Since(a.start)})
	}
	if a.target != nil {
		a.target.outcome(a.addr, transportErr)
	}
}

// ended reports an attempt that the call's outcome err ended, not an
// answer or a failure of its own: a timeout counts against its instance
// (the instance took too long), anything else (the caller cancelled,
// another attempt answered) counts neither way.
func (a *attempt) ended(err error) {
	if errors.Is(err, ErrTimeout) {
		a.report(err, err)
	} else {
		a.report(nil, nil)
	}
}

// attemptFailed decides between another attempt and failing the call.
func (st *callState) attemptFailed(a *attempt, err error, sent bool) {
	a.report(err, err)
	st.mu.Lock()
	st.removeLive(a)
	others := len(st.live)
	retry := false
	if !st.finished.Load() {
		switch {
		case !sent && st.safeRetries < maxSafeRetries:
			st.safeRetries++
			retry = true
		case sent && st.retries < st.opts.retries && st.budgetLeft():
			st.retries++
			retry = true
		}
	}
	st.mu.Unlock()
	if retry && st.client.goAsync(func() { st.next(err) }) {
		return
	}
	if others > 0 {
		return // a hedge is still running
	}
	st.finish(err)
}

// overloaded handles a refusal by an overloaded server (the call did not
// run). Backing off and asking the same fleet again would turn a fast
// answer into a slow one, so the call goes at once to an instance it has
// not tried, at most maxOverloadRetries times, and never again to one that
// refused it; with no such instance (or a client of one server) it fails
// at once with ErrOverloaded. The refusal does not count toward ejection:
// the server is healthy, and ejecting busy instances piles their load on
// the others.
func (st *callState) overloaded(a *attempt, err error) {
	a.report(err, nil)
	err = callError(st.call.ServiceMethod, a.addr, err)
	st.mu.Lock()
	st.removeLive(a)
	others := len(st.live)
	retry := !st.finished.Load() && a.target != nil && st.overloads < maxOverloadRetries && st.budgetLeft()
	if retry {
		st.overloads++
	}
	st.mu.Unlock()
	if retry {
		if next, rerr := st.route(a.target, false); rerr == nil {
			st.launchAsync(next)
			return
		}
	}
	if others == 0 {
		st.finish(err)
	}
}

// budgetLeft reports whether enough of the deadline is left to retry.
func (st *callState) budgetLeft() bool {
	if st.deadline.IsZero() {
		return true
	}
	left := time.Until(st.deadline)
	return left > 2*time.Millisecond && left > st.deadline.Sub(st.start)/10
}

func (st *callState) removeLive(a *attempt) {
	for i, l := range st.live {
		if l == a {
			st.live = append(st.live[:i], st.live[i+1:]...)
			return
		}
	}
}

// next starts a retry after a short jittered backoff; prev is the error of
// the attempt before.
func (st *callState) next(prev error) {
	st.mu.Lock()
	n := st.retries + st.safeRetries
	st.mu.Unlock()
	backoff := min(5*time.Millisecond<<min(n-1, 6), 200*time.Millisecond)
	backoff = backoff/2 + rand.N(backoff/2+1)
	if !st.deadline.IsZero() {
		backoff = min(backoff, time.Until(st.deadline)/4)
	}
	if backoff > 0 {
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-st.client.stop:
			t.Stop()
			st.finish(ErrShutdown)
			return
		}
	}
	st.relaunch()
}

// launchFast starts the call's first attempt on the caller's goroutine if
// that needs no waiting: the service's instances are known (the picker
// snapshot is ready) and the picked address has a usable connection.
// Everything else (the first lookup of a service, a dial, another instance
// after a failed send) continues on a goroutine of the client.
func (st *callState) launchFast(ctx context.Context) {
	c := st.client
	var t *target
	if c.static == "" && st.pin == "" {
		if t = c.target(st.service); t == nil {
			st.finish(ErrShutdown)
			return
		}
		if !t.isReady() {
			st.launchAsync(nil)
			return
		}
	}
	a, err := st.route(t, true)
	if err != nil {
		st.noRoute(err)
		return
	}
	p := c.staticPool
	if p == nil {
		p = c.pool(a.addr)
	}
	if st.checkSchema {
		if known, err := p.schema.lookup(st.schemaKey()); !known {
			st.launchAsync(a) // check on a goroutine of the client
			return
		} else if err != nil {
			st.unsent(a, err)
			return
		}
	}
	cc := p.ready()
	if cc == nil {
		st.launchAsync(a) // dial on a goroutine of the client
		return
	}
	a.selfRead = st.selfRead
	if err := c.send(ctx, st, a, cc); err != nil && st.unsent(a, err) {
		st.launchAsync(nil)
	}
}

// launchAsync continues launch on a goroutine of the client; a, if not
// nil, is an attempt already routed.
func (st *callState) launchAsync(a *attempt) {
	if !st.client.goAsync(func() { st.launch(a) }) {
		if a != nil {
			a.report(nil, nil)
			st.mu.Lock()
			st.removeLive(a)
			st.mu.Unlock()
		}
		st.finish(ErrShutdown)
	}
}

// relaunch starts another attempt (a retry or a hedge) if the call is
// still running; it runs on a goroutine of the client.
func (st *callState) relaunch() { st.launch(nil) }

// hedge sends a backup request: the hedge timer's function.
func (st *callState) hedge() {
	if !st.finished.Load() {
		st.client.goAsync(st.relaunch) // refused: the client is closing, which ends the call
	}
}

// launch picks an instance and sends an attempt, moving on to another
// instance by itself while sends fail before the request left. It runs on
// a goroutine of the client, where it may wait for the service's first
// lookup and for a dial. a, if not nil, is an attempt already routed.
func (st *callState) launch(a *attempt) {
	c := st.client
	method := st.call.ServiceMethod
	ctx, cancel := st.asyncContext()
	defer cancel()
	for {
		if a == nil {
			if st.finished.Load() {
				return
			}
			if c.isClosed() {
				st.noRoute(ErrShutdown)
				return
			}
			var t *target
			var err error
			if st.pin == "" {
				t, err = c.waitTarget(ctx, st.service)
			}
			if err == nil {
				a, err = st.route(t, true)
			}
			if err != nil {
				st.noRoute(err)
				return
			}
		}
		p := c.staticPool
		if p == nil {
			p = c.pool(a.addr)
		}
		if err := c.checkSchema(ctx, st, p); err != nil {
			if !st.unsent(a, err) {
				return
			}
			a = nil
			continue
		}
		cc, err := p.getConn(ctx, a.canSkip)
		if err != nil {
			err = callError(method, a.addr, err)
		} else {
			err = c.send(ctx, st, a, cc)
		}
		if err == nil || !st.unsent(a, err) {
			return
		}
		a = nil
	}
}

// route picks the instance of the call's next attempt and makes the
// attempt; t is nil for a client of one server. With again, an instance
// already tried may be picked when no other is left.
func (st *callState) route(t *target, again bool) (*attempt, error) {
	st.mu.Lock()
	tried := st.tried
	st.mu.Unlock()
	addr := st.client.static
	if st.pin != "" {
		addr = st.pin
	}
	var lbDone func(lb.DoneInfo)
	if t != nil {
		var err error
		if addr, lbDone, err = t.pick(&st.opts, tried, again); err != nil {
			return nil, err
		}
	}
	a := &st.first
	st.mu.Lock()
	if st.tried == nil {
		st.tried, st.live = st.triedBuf[:0], st.liveBuf[:0]
	} else if len(st.tried) > 0 {
		a = new(attempt)
	}
	now := st.start
	if a != &st.first {
		now = time.Now()
	}
	*a = attempt{call: st.call, target: t, addr: addr, start: now, lbDone: lbDone}
	// Another instance may take the call unless every one was tried.
	a.canSkip = t != nil && !slices.Contains(tried, addr)
	st.tried = append(st.tried, addr)
	st.live = append(st.live, a)
	st.mu.Unlock()
	return a, nil
}

// noRoute ends the call with err, which says why no instance could be
// picked, unless another attempt (a hedge) is still running.
func (st *callState) noRoute(err error) {
	if st.client.isClosed() {
		err = ErrShutdown
	} else {
		err = callError(st.call.ServiceMethod, "", err)
	}
	st.mu.Lock()
	others := len(st.live)
	st.mu.Unlock()
	if others == 0 {
		st.finish(err)
	}
}

// unsent handles an attempt whose request did not leave; it reports
// whether to try another instance.
func (st *callState) unsent(a *attempt, err error) bool {
	if isNotRetryable(err) {
		a.ended(err) // out of time on a stalled connection, or cancelled
		st.mu.Lock()
		st.removeLive(a)
		st.mu.Unlock()
		st.finish(err)
		return false
	}
	// The instance is unusable right now; try another.
	a.report(err, err)
	st.mu.Lock()
	st.removeLive(a)
	retry := st.safeRetries < maxSafeRetries && !st.finished.Load()
	st.safeRetries++
	others := len(st.live)
	st.mu.Unlock()
	if !retry && others == 0 {
		if t := a.target; t != nil && t.stale() {
			var ce *callErr
			if errors.As(err, &ce) {
				err = ce.err
			}
			err = callError(st.call.ServiceMethod, "", fmt.Errorf("%w %s: the registry lists none; the last known, %s, failed: %w", ErrNoInstances, st.service, a.addr, err))
		}
		if c := st.client; c.isClosed() || (c.static != "" && !errors.Is(err, context.DeadlineExceeded)) {
			// A client of one server that cannot reach it is shut down,
			// as in net/rpc: err == ErrShutdown holds. The cause is logged.
			c.opts.logger.Debug("rpc: no connection for a call", "method", st.call.ServiceMethod, "addr", a.addr, "err", err)
			err = ErrShutdown
		}
		st.finish(err)
	}
	return retry
}

// asyncContext bounds work done for the call on the client's goroutines by
// the call's deadline and the client's life.
func (st *callState) asyncContext() (context.Context, context.CancelFunc) {
	if st.deadline.IsZero() {
		return context.WithCancel(st.client.ctx)
	}
	return context.WithDeadline(st.client.ctx, st.deadline)
}

// expire ends the call at its deadline.
func (st *callState) expire() {
	addr := "" // where the call waited, when that was one instance
	st.mu.Lock()
	if len(st.live) == 1 {
		addr = st.live[0].addr
	}
	st.mu.Unlock()
	st.finish(callError(st.call.ServiceMethod, addr, fmt.Errorf("%w after %v", ErrTimeout, time.Since(st.start).Round(time.Millisecond))))
}

// finish ends the call with err unless it has ended already, cancelling
// every attempt still pending.
func (st *callState) finish(err error) {
	if !st.finished.CompareAndSwap(false, true) {
		return
	}
	st.done(nil, err)
}

// done delivers the call after finished was set; winner (may be nil) is the
// attempt that answered.
func (st *callState) done(winner *attempt, err error) {
	st.mu.Lock()
	if st.timer != nil {
		st.timer.Stop()
	}
	if st.hedger != nil {
		st.hedger.Stop()
	}
	live := st.live
	st.live = nil
	type sent struct {
		cc  *clientConn
		seq uint64
	}
	var cancels []sent
	var losers []*attempt
	for _, a := range live {
		if a == winner {
			continue
		}
		losers = append(losers, a)
		if a.cc != nil {
			cancels = append(cancels, sent{a.cc, a.seq})
		}
	}
	st.mu.Unlock()
	for _, s := range cancels {
		s.cc.cancel(s.seq)
	}
	for _, a := range losers {
		a.ended(err)
	}
	call := st.call
	call.Error = err
	st.client.deliver(call)
}

// callErr is the error of a call: "rpc: call Calc.Add to 10.0.0.5:9000: "
// and what went wrong, whose own "rpc: " prefix it drops so that the text
// has one.
type callErr struct {
	method, addr string // addr is "" when no instance is concerned
	err          error
}

func callError(method, addr string, err error) error {
	return &callErr{method: method, addr: addr, err: err}
}

func (e *callErr) Error() string {
	s := "rpc: call " + e.method
	if e.addr != "" {
		s += " to " + e.addr
	}
	return s + ": " + strings.TrimPrefix(e.err.Error(), "rpc: ")
}

func (e *callErr) Unwrap() error { return e.err }

// notRetryable marks a send failure that another instance cannot fix (the
// args do not encode, the frame is too large); it adds nothing to the text.
type notRetryable struct{ err error }

func (e notRetryable) Error() string { return e.err.Error() }
func (e notRetryable) Unwrap() error { return e.err }

func isNotRetryable(err error) bool {
	var nr notRetryable
	return errors.As(err, &nr)
}

// statusError turns a response status into the error a caller sees.
func statusError(status wire.Status, msg string) error {
	switch status {
	case wire.StatusServerError:
		return ServerError(msg)
	case wire.StatusNoService:
		return wrapMsg(ErrNoService, msg)
	case wire.StatusNoMethod:
		return wrapMsg(ErrNoMethod, msg)
	case wire.StatusBadRequest:
		return wrapMsg(ErrBadRequest, msg)
	case wire.StatusOverloaded:
		return wrapMsg(ErrOverloaded, msg)
	case wire.StatusTimeout:
		return fmt.Errorf("%w (server: %s)", ErrTimeout, msg)
	case wire.StatusShuttingDown:
		return wrapMsg(ErrServerShuttingDown, msg)
	case wire.StatusInternalError:
		return wrapMsg(ErrInternal, msg)
	case wire.StatusUnauthenticated:
		return wrapMsg(ErrUnauthenticated, msg)
	case wire.StatusPermissionDenied:
		return wrapMsg(ErrPermissionDenied, msg)
	case wire.StatusTooLarge:
		return wrapMsg(ErrTooLarge, msg)
	}
	return fmt.Errorf("rpc: unknown response status %d: %s", status, msg)
}

// remoteError carries the server's message and matches a sentinel.
type remoteError struct {
	sentinel error
	msg      string
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

func wrapMsg(sentinel error, msg string) error {
	if msg == "" {
		return sentinel
	}
	return &remoteError{sentinel, msg}
}
