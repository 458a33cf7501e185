// Package testpki makes throwaway certificates for tests: a CA, a server
// certificate for 127.0.0.1 and client certificates, all ECDSA P-256 and
// valid for an hour around now.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// PKI is a CA with a server certificate and client certificates.
type PKI struct {
	// Pool holds the CA certificate, for RootCAs or ClientCAs.
	Pool *x509.CertPool
	// Server is a server certificate for 127.0.0.1.
	Server tls.Certificate
	// Clients are client certificates by common name.
	Clients map[string]tls.Certificate
}

// New makes a CA, a server certificate and one client certificate per
// common name in clients; it fails t if any step fails.
func New(t testing.TB, clients ...string) *PKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "seedrpc test CA"},
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
	serial := int64(1)
	leaf := func(cn string, usage x509.ExtKeyUsage) tls.Certificate {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		serial++
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
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
	p := &PKI{Pool: x509.NewCertPool(), Server: leaf("server", x509.ExtKeyUsageServerAuth), Clients: map[string]tls.Certificate{}}
	p.Pool.AddCert(caCert)
	for _, cn := range clients {
		p.Clients[cn] = leaf(cn, x509.ExtKeyUsageClientAuth)
	}
	return p
}
