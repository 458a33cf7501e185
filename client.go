package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
	"github.com/seedrpc/rpc/lb"
)

// Client calls remote services over pooled, multiplexed connections. It is
// safe for concurrent use. Dial makes a client of one server; NewClient
// one that discovers the instances of each service in a registry.
type Client struct {
	opts    clientOptions
	network string
	static  string // Dial's address; "" for a discovering client
	// staticPool is the pool of static, looked up once.
	staticPool *connPool

	// pools holds the *connPool of each address; targets the *target of
	// each service (discovery). Both are read on every call, without a lock.
	pools   sync.Map
	targets sync.Map

	mu     sync.Mutex // guards closed and the creation of pools and targets
	closed bool

	stop chan struct{} // closed by Close
	// ctx is cancelled by Close; work the client does for calls on its own
	// goroutines (dials, first lookups, retries) derives from it.
	ctx    context.Context
	cancel context.CancelFunc
	// wg tracks every goroutine the client starts (readers, dials, the
	// health loop, watchers, retries) but callbacks, which cbs tracks.
	wg  goGroup
	cbs goGroup
}

// Dial returns a client of the server at addr. Connections are made as
// calls need them, so Dial fails only if the first connection cannot be
// made.
func Dial(network, addr string, opts ...ClientOption) (*Client, error) {
	c, err := newClient(network, addr, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.dialTimeout)
	defer cancel()
	if _, err := c.pool(addr).get(ctx, true); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// NewClient returns a client that finds the instances of each service in
// the registry given with WithRegistry and picks one per call with the
// balancer given with WithBalancer (default lb.RoundRobin()).
func NewClient(opts ...ClientOption) (*Client, error) {
	c, err := newClient("tcp", "", opts)
	if err != nil {
		return nil, err
	}
	if c.opts.registry == nil {
		c.Close()
		return nil, errors.New("rpc: NewClient needs WithRegistry (or use Dial for one server)")
	}
	return c, nil
}

func newClient(network, addr string, opts []ClientOption) (*Client, error) {
	o := defaultClientOptions()
	for _, opt := range opts {
		if opt != nil {
			opt.applyClient(&o)
		}
	}
	if o.call.timeout < 0 {
		return nil, fmt.Errorf("rpc: negative timeout %v", o.call.timeout)
	}
	c := &Client{
		opts:    o,
		network: network,
		static:  addr,
		stop:    make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if addr != "" {
		c.staticPool = c.pool(addr)
	}
	c.wg.Add(1)
	go c.healthLoop()
	return c, nil
}

// Call calls serviceMethod ("Service.Method") and waits for its reply.
func (c *Client) Call(serviceMethod string, args, reply any, opts ...CallOption) error {
	return c.CallContext(context.Background(), serviceMethod, args, reply, opts...)
}

// CallContext is Call bounded by ctx: when ctx ends first, the call returns
// ctx's error (a deadline also matches ErrTimeout) and the server is told to
// cancel the handler.
func (c *Client) CallContext(ctx context.Context, serviceMethod string, args, reply any, opts ...CallOption) error {
	done := doneChanPool.Get().(chan *Call)
	call := c.newCall(serviceMethod, args, reply, done, opts)
	if err := ctx.Err(); err != nil {
		doneChanPool.Put(done)
		return ctxError(call, err)
	}
	c.start(ctx, call)
	if ctx.Done() == nil {
		<-done
	} else {
		select {
		case <-done:
		case <-ctx.Done():
			call.st.finish(ctxError(call, ctx.Err()))
			<-done
		}
	}
	// A call is delivered exactly once, and that happened: nobody else
	// sends on done, so it can serve another call.
	doneChanPool.Put(done)
	return call.Error
}

// doneChanPool recycles the Done channels of synchronous calls.
var doneChanPool = sync.Pool{New: func() any { return make(chan *Call, 1) }}

// ctxError wraps a context's error; a deadline matches ErrTimeout too.
func ctxError(call *Call, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("rpc: call %s: %w (%w)", call.ServiceMethod, ErrTimeout, err)
	}
	return fmt.Errorf("rpc: call %s: %w", call.ServiceMethod, err)
}

// Go calls serviceMethod asynchronously and returns its Call; the Call is
// sent on done when it completes. A nil done gets a new channel of capacity
// 1. As in net/rpc, done must be buffered: an unbuffered one is refused
// (the Call comes back finished with an error, on a new buffered Done). A
// reply is never dropped: if done is full, delivery waits on a goroutine
// the client owns until there is room or the client is closed.
func (c *Client) Go(serviceMethod string, args, reply any, done chan *Call, opts ...CallOption) *Call {
	if done == nil {
		done = make(chan *Call, 1)
	} else if cap(done) == 0 {
		call := c.newCall(serviceMethod, args, reply, make(chan *Call, 1), opts)
		call.Error = errors.New("rpc: done channel is unbuffered")
		call.Done <- call
		return call
	}
	call := c.newCall(serviceMethod, args, reply, done, opts)
	c.start(context.Background(), call)
	return call
}

// Callback calls serviceMethod asynchronously and runs fn with the finished
// Call exactly once, on a goroutine the client owns (never the connection's
// reader). Close waits for running callbacks.
func (c *Client) Callback(serviceMethod string, args, reply any, fn func(*Call), opts ...CallOption) {
	call := c.newCall(serviceMethod, args, reply, nil, opts)
	call.st.callback = fn
	c.start(context.Background(), call)
}

// Oneway sends a call whose reply nobody waits for; the handler's error, if
// any, is logged by the server. It returns once the request is written to a
// connection, bounded by the call's timeout.
func (c *Client) Oneway(serviceMethod string, args any, opts ...CallOption) error {
	call := c.newCall(serviceMethod, args, nil, make(chan *Call, 1), opts)
	call.st.oneway = true
	ctx := context.Background()
	if !call.st.deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, call.st.deadline)
		defer cancel()
	}
	c.start(ctx, call)
	<-call.Done
	return call.Error
}

