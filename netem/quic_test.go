package netem

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"os"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

func testTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "netem"},
		IPAddresses:  []net.IP{net.IPv4(10, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, NextProtos: []string{"netem"}}
	client = &tls.Config{RootCAs: pool, NextProtos: []string{"netem"}, ServerName: "10.0.0.1"}
	return server, client
}

// TestQUICOverLossyLink runs a quic-go handshake and a 1 MiB stream over a
// link with 20 ms delay and 2% loss each way, and checks that quic-go
// printed no warning about the virtual socket.
func TestQUICOverLossyLink(t *testing.T) {
	var logs bytes.Buffer
	log.SetOutput(&logs)
	defer log.SetOutput(os.Stderr)
	p := LinkProfile{Delay: 20 * time.Millisecond, Loss: Loss{Rate: 0.02}}
	_, srv, cli, l := pair(t, Config{Seed: 5}, p, p)
	sconn, err := srv.ListenUDP(443)
	if err != nil {
		t.Fatal(err)
	}
	cconn, err := cli.ListenUDP(0)
	if err != nil {
		t.Fatal(err)
	}
	st := &quic.Transport{Conn: sconn}
	defer st.Close()
	ct := &quic.Transport{Conn: cconn}
	defer ct.Close()
	stls, ctls := testTLS(t)
	ln, err := st.Listen(stls, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	want := bytes.Repeat([]byte("netem-quic "), 100_000)
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept(ctx)
		if err != nil {
			got <- nil
			return
		}
		s, err := c.AcceptStream(ctx)
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(s)
		s.Write([]byte("ok"))
		s.Close()
		got <- b
	}()
	c, err := ct.Dial(ctx, &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 443}, ctls, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(want); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("server received %d bytes, want exactly the %d sent", len(b), len(want))
	}
	if ack, _ := io.ReadAll(s); string(ack) != "ok" {
		t.Fatalf("client read %q, want ok", ack)
	}
	c.CloseWithError(0, "")
	if l.AB.Stats().Dropped.Loss.Packets == 0 {
		t.Fatal("no QUIC packet was lost; the test did not exercise loss")
	}
	if logs.Len() > 0 {
		t.Fatalf("quic-go logged warnings: %s", logs.String())
	}
}
