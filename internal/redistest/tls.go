package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// StartTLS starts an empty redis-server that accepts TLS connections only
// (--port 0 --tls-port P), with a self-signed certificate for 127.0.0.1
// generated here. Clients need TLSConfig. Client certificates are not
// required. When the installed redis-server was built without TLS, the test
// is skipped (even under CI: a missing build option is not a missing
// package) with a message that says so.
func StartTLS(t testing.TB) *Server {
	t.Helper()
	requireBinaries(t, "redis-server")
	dir := t.TempDir()
	certPEM, keyPEM, err := selfSigned()
	if err != nil {
		t.Fatalf("redistest: generate certificate: %v", err)
	}
	certFile, keyFile := filepath.Join(dir, "redis.crt"), filepath.Join(dir, "redis.key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	s := &Server{
		dir: dir,
		tls: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12},
		extra: []string{
			"--tls-cert-file", certFile,
			"--tls-key-file", keyFile,
			"--tls-ca-cert-file", certFile,
			"--tls-auth-clients", "no",
		},
	}
	if err := tryStart(t, s, false); err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "tls") && strings.Contains(strings.ToLower(err.Error()), "support") {
			t.Skipf("redistest: the installed redis-server was built without TLS support; skipping: %v", err)
		}
		t.Fatalf("redistest: start redis-server with TLS: %v", err)
	}
	return s
}

// selfSigned returns a self-signed ECDSA certificate for 127.0.0.1 (its own
// CA) and its key, PEM-encoded.
func selfSigned() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "redistest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}
