package webtransport_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/transports/webtransport"
)

func TestGeneratedCert(t *testing.T) {
	now := time.Now()
	c, err := webtransport.GenerateCert(now)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if !leaf.NotBefore.Before(now) || leaf.NotAfter.Sub(leaf.NotBefore) > 13*24*time.Hour {
		t.Errorf("valid %v to %v; want from before now for at most 13 days", leaf.NotBefore, leaf.NotAfter)
	}
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("not valid for %s: %v", host, err)
		}
	}
}

func TestCertFilesAndHash(t *testing.T) {
	c, err := webtransport.GenerateCert(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	l := start(t, server.Config{CertFile: certFile, KeyFile: keyFile})
	if l.hash != webtransport.CertHash(c) {
		t.Fatalf("GET /api/wt-cert-hash says %x, want the hash of --cert %x", l.hash, webtransport.CertHash(c))
	}
	l.client(t, webtransport.StreamName, "files") // connects, verifying by hash

	if _, err := server.New(server.Config{CertFile: certFile, Logger: discard()}); err == nil {
		t.Error("a --cert without --key was accepted")
	}
	if _, err := server.New(server.Config{CertFile: keyFile, KeyFile: keyFile, Logger: discard()}); err == nil {
		t.Error("a key file as --cert was accepted")
	}
}

func TestWrongHashRefused(t *testing.T) {
	l := start(t, server.Config{})
	opt := l.opts("x")
	opt.CertHashes = [][32]byte{{1, 2, 3}}
	opt.NoReconnect = true
	c := webtransport.NewStreamClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Connect(ctx); err == nil {
		t.Fatal("connected to a server whose certificate hash is not in CertHashes")
	}
}
