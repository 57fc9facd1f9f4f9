package netem

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
)

// BenchmarkLinkModel pushes synthetic 128-byte IP packets through one
// direction of the link model at zero delay, without stacks: the
// emulator's own cost per packet.
func BenchmarkLinkModel(b *testing.B) {
	d, s := modelDirection(b, 1, LinkProfile{Loss: Loss{Rate: 0.01}})
	s.deliver(nil)
	to := d.to
	var delivered atomic.Int64
	to.deliver = func(vs []*buffer.View) {
		delivered.Add(int64(len(vs)))
		for _, v := range vs {
			v.Release()
		}
	}
	b.ResetTimer()
	start := time.Now()
	sendN(d, b.N, 100)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pkts/s")
}

// BenchmarkUDPThroughLink sends 100-byte datagrams from one host's socket to
// another's through a zero-delay link: both stacks, the NIC pump and the
// link model together. At most 512 datagrams are in flight so no socket
// buffer overflows.
func BenchmarkUDPThroughLink(b *testing.B) {
	_, srv, cli, l := pair(b, Config{Seed: 1}, LinkProfile{}, LinkProfile{})
	rc, err := srv.ListenUDP(9)
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	sc, err := cli.DialUDP("10.0.0.1:9")
	if err != nil {
		b.Fatal(err)
	}
	defer sc.Close()
	var got atomic.Int64
	window := make(chan struct{}, 512)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for got.Load() < int64(b.N) {
			if _, _, err := rc.ReadFrom(buf); err != nil {
				return
			}
			got.Add(1)
			<-window
		}
	}()
	msg := make([]byte, 100)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		window <- struct{}{}
		if _, err := sc.Write(msg); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	el := time.Since(start)
	b.ReportMetric(float64(got.Load())/el.Seconds(), "pkts/s")
	if st := l.AB.Stats(); st.Delivered.Packets != uint64(b.N) {
		b.Fatalf("link delivered %d of %d", st.Delivered.Packets, b.N)
	}
}

// BenchmarkAddedLatency measures the one-way latency netem adds at zero
// configured delay: UDP ping-pong between two hosts, half the round trip,
// stacks included.
func BenchmarkAddedLatency(b *testing.B) {
	_, srv, cli, _ := pair(b, Config{Seed: 1}, LinkProfile{}, LinkProfile{})
	rc, err := srv.ListenUDP(7)
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	sc, err := cli.DialUDP("10.0.0.1:7")
	if err != nil {
		b.Fatal(err)
	}
	defer sc.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := rc.ReadFrom(buf)
			if err != nil {
				return
			}
			rc.WriteTo(buf[:n], from)
		}
	}()
	msg := make([]byte, 64)
	buf := make([]byte, 2048)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		sc.Write(msg)
		if _, err := sc.Read(buf); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0)/2)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// heapNow returns live heap plus goroutine stacks after two collections.
func heapNow() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

