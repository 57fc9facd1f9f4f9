package netem

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ProbeConfig describes a probe run: one link between two fresh hosts with
// the same profile in both directions.
type ProbeConfig struct {
	Profile LinkProfile
	Seed    uint64
	// Packets is the number of UDP probes (0 means 10,000).
	Packets int
	// Size is each probe's UDP payload in bytes (0 means 100, at least 16).
	Size int
	// TCPDuration is how long the bulk TCP transfer runs (0 means 2 s;
	// negative skips it).
	TCPDuration time.Duration
	// Stack is "gvisor" (the default: two gVisor hosts) or "kernel": two
	// Linux kernel stacks in network namespaces (KernelHost), joined by the
	// same link model.
	Stack string
}

// Percentiles of a distribution, in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// ProbeResult is what the link did to the probes.
type ProbeResult struct {
	Seed         uint64      `json:"seed"`
	Stack        string      `json:"stack"`
	Profile      string      `json:"profile"`
	Sent         int         `json:"sent"`
	Received     int         `json:"received"`
	DelayMS      Percentiles `json:"delay_ms"` // one way
	LossMeasured float64     `json:"loss_measured"`
	BurstMean    float64     `json:"burst_mean"` // mean run of consecutive lost probes (0 if none lost)
	Bursts       int         `json:"bursts"`
	Reorders     int         `json:"reorders"` // probes that arrived after a later-numbered one
	// ProbePacketsPerS is the rate the UDP probes went through (they are
	// flow-controlled to about 20,000/s at most).
	ProbePacketsPerS float64 `json:"probe_packets_per_s"`
	// PacketsPerS and TCPMbitS describe the bulk TCP transfer: IP packets
	// per second the link delivered in the data direction, and the
	// application bytes received, as Mbit/s.
	PacketsPerS float64 `json:"packets_per_s"`
	TCPMbitS    float64 `json:"tcp_mbit_s"`
	TCPBytes    int64   `json:"tcp_bytes"`
	// Link is the probe direction's own count (UDP probes and TCP data).
	Link DirectionStats `json:"link"`
}

// String renders a profile compactly, for reports.
func (p LinkProfile) String() string {
	s := fmt.Sprintf("delay=%v", p.Delay)
	if p.Jitter > 0 {
		s += fmt.Sprintf(" jitter=%v", p.Jitter)
	}
	if p.Reorder {
		s += " reorder"
	}
	if p.Rate > 0 {
		s += fmt.Sprintf(" rate=%gmbit", float64(p.Rate)/1e6)
		if p.Queue > 0 {
			s += fmt.Sprintf(" queue=%d", p.Queue)
		}
	}
	switch {
	case !p.Loss.GE.isZero():
		g := p.Loss.GE
		s += fmt.Sprintf(" gemodel=%g%%,%g%%,%g%%,%g%%", g.P*100, g.R*100, g.BadLoss*100, g.GoodLoss*100)
	case p.Loss.Burst > 0:
		s += fmt.Sprintf(" loss=%g%% burst=%g", p.Loss.Rate*100, p.Loss.Burst)
	case p.Loss.Rate > 0:
		s += fmt.Sprintf(" loss=%g%%", p.Loss.Rate*100)
	}
	if p.Blackhole.Every > 0 {
		s += fmt.Sprintf(" blackhole=%v/%v", p.Blackhole.Down, p.Blackhole.Every)
	}
	if p.BlockUDP {
		s += " block=udp"
	}
	for _, port := range p.BlockPorts {
		s += fmt.Sprintf(" block=%d", port)
	}
	return s
}