// newCall prepares a Call with the client's default options and opts.
func (c *Client) newCall(serviceMethod string, args, reply any, done chan *Call, opts []CallOption) *Call {
	call := &Call{ServiceMethod: serviceMethod, Args: args, Reply: reply, Done: done}
	st := &call.st
	st.call = call
	st.client = c
	st.opts = c.opts.call
	for _, o := range opts {
		if o != nil {
			o.applyCall(&st.opts)
		}
	}
	st.start = time.Now()
	if st.opts.timeout > 0 {
		st.deadline = st.start.Add(st.opts.timeout)
	}
	return call
}

// start validates the call, arms its timer and launches the first attempt.
func (c *Client) start(ctx context.Context, call *Call) {
	st := &call.st
	if dl, ok := ctx.Deadline(); ok && (st.deadline.IsZero() || dl.Before(st.deadline)) {
		st.deadline = dl
	}
	dot := -1
	for i := len(call.ServiceMethod) - 1; i >= 0; i-- {
		if call.ServiceMethod[i] == '.' {
			dot = i
			break
		}
	}
	if dot <= 0 || dot == len(call.ServiceMethod)-1 {
		st.finish(fmt.Errorf("%w: malformed method name %q, want \"Service.Method\"", ErrNoMethod, call.ServiceMethod))
		return
	}
	st.service = call.ServiceMethod[:dot]
	if c.isClosed() {
		st.finish(fmt.Errorf("rpc: call %s: %w", call.ServiceMethod, ErrShutdown))
		return
	}
	if !st.deadline.IsZero() {
		d := time.Until(st.deadline)
		if d <= 0 {
			st.expire()
			return
		}
		st.mu.Lock()
		st.timer = time.AfterFunc(d, st.expire)
		st.mu.Unlock()
	}
	if st.opts.hedge > 0 && !st.oneway {
		st.mu.Lock()
		st.hedger = time.AfterFunc(st.opts.hedge, func() { c.goAsync(st.relaunch) })
		st.mu.Unlock()
	}
	if st.launch(ctx, false) == errWouldBlock {
		c.goAsync(st.relaunch)
	}
}

