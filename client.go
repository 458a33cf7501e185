package rpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
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
	// closing is set by Close before it closes stop: what isClosed reads,
	// as every call asks (a receive from stop on every call contends with
	// the goroutines that wait on it).
	closing atomic.Bool
	// budget bounds the reply bytes held in buffers (WithMaxBufferedBytes).
	budget *memBudget
	// ctx is cancelled by Close; work the client does for calls on its own
	// goroutines (dials, lookups, retries) derives from it.
	ctx    context.Context
	cancel context.CancelFunc
	// wg tracks every goroutine the client starts (readers, dials, the
	// health loop, watchers, retries) but callbacks.
	wg goGroup

	// now is the clock of ejection, grace and backoff periods, and dial
	// opens connections; tests replace them.
	now  func() time.Time
	dial func(ctx context.Context, addr string) (net.Conn, error)

	// bulkMin is the smallest request body that goes on a bulk connection
	// (client_bulk.go); tests change it. largeReplies holds the methods
	// that answered with a reply at least as large (method → struct{});
	// anyLargeReply is set once it holds one.
	bulkMin       uint32
	largeReplies  sync.Map
	anyLargeReply atomic.Bool

	// chain runs the interceptors around a call; nil without interceptors.
	chain Invoker
	// codec, when set, is the client's one connection, through a net/rpc
	// ClientCodec (netrpc_client.go); there are no pools then.
	codec *codecClient
}

// Dial returns a client of the server at addr. Connections are made as
// calls need them, so Dial fails only if the first connection cannot be
// made.
func Dial(network, addr string, opts ...ClientOption) (*Client, error) {
	c, err := newClient(network, addr, opts)
	if err != nil {
		return nil, err
	}
	return c.connect()
}

