package transport

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
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// testPKI is a CA made for one test and a certificate it signed for
// 127.0.0.1. Nothing is written to disk.
type testPKI struct {
	pool *x509.CertPool // trusts the CA
	cert tls.Certificate
}

func newTestPKI(t testing.TB) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mosaik test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{pool: pool, cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
}

const tlsUser, tlsPass = "alice", "tls-test-password"

// secureServer makes the embedded server require TLS with p's certificate
// and the user tlsUser with tlsPass.
func secureServer(p testPKI) Option {
	return WithServerOptions(func(o *server.Options) {
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{p.cert}, MinVersion: tls.VersionTLS12}
		o.TLS = true
		o.TLSTimeout = 10 // seconds: -race on a loaded machine is slow
		o.Username, o.Password = tlsUser, tlsPass
	})
}

// tlsState is the TLS state of n's connection to its server.
func tlsState(n *Network) (tls.ConnectionState, error) { return n.nc.TLSConnectionState() }

// failNew expects New with opts to fail and returns its error.
func failNew(t *testing.T, opts ...Option) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	n, err := New(ctx, opts...)
	if err == nil {
		n.Close()
		t.Fatal("New succeeded")
	}
	return err
}

// An embedded server with TLS and a password: nodes with the CA and the
// password talk over TLS (never in process); a node without the password or
// without the CA cannot join.
func TestTLSEmbeddedServerWithPassword(t *testing.T) {
	p := newTestPKI(t)
	clientTLS := nats.Secure(&tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12})
	a := newNet(t, secureServer(p), WithNATSOptions(nats.UserInfo(tlsUser, tlsPass), clientTLS))
	if !strings.HasPrefix(a.URL(), "tls://127.0.0.1:") {
		t.Fatalf("URL %q, want tls://127.0.0.1:port", a.URL())
	}
	if _, ok := embedded.Load(a.URL()); ok {
		t.Fatal("a server with TLS and a password is offered in process")
	}
	b := join(t, a, WithNATSOptions(nats.UserInfo(tlsUser, tlsPass), clientTLS))

	for _, n := range []*Network{a, b} {
		if addr := n.nc.ConnectedAddr(); addr == "pipe" || addr == "" {
			t.Fatalf("connected through %q, want the server's socket", addr)
		}
		st, err := tlsState(n)
		if err != nil {
			t.Fatalf("connection is not TLS: %v", err)
		}
		if !st.HandshakeComplete || len(st.PeerCertificates) == 0 || st.PeerCertificates[0].Subject.CommonName != "127.0.0.1" {
			t.Fatalf("TLS state: handshake %v, %d peer certificates", st.HandshakeComplete, len(st.PeerCertificates))
		}
	}

	subscribe(t, a, "echo", func(m *Msg) { _ = m.Respond(append([]byte("re: "), m.Data...)) })
	r, err := b.requestPlain(t.Context(), "echo", a.ID(), []byte("over tls"))
	if err != nil || string(r) != "re: over tls" {
		t.Fatalf("request: %q %v", r, err)
	}

	// Without the password, or with a wrong one: authorization.
	for _, opt := range []nats.Option{nats.UserInfo(tlsUser, "wrong"), func(*nats.Options) error { return nil }} {
		err := failNew(t, WithURL(a.URL()), WithNATSOptions(opt, clientTLS))
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("New without the password: %v, want an authorization error", err)
		}
	}
	// Without the CA: the server's certificate does not verify, before any
	// credentials are sent.
	err = failNew(t, WithURL(a.URL()), WithNATSOptions(nats.UserInfo(tlsUser, tlsPass)))
	var unknownCA x509.UnknownAuthorityError
	if !errors.As(err, &unknownCA) {
		t.Fatalf("New without the CA: %v, want a certificate verification error", err)
	}
	// Nor without TLS at all, through a nats:// URL.
	err = failNew(t, WithURL(strings.Replace(a.URL(), "tls://", "nats://", 1)), WithNATSOptions(nats.UserInfo(tlsUser, tlsPass)))
	if !errors.As(err, &unknownCA) {
		t.Fatalf("New over nats:// without the CA: %v, want a certificate verification error", err)
	}
}

// An embedded server with a password only is reached over its socket too,
// and a node without the password cannot join, even from this process.
func TestCredentialsEmbeddedServerNotInProcess(t *testing.T) {
	a := newNet(t,
		WithServerOptions(func(o *server.Options) { o.Username, o.Password = tlsUser, tlsPass }),
		WithNATSOptions(nats.UserInfo(tlsUser, tlsPass)))
	if _, ok := embedded.Load(a.URL()); ok {
		t.Fatal("a server with a password is offered in process")
	}
	b := join(t, a, WithNATSOptions(nats.UserInfo(tlsUser, tlsPass)))
	if addr := b.nc.ConnectedAddr(); addr == "pipe" {
		t.Fatal("joined in process")
	}
	if err := failNew(t, WithURL(a.URL())); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("New without the password: %v, want an authorization error", err)
	}
}

func TestTLSServerOptionsNil(t *testing.T) {
	if _, err := New(t.Context(), WithServerOptions(nil)); err == nil || !strings.Contains(err.Error(), "WithServerOptions") {
		t.Fatalf("New(WithServerOptions(nil)): %v", err)
	}
}