// Probe builds a two-host network with cfg.Profile on its link, sends
// numbered UDP probes from one host to the other and a bulk TCP transfer,
// and reports what the link did: one-way delay percentiles, measured loss
// and burst length, reordering, probe throughput and TCP goodput.
//
// Probes are flow-controlled (about 20,000 per second's worth of the delay in flight, at least one
// and at most 1,024, counting the link's own drops as no longer in flight: at zero delay one at a
// time, so the delay measured is the emulator's own) and, on a rate-limited link, paced at
// half the rate, so the probe measures the link rather than socket buffer
// overflows or a queue of its own making.
func Probe(ctx context.Context, cfg ProbeConfig) (ProbeResult, error) {
	if err := cfg.Profile.Validate(); err != nil {
		return ProbeResult{}, err
	}
	if cfg.Packets == 0 {
		cfg.Packets = 10_000
	}
	if cfg.Packets < 0 {
		return ProbeResult{}, fmt.Errorf("netem: probe packets %d is negative (try 10000)", cfg.Packets)
	}
	if cfg.Size == 0 {
		cfg.Size = 100
	}
	if cfg.Size < 16 || cfg.Size > 1400 {
		return ProbeResult{}, fmt.Errorf("netem: probe size %d is out of range (use 16-1400 bytes)", cfg.Size)
	}
	if cfg.TCPDuration == 0 {
		cfg.TCPDuration = 2 * time.Second
	}
	host := (*Network).Host
	switch cfg.Stack {
	case "", "gvisor":
		cfg.Stack = "gvisor"
	case "kernel":
		host = (*Network).KernelHost
	default:
		return ProbeResult{}, fmt.Errorf("netem: probe stack %q is not gvisor or kernel", cfg.Stack)
	}
	n := New(Config{Seed: cfg.Seed, TraceLimit: -1})
	defer n.Close()
	a, err := host(n, "10.99.0.1")
	if err != nil {
		return ProbeResult{}, err
	}
	b, err := host(n, "10.99.0.2")
	if err != nil {
		return ProbeResult{}, err
	}
	link, err := n.Connect(a, b, cfg.Profile, cfg.Profile)
	if err != nil {
		return ProbeResult{}, err
	}
	res := ProbeResult{Seed: cfg.Seed, Stack: cfg.Stack, Profile: cfg.Profile.String(), Sent: cfg.Packets}
	if err := probeUDP(ctx, a, b, link.AB, cfg, &res); err != nil {
		return res, err
	}
	if cfg.TCPDuration > 0 && !cfg.Profile.Blackhole.isAlwaysDown() {
		if err := probeTCP(ctx, a, b, link.AB, cfg, &res); err != nil {
			return res, err
		}
	}
	res.Link = link.AB.Stats()
	return res, nil
}

func (b Blackhole) isAlwaysDown() bool { return b.Every > 0 && b.Down >= b.Every }

func probeUDP(ctx context.Context, a, b *Host, ab *Direction, cfg ProbeConfig, res *ProbeResult) error {
	rc, err := b.ListenPacket(7)
	if err != nil {
		return err
	}
	defer rc.Close()
	// A receive buffer that holds every probe in flight: a probe the
	// socket drops would count as the link's loss.
	if s, ok := rc.(interface{ SetReadBuffer(int) error }); ok {
		_ = s.SetReadBuffer(4 << 20)
	}
	sc, err := a.DialContext(ctx, "udp", "10.99.0.2:7")
	if err != nil {
		return err
	}
	defer sc.Close()
	base := time.Now()
	type arrival struct {
		seq   uint64
		delay time.Duration
	}
	arrivals := make([]arrival, 0, cfg.Packets)
	var received atomic.Int64
	var lastRecv atomic.Int64
	arrived := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			k, _, err := rc.ReadFrom(buf)
			if err != nil {
				return
			}
			if k < 16 {
				continue
			}
			now := time.Since(base)
			arrivals = append(arrivals, arrival{binary.BigEndian.Uint64(buf), now - time.Duration(binary.BigEndian.Uint64(buf[8:]))})
			lastRecv.Store(int64(now))
			received.Add(1)
			select {
			case arrived <- struct{}{}:
			default:
			}
		}
	}()
	msg := make([]byte, cfg.Size)
	// Keep about 20,000 probes per second in flight at most: a faster
	// sender would measure the emulator's own queues.
	// In flight, at most 20,000 a second's worth of the one-way delay (at
	// least one, so at zero delay probes go one at a time and the delay
	// measured is the emulator's own, not a queue of the probe's making).
	window := int64(min(1024, max(1, (cfg.Profile.Delay+cfg.Profile.Jitter).Seconds()*20_000)))
	wait := time.NewTimer(time.Hour)
	defer wait.Stop()
	dropped := func() int64 { return int64(ab.Stats().Dropped.Total().Packets) }
	// With a rate limit, pace probes at half the link rate so they measure
	// the link's delay, not a queue they built themselves.
	var gap time.Duration
	if r := cfg.Profile.Rate; r > 0 {
		gap = time.Duration(float64((cfg.Size+28)*8) / (float64(r) / 2) * float64(time.Second))
	}
	start := time.Now()
	for i := 0; i < cfg.Packets; i++ {
		if gap > 0 {
			if ahead := time.Until(start.Add(time.Duration(i) * gap)); ahead > time.Millisecond {
				time.Sleep(ahead)
			}
		}
		for int64(i)-received.Load()-dropped() >= window {
			// Wait for an arrival, or a moment for a drop to count.
			wait.Reset(time.Millisecond)
			select {
			case <-arrived:
			case <-wait.C:
			case <-ctx.Done():
				return ctx.Err()
			}
			wait.Stop()
		}
		binary.BigEndian.PutUint64(msg, uint64(i))
		binary.BigEndian.PutUint64(msg[8:], uint64(time.Since(base)))
		if _, err := sc.Write(msg); err != nil {
			return fmt.Errorf("netem: probe: send: %w", err)
		}
	}
	// Wait for every probe to be delivered or dropped by the link.
	p := cfg.Profile
	grace := 2*time.Second + 2*(p.Delay+p.Jitter)
	deadline := time.Now().Add(grace)
	for received.Load()+dropped() < int64(cfg.Packets) && time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(time.Millisecond)
	}
	rc.Close()
	wg.Wait()

	res.Received = len(arrivals)
	if cfg.Packets > 0 {
		res.LossMeasured = 1 - float64(res.Received)/float64(cfg.Packets)
	}
	got := make([]bool, cfg.Packets)
	delays := make([]time.Duration, 0, len(arrivals))
	var maxSeq uint64
	for i, ar := range arrivals {
		if ar.seq < uint64(cfg.Packets) {
			got[ar.seq] = true
		}
		if i > 0 && ar.seq < maxSeq {
			res.Reorders++
		}
		maxSeq = max(maxSeq, ar.seq)
		delays = append(delays, ar.delay)
	}
	lost, run := 0, 0
	for _, ok := range got {
		if !ok {
			lost++
			run++
			continue
		}
		if run > 0 {
			res.Bursts++
			run = 0
		}
	}
	if run > 0 {
		res.Bursts++
	}
	if res.Bursts > 0 {
		res.BurstMean = float64(lost) / float64(res.Bursts)
	}
	res.DelayMS = percentiles(delays)
	if last := time.Duration(lastRecv.Load()); last > 0 {
		res.ProbePacketsPerS = float64(res.Received) / last.Seconds()
	}
	return nil
}