// send encodes the call and writes it on a connection to a.addr. An error
// means the request did not leave; it is a notRetryable when no other
// instance could do better.
func (c *Client) send(ctx context.Context, st *callState, a *attempt, block bool) error {
	call := st.call
	if len(call.ServiceMethod) > wire.MaxMethodLen {
		return notRetryable{fmt.Errorf("rpc: call %.40s...: method name of %d bytes exceeds %d", call.ServiceMethod, len(call.ServiceMethod), wire.MaxMethodLen)}
	}
	p := c.staticPool
	if p == nil {
		p = c.pool(a.addr)
	}
	cc, err := p.get(ctx, block)
	if err != nil {
		return err
	}
	cc.lastUsed.Store(a.start.UnixNano())
	bp := getBuf(wire.HeaderSize + len(call.ServiceMethod))
	defer putBuf(bp)
	buf := *bp
	copy(buf[wire.HeaderSize:], call.ServiceMethod)
	metaStart := len(buf)
	if !st.deadline.IsZero() {
		buf = wire.AppendTimeout(buf, time.Until(st.deadline))
	}
	for _, kv := range st.opts.meta {
		if strings.HasPrefix(kv.key, ":") {
			err = fmt.Errorf("header key %q: keys starting with ':' are reserved", kv.key)
		} else {
			buf, err = wire.AppendMeta(buf, kv.key, []byte(kv.val))
		}
		if err != nil {
			*bp = buf[:0]
			return notRetryable{fmt.Errorf("rpc: call %s: %w", call.ServiceMethod, err)}
		}
	}
	bodyStart := len(buf)
	buf, err = c.opts.codec.AppendMarshal(buf, call.Args)
	*bp = buf[:0]
	if err != nil {
		return notRetryable{fmt.Errorf("rpc: call %s: encoding args: %w", call.ServiceMethod, err)}
	}
	if n := len(buf) - wire.HeaderSize; n > c.opts.maxFrame {
		return notRetryable{fmt.Errorf("rpc: call %s: request of %d bytes exceeds the frame limit of %d", call.ServiceMethod, n, c.opts.maxFrame)}
	}
	typ := wire.TypeRequest
	if st.oneway {
		typ = wire.TypeOneway
	}
	hdr := wire.Header{
		Type:      typ,
		Codec:     c.opts.codec.ID(),
		MethodLen: uint16(len(call.ServiceMethod)),
		MetaLen:   uint32(bodyStart - metaStart),
		BodyLen:   uint32(len(buf) - bodyStart),
	}
	if st.oneway {
		hdr.Seq = cc.seq.Add(1)
		wire.PutHeader(buf, &hdr)
		if err := cc.w.WriteBy(ctx, st.deadline, buf, true); err != nil {
			if errors.Is(err, wire.ErrWriteContinues) {
				// It will reach the server: never send it again.
				return notRetryable{fmt.Errorf("rpc: call %s to %s: %w (%w)", call.ServiceMethod, a.addr, ErrTimeout, err)}
			}
			if ctx.Err() != nil {
				return notRetryable{ctxError(call, ctx.Err())}
			}
			return fmt.Errorf("rpc: call %s to %s: %w", call.ServiceMethod, a.addr, err)
		}
		a.report(nil, nil)
		st.mu.Lock()
		st.removeLive(a)
		st.mu.Unlock()
		st.finish(nil)
		return nil
	}
	seq, err := cc.register(a)
	if err != nil {
		return fmt.Errorf("rpc: call %s to %s: %w", call.ServiceMethod, a.addr, err)
	}
	st.mu.Lock()
	a.cc, a.seq = cc, seq
	st.mu.Unlock()
	hdr.Seq = seq
	wire.PutHeader(buf, &hdr)
	if err := cc.w.WriteBy(ctx, st.deadline, buf, false); err != nil && !errors.Is(err, wire.ErrWriteContinues) {
		// (ErrWriteContinues: the request will reach the server, so the
		// attempt stays pending and the call's timer ends it.)
		if cc.unregister(seq) {
			return fmt.Errorf("rpc: call %s to %s: %w", call.ServiceMethod, a.addr, err)
		}
		// The reader failed the attempt already; it handles the retry.
	}
	if st.finished.Load() {
		cc.cancel(seq) // finished (timed out) while we were sending
		a.report(nil, nil)
	}
	return nil
}

