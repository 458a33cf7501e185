package rpc

import (
	"context"
	"fmt"
	"sync"
)

// Method is a typed handle on one remote method: calls take a Req and
// return a Resp, with no interface values and no reply pointer. It is
// safe for concurrent use and cheap to keep; make it once with NewMethod.
//
// Every call style of Client is here, built on the same call machinery:
// every CallOption works and client interceptors apply (they see
// call.Args as a *Req and call.Reply as a *Resp). Before the first
// request to each server address, the shapes of Req and Resp are checked
// against the server's method (see WithSchemaCheck, which turns it off);
// an incompatible call fails with ErrSchemaMismatch.
type Method[Req, Resp any] struct {
	c    *Client
	name string
}

// NewMethod returns a typed handle on serviceMethod ("Service.Method")
// through c. A malformed name fails each call, as it does with Call.
func NewMethod[Req, Resp any](c *Client, serviceMethod string) *Method[Req, Resp] {
	return &Method[Req, Resp]{c: c, name: serviceMethod}
}

// syncCall is the one allocation of a typed Call or Oneway: the Call
// with its args and reply.
type syncCall[Req, Resp any] struct {
	call Call
	req  Req
	resp Resp
}

// asyncCall is the one allocation of a typed Go or Callback: the Future
// with the args.
type asyncCall[Req, Resp any] struct {
	f   Future[Resp]
	req Req
}

// init prepares call, whose args and reply are at req and resp.
func (m *Method[Req, Resp]) init(call *Call, req *Req, resp *Resp, opts []CallOption) {
	m.c.initCall(call, m.name, req, resp, nil, opts)
	call.st.checkSchema = call.st.opts.schemaCheck >= 0
}

func (m *Method[Req, Resp]) newSync(req Req, opts []CallOption) *syncCall[Req, Resp] {
	sc := &syncCall[Req, Resp]{req: req}
	m.init(&sc.call, &sc.req, &sc.resp, opts)
	return sc
}

func (m *Method[Req, Resp]) newFuture(req Req, opts []CallOption) *Future[Resp] {
	ac := &asyncCall[Req, Resp]{req: req}
	f := &ac.f
	m.init(&f.call, &ac.req, &f.resp, opts)
	f.call.st.owner = f
	return f
}

// Call calls the method with req and waits for its reply, as
// Client.CallContext does: when ctx ends first, the call returns ctx's
// error (a deadline also matches ErrTimeout) and the server is told to
// cancel the handler. On error the Resp is the zero value.
func (m *Method[Req, Resp]) Call(ctx context.Context, req Req, opts ...CallOption) (Resp, error) {
	sc := m.newSync(req, opts)
	if err := m.c.callSync(ctx, &sc.call); err != nil {
		var zero Resp
		return zero, err
	}
	return sc.resp, nil
}

// Go calls the method with req asynchronously and returns its Future.
// ctx bounds the call: its deadline is the call's (with WithTimeout's, the
// earlier wins), and its end ends the call with ctx's error. Go starts no
// goroutine of its own (but for a client with interceptors, whose chain
// runs on one, as for Client.Go).
func (m *Method[Req, Resp]) Go(ctx context.Context, req Req, opts ...CallOption) *Future[Resp] {
	f := m.newFuture(req, opts)
	f.done = make(chan struct{})
	startTyped(ctx, m.c, f)
	return f
}

// Callback calls the method with req asynchronously and runs fn with the
// reply (the zero value on error) and the error exactly once, on a
// goroutine of its own (never the connection's reader, so fn may make
// calls). ctx bounds the call as for Go. Close does not wait for fn to
// return.
func (m *Method[Req, Resp]) Callback(ctx context.Context, req Req, fn func(Resp, error), opts ...CallOption) {
	f := m.newFuture(req, opts)
	f.fn = fn
	startTyped(ctx, m.c, f)
}

// Oneway sends req to the method and waits for no reply, as
// Client.Oneway does: it returns once the request is written to a
// connection, bounded by the call's timeout and by ctx.
func (m *Method[Req, Resp]) Oneway(ctx context.Context, req Req, opts ...CallOption) error {
	sc := m.newSync(req, opts)
	return m.c.oneway(ctx, &sc.call)
}

// Future is the pending result of Method.Go.
type Future[Resp any] struct {
	call Call
	resp Resp
	done chan struct{} // closed when the call is done (Go)
	fn   func(Resp, error)

	mu sync.Mutex // guards the fields below
	// stop unregisters the function that ends the call when Go's ctx ends.
	stop func() bool
	// completed is set once the call is done.
	completed bool
}

// Done returns a channel that is closed when the call is done.
func (f *Future[Resp]) Done() <-chan struct{} { return f.done }

// Await waits for the call to be done and returns its reply (the zero
// value on error) and error. If ctx ends first, Await returns at once with
// an error matching ctx's; the call goes on, and completes or times out on
// its own terms (Await may be called again, or Done and Result used).
func (f *Future[Resp]) Await(ctx context.Context) (Resp, error) {
	select {
	case <-f.done:
		return f.result()
	default:
	}
	select {
	case <-f.done:
		return f.result()
	case <-ctx.Done():
		var zero Resp
		return zero, fmt.Errorf("rpc: awaiting %s: %w", f.call.ServiceMethod, ctx.Err())
	}
}

// Result returns the reply (the zero value on error) and error of the
// call, waiting for it if it is not done: after Done is closed it returns
// at once.
func (f *Future[Resp]) Result() (Resp, error) {
	<-f.done
	return f.result()
}

func (f *Future[Resp]) result() (Resp, error) {
	if err := f.call.Error; err != nil {
		var zero Resp
		return zero, err
	}
	return f.resp, nil
}

// completer is the owner of a typed call, told when it is done.
type completer interface{ complete() }

// complete is called once, by Client.deliver, when the call is done; it
// does not block.
func (f *Future[Resp]) complete() {
	f.mu.Lock()
	f.completed = true
	stop := f.stop
	f.stop = nil
	f.mu.Unlock()
	if stop != nil {
		stop()
	}
	switch {
	case f.fn != nil:
		resp, err := f.result()
		go f.fn(resp, err) // as Client.Callback: never on the reader
	case f.done != nil:
		close(f.done)
	} // else a Callback with a nil fn: nobody to tell
}

// startTyped starts the call of f (Go, Callback) bounded by ctx: through
// the interceptors on a goroutine of the client if there are any, as
// Client.Go does; else directly, with a function that ends the call if
// ctx ends first (context.AfterFunc: no goroutine unless it does).
func startTyped[Resp any](ctx context.Context, c *Client, f *Future[Resp]) {
	call := &f.call
	if c.chain != nil {
		c.interceptAsync(ctx, call)
		return
	}
	if err := ctx.Err(); err != nil {
		call.st.finish(ctxError(call, err))
		return
	}
	if ctx.Done() != nil {
		f.setStop(context.AfterFunc(ctx, func() { call.st.finish(ctxError(call, ctx.Err())) }))
	}
	c.start(ctx, call)
}

// setStop keeps stop for complete, or calls it if the call is done already.
func (f *Future[Resp]) setStop(stop func() bool) {
	f.mu.Lock()
	if !f.completed {
		f.stop = stop
		stop = nil
	}
	f.mu.Unlock()
	if stop != nil {
		stop()
	}
}
