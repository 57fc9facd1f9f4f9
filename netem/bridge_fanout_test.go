package netem

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Ports of the bridge child's fan-out server (see bridgeFanoutServer).
const (
	bridgeFanoutPort    = 81
	bridgeFanoutCtlPort = 82
)

// bridgeFanoutServer runs in the bridge child: for each control connection
// it reads "CONNS ROUNDS PACE", accepts CONNS connections on
// bridgeFanoutPort, waits for a line ("go"), writes ROUNDS rounds of 200-byte messages (the first 8
// bytes the wall clock in ns) to every one, PACE copies per second, then
// waits for a line from the parent (every copy arrived) and answers
// "CPU_NS RETRANSMITS" (its process CPU time and its stack's TCP
// retransmissions since the first write).
func bridgeFanoutServer(h *Host) error {
	ctl, err := h.ListenTCP(bridgeFanoutCtlPort)
	if err != nil {
		return err
	}
	ln, err := h.ListenTCP(bridgeFanoutPort)
	if err != nil {
		ctl.Close()
		return err
	}
	go func() {
		defer ctl.Close()
		defer ln.Close()
		for {
			c, err := ctl.Accept()
			if err != nil {
				return
			}
			bridgeFanoutRun(h, ln, c)
			c.Close()
		}
	}()
	return nil
}

func bridgeFanoutRun(h *Host, ln net.Listener, ctl net.Conn) {
	r := bufio.NewReader(ctl)
	var conns, rounds, pace int
	if _, err := fmt.Fscanln(r, &conns, &rounds, &pace); err != nil {
		return
	}
	cs := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	for len(cs) < conns {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		cs = append(cs, c)
	}
	if _, err := r.ReadString('\n'); err != nil { // "go"
		return
	}
	msg := make([]byte, 200)
	tcp := h.Stack().Stats().TCP
	retrans0 := tcp.Retransmits.Value()
	cpu0 := cpuTime()
	start := time.Now()
	sent := 0
	for range rounds {
		for _, c := range cs {
			if pace > 0 && sent%20 == 0 {
				due := start.Add(time.Duration(sent) * time.Second / time.Duration(pace))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
			}
			binary.BigEndian.PutUint64(msg, uint64(time.Now().UnixNano()))
			if _, err := c.Write(msg); err != nil {
				return
			}
			sent++
		}
	}
	if _, err := r.ReadString('\n'); err != nil {
		return
	}
	fmt.Fprintf(ctl, "%d %d\n", int64(cpuTime()-cpu0), tcp.Retransmits.Value()-retrans0)
}

// BenchmarkBridgeFanout is BenchmarkFanout/paced-*-hosts-1 with the server
// host in a child process behind the process bridge, as the lab runs it:
// the child writes 200-byte messages to 10,000 connections of a client
// host here, across a link with 10 ms one-way delay. Each b.N is one round
// (10,000 copies). cpu-µs/copy is split into this process (link model,
// client stack, readers) and the child's (server stack, bridge).
func BenchmarkBridgeFanout(b *testing.B) {
	for _, pace := range []int{20_000, 50_000} {
		b.Run("paced-"+strconv.Itoa(pace/1000)+"k", func(b *testing.B) { bridgeFanout(b, 10_000, pace) })
	}
}

func bridgeFanout(b *testing.B, conns, pace int) {
	const delay = 10 * time.Millisecond
	_, _, cli, _ := startBridgeChild(b, LinkProfile{Delay: delay})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ctl net.Conn
	var err error
	for {
		// The child's listener may not be up yet: retry refused dials.
		ctl, err = cli.DialTCP(ctx, "10.0.0.1:"+strconv.Itoa(bridgeFanoutCtlPort))
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer ctl.Close()
	fmt.Fprintf(ctl, "%d %d %d\n", conns, b.N, pace)
	client := make([]net.Conn, conns)
	var next atomic.Int64
	var dialErr atomic.Pointer[error]
	var dials sync.WaitGroup
	for range 64 {
		dials.Add(1)
		go func() {
			defer dials.Done()
			for i := next.Add(1) - 1; i < int64(conns); i = next.Add(1) - 1 {
				c, err := cli.DialTCP(ctx, "10.0.0.1:"+strconv.Itoa(bridgeFanoutPort))
				if err != nil {
					dialErr.Store(&err)
					return
				}
				client[i] = c
			}
		}()
	}
	dials.Wait()
	if err := dialErr.Load(); err != nil {
		b.Fatal(*err)
	}
	total := int64(b.N) * int64(conns)
	var mu sync.Mutex
	var lat []time.Duration
	var got atomic.Int64
	var wg sync.WaitGroup
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
				sent := int64(binary.BigEndian.Uint64(buf))
				mine = append(mine, time.Duration(time.Now().UnixNano()-sent))
				got.Add(1)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	fmt.Fprintln(ctl, "go")
	deadline := start.Add(60*time.Second + time.Duration(total)*time.Second/time.Duration(pace))
	for got.Load() < total && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	fmt.Fprintln(ctl, "done")
	var childCPU, retrans int64
	if _, err := fmt.Fscanln(bufio.NewReader(ctl), &childCPU, &retrans); err != nil {
		b.Fatalf("reading the child's figures: %v", err)
	}
	for _, c := range client {
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
	b.ReportMetric(float64(cpu.Microseconds())/float64(total), "cpu-µs/copy")
	b.ReportMetric(float64(childCPU)/1e3/float64(total), "child-cpu-µs/copy")
	b.ReportMetric(float64(retrans)/float64(total), "retransmits/copy")
}
