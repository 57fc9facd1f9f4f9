package netem

import (
	"bytes"
	"context"
	"encoding/binary"
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

func TestRateLimitOnBulkTCP(t *testing.T) {
	const rate = 10_000_000
	_, srv, cli, l := pair(t, Config{Seed: 1}, LinkProfile{Rate: rate, Delay: 2 * time.Millisecond}, LinkProfile{Delay: 2 * time.Millisecond})
	ln, err := srv.ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(io.Discard, c)
	}()
	c, err := cli.DialTCP(context.Background(), "10.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	// The rate is measured over the time the limiter was busy: on a
	// starved machine TCP may leave it idle now and then, which says
	// nothing about the limiter.
	sample := func() (uint64, time.Duration, time.Duration) {
		st := l.AB.Stats()
		return st.RateSent.Bytes, st.RateIdle, st.At
	}
	time.Sleep(500 * time.Millisecond)
	b0, i0, t0 := sample()
	time.Sleep(2 * time.Second)
	b1, i1, t1 := sample()
	close(stop)
	c.Close()
	<-done
	busy := (t1 - t0) - (i1 - i0)
	got := float64(b1-b0) * 8 / busy.Seconds()
	st := l.AB.Stats()
	if busy < (t1-t0)/5 {
		t.Fatalf("the limiter was busy only %v of %v: the machine starved the sender", busy, t1-t0)
	}
	if got < rate*0.95 || got > rate*1.05 {
		t.Fatalf("measured %.2f Mbit/s at the IP layer over %v busy, want 10 ± 5%%; link %+v", got/1e6, busy, st)
	}
	t.Logf("measured %.3f Mbit/s, queue peak %d packets", got/1e6, st.QueuePeak)
}

func TestDropRuleOverTCP(t *testing.T) {
	up := LinkProfile{Drops: []DropRule{{Proto: TCP, Port: 80, Packets: []int{5, 6}}}}
	n, srv, cli, l := pair(t, Config{Seed: 1}, up, LinkProfile{})
	transfer(t, srv, cli, 200_000)
	if got := l.AB.Stats().Dropped.Rule.Packets; got != 2 {
		t.Fatalf("rule dropped %d packets, want 2", got)
	}
	tr, _ := n.DropTrace()
	if len(tr) != 2 {
		t.Fatalf("trace has %d events, want 2: %+v", len(tr), tr)
	}
	// Both segments were full-sized and consecutive: the 5th and 6th data
	// segments carry bytes [4*mss, 6*mss).
	mss := uint64(tr[0].Payload)
	if !tr[0].HaveRange || tr[0].Start != 4*mss || tr[0].End != 5*mss || tr[1].Start != 5*mss || tr[1].End != 6*mss {
		t.Fatalf("trace ranges %+v, want [%d,%d) and [%d,%d)", tr, 4*mss, 5*mss, 5*mss, 6*mss)
	}
	if tr[0].Flow.Dst.Port() != 80 || tr[0].Cause != DropByRule {
		t.Fatalf("trace flow %v cause %v", tr[0].Flow, tr[0].Cause)
	}
}

func TestProbe(t *testing.T) {
	p, err := ParseProfile("delay=20ms loss=2% burst=3 rate=10mbit")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Probe(context.Background(), ProbeConfig{Profile: p, Seed: 1, Packets: 20000, TCPDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	// The link cannot be faster than 20 ms (less the delay line's 1 ms
	// margin); a starved machine can make it slower.
	if res.DelayMS.P50 < 19 || res.DelayMS.P50 > 500 {
		t.Errorf("p50 one-way delay %.2f ms, want about 20", res.DelayMS.P50)
	}
	if res.LossMeasured < 0.01 || res.LossMeasured > 0.03 {
		t.Errorf("measured loss %.4f, want about 0.02", res.LossMeasured)
	}
	if res.BurstMean < 2.4 || res.BurstMean > 3.6 {
		t.Errorf("mean burst %.2f, want about 3", res.BurstMean)
	}
	if res.Reorders != 0 {
		t.Errorf("%d reorders without jitter", res.Reorders)
	}
	if res.TCPMbitS <= 0 || res.TCPMbitS > 10 || res.PacketsPerS <= 0 {
		t.Errorf("TCP %.2f Mbit/s over a 10 Mbit/s link", res.TCPMbitS)
	}
}

// TestProfileChangesWhileTCPFlows swaps both directions' profiles every
// 256 KB of a transfer (as the demo's sliders do, while traffic flows) and
// checks the bytes arrive exactly and each new setting takes effect.
func TestProfileChangesWhileTCPFlows(t *testing.T) {
	_, srv, cli, l := pair(t, Config{Seed: 4}, LinkProfile{Delay: time.Millisecond}, LinkProfile{Delay: time.Millisecond})
	profiles := []LinkProfile{
		{Delay: 5 * time.Millisecond, Loss: Loss{Rate: 0.03}},
		{Delay: 2 * time.Millisecond, Rate: 20_000_000},
		{Delay: time.Millisecond, Loss: Loss{Rate: 0.02, Burst: 3}},
		{Delay: 3 * time.Millisecond, Jitter: time.Millisecond},
	}
	stop := make(chan struct{})
	swapped := make(chan int)
	go func() {
		n := 0
		defer func() { swapped <- n }()
		next := uint64(256 << 10)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			got := l.AB.Stats().Delivered.Bytes
			if got < next {
				continue
			}
			next = got + 256<<10
			p := profiles[n%len(profiles)]
			if err := l.SetProfiles(p, p); err != nil {
				t.Error(err)
				return
			}
			n++
		}
	}()
	transfer(t, srv, cli, 2<<20)
	close(stop)
	n := <-swapped
	if n < 4 {
		t.Fatalf("only %d profile swaps during the transfer", n)
	}
	st := l.AB.Stats()
	if st.Dropped.Loss.Packets == 0 {
		t.Fatalf("no loss after switching to lossy profiles: %+v", st)
	}
	if st.QueuePeak == 0 {
		t.Fatalf("the rate-limited profile never queued: %+v", st)
	}
}

func TestDialWithoutLinkFailsFast(t *testing.T) {
	n := New(Config{})
	defer n.Close()
	a := n.MustHost("10.0.0.1")
	n.MustHost("10.0.0.2")
	_, err := a.DialTCP(context.Background(), "10.0.0.2:80")
	if err == nil || err.Error() != "netem: host 10.0.0.1 has no link to 10.0.0.2 (Connect the two hosts first)" {
		t.Fatalf("DialTCP without a link: %v", err)
	}
	if _, err := a.DialUDP("10.0.0.9:53"); err == nil {
		t.Fatal("DialUDP without a link succeeded")
	}
	if _, err := a.DialTCP(context.Background(), "example.com:80"); err == nil {
		t.Fatal("DialTCP accepted a host name")
	}
	if _, err := n.Host("10.0.0.1"); err == nil {
		t.Fatal("a second host with the same address was accepted")
	}
	if _, err := n.Host("fe80::1"); err == nil {
		t.Fatal("an IPv6 host address was accepted")
	}
}

// TestTCPSkipsIPv4Input checks that segments between hosts take the fast
// path into the transport layer (the receiving stack's IPv4 input counts
// none of them) while UDP still goes through IPv4 input.
func TestTCPSkipsIPv4Input(t *testing.T) {
	_, srv, cli, _ := pair(t, Config{Seed: 1}, LinkProfile{}, LinkProfile{})
	transfer(t, srv, cli, 64<<10)
	ip, tcpSt := srv.Stack().Stats().IP, srv.Stack().Stats().TCP
	if got := tcpSt.ValidSegmentsReceived.Value(); got == 0 {
		t.Fatal("the server's stack received no TCP segment")
	}
	if got := ip.PacketsReceived.Value(); got != 0 {
		t.Fatalf("IPv4 input saw %d packets; want the TCP segments to skip it", got)
	}
	rc, err := srv.ListenUDP(9)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	sc, err := cli.DialUDP("10.0.0.1:9")
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if _, err := sc.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	rc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := rc.ReadFrom(buf); err != nil {
		t.Fatal(err)
	}
	if got := ip.PacketsReceived.Value(); got != 1 {
		t.Fatalf("IPv4 input saw %d packets after one UDP datagram; want 1", got)
	}
}

func TestPlainTCPTo(t *testing.T) {
	self := [4]byte{10, 0, 0, 1}
	seg := func(edit func(b []byte)) []byte {
		b := make([]byte, 60)
		b[0], b[9] = 0x45, 6
		binary.BigEndian.PutUint16(b[2:4], 60)
		copy(b[12:16], []byte{10, 0, 0, 2})
		copy(b[16:20], self[:])
		b[32] = 5 << 4
		if edit != nil {
			edit(b)
		}
		return b
	}
	if !plainTCPTo(seg(nil), self) {
		t.Fatal("a plain segment was refused")
	}
	if !plainTCPTo(seg(func(b []byte) { b[6] = 0x40 }), self) {
		t.Fatal("a segment with DF set was refused")
	}
	for name, b := range map[string][]byte{
		"options":      seg(func(b []byte) { b[0] = 0x46 }),
		"udp":          seg(func(b []byte) { b[9] = 17 }),
		"more frags":   seg(func(b []byte) { b[6] = 0x20 }),
		"frag offset":  seg(func(b []byte) { b[7] = 1 }),
		"other dst":    seg(func(b []byte) { b[19] = 9 }),
		"own src":      seg(func(b []byte) { copy(b[12:16], self[:]) }),
		"loopback src": seg(func(b []byte) { b[12] = 127 }),
		"bcast src":    seg(func(b []byte) { copy(b[12:16], []byte{255, 255, 255, 255}) }),
		"long total":   seg(func(b []byte) { binary.BigEndian.PutUint16(b[2:4], 61) }),
		"bad offset":   seg(func(b []byte) { b[32] = 4 << 4 }),
		"cut header":   seg(func(b []byte) { b[32] = 15 << 4 }),
		"short":        seg(nil)[:39],
	} {
		if plainTCPTo(b, self) {
			t.Errorf("%s: taken for a plain segment", name)
		}
	}
}
