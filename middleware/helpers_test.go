package middleware

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rpc "github.com/seedrpc/rpc"
)

// testTimeout bounds every call and wait in the tests.
const testTimeout = 10 * time.Second

// Echo is the service under governance; it counts the calls that reached
// it.
type Echo struct{ calls atomic.Int32 }

// Say returns s.
func (e *Echo) Say(s string, reply *string) error { e.calls.Add(1); *reply = s; return nil }

// Secret returns s too, under another name for the ACL.
func (e *Echo) Secret(s string, reply *string) error { e.calls.Add(1); *reply = s; return nil }

// Whoami returns the identity TokenAuth's verify put in ctx.
func (e *Echo) Whoami(ctx context.Context, _ string, reply *string) error {
	e.calls.Add(1)
	*reply, _ = ctx.Value(identityKey{}).(string)
	return nil
}

// Panic panics.
func (e *Echo) Panic(string, *string) error { panic("echo boom") }

type identityKey struct{}

// serve starts a server with sopts serving Echo on loopback and returns it
// and its address; both are closed when the test ends.
func serve(t *testing.T, sopts ...rpc.ServerOption) (*Echo, string) {
	t.Helper()
	srv := rpc.NewServer(sopts...)
	e := &Echo{}
	if err := srv.Register(e); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, rpc.ErrServerClosed) {
				t.Errorf("Serve() = %v, want ErrServerClosed", err)
			}
		case <-time.After(testTimeout):
			t.Error("Serve did not return after Close")
		}
	})
	return e, lis.Addr().String()
}

// dial returns a client of addr, closed when the test ends.
func dial(t *testing.T, addr string, copts ...rpc.ClientOption) *rpc.Client {
	t.Helper()
	cli, err := rpc.Dial("tcp", addr, append([]rpc.ClientOption{rpc.WithTimeout(testTimeout)}, copts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// say calls Echo.Say and checks the echo when it succeeds.
func say(t *testing.T, cli *rpc.Client, opts ...rpc.CallOption) error {
	t.Helper()
	var got string
	err := cli.Call("Echo.Say", "hi", &got, opts...)
	if err == nil && got != "hi" {
		t.Errorf("Echo.Say(hi) = %q, want hi", got)
	}
	return err
}

// stubNext is a Handler that counts its calls.
type stubNext struct{ n atomic.Int32 }

func (s *stubNext) handle(context.Context, *rpc.Request) (any, error) {
	s.n.Add(1)
	return "ok", nil
}

// testPKI is a CA with a server certificate and client certificates.
type testPKI struct {
	pool    *x509.CertPool
	server  tls.Certificate
	clients map[string]tls.Certificate // by common name
}

func newTestPKI(t *testing.T, clients ...string) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "middleware test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	var serial atomic.Int64
	serial.Store(1)
	leaf := func(cn string, usage x509.ExtKeyUsage) tls.Certificate {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial.Add(1)),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	pki := &testPKI{pool: x509.NewCertPool(), server: leaf("server", x509.ExtKeyUsageServerAuth), clients: map[string]tls.Certificate{}}
	pki.pool.AddCert(caCert)
	for _, cn := range clients {
		pki.clients[cn] = leaf(cn, x509.ExtKeyUsageClientAuth)
	}
	return pki
}

// syncBuffer is a goroutine-safe buffer for slog handlers.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}
