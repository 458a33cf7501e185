package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"reflect"
	"runtime/debug"

	"github.com/seedrpc/rpc/codec"
	"github.com/seedrpc/rpc/internal/wire"
)

// Request is a call as server interceptors see it: who calls which method
// with which headers, before its args are decoded.
type Request struct {
	ServiceMethod string               // "Service.Method", as registered
	Seq           uint64               // the request's sequence number on its connection
	Header        map[string]string    // request headers (WithHeader); read-only, may be nil
	Peer          net.Addr             // the client's address
	TLS           *tls.ConnectionState // nil on plaintext connections; read-only, shared by the connection's calls
	Oneway        bool                 // the caller awaits no response

	call *interceptedCall
}

// errArgsAfterCall is returned by Args called once the call has ended.
var errArgsAfterCall = errors.New("rpc: Request.Args called after the call ended")

// Args decodes the call's args on first use and returns a pointer to them
// (*A, whichever form the method declares); the method then receives that
// same value, so it is decoded once however many interceptors look, and
// not at all if an interceptor refuses the call without calling Args.
// A decoding failure is an error matching ErrBadRequest, which the caller
// receives as such when it is returned. Args must be called from the
// interceptor chain while the call runs, not from another goroutine.
func (r *Request) Args() (any, error) {
	ic := r.call
	if ic == nil {
		return nil, errors.New("rpc: Request.Args on a Request the server did not make")
	}
	if !ic.decoded {
		ic.decoded = true
		argp, replyp := ic.m.newValues()
		err := ic.codec.Unmarshal(ic.body, argp.Interface())
		ic.release()
		if err != nil {
			ic.argErr = &badArgsError{method: ic.m.fullName, err: err}
		} else {
			ic.argp, ic.replyp = argp, replyp
		}
	}
	if ic.argErr != nil {
		return nil, ic.argErr
	}
	return ic.argp.Interface(), nil
}

// Handler runs a call: the method, or the rest of the interceptor chain.
// The reply it returns is what the server encodes; the method's own reply
// is a pointer, *R.
type Handler func(ctx context.Context, req *Request) (reply any, err error)

// ServerInterceptor wraps every call a server runs (oneways too): it may
// inspect req, refuse the call by returning an error without calling next,
// change ctx for the handler, or observe and replace the reply and error.
// The error it returns reaches the caller as any handler error does
// (ServerError, *Error, or the sentinels ErrUnauthenticated,
// ErrPermissionDenied; ErrOverloaded and ErrBadRequest too when the method
// did not run). A panic is handled like a handler's.
type ServerInterceptor func(ctx context.Context, req *Request, next Handler) (reply any, err error)

// WithServerInterceptor adds interceptors around every call, the first
// given outermost; used several times, the options add up in order.
// Interceptors run once the method is found (an unknown method is answered
// before them) and before its args are decoded. Default: none, and a
// server without interceptors takes a direct path that costs nothing.
func WithServerInterceptor(ics ...ServerInterceptor) ServerOption {
	return serverOption(func(o *serverOptions) {
		for _, ic := range ics {
			if ic != nil {
				o.interceptors = append(o.interceptors[:len(o.interceptors):len(o.interceptors)], ic)
			}
		}
	})
}

// chainServer builds, once per server, the handler that runs ics around
// last; nil without interceptors.
func chainServer(ics []ServerInterceptor, last Handler) Handler {
	if len(ics) == 0 {
		return nil
	}
	h := last
	for i := len(ics) - 1; i >= 0; i-- {
		ic, next := ics[i], h
		h = func(ctx context.Context, req *Request) (any, error) { return ic(ctx, req, next) }
	}
	return h
}

// servable is a call a worker runs: a serverCall, or an interceptedCall on
// a server with interceptors.
type servable interface{ serve() }

