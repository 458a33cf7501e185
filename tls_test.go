package rpc

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/testpki"
)

// newTestPKI makes a CA with a server and a "client" certificate.
func newTestPKI(t testing.TB) *testpki.PKI { return testpki.New(t, "client") }

func TestTLS(t *testing.T) {
	pki := newTestPKI(t)
	srvCfg := &tls.Config{Certificates: []tls.Certificate{pki.Server}, MinVersion: tls.VersionTLS12}
	cli, _, _ := newCalcPair(t, []ServerOption{WithTLS(srvCfg)}, WithTLS(&tls.Config{RootCAs: pki.Pool}))
	var sum int
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum, WithTimeout(5*time.Second)); err != nil || sum != 3 {
		t.Fatalf("Call over TLS = %d, %v; want 3, nil", sum, err)
	}
	big := make([]byte, 1<<20)
	var out []byte
	if err := cli.Call("Calc.Echo", big, &out, WithTimeout(5*time.Second)); err != nil || len(out) != len(big) {
		t.Fatalf("Call(Calc.Echo 1 MiB) over TLS = %d bytes, %v", len(out), err)
	}

	// A plain-TCP client of a TLS server fails (bounded), it does not hang.
	srv := NewServer(WithTLS(srvCfg))
	if err := srv.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, srv)
	plain, err := Dial("tcp", addr, WithTimeout(2*time.Second))
	if err == nil {
		defer plain.Close()
		if err := plain.Call("Calc.Add", Args{1, 2}, &sum); err == nil {
			t.Error("plain Call to a TLS server succeeded")
		}
	}
}

func TestMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	srvCfg := &tls.Config{
		Certificates: []tls.Certificate{pki.Server},
		ClientCAs:    pki.Pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	srv := NewServer(WithTLS(srvCfg))
	if err := srv.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, srv)

	withCert, err := Dial("tcp", addr, WithTLS(&tls.Config{RootCAs: pki.Pool, Certificates: []tls.Certificate{pki.Clients["client"]}}))
	if err != nil {
		t.Fatalf("Dial with a client certificate = %v", err)
	}
	defer withCert.Close()
	var sum int
	if err := withCert.Call("Calc.Add", Args{1, 2}, &sum, WithTimeout(5*time.Second)); err != nil || sum != 3 {
		t.Fatalf("Call over mutual TLS = %d, %v; want 3, nil", sum, err)
	}

	// Without a client certificate: the dial (TLS 1.2) or the first call
	// (TLS 1.3, where the server checks after the client's handshake ends)
	// fails; nothing hangs.
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		start := time.Now()
		noCert, err := Dial("tcp", addr, WithTLS(&tls.Config{RootCAs: pki.Pool, MinVersion: version, MaxVersion: version}))
		if err == nil {
			err = noCert.Call("Calc.Add", Args{1, 2}, &sum, WithTimeout(5*time.Second))
			noCert.Close()
		}
		if err == nil {
			t.Errorf("TLS %x: Call without a client certificate succeeded", version)
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("TLS %x: failing without a client certificate took %v (%v)", version, el, err)
		}
	}

	// A client that does not trust the server's CA fails at Dial.
	if c, err := Dial("tcp", addr, WithTLS(&tls.Config{Certificates: []tls.Certificate{pki.Clients["client"]}})); err == nil {
		c.Close()
		t.Error("Dial trusting no CA succeeded")
	}
}
