package netem

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// pair builds a network with a server 10.0.0.1 and a client 10.0.0.2.
func pair(t testing.TB, cfg Config, up, down LinkProfile) (n *Network, srv, cli *Host, l *Link) {
	t.Helper()
	n = New(cfg)
	t.Cleanup(func() { n.Close() })
	srv = n.MustHost("10.0.0.1")
	cli = n.MustHost("10.0.0.2")
	l, err := n.Connect(cli, srv, up, down)
	if err != nil {
		t.Fatal(err)
	}
	return n, srv, cli, l
}

// transfer sends size seeded random bytes from cli to srv over TCP and
// checks that exactly those bytes arrive.
func transfer(t testing.TB, srv, cli *Host, size int) time.Duration {
	t.Helper()
	ln, err := srv.ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	want := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range want {
		want[i] = byte(r.Uint32())
	}
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- b
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	c, err := cli.DialTCP(ctx, "10.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(want); err != nil {
		t.Fatal(err)
	}
	c.Close()
	b := <-got
	el := time.Since(start)
	if !bytes.Equal(b, want) {
		t.Fatalf("received %d bytes, want exactly the %d sent", len(b), len(want))
	}
	return el
}

func TestTCPEcho(t *testing.T) {
	_, srv, cli, l := pair(t, Config{Seed: 1}, LinkProfile{}, LinkProfile{})
	transfer(t, srv, cli, 1<<20)
	st := l.AB.Stats()
	if st.Offered.Packets == 0 || st.Delivered != st.Offered {
		t.Fatalf("AB stats %+v: want every offered packet delivered", st)
	}
}

func TestTCPOverLossIsExact(t *testing.T) {
	p := LinkProfile{Delay: 5 * time.Millisecond, Loss: Loss{Rate: 0.02}}
	n, srv, cli, l := pair(t, Config{Seed: 7}, p, p)
	transfer(t, srv, cli, 2<<20)
	st := l.AB.Stats()
	if st.Dropped.Loss.Packets == 0 {
		t.Fatalf("no packet was lost: %+v", st)
	}
	tr, _ := n.DropTrace()
	var ranged int
	for _, ev := range tr {
		if ev.HaveRange {
			ranged++
			if ev.End-ev.Start != uint64(ev.Payload) || ev.End > 2<<20 {
				t.Fatalf("bad range in %+v", ev)
			}
		}
	}
	if ranged == 0 {
		t.Fatalf("no dropped data segment in the trace of %d events", len(tr))
	}
	t.Logf("client->server: %d packets, %d lost; %d data segments in trace", st.Offered.Packets, st.Dropped.Loss.Packets, ranged)
}

func TestUDPPacketConn(t *testing.T) {
	_, srv, cli, _ := pair(t, Config{Seed: 1}, LinkProfile{Delay: time.Millisecond}, LinkProfile{})
	s, err := srv.ListenUDP(53)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := cli.ListenUDP(0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetReadBuffer(7 << 20); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteTo([]byte("ping"), &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 53}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	k, from, err := s.ReadFrom(buf)
	if err != nil || string(buf[:k]) != "ping" {
		t.Fatalf("read %q from %v: %v", buf[:k], from, err)
	}
	if _, err := s.WriteTo([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	k, _, err = c.ReadFrom(buf)
	if err != nil || string(buf[:k]) != "pong" {
		t.Fatalf("read %q: %v", buf[:k], err)
	}
}
