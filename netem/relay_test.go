package netem

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
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