// interceptedCall is a serverCall with the state of its interceptor chain,
// allocated in one piece instead of a serverCall when the server has
// interceptors, so that a server without them carries none of it.
type interceptedCall struct {
	serverCall
	req    Request
	codec  codec.Codec
	argp   reflect.Value // decoded args, set by Args
	replyp reflect.Value
	argErr error
	// decoded is set once Args ran (or the call ended without it); ran once
	// the method was called.
	decoded, ran bool
}

// newCall allocates the state of one call.
func (c *serverConn) newCall() (*serverCall, servable) {
	if c.srv.chain == nil {
		sc := new(serverCall)
		return sc, sc
	}
	ic := new(interceptedCall)
	return &ic.serverCall, ic
}

// release returns the request's buffer; the body is gone after it.
func (ic *interceptedCall) release() {
	if ic.bp != nil {
		ic.bp.release()
		ic.bp, ic.body, ic.method = nil, nil, nil
	}
}

// serve runs the call through the interceptors on a worker goroutine.
func (ic *interceptedCall) serve() {
	c := ic.conn
	defer c.finish(&ic.serverCall)
	start := monoNow()
	status, reply, name, err := c.intercept(ic)
	ic.took = monoNow() - start
	ic.serverCall.ran(status)
	c.freeSlot(&ic.serverCall)
	c.respond(&ic.serverCall, status, reply, name, err)
	c.srv.limiter.done(&ic.lim)
}

// intercept finds the method and runs the interceptor chain around it,
// turning a panic into an internal error as for a handler.
func (c *serverConn) intercept(ic *interceptedCall) (status wire.Status, reply any, name string, err error) {
	defer func() {
		if !ic.decoded { // refused before Args, or Args never called
			ic.decoded, ic.argErr = true, errArgsAfterCall
		}
		ic.release()
	}()
	m, cd, status, err := c.resolve(ic.m, ic.method, ic.codecID)
	if err != nil {
		return status, nil, "", err
	}
	ic.m, ic.codec, name = m, cd, m.fullName
	ic.req = Request{
		ServiceMethod: m.fullName,
		Seq:           ic.seq,
		Header:        ic.ctx.header,
		Peer:          c.nc.RemoteAddr(),
		TLS:           c.tlsState(),
		Oneway:        ic.oneway,
		call:          ic,
	}
	defer func() {
		if r := recover(); r != nil {
			c.srv.opts.logger.Error("rpc: handler or interceptor panicked", "method", name, "remote", c.nc.RemoteAddr(), "panic", r, "stack", string(debug.Stack()))
			status, reply, err = wire.StatusInternalError, nil, fmt.Errorf("rpc: %s panicked", name)
		}
	}()
	reply, err = c.srv.chain(&ic.ctx, &ic.req)
	if err != nil {
		return errorStatus(&ic.ctx, err, ic.ran), nil, name, err
	}
	return wire.StatusOK, reply, name, nil
}

// callMethod is the innermost Handler: it decodes the args (unless an
// interceptor did) and calls the method.
func callMethod(ctx context.Context, req *Request) (any, error) {
	if _, err := req.Args(); err != nil {
		return nil, err
	}
	ic := req.call
	ic.ran = true
	if err := ic.m.call(ctx, ic.argp, ic.replyp); err != nil {
		return nil, err
	}
	return ic.replyp.Interface(), nil
}

// tlsState returns the connection's TLS state, nil on plaintext; it is
// read once, after the handshake (a request has arrived).
func (c *serverConn) tlsState() *tls.ConnectionState {
	c.tlsOnce.Do(func() {
		if tc, ok := c.nc.(*tls.Conn); ok {
			st := tc.ConnectionState()
			c.tls = &st
		}
	})
	return c.tls
}

// badArgsError is a request whose args did not decode; it matches
// ErrBadRequest.
type badArgsError struct {
	method string
	err    error
}

func (e *badArgsError) Error() string {
	return fmt.Sprintf("rpc: %s: decoding args: %v", e.method, e.err)
}

func (e *badArgsError) Is(target error) bool { return target == ErrBadRequest }

func (e *badArgsError) Unwrap() error { return e.err }