// idlePairs opens n TCP connections from cli to srv and returns both ends.
func idlePairs(tb testing.TB, srv, cli *Host, ln net.Listener, n int) []net.Conn {
	conns := make([]net.Conn, 0, 2*n)
	var mu sync.Mutex
	acc := make(chan struct{})
	go func() {
		defer close(acc)
		for i := 0; i < n; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	// Dial from 64 goroutines: with a link delay each dial waits a round trip.
	ctx := context.Background()
	var next atomic.Int64
	var dialErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				c, err := cli.DialTCP(ctx, "10.0.0.1:80")
				if err != nil {
					dialErr.Store(&err)
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := dialErr.Load(); err != nil {
		tb.Fatal(*err)
	}
	<-acc
	return conns
}

// BenchmarkIdleTCPMemory measures the heap (and stacks) per idle TCP
// connection pair (client and server end, both on virtual hosts, no
// goroutine per connection). It measures the slope between 1,000 and
// 5,000 pairs, so fixed costs do not inflate the figure, and reports both
// points so a reader can check the growth is linear.
func BenchmarkIdleTCPMemory(b *testing.B) {
	for i := 0; i < b.N; i++ {
		n, srv, cli, _ := pair(b, Config{Seed: 1}, LinkProfile{}, LinkProfile{})
		ln, err := srv.ListenTCP(80)
		if err != nil {
			b.Fatal(err)
		}
		base := heapNow()
		c1 := idlePairs(b, srv, cli, ln, 1000)
		time.Sleep(100 * time.Millisecond) // let the handshakes' ACKs settle
		h1 := heapNow()
		c2 := idlePairs(b, srv, cli, ln, 4000)
		time.Sleep(100 * time.Millisecond)
		h2 := heapNow()
		perPair := float64(h2-h1) / 4000
		b.ReportMetric(perPair, "B/pair")
		b.ReportMetric(float64(h1-base)/1000, "B/pair-first-1000")
		runtime.KeepAlive(c1)
		runtime.KeepAlive(c2)
		ln.Close()
		for _, c := range append(c1, c2...) {
			c.Close()
		}
		n.Close()
	}
}

// BenchmarkFanout has a server host write 200-byte messages to 10,000 TCP
// connections of one client host, across a link with 10 ms one-way delay.
// Each b.N iteration is one broadcast round (10,000 copies). The hosts-10
// variants spread the connections over 10 client hosts with a link each,
// as the lab does. Writes are
// paced at pace copies per second (0: as one burst per round); the
// latency reported is above the configured delay.
func BenchmarkFanout(b *testing.B) {
	for _, hosts := range []int{1, 10} {
		for _, pace := range []int{0, 20_000, 50_000, 100_000} {
			name := "burst"
			if pace > 0 {
				name = "paced-" + strconv.Itoa(pace/1000) + "k"
			}
			name += "-hosts-" + strconv.Itoa(hosts)
			b.Run(name, func(b *testing.B) { fanout(b, 10_000, pace, hosts, 0) })
		}
	}
}

// BenchmarkFanoutCapacity is BenchmarkFanout's hosts-1 case with the writer
// kept at most 2,000 copies ahead of the readers instead of paced: the
// emulator runs flat out with a bounded backlog (no spurious RTOs), so
// copies/s is the capacity of this machine and cpu-µs/copy the cost of a
// copy at saturation, both less sensitive to other load than the paced
// runs' latencies.
func BenchmarkFanoutCapacity(b *testing.B) { fanout(b, 10_000, 0, 1, 2000) }

func fanout(b *testing.B, conns, pace, hosts, window int) {
	const delay = 10 * time.Millisecond
	p := LinkProfile{Delay: delay}
	n, srv, cli, _ := pair(b, Config{Seed: 1}, p, p)
	clis := []*Host{cli}
	for i := 1; i < hosts; i++ {
		h := n.MustHost("10.0.1." + strconv.Itoa(i))
		if _, err := n.Connect(h, srv, p, p); err != nil {
			b.Fatal(err)
		}
		clis = append(clis, h)
	}
	ln, err := srv.ListenTCP(80)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var all []net.Conn
	for _, h := range clis {
		all = append(all, idlePairs(b, srv, h, ln, conns/hosts)...)
	}
	// idlePairs returns accepted (server) ends and dialed (client) ends
	// mixed; tell them apart by local address.
	var server, client []net.Conn
	for _, c := range all {
		if c.LocalAddr().String() == "10.0.0.1:80" {
			server = append(server, c)
		} else {
			client = append(client, c)
		}
	}
	base := time.Now()
	var mu sync.Mutex
	var lat []time.Duration
	var got atomic.Int64
	var wg sync.WaitGroup
	var tokens chan struct{}
	if window > 0 {
		tokens = make(chan struct{}, window)
	}
	for _, c := range client {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 200)
			var mine []time.Duration
			for {
				if _, err := io.ReadFull(c, buf); err != nil {
					break
				}
				sent := time.Duration(binary.BigEndian.Uint64(buf))
				mine = append(mine, time.Since(base)-sent)
				got.Add(1)
				if tokens != nil {
					<-tokens
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	msg := make([]byte, 200)
	total := int64(b.N) * int64(len(server))
	b.ResetTimer()
	retrans0 := srv.Stack().Stats().TCP.Retransmits.Value()
	cpu0 := cpuTime()
	start := time.Now()
	sent := int64(0)
	for i := 0; i < b.N; i++ {
		for _, c := range server {
			if pace > 0 && sent%20 == 0 {
				// Pace in steps of 20 copies.
				due := start.Add(time.Duration(sent) * time.Second / time.Duration(pace))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
			}
			if tokens != nil {
				tokens <- struct{}{}
			}
			binary.BigEndian.PutUint64(msg, uint64(time.Since(base)))
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
			sent++
		}
	}
	wrote := time.Since(start)

	deadline := time.Now().Add(60 * time.Second)
	for got.Load() < total && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	retrans := srv.Stack().Stats().TCP.Retransmits.Value() - retrans0
	for _, c := range all {
		c.Close()
	}
	wg.Wait()
	if int64(len(lat)) != total {
		b.Fatalf("delivered %d of %d copies", len(lat), total)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(total)/el.Seconds(), "copies/s")
	b.ReportMetric(float64(lat[len(lat)/2]-delay)/1e6, "p50-ms-above-delay")
	b.ReportMetric(float64(lat[len(lat)*99/100]-delay)/1e6, "p99-ms-above-delay")
	b.ReportMetric(float64(total)/wrote.Seconds(), "writes/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(total), "cpu-µs/copy")
	// Spurious retransmissions (the link drops nothing here) mean ACKs
	// came back later than gVisor's 200 ms minimum RTO: the emulator fell
	// behind.
	b.ReportMetric(float64(retrans)/float64(total), "retransmits/copy")
}

// host (its gVisor stack, NIC pump and the delay lines of one link).
func BenchmarkHostMemory(b *testing.B) {
	for range b.N {
		n := New(Config{})
		srv := n.MustHost("10.0.0.1")
		base := heapNow()
		const hosts = 50
		for i := range hosts {
			h := n.MustHost("10.0.1." + strconv.Itoa(i+1))
			if _, err := n.Connect(h, srv, LinkProfile{}, LinkProfile{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(heapNow()-base)/hosts, "B/host")
		n.Close()
	}
}