func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	at := func(q float64) float64 { return ms(ds[min(len(ds)-1, int(q*float64(len(ds))))]) }
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Min: ms(ds[0]), Max: ms(ds[len(ds)-1]), Mean: ms(sum / time.Duration(len(ds)))}
}

func probeTCP(ctx context.Context, a, b *Host, ab *Direction, cfg ProbeConfig, res *ProbeResult) error {
	ln, err := b.ListenTCP(5001)
	if err != nil {
		return err
	}
	defer ln.Close()
	// The receiver counts the bytes that arrive between the first byte and
	// the end of the transfer window; what the sender still has queued
	// then is not counted (the network's Close aborts it).
	var stopAt atomic.Int64 // unix nanos
	stopAt.Store(time.Now().Add(cfg.TCPDuration + 30*time.Second).UnixNano())
	type result struct {
		n        int64
		first    time.Time
		firstPkt uint64 // link packets delivered when the first byte arrived
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() { done <- r }()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			stop := time.Unix(0, stopAt.Load())
			c.SetReadDeadline(stop)
			k, err := c.Read(buf)
			if k > 0 {
				if r.n == 0 {
					r.first = time.Now()
					r.firstPkt = ab.Stats().Delivered.Packets
				}
				r.n += int64(k)
			}
			if err != nil {
				return
			}
		}
	}()
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := a.DialTCP(dctx, "10.99.0.2:5001")
	if err != nil {
		return fmt.Errorf("netem: probe: bulk TCP: %w", err)
	}
	defer c.Close()
	stop := time.Now().Add(cfg.TCPDuration)
	stopAt.Store(stop.UnixNano())
	c.SetWriteDeadline(stop)
	buf := make([]byte, 64<<10)
	for time.Now().Before(stop) && ctx.Err() == nil {
		if _, err := c.Write(buf); err != nil {
			// The deadline, or the receiver closing at its own deadline.
			break
		}
	}
	r := <-done
	pkts := ab.Stats().Delivered.Packets - r.firstPkt
	res.TCPBytes = r.n
	if el := stop.Sub(r.first); r.n > 0 && el > 0 {
		res.TCPMbitS = float64(r.n) * 8 / el.Seconds() / 1e6
		res.PacketsPerS = float64(pkts) / el.Seconds()
	}
	return nil
}
