// Package middleware is governance for seedrpc servers, built on
// rpc.ServerInterceptor: who may call (TokenAuth, MTLS, ACL), how often
// (RateLimit), and what happened (Logging).
//
// Every check runs before the call's args are decoded, so a refused call
// costs no decoding. Install them outermost first, cheapest refusals
// first:
//
//	acl, err := middleware.ACL(middleware.Rule{Allow: true, Nets: []string{"10.0.0.0/8"}})
//	srv := rpc.NewServer(rpc.WithServerInterceptor(
//		middleware.Logging(logger),
//		acl,
//		middleware.TokenAuth("authorization", verify),
//		middleware.RateLimit(100, 20, middleware.PerPeer(10000)),
//	))
//
// Refusals are the root package's sentinels, which the caller matches with
// errors.Is: rpc.ErrUnauthenticated (no or bad credentials),
// rpc.ErrPermissionDenied (credentials fine, call not allowed) and
// rpc.ErrOverloaded (rate limit; the client retries such a call on
// another instance). The caller learns nothing more: the reason, wrapped
// in the error the interceptor returns, is logged by the server at debug
// level and seen by interceptors outside (Logging).
package middleware