// deliver hands a finished call to its owner: Done channel or callback.
func (c *Client) deliver(call *Call) {
	if fn := call.st.callback; fn != nil {
		c.cbs.Add(1)
		go c.runCallback(fn, call)
		return
	}
	select {
	case call.Done <- call:
		return
	default:
	}
	// Done is full: wait for room on a goroutine we own, never dropping.
	c.goAsync(func() {
		select {
		case call.Done <- call:
		case <-c.stop:
			c.opts.logger.Warn("rpc: client closed before a reply could be delivered on a full Done channel", "method", call.ServiceMethod)
		}
	})
}

// runCallback runs a Callback's function; Close recognises it by name.
func (c *Client) runCallback(fn func(*Call), call *Call) {
	defer c.cbs.Done()
	fn(call)
}

// inCallback reports whether the calling goroutine is running a Callback's
// function (runCallback is then at the bottom of its stack). Argument values
// in a traceback are not reliable, so it does not tell which client's: Close
// of client B from a callback of client A does not wait for B's callbacks.
// Only Close asks, so the cost of reading the stack does not matter.
func inCallback() bool {
	buf := make([]byte, 64<<10)
	buf = buf[:runtime.Stack(buf, false)]
	return bytes.Contains(buf, []byte("seedrpc/rpc.(*Client).runCallback("))
}

// goAsync runs fn on a goroutine the client tracks.
func (c *Client) goAsync(fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

// pool returns the connection pool of addr, creating it.
func (c *Client) pool(addr string) *connPool {
	if v, ok := c.pools.Load(addr); ok {
		return v.(*connPool)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, _ := c.pools.LoadOrStore(addr, &connPool{client: c, addr: addr, closed: c.closed})
	return v.(*connPool)
}

// route picks the address for the next attempt of a call to service; t is
// nil for a client of one server.
func (c *Client) route(service string, o *callOptions, tried []string, block bool) (t *target, addr string, done func(lb.DoneInfo), err error) {
	if c.static != "" {
		return nil, c.static, nil, nil
	}
	if t, err = c.target(service, block); err != nil {
		return nil, "", nil, err
	}
	addr, done, err = t.pick(o, tried)
	return t, addr, done, err
}

// onDraining stops routing new calls to addr, which is shutting down.
func (c *Client) onDraining(addr string) {
	c.targets.Range(func(_, v any) bool {
		v.(*target).drain(addr)
		return true
	})
}

// isClosed reports whether Close began; it takes no lock, as every call asks.
func (c *Client) isClosed() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// healthLoop pings silent connections and trims idle ones.
func (c *Client) healthLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(max(c.opts.keepalive/2, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case now := <-tick.C:
			c.pools.Range(func(_, v any) bool {
				v.(*connPool).check(now)
				return true
			})
		}
	}
}

// Close fails pending calls with ErrShutdown, closes every connection,
// stops every goroutine the client started and waits for them, running
// callbacks included (except when Close is called from a callback). Calling
// it again returns nil.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	close(c.stop)
	c.cancel()
	c.targets.Range(func(_, v any) bool {
		v.(*target).close()
		return true
	})
	c.pools.Range(func(_, v any) bool {
		v.(*connPool).close()
		return true
	})
	c.wg.Wait()
	if !inCallback() {
		// Called from a callback, Close cannot wait for callbacks: it
		// would wait for itself.
		c.cbs.Wait()
	}
	return nil
}

// goGroup counts goroutines like sync.WaitGroup, but Add may run while Wait
// waits (a call started as the client closes starts its goroutine then):
// Wait returns once the count is zero.
type goGroup struct {
	mu   sync.Mutex // guards n
	n    int
	zero *sync.Cond
}

func (g *goGroup) Add(d int) {
	g.mu.Lock()
	g.n += d
	if g.n == 0 && g.zero != nil {
		g.zero.Broadcast()
	}
	g.mu.Unlock()
}

func (g *goGroup) Done() { g.Add(-1) }

func (g *goGroup) Wait() {
	g.mu.Lock()
	if g.zero == nil {
		g.zero = sync.NewCond(&g.mu)
	}
	for g.n > 0 {
		g.zero.Wait()
	}
	g.mu.Unlock()
}
