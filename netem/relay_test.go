package netem

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

func TestRelayTCPAndUDP(t *testing.T) {
	p := LinkProfile{Delay: 10 * time.Millisecond, Loss: Loss{Rate: 0.01}}
	_, srv, cli, l := pair(t, Config{Seed: 2}, p, p)
	ln, err := srv.ListenTCP(8080)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	uc, err := srv.ListenUDP(8080)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			k, from, err := uc.ReadFrom(buf)
			if err != nil {
				return
			}
			uc.WriteTo(buf[:k], from)
		}
	}()

	r, err := cli.Relay(RelayConfig{Target: "10.0.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.TCPAddr().Port != r.UDPAddr().Port {
		t.Fatalf("TCP port %d and UDP port %d differ", r.TCPAddr().Port, r.UDPAddr().Port)
	}

	// TCP: a real connection, echoed by the virtual server across the link.
	c, err := net.Dial("tcp", r.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := bytes.Repeat([]byte("relay "), 50_000)
	start := time.Now()
	go c.Write(want)
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("TCP echo through the relay differs")
	}
	if el := time.Since(start); el < 40*time.Millisecond {
		t.Fatalf("echo took %v, less than the link's two round trips (handshake + data)", el)
	}
	if l.AB.Stats().Delivered.Packets == 0 {
		t.Fatal("nothing crossed the link")
	}

	// UDP: a real datagram socket; retry, the link loses 1%.
	u, err := net.Dial("udp", r.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	buf := make([]byte, 100)
	for i := 0; ; i++ {
		if i == 20 {
			t.Fatal("no UDP echo through the relay")
		}
		u.Write([]byte("ping"))
		u.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		k, err := u.Read(buf)
		if err == nil && string(buf[:k]) == "ping" {
			break
		}
	}
}

// TestRelayQUIC: a quic-go client on a real loopback UDP socket reaches a
// QUIC server on a virtual host through the relay (the path a browser's
// WebTransport takes in the demo).
func TestRelayQUIC(t *testing.T) {
	p := LinkProfile{Delay: 5 * time.Millisecond, Loss: Loss{Rate: 0.01}}
	_, srv, cli, _ := pair(t, Config{Seed: 8}, p, p)
	sconn, err := srv.ListenUDP(4433)
	if err != nil {
		t.Fatal(err)
	}
	st := &quic.Transport{Conn: sconn}
	defer st.Close()
	stls, ctls := testTLS(t)
	ln, err := st.Listen(stls, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r, err := cli.Relay(RelayConfig{Target: "10.0.0.1:4433", UDP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		c, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		s, err := c.AcceptStream(ctx)
		if err != nil {
			return
		}
		io.Copy(s, s)
		s.Close()
	}()
	real, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ct := &quic.Transport{Conn: real}
	defer ct.Close()
	c, err := ct.Dial(ctx, r.UDPAddr(), ctls, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseWithError(0, "")
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("quic-relay "), 20_000)
	go func() {
		s.Write(want)
		s.Close()
	}()
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("echo over QUIC through the relay: %d bytes, %v", len(got), err)
	}
}