// connect makes the first connection of a client of one server, so that
// Dial fails when the server cannot be reached.
func (c *Client) connect() (*Client, error) {
	var err error
	if c.opts.netRPC {
		err = c.dialNetRPC()
	} else if _, err = c.staticPool.get(c.ctx); err != nil {
		err = fmt.Errorf("rpc: %w", err)
	}
	if err != nil {
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
	if c.opts.netRPC {
		c.Close()
		return nil, errors.New("rpc: WithNetRPC is for a client of one server: use Dial, DialHTTP or NewClientConn")
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
		budget:  newMemBudget(o.maxBuffered),
		bulkMin: bulkMin,
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.now = time.Now
	c.dial = c.dialer
	c.chain = chainClient(o.interceptors, c.invoke)
	if addr != "" {
		c.staticPool = c.pool(addr)
	}
	c.wg.Go(c.healthLoop)
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
	return c.callSync(ctx, c.newCall(serviceMethod, args, reply, nil, opts))
}

// callSync runs call, made without a Done channel, and waits for it: the
// body of CallContext and of a typed Call.
func (c *Client) callSync(ctx context.Context, call *Call) error {
	if c.chain != nil {
		err := c.intercept(ctx, call)
		if p := call.st.opts.respHeader; p != nil {
			*p = call.ResponseHeader
		}
		return err
	}
	done := doneChanPool.Get().(chan *Call)
	call.Done = done
	if err := ctx.Err(); err != nil {
		doneChanPool.Put(done)
		return ctxError(call, err)
	}
	call.st.selfRead = call.st.opts.hedge == 0
	c.start(ctx, call)
	c.readOwn(ctx, call)
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
	if p := call.st.opts.respHeader; p != nil {
		*p = call.ResponseHeader
	}
	return call.Error
}

// doneChanPool recycles the Done channels of synchronous calls.
var doneChanPool = sync.Pool{New: func() any { return make(chan *Call, 1) }}

// writeTimeout is the error of a call whose deadline passed while its
// frame waited to be written to addr: it matches ErrTimeout, as the call's
// timer would have ended it.
func writeTimeout(method, addr string, err error) error {
	return callError(method, addr, fmt.Errorf("%w (%w)", ErrTimeout, err))
}

// ctxError wraps a context's error; a deadline matches ErrTimeout too.
func ctxError(call *Call, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (%w)", ErrTimeout, err)
	}
	return callError(call.ServiceMethod, "", err)
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
	if c.chain != nil {
		c.interceptAsync(context.Background(), call)
		return call
	}
	c.start(context.Background(), call)
	return call
}

// Callback calls serviceMethod asynchronously and runs fn with the finished
// Call exactly once, on a goroutine of its own (never the connection's
// reader, so fn may make calls). Close does not wait for fn to return, so
// fn may call Close.
func (c *Client) Callback(serviceMethod string, args, reply any, fn func(*Call), opts ...CallOption) {
	call := c.newCall(serviceMethod, args, reply, nil, opts)
	call.st.callback = fn
	if c.chain != nil {
		c.interceptAsync(context.Background(), call)
		return
	}
	c.start(context.Background(), call)
}

// Oneway sends a call whose reply nobody waits for; the handler's error, if
// any, is logged by the server. It returns once the request is written to a
// connection, bounded by the call's timeout.
func (c *Client) Oneway(serviceMethod string, args any, opts ...CallOption) error {
	return c.oneway(context.Background(), c.newCall(serviceMethod, args, nil, nil, opts))
}

// oneway sends call, made without a Done channel, as a oneway call: the
// body of Oneway and of a typed Oneway, whose ctx may end the wait.
func (c *Client) oneway(ctx context.Context, call *Call) error {
	call.st.oneway = true
	cancellable := ctx.Done() != nil
	if !call.st.deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, call.st.deadline)
		defer cancel()
	}
	if c.chain != nil {
		return c.intercept(ctx, call)
	}
	if err := ctx.Err(); err != nil {
		return ctxError(call, err)
	}
	done := doneChanPool.Get().(chan *Call)
	call.Done = done
	c.start(ctx, call)
	if cancellable {
		select {
		case <-done:
		case <-ctx.Done():
			call.st.finish(ctxError(call, ctx.Err()))
			<-done
		}
	} else {
		<-done
	}
	doneChanPool.Put(done) // delivered exactly once: nobody sends on it again
	return call.Error
}

// newCall prepares a Call with the client's default options and opts.
func (c *Client) newCall(serviceMethod string, args, reply any, done chan *Call, opts []CallOption) *Call {
	call := new(Call)
	c.initCall(call, serviceMethod, args, reply, done, opts)
	return call
}

// initCall prepares call, a zero Call, as newCall does; typed calls embed
// their Call in a larger allocation.
func (c *Client) initCall(call *Call, serviceMethod string, args, reply any, done chan *Call, opts []CallOption) {
	call.ServiceMethod, call.Args, call.Reply, call.Done = serviceMethod, args, reply, done
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
	st.checkSchema = st.opts.schemaCheck > 0
}

