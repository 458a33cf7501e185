package middleware

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	rpc "github.com/seedrpc/rpc"
)

// TokenAuth returns an interceptor that admits a call only if the request
// header named header (the client sends it with rpc.WithHeader; names are
// case-sensitive) holds a token that verify accepts. A call without the header, or whose token
// verify rejects, fails with rpc.ErrUnauthenticated; verify may return an
// error matching rpc.ErrPermissionDenied instead, for a valid token that
// may not make this call. The ctx verify returns (nil: unchanged) is the
// one the handler gets, so verify can attach the caller's identity. A nil
// verify admits nothing.
func TokenAuth(header string, verify func(ctx context.Context, req *rpc.Request, token string) (context.Context, error)) rpc.ServerInterceptor {
	return func(ctx context.Context, req *rpc.Request, next rpc.Handler) (any, error) {
		token, ok := req.Header[header]
		if !ok || token == "" {
			return nil, fmt.Errorf("%w: %s: no %q header", rpc.ErrUnauthenticated, req.ServiceMethod, header)
		}
		if verify == nil {
			return nil, fmt.Errorf("%w: %s: no verifier", rpc.ErrUnauthenticated, req.ServiceMethod)
		}
		vctx, err := verify(ctx, req, token)
		if err != nil {
			return nil, refusal(rpc.ErrUnauthenticated, req, err)
		}
		if vctx != nil {
			ctx = vctx
		}
		return next(ctx, req)
	}
}

// StaticTokens returns a verify function for TokenAuth that accepts the
// given tokens, compared in constant time, and nothing else.
func StaticTokens(tokens ...string) func(ctx context.Context, req *rpc.Request, token string) (context.Context, error) {
	valid := make([][]byte, 0, len(tokens))
	for _, t := range tokens {
		if t != "" {
			valid = append(valid, []byte(t))
		}
	}
	return func(ctx context.Context, _ *rpc.Request, token string) (context.Context, error) {
		ok := 0
		for _, v := range valid {
			ok |= subtle.ConstantTimeCompare(v, []byte(token))
		}
		if ok == 0 {
			return nil, errors.New("unknown token")
		}
		return ctx, nil
	}
}

// MTLS returns an interceptor that admits only calls over TLS whose client
// presented a certificate the server verified (its tls.Config sets
// ClientAuth to tls.RequireAndVerifyClientCert or VerifyClientCertIfGiven,
// with ClientCAs), and whose leaf certificate allow accepts (nil: any
// verified certificate). A call without a verified certificate fails with
// rpc.ErrUnauthenticated; one whose certificate allow rejects, with
// rpc.ErrPermissionDenied.
func MTLS(allow func(ctx context.Context, req *rpc.Request, leaf *x509.Certificate) error) rpc.ServerInterceptor {
	return func(ctx context.Context, req *rpc.Request, next rpc.Handler) (any, error) {
		st := req.TLS
		if st == nil {
			return nil, fmt.Errorf("%w: %s from %s: not over TLS", rpc.ErrUnauthenticated, req.ServiceMethod, req.Peer)
		}
		if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
			return nil, fmt.Errorf("%w: %s from %s: no verified client certificate", rpc.ErrUnauthenticated, req.ServiceMethod, req.Peer)
		}
		if allow != nil {
			if err := allow(ctx, req, st.VerifiedChains[0][0]); err != nil {
				return nil, refusal(rpc.ErrPermissionDenied, req, err)
			}
		}
		return next(ctx, req)
	}
}

// AllowNames returns an allow function for MTLS that accepts a leaf
// certificate whose subject common name, one of whose DNS names, or one of
// whose URIs (a SPIFFE ID, say) is among names.
func AllowNames(names ...string) func(ctx context.Context, req *rpc.Request, leaf *x509.Certificate) error {
	names = slices.Clone(names)
	return func(_ context.Context, _ *rpc.Request, leaf *x509.Certificate) error {
		if slices.Contains(names, leaf.Subject.CommonName) {
			return nil
		}
		for _, n := range leaf.DNSNames {
			if slices.Contains(names, n) {
				return nil
			}
		}
		for _, u := range leaf.URIs {
			if slices.Contains(names, u.String()) {
				return nil
			}
		}
		return fmt.Errorf("certificate %q is not allowed", leaf.Subject.CommonName)
	}
}

// refusal wraps why a check refused req in sentinel, unless why already
// matches one of the governance sentinels.
func refusal(sentinel error, req *rpc.Request, why error) error {
	if errors.Is(why, rpc.ErrUnauthenticated) || errors.Is(why, rpc.ErrPermissionDenied) {
		return why
	}
	return fmt.Errorf("%w: %s from %s: %w", sentinel, req.ServiceMethod, req.Peer, why)
}
