package webtransport_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	wt "github.com/quic-go/webtransport-go"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/transports"
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
	l.client(t, transports.WTStream, "files") // connects, verifying by hash

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

func TestOriginAndToken(t *testing.T) {
	signer := chat.NewSigner("secret-for-tests")
	l := start(t, server.Config{Transport: transports.ServerOptions{Signer: signer}})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for _, tc := range []struct {
		name  string
		token string
		code  string
	}{
		{"no token", "", chat.CodeUnauthorized},
		{"wrong token", "nope", chat.CodeUnauthorized},
	} {
		for _, mode := range modes {
			opt := l.opts("tok")
			opt.Token = tc.token
			c := webtransport.NewClient(mode, opt)
			err := c.Connect(ctx)
			c.Close()
			var ce *chat.Error
			if !errors.As(err, &ce) || ce.Code != tc.code {
				t.Errorf("%s over %s: %v, want %s", tc.name, mode, err, tc.code)
			}
		}
	}
	tok := signer.Token("tok", time.Hour, time.Now())
	for _, mode := range modes {
		l.client(t, mode, "tok", func(o *transports.Options) { o.Token = tok })
	}
}

// rawDial opens a WebTransport session with webtransport-go itself, so a test can set headers.
func rawDial(t *testing.T, l *lab, query string, h http.Header) (*http.Response, *wt.Session, error) {
	t.Helper()
	hash := l.hash
	tlsConf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{http3.NextProtoH3},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if sha256.Sum256(cs.PeerCertificates[0].Raw) != hash {
				return errors.New("wrong certificate")
			}
			return nil
		}}
	d := &wt.Transport{TLSClientConfig: tlsConf}
	t.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	host := strings.TrimPrefix(l.base, "http://")
	rsp, s, err := d.Dial(ctx, "https://"+host+"/wt?"+query, h)
	if s != nil {
		t.Cleanup(func() { s.CloseWithError(0, "") })
	}
	return rsp, s, err
}

func TestOrigin(t *testing.T) {
	l := start(t, server.Config{Transport: transports.ServerOptions{AllowOrigins: []string{"http://ok.example"}}})
	rsp, _, err := rawDial(t, l, "user=o", http.Header{"Origin": {"http://evil.example"}})
	if err == nil || rsp == nil || rsp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v %v, want 403", rsp, err)
	}
	rsp, _, err = rawDial(t, l, "user=o&mode=nope", nil)
	if err == nil || rsp == nil || rsp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad mode: %v %v, want 400", rsp, err)
	}
	_, s, err := rawDial(t, l, "user=o", http.Header{"Origin": {"http://ok.example"}})
	if err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
	// The raw session speaks the protocol: open the stream, write first, read the welcome.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	str, err := s.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := str.Write([]byte(`{"type":"join","room":"r","cid":1}` + "\n")); err != nil {
		t.Fatal(err)
	}
	_ = str.SetReadDeadline(time.Now().Add(wait))
	br := bufio.NewReader(str)
	var types []string
	for len(types) == 0 || types[len(types)-1] != chat.TypeOK {
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		var e chat.Envelope
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		types = append(types, e.Type)
	}
	if types[0] != chat.TypeWelcome {
		t.Fatalf("got %v, want the welcome first", types)
	}
}
