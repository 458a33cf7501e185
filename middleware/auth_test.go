package middleware

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/seedrpc/rpc/internal/testpki"

	rpc "github.com/seedrpc/rpc"
)

func TestTokenAuth(t *testing.T) {
	e, addr := serve(t, rpc.WithServerInterceptor(TokenAuth("authorization", StaticTokens("s3cret", "other"))))
	cli := dial(t, addr)
	tests := []struct {
		name string
		opts []rpc.CallOption
		want error
	}{
		{name: "no header", want: rpc.ErrUnauthenticated},
		{name: "empty token", opts: []rpc.CallOption{rpc.WithHeader("authorization", "")}, want: rpc.ErrUnauthenticated},
		{name: "wrong token", opts: []rpc.CallOption{rpc.WithHeader("authorization", "guess")}, want: rpc.ErrUnauthenticated},
		{name: "token in another header", opts: []rpc.CallOption{rpc.WithHeader("x-token", "s3cret")}, want: rpc.ErrUnauthenticated},
		{name: "good token", opts: []rpc.CallOption{rpc.WithHeader("authorization", "s3cret")}},
		{name: "second token", opts: []rpc.CallOption{rpc.WithHeader("authorization", "other")}},
	}
	wantCalls := int32(0)
	for _, tt := range tests {
		err := say(t, cli, tt.opts...)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: Call error = %v, want %v", tt.name, err, tt.want)
		}
		if err != nil && err.Error() != "rpc: unauthenticated" {
			t.Errorf("%s: Call error text = %q leaks detail, want %q", tt.name, err, "rpc: unauthenticated")
		}
		if tt.want == nil {
			wantCalls++
		}
	}
	if got := e.calls.Load(); got != wantCalls {
		t.Errorf("handler ran %d times, want %d (only authenticated calls)", got, wantCalls)
	}
}

func TestTokenAuthVerify(t *testing.T) {
	verify := func(ctx context.Context, req *rpc.Request, token string) (context.Context, error) {
		user, ok := strings.CutPrefix(token, "user:")
		switch {
		case !ok:
			return nil, errors.New("not a user token")
		case user == "bob" && req.ServiceMethod == "Echo.Whoami":
			return nil, fmt.Errorf("%w: bob may not ask", rpc.ErrPermissionDenied)
		}
		return context.WithValue(ctx, identityKey{}, user), nil
	}
	_, addr := serve(t, rpc.WithServerInterceptor(TokenAuth("authorization", verify)))
	cli := dial(t, addr)
	var who string
	if err := cli.Call("Echo.Whoami", "", &who, rpc.WithHeader("authorization", "user:alice")); err != nil || who != "alice" {
		t.Errorf("Whoami as alice = %q, %v; want alice, nil (identity from verify's ctx)", who, err)
	}
	if err := cli.Call("Echo.Whoami", "", &who, rpc.WithHeader("authorization", "user:bob")); !errors.Is(err, rpc.ErrPermissionDenied) {
		t.Errorf("Whoami as bob error = %v, want ErrPermissionDenied", err)
	}
	if err := cli.Call("Echo.Whoami", "", &who, rpc.WithHeader("authorization", "admin")); !errors.Is(err, rpc.ErrUnauthenticated) {
		t.Errorf("Whoami with a bad token error = %v, want ErrUnauthenticated", err)
	}

	// A nil verify admits nothing.
	next := &stubNext{}
	_, err := TokenAuth("authorization", nil)(context.Background(), &rpc.Request{ServiceMethod: "Echo.Say", Header: map[string]string{"authorization": "x"}}, next.handle)
	if !errors.Is(err, rpc.ErrUnauthenticated) || next.n.Load() != 0 {
		t.Errorf("TokenAuth(nil verify) = %v, next ran %d times; want ErrUnauthenticated, 0", err, next.n.Load())
	}
}

func TestMTLS(t *testing.T) {
	pki := testpki.New(t, "alice", "mallory")
	srvCfg := &tls.Config{
		Certificates: []tls.Certificate{pki.Server},
		ClientCAs:    pki.Pool,
		ClientAuth:   tls.VerifyClientCertIfGiven,
		MinVersion:   tls.VersionTLS12,
	}
	e, addr := serve(t, rpc.WithTLS(srvCfg), rpc.WithServerInterceptor(MTLS(AllowNames("alice", "spiffe://example.org/bot"))))
	withCert := func(cn string) *rpc.Client {
		cfg := &tls.Config{RootCAs: pki.Pool}
		if cn != "" {
			cfg.Certificates = []tls.Certificate{pki.Clients[cn]}
		}
		return dial(t, addr, rpc.WithTLS(cfg))
	}
	if err := say(t, withCert("alice")); err != nil {
		t.Errorf("alice: Call = %v, want nil", err)
	}
	if err := say(t, withCert("mallory")); !errors.Is(err, rpc.ErrPermissionDenied) || err.Error() != "rpc: permission denied" {
		t.Errorf("mallory: Call error = %v, want a bare ErrPermissionDenied", err)
	}
	if err := say(t, withCert("")); !errors.Is(err, rpc.ErrUnauthenticated) {
		t.Errorf("no certificate: Call error = %v, want ErrUnauthenticated", err)
	}
	if got := e.calls.Load(); got != 1 {
		t.Errorf("handler ran %d times, want 1 (alice only)", got)
	}

	// A certificate the server did not verify (RequireAnyClientCert) is no
	// identity, whatever name it claims.
	forged := testpki.New(t, "alice")
	unverified := srvCfg.Clone()
	unverified.ClientAuth = tls.RequireAnyClientCert
	_, addr2 := serve(t, rpc.WithTLS(unverified), rpc.WithServerInterceptor(MTLS(AllowNames("alice"))))
	fake := dial(t, addr2, rpc.WithTLS(&tls.Config{RootCAs: pki.Pool, Certificates: []tls.Certificate{forged.Clients["alice"]}}))
	if err := say(t, fake); !errors.Is(err, rpc.ErrUnauthenticated) {
		t.Errorf("unverified certificate: Call error = %v, want ErrUnauthenticated", err)
	}

	// Plaintext: never authenticated.
	_, plain := serve(t, rpc.WithServerInterceptor(MTLS(nil)))
	if err := say(t, dial(t, plain)); !errors.Is(err, rpc.ErrUnauthenticated) {
		t.Errorf("plaintext: Call error = %v, want ErrUnauthenticated", err)
	}
}
