// Package rpc is seedrpc: net/rpc's shape, grown to run a fleet.
//
// A service is a plain Go value whose exported methods have one of the forms
//
//	func (t *T) Method(args A, reply *R) error
//	func (t *T) Method(ctx context.Context, args A, reply *R) error
//
// where A is a value or a pointer. Register it and serve:
//
//	srv := rpc.NewServer()                 // rpc.WithRegistry(reg) announces it
//	err := srv.Register(&Calc{})           // service "Calc"
//	go srv.Serve(lis)                      // returns ErrServerClosed after Shutdown
//	defer srv.Shutdown(ctx)                // drains in-flight calls
//
// Call it with one of four styles, each taking CallOptions such as WithTimeout:
//
//	cli, err := rpc.Dial("tcp", addr)      // or NewClient(WithRegistry(reg), WithBalancer(lb.RoundRobin()))
//	err = cli.Call("Calc.Add", args, &sum) // sync; CallContext takes a ctx
//	call := cli.Go("Calc.Add", args, &sum, nil)       // future: <-call.Done
//	cli.Callback("Calc.Add", args, &sum, func(c *rpc.Call) {})
//	err = cli.Oneway("Log.Write", entry)   // no reply
//
// A handler's own error arrives as ServerError, or as *Error with its code
// when built by Errorf. Framework failures are sentinels matched with
// errors.Is: ErrTimeout, ErrShutdown, ErrNoService, ErrNoMethod,
// ErrNoInstances, ErrBadRequest, ErrOverloaded, ErrTooLarge, ErrServerClosed,
// and the refusals ErrUnauthenticated and ErrPermissionDenied.
//
// WithServerInterceptor and WithClientInterceptor wrap every call on either
// side (server interceptors before the args are decoded); SetHeader and
// WithResponseHeader carry response headers. The middleware package builds
// auth, access control, rate limits and logging on them.
//
// net/rpc's names work too (Accept, ServeConn, ServeCodec, HandleHTTP,
// DialHTTP, NewClientWithCodec; its NewClient(conn) is NewClientConn), and
// a Server also serves net/rpc clients on its listener, so a program moves
// over by changing its import path, one process at a time: see
// docs/MIGRATING.md.
//
// Without code generation, NewMethod gives a typed handle on a remote
// method (Call, Go returning a Future, Callback, Oneway) whose Req and Resp
// shapes are checked once per server address against the method's
// (ErrSchemaMismatch names the first differing field), and HandleFunc
// serves a plain function as a method:
//
//	add := rpc.NewMethod[Args, int](cli, "Calc.Add")
//	sum, err := add.Call(ctx, Args{1, 2})
//	err = rpc.HandleFunc(srv, "Calc.Mul", func(ctx context.Context, a Args) (int, error) { ... })
package rpc

import (
	"context"
	"errors"
	"net"
)

// Errors returned by the client and the server. Match them with errors.Is.
var (
	// ErrShutdown is returned by calls on a closed Client, by calls whose
	// connection was lost before the reply arrived, and by calls of a client
	// of one server (Dial) that cannot reach it. It is returned itself, as
	// in net/rpc, so err == ErrShutdown holds.
	ErrShutdown = errors.New("rpc: connection is shut down")
	// ErrTimeout is returned by a call whose timeout or ctx deadline passed;
	// errors.Is(err, context.DeadlineExceeded) holds for it too.
	ErrTimeout = timeoutError{}
	// ErrServerClosed is returned by Serve after Shutdown or Close.
	ErrServerClosed = errors.New("rpc: server closed")
	// ErrNoService is returned by a call to a service the server does not
	// have; the error's text is net/rpc's, "rpc: can't find service S.M".
	ErrNoService = errors.New("rpc: unknown service")
	// ErrNoMethod is returned by a call to a method the service does not
	// have ("rpc: can't find method S.M", as in net/rpc) or a name without
	// a dot.
	ErrNoMethod = errors.New("rpc: unknown method")
	// ErrNoInstances is returned at once by a call to a service that the
	// registry lists no live instance of.
	ErrNoInstances = errors.New("rpc: no instances of service")
	// ErrBadRequest is returned when the server could not decode a request.
	ErrBadRequest = errors.New("rpc: bad request")
	// ErrOverloaded is returned when the server refused a call because it was
	// already running its maximum number of calls (WithMaxCalls,
	// WithAdaptiveLimit); the call did not run. The client tries other
	// instances first, at once, and returns it without delay.
	ErrOverloaded = errors.New("rpc: server overloaded")
	// ErrServerShuttingDown is returned when the server refused a call
	// because it is shutting down; the call did not run.
	ErrServerShuttingDown = errors.New("rpc: server shutting down")
	// ErrInternal is returned when the handler panicked.
	ErrInternal = errors.New("rpc: internal server error")
	// ErrTooLarge is returned by a call whose request exceeds the client's
	// or the server's max frame size (WithMaxFrameSize), or whose reply
	// exceeds the server's or the client's; the handler did not run when the
	// request was too large. The connection and other calls go on.
	ErrTooLarge = errors.New("rpc: frame too large")
)

// timeoutError is ErrTimeout: it also matches context.DeadlineExceeded and
// reports Timeout() like net errors do.
type timeoutError struct{}

func (timeoutError) Error() string   { return "rpc: timed out" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
func (timeoutError) Is(target error) bool {
	return target == context.DeadlineExceeded
}

// ServerError is the error text a remote handler returned, as in net/rpc.
type ServerError string

func (e ServerError) Error() string { return string(e) }

// DefaultServer is the Server used by the package-level Register,
// RegisterName and Serve functions.
var DefaultServer = NewServer()

// Register publishes rcvr's methods on DefaultServer.
func Register(rcvr any) error { return DefaultServer.Register(rcvr) }

// RegisterName is like Register but uses name as the service name.
func RegisterName(name string, rcvr any) error { return DefaultServer.RegisterName(name, rcvr) }

// Serve accepts connections on lis and serves them with DefaultServer.
func Serve(lis net.Listener) error { return DefaultServer.Serve(lis) }