// start validates the call, arms its timers and launches its first
// attempt.
func (c *Client) start(ctx context.Context, call *Call) {
	st := &call.st
	if dl, ok := ctx.Deadline(); ok && (st.deadline.IsZero() || dl.Before(st.deadline)) {
		st.deadline = dl
	}
	// As in net/rpc, a client of one server sends any name and the server
	// answers a malformed one; a discovering client needs the service name
	// to route by.
	dot := strings.LastIndexByte(call.ServiceMethod, '.')
	if c.static == "" && (dot <= 0 || dot == len(call.ServiceMethod)-1) {
		st.finish(wrapMsg(ErrNoMethod, "rpc: service/method request ill-formed: "+call.ServiceMethod))
		return
	}
	if len(call.ServiceMethod) > wire.MaxMethodLen {
		st.finish(fmt.Errorf("rpc: call %.40s...: method name of %d bytes exceeds %d", call.ServiceMethod, len(call.ServiceMethod), wire.MaxMethodLen))
		return
	}
	if dot >= 0 {
		st.service = call.ServiceMethod[:dot]
	}
	if c.isClosed() {
		st.finish(ErrShutdown) // bare, as in net/rpc: err == ErrShutdown holds
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
	if c.codec != nil {
		c.codec.send(ctx, st) // one connection: no hedges, no retries
		return
	}
	if st.opts.hedge > 0 && !st.oneway {
		st.mu.Lock()
		st.hedger = time.AfterFunc(st.opts.hedge, st.hedge)
		st.mu.Unlock()
	}
	st.launchFast(ctx)
}

// encode builds the request frame of call, all but the header's sequence
// number, in a pooled buffer the caller returns with putBuf. An error is
// a notRetryable: no instance could do better. s2 says whether the server
// accepts compressed bodies.
func (c *Client) encode(st *callState, s2 bool) (*[]byte, wire.Header, error) {
	call := st.call
	bp := getEncodeBuf(wire.HeaderSize+len(call.ServiceMethod), call.Args) // encode_buf.go
	buf := *bp
	copy(buf[wire.HeaderSize:], call.ServiceMethod)
	metaStart := len(buf)
	if !st.deadline.IsZero() {
		buf = wire.AppendTimeout(buf, time.Until(st.deadline))
	}
	var err error
	if call.Header != nil {
		for k, v := range call.Header {
			if buf, err = appendHeader(buf, k, v); err != nil {
				break
			}
		}
	} else {
		for _, kv := range st.opts.meta {
			if buf, err = appendHeader(buf, kv.key, kv.val); err != nil {
				break
			}
		}
	}
	bodyStart := len(buf)
	if err == nil {
		buf, err = c.opts.codec.AppendMarshal(buf, call.Args)
		if err != nil {
			err = fmt.Errorf("encoding args: %w", err)
		}
	}
	*bp = buf
	if err == nil && len(buf)-wire.HeaderSize > c.opts.maxFrame {
		err = wrapMsg(ErrTooLarge, fmt.Sprintf("request of %d bytes exceeds the client's frame limit of %d", len(buf)-wire.HeaderSize, c.opts.maxFrame))
	}
	if err != nil {
		putBuf(bp)
		return nil, wire.Header{}, notRetryable{callError(call.ServiceMethod, "", err)}
	}
	typ := wire.TypeRequest
	if st.oneway {
		typ = wire.TypeOneway
	}
	codecByte := c.opts.codec.ID()
	if c.opts.compressMin > 0 && s2 && compressBody(bp, bodyStart, c.opts.compressMin) {
		codecByte |= wire.CompressS2
		buf = *bp
	}
	return bp, wire.Header{
		Type:      typ,
		Codec:     codecByte,
		MethodLen: uint16(len(call.ServiceMethod)),
		MetaLen:   uint32(bodyStart - metaStart),
		BodyLen:   uint32(len(buf) - bodyStart),
	}, nil
}

// appendHeader appends one request header, refusing reserved keys.
func appendHeader(buf []byte, key, val string) ([]byte, error) {
	if strings.HasPrefix(key, ":") {
		return buf, fmt.Errorf("header key %q: keys starting with ':' are reserved", key)
	}
	return wire.AppendMeta(buf, key, []byte(val))
}

// send encodes the call and writes it on cc for attempt a. An error means
// the request did not leave; it is a notRetryable when no other instance
// could do better.
func (c *Client) send(ctx context.Context, st *callState, a *attempt, cc *clientConn) error {
	bp, hdr, err := c.encode(st, cc.peerS2.Load())
	if err != nil {
		return err
	}
	defer putBuf(bp)
	if (hdr.BodyLen >= c.bulkMin || c.anyLargeReply.Load() && c.repliesLarge(st.call.ServiceMethod)) && !cc.pool.isBulk {
		cc = cc.pool.bulkConn(ctx, st.deadline, cc) // client_bulk.go
	}
	cc.lastUsed.Store(a.start.UnixNano())
	if st.oneway {
		return c.writeOneway(ctx, st, a, cc, *bp, &hdr)
	}
	return c.writeRequest(ctx, st, a, cc, *bp, &hdr)
}

// writeOneway writes a oneway frame and, once it is written, finishes the
// call: nobody waits for a reply.
func (c *Client) writeOneway(ctx context.Context, st *callState, a *attempt, cc *clientConn, frame []byte, hdr *wire.Header) error {
	method := st.call.ServiceMethod
	hdr.Seq = cc.seq.Add(1)
	var (
		end int64
		err error
	)
	if needsChunks(int(hdr.BodyLen), cc.peerChunks.Load()) {
		// A chunked oneway runs only once its last piece arrived whole:
		// a failed write left it incomplete (end 0: send it elsewhere).
		err = cc.writeChunked(ctx, st.deadline, frame, *hdr, nil)
	} else {
		wire.PutHeader(frame, hdr)
		end, err = cc.w.WriteFrame(ctx, st.deadline, frame, true)
	}
	if err != nil {
		if errors.Is(err, wire.ErrWriteContinues) {
			// It will reach the server: never send it again.
			return notRetryable{callError(method, a.addr, fmt.Errorf("%w (%w)", ErrTimeout, err))}
		}
		if ctx.Err() != nil {
			return notRetryable{ctxError(st.call, ctx.Err())}
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return notRetryable{writeTimeout(method, a.addr, err)}
		}
		// The connection failed: if the kernel took the frame whole (a
		// later frame of the batch failed), it is written; else send it
		// elsewhere.
		if end == 0 || end > cc.w.Settle() {
			return callError(method, a.addr, err)
		}
	}
	a.report(nil, nil)
	st.mu.Lock()
	st.removeLive(a)
	st.mu.Unlock()
	st.finish(nil)
	return nil
}

// writeRequest registers a as pending on cc and writes its request; the
// reader completes it.
func (c *Client) writeRequest(ctx context.Context, st *callState, a *attempt, cc *clientConn, frame []byte, hdr *wire.Header) error {
	if a.selfRead {
		if err := cc.lentCheck(); err != nil {
			return callError(st.call.ServiceMethod, a.addr, err) // never left: try elsewhere
		}
	}
	seq, err := cc.register(a)
	if err != nil {
		return callError(st.call.ServiceMethod, a.addr, err)
	}
	st.mu.Lock()
	a.cc, a.seq = cc, seq
	st.mu.Unlock()
	hdr.Seq = seq
	var end int64
	if needsChunks(int(hdr.BodyLen), cc.peerChunks.Load()) {
		// A chunked request runs only once its last piece arrived whole: a
		// failed write left it incomplete (never run: try elsewhere); a
		// written one counts as sent (end 1: settled once anything left).
		err = cc.writeChunked(ctx, st.deadline, frame, *hdr, st.finished.Load)
		end = 1
		if err != nil {
			end = wendNone
		}
		if errors.Is(err, errAborted) {
			err = nil // the call finished while it was sent: cancelled below
		}
	} else {
		wire.PutHeader(frame, hdr)
		end, err = cc.w.WriteFrame(ctx, st.deadline, frame, false)
	}
	if !a.selfRead {
		cc.resumeReader() // nobody else reads its response (client_selfread.go)
	}
	if end == 0 {
		end = wendNone
	}
	if err != nil && !errors.Is(err, wire.ErrWriteContinues) && cc.unregister(seq) {
		// (ErrWriteContinues: the request will reach the server, so the
		// attempt stays pending and the call's timer ends it.)
		if errors.Is(err, context.DeadlineExceeded) && !cc.settled(end) {
			// The call's time ran out while its frame waited behind
			// others on a stalled connection: no time is left to send it
			// elsewhere. (The call's own timer may not have fired yet.)
			return notRetryable{writeTimeout(st.call.ServiceMethod, a.addr, err)}
		}
		if !cc.settled(end) {
			return callError(st.call.ServiceMethod, a.addr, err) // never left: try elsewhere
		}
		a.failed(err, true) // a batch write failed after it took our frame whole
		return nil
	}
	if !a.wend.CompareAndSwap(0, end) {
		// The connection failed while we wrote and left the verdict to us.
		a.failed(cc.failure(), cc.settled(end))
		return nil
	}
	if st.finished.Load() {
		// Finished (timed out, cancelled, or answered elsewhere) while we
		// were sending. The call's done reports the attempt, with the
		// call's outcome: a report here could come first and count a
		// timeout on this instance as a success.
		cc.cancel(seq)
	}
	return nil
}

// deliver hands a finished call to its owner: Done channel or callback.
func (c *Client) deliver(call *Call) {
	if w := call.st.wait; w != nil {
		w <- call // the interceptor chain's, with room for it
		return
	}
	if o := call.st.owner; o != nil {
		o.complete() // a typed call's; it does not block
		return
	}
	if fn := call.st.callback; fn != nil {
		// On a goroutine of its own, never the reader's or a timer's; Close
		// does not wait for it (it may be the caller of Close).
		go fn(call)
		return
	}
	select {
	case call.Done <- call:
		return
	default:
	}
	// Done is full: wait for room on a goroutine we own, never dropping.
	wait := func() {
		select {
		case call.Done <- call:
		case <-c.stop:
			c.opts.logger.Warn("rpc: client closed before a reply could be delivered on a full Done channel", "method", call.ServiceMethod)
		}
	}
	if !c.goAsync(wait) {
		wait() // closed: c.stop is closed, so this returns at once
	}
}

// goAsync runs fn on a goroutine the client tracks. Once Close has begun it
// starts nothing and reports false.
func (c *Client) goAsync(fn func()) bool { return c.wg.Go(fn) }

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

// onDraining stops routing new calls to addr, which is shutting down.
func (c *Client) onDraining(addr string) {
	c.targets.Range(func(_, v any) bool {
		v.(*target).drain(addr)
		return true
	})
}

// isClosed reports whether Close began; it takes no lock, as every call asks.
func (c *Client) isClosed() bool { return c.closing.Load() }

// healthLoop pings silent connections and trims idle ones.
func (c *Client) healthLoop() {
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
// and stops every goroutine the client started and waits for them. It does
// not wait for Callback functions that are running (one of them may be
// the caller): every callback has been started when Close returns, and a
// program that must know they have returned tracks that itself. Calling
// Close again returns nil.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.closing.Store(true)
	close(c.stop)
	c.cancel() // aborts dials and registry lookups in progress
	c.wg.close()
	c.targets.Range(func(_, v any) bool {
		v.(*target).close()
		return true
	})
	c.pools.Range(func(_, v any) bool {
		v.(*connPool).close()
		return true
	})
	if c.codec != nil {
		c.codec.shutdown()
	}
	c.wg.Wait()
	return nil
}

// goGroup tracks goroutines like sync.WaitGroup, except that Go may run
// while Wait waits (a reader failing its calls as the client closes starts
// their retries then), and that after close it starts nothing: no work
// begins once Close has returned.
type goGroup struct {
	mu     sync.Mutex // guards the fields below
	n      int
	closed bool
	zero   *sync.Cond
}

// Go runs fn on a new goroutine and reports true, or reports false once
// the group is closed.
func (g *goGroup) Go(fn func()) bool {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	g.n++
	g.mu.Unlock()
	go func() {
		defer g.done()
		fn()
	}()
	return true
}

func (g *goGroup) done() {
	g.mu.Lock()
	g.n--
	if g.n == 0 && g.zero != nil {
		g.zero.Broadcast()
	}
	g.mu.Unlock()
}

// close makes Go refuse from now on.
func (g *goGroup) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// Wait waits until no goroutine of the group runs.
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
