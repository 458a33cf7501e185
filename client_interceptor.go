package rpc

import (
	"context"
	"fmt"
	"runtime/debug"
)

// Invoker runs a call: the remote call itself, with its retries and hedges,
// or the rest of the interceptor chain. It returns once the call is done,
// with call.Error.
type Invoker func(ctx context.Context, call *Call) error

// ClientInterceptor wraps every call a client makes, once per call around
// all its attempts, in every call style (Call, Go, Callback, Oneway). It
// may add request headers to call.Header (before calling next: retries
// and hedges read it until the call is done), read ctx (its deadline is
// the call's), call next at most once, or return without calling it (the call
// then ends with the error returned, and a nil error leaves call.Reply as
// the interceptor filled it). After next returns it sees call.Error,
// call.Reply and call.ResponseHeader; what it returns becomes call.Error.
// For Go and Callback the chain runs on a goroutine the client owns (Close
// waits for it), where a panic is recovered, logged and becomes the call's
// error; on Call, CallContext and Oneway it runs on the caller's goroutine.
type ClientInterceptor func(ctx context.Context, call *Call, next Invoker) error

// WithClientInterceptor adds interceptors around every call, the first
// given outermost; used several times, the options add up in order.
// Default: none, and a client without interceptors takes a direct path
// that costs nothing.
func WithClientInterceptor(ics ...ClientInterceptor) ClientOption {
	return clientOption(func(o *clientOptions) {
		for _, ic := range ics {
			if ic != nil {
				o.interceptors = append(o.interceptors[:len(o.interceptors):len(o.interceptors)], ic)
			}
		}
	})
}

// chainClient builds, once per client, the invoker that runs ics around
// last; nil without interceptors.
func chainClient(ics []ClientInterceptor, last Invoker) Invoker {
	if len(ics) == 0 {
		return nil
	}
	h := last
	for i := len(ics) - 1; i >= 0; i-- {
		ic, next := ics[i], h
		h = func(ctx context.Context, call *Call) error { return ic(ctx, call, next) }
	}
	return h
}

// intercept runs the call through the interceptors on the calling
// goroutine; ctx gets the call's deadline if that is earlier than its own.
func (c *Client) intercept(ctx context.Context, call *Call) error {
	st := &call.st
	if !st.deadline.IsZero() {
		if dl, ok := ctx.Deadline(); !ok || st.deadline.Before(dl) {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, st.deadline)
			defer cancel()
		}
	}
	if call.Header == nil {
		call.Header = make(map[string]string, len(st.opts.meta))
		for _, kv := range st.opts.meta {
			call.Header[kv.key] = kv.val
		}
	}
	call.Error = c.chain(ctx, call)
	return call.Error
}

// interceptAsync runs the call through the interceptors on a goroutine of
// the client (Go and Callback), then delivers it; ctx bounds the call.
func (c *Client) interceptAsync(ctx context.Context, call *Call) {
	run := func() {
		defer func() {
			if r := recover(); r != nil {
				c.opts.logger.Error("rpc: client interceptor panicked", "method", call.ServiceMethod, "panic", r, "stack", string(debug.Stack()))
				call.Error = callError(call.ServiceMethod, "", fmt.Errorf("%w: client interceptor panicked: %v", ErrInternal, r))
			}
			call.st.wait = nil
			c.deliver(call)
		}()
		c.intercept(ctx, call)
	}
	if !c.goAsync(run) {
		call.Error = callError(call.ServiceMethod, "", ErrShutdown)
		c.deliver(call)
	}
}

// invoke is the innermost Invoker: it starts the call and waits until it
// is done or ctx ends.
func (c *Client) invoke(ctx context.Context, call *Call) error {
	st := &call.st
	if st.invoked {
		return callError(call.ServiceMethod, "", fmt.Errorf("%w: a client interceptor called next twice", ErrInternal))
	}
	st.invoked = true
	if err := ctx.Err(); err != nil {
		call.Error = ctxError(call, err)
		return call.Error
	}
	wait := doneChanPool.Get().(chan *Call)
	st.wait = wait
	c.start(ctx, call)
	if ctx.Done() == nil {
		<-wait
	} else {
		select {
		case <-wait:
		case <-ctx.Done():
			st.finish(ctxError(call, ctx.Err()))
			<-wait
		}
	}
	doneChanPool.Put(wait) // delivered exactly once: nobody sends on it again
	return call.Error
}
