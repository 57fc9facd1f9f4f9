package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/netem"
	"github.com/wirelab/wirelab/results"
	"github.com/wirelab/wirelab/scenarios"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/all"
	"github.com/wirelab/wirelab/transports/webtransport"
)

// Options configure a lab run. The zero value of a field means its default.
type Options struct {
	// Progress is told about each run as it starts and ends (default: nothing).
	Progress Progress
	// Logger receives the lab's logs (default: discard).
	Logger *slog.Logger
	// InProcess runs the chat server inside the lab process instead of a process of its own
	// (tests do; the server's CPU and memory then cannot be measured apart).
	InProcess bool
	// ServerCommand starts the server process (default: this executable with "lab-server").
	ServerCommand []string
	// ScenarioText is the scenario file's text, kept in the results.
	ScenarioText string
}

// Progress hears about the sweep.
type Progress interface {
	Start(total int, estimate time.Duration)
	Begin(i int, p scenarios.Point)
	End(i int, p scenarios.Point, r results.Run)
	Done()
}

// Run runs every point of the scenario and returns the results file.
func Run(ctx context.Context, sc *scenarios.Scenario, opt Options) (*results.File, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	vers, commit := versions()
	f := &results.File{
		Schema: results.Schema, Scenario: sc.Name, Commit: commit, Go: runtime.Version(),
		Started: time.Now().UTC().Truncate(time.Second), Seed: sc.Seed, Machine: machineInfo(),
		Versions: vers, ScenarioText: opt.ScenarioText,
		PollIntervalMS: float64(sc.PollInterval) / 1e6, LossModel: sc.Link.LossModel,
	}
	for _, t := range sc.Transports {
		if _, err := all.NewClient(t, transports.Options{}); err != nil {
			return nil, err
		}
	}
	points := sc.Points()
	if opt.Progress != nil {
		opt.Progress.Start(len(points), sc.Estimate())
		defer opt.Progress.Done()
	}
	labCPU0, wall0 := cpuTime(), time.Now()
	noLoss := map[string][]float64{} // transport/delay -> p99s of 0% runs
	failed := 0
	for i, p := range points {
		if err := ctx.Err(); err != nil {
			return f, err
		}
		if opt.Progress != nil {
			opt.Progress.Begin(i, p)
		}
		key := fmt.Sprintf("%s/%v", p.Transport, p.Delay)
		base := math.NaN()
		if ps := noLoss[key]; len(ps) > 0 {
			base = median(ps)
		}
		run, err := runPoint(ctx, sc, p, i, base, opt)
		if err != nil {
			if ctx.Err() != nil {
				return f, fmt.Errorf("%s at %g%% loss, %v delay: %w", p.Transport, p.Loss*100, p.Delay, err)
			}
			// One failed point does not throw away a long sweep: the run is kept, empty, with
			// the reason, and the report shows it.
			opt.Logger.Error("run failed", "transport", p.Transport, "loss", p.Loss, "err", err)
			run.Warnings = append(run.Warnings, "the run failed: "+err.Error())
			failed++
		}
		if p.Loss == 0 && err == nil {
			noLoss[key] = append(noLoss[key], run.Latency.P99)
		}
		f.Runs = append(f.Runs, run)
		if opt.Progress != nil {
			opt.Progress.End(i, p, run)
		}
	}
	wall := time.Since(wall0)
	f.Lab.CPUSeconds = (cpuTime() - labCPU0).Seconds()
	f.Lab.CPUShare = f.Lab.CPUSeconds / (wall.Seconds() * float64(runtime.NumCPU()))
	if failed > 0 {
		return f, fmt.Errorf("%d of %d runs failed; the results hold them with the reason", failed, len(points))
	}
	return f, nil
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// runPoint runs one transport at one link setting: it builds the network, starts the server and
// the simulated users, drives the schedule and audits what arrived.
func runPoint(ctx context.Context, sc *scenarios.Scenario, p scenarios.Point, index int, noLossP99 float64, opt Options) (results.Run, error) {
	run := results.Run{Transport: p.Transport, Loss: p.Loss, Burst: p.Burst, DelayMS: float64(p.Delay) / 1e6, Repeat: p.Repeat,
		Sessions: sc.Users * sc.Tabs}
	seed := sc.Seed*1_000_003 + uint64(index)
	prof, err := sc.Profile(p)
	if err != nil {
		return run, err
	}
	pop := Population{Users: sc.Users, Tabs: sc.Tabs, Rooms: sc.Rooms}
	setupStart := time.Now()

	nw := netem.New(netem.Config{Seed: seed})
	defer nw.Close()
	hubCfg := chat.Config{Outbox: 4096, SendQueue: 4096}
	var srv serverHandle
	var srvHost *netem.Host
	if opt.InProcess {
		if srvHost, err = nw.Host("10.0.0.1"); err != nil {
			return run, err
		}
		srv, err = startInProcess(srvHost, hubCfg)
	} else {
		srvHost, srv, err = startChild(ctx, nw, "10.0.0.1", hubCfg, opt)
	}
	if err != nil {
		return run, fmt.Errorf("starting the server: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := srv.Close(cctx); err != nil {
			opt.Logger.Warn("server shutdown", "err", err)
		}
	}()
	nHosts := min(16, max(1, pop.Sessions()/1000))
	hosts := make([]*netem.Host, nHosts)
	links := make([]*netem.Link, nHosts)
	for i := range hosts {
		if hosts[i], err = nw.Host(fmt.Sprintf("10.1.%d.%d", i/200, i%200+1)); err != nil {
			return run, err
		}
		if links[i], err = nw.Connect(hosts[i], srvHost, prof, prof); err != nil {
			return run, err
		}
	}

	// The simulated users.
	marks := &markLog{}
	msgs := Schedule(sc, seed)
	base := fmt.Sprintf("http://%s:%d", srvHost.Addr(), ServerPort)
	hash := srv.CertHash()
	clients := make([]transports.Client, pop.Sessions())
	var pcs []net.PacketConn
	var pcMu sync.Mutex
	udpOf := make([]netip.AddrPort, pop.Sessions())
	// The QUIC clients record which of their commands lost a packet upstream.
	upLoss := webtransport.NewLossMap()
	traced := make([]bool, pop.Sessions())
	defer func() {
		var wg sync.WaitGroup
		for _, c := range clients {
			if c != nil {
				wg.Add(1)
				go func() { defer wg.Done(); _ = c.Close() }()
			}
		}
		wg.Wait()
		for _, pc := range pcs {
			_ = pc.Close()
		}
	}()
	textLen := sc.Workload.Size
	var connectRetries atomic.Int64
	connectCtx, cancelConnect := context.WithTimeout(ctx, 60*time.Second+time.Duration(pop.Sessions())*time.Millisecond)
	defer cancelConnect()
	order, phase := connectPhases(p.Transport, pop.Sessions(), sc.PollInterval, seed)
	err = parallel(connectCtx, pop.Sessions(), 64, func(ctx context.Context, i int) error {
		s := order[i]
		if phase != nil {
			t := time.NewTimer(time.Until(setupStart.Add(phase[s])))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
		h := hosts[s%nHosts]
		o := transports.Options{
			URL: base, User: UserName(pop.UserOf(s)), PollInterval: sc.PollInterval,
			CertHashes: [][32]byte{hash},
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := h.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return newTapConn(c, marks, s, textLen), nil
			},
		}
		if needsUDP(p.Transport) {
			pc, err := h.ListenUDP(0)
			if err != nil {
				return err
			}
			pcMu.Lock()
			pcs = append(pcs, pc)
			pcMu.Unlock()
			o.PacketConn = pc
			udpOf[s], _ = netip.ParseAddrPort(pc.LocalAddr().String())
		}
		// A user whose first connection fails (a handshake lost twice over a lossy link) tries
		// again, as a browser page would; the run fails only if it cannot connect at all.
		var c transports.Client
		var err error // this goroutine's own: runPoint's err is shared
		for attempt := 1; ; attempt++ {
			if c, err = all.NewClient(p.Transport, o); err != nil {
				return err
			}
			if tl, ok := c.(interface{ TraceLoss(*webtransport.LossMap) }); ok {
				tl.TraceLoss(upLoss)
				traced[s] = true
			}
			if err = c.Connect(ctx); err == nil {
				break
			}
			_ = c.Close()
			if attempt == 4 || ctx.Err() != nil {
				return fmt.Errorf("session %d connect (%d attempts): %w", s, attempt, err)
			}
			connectRetries.Add(1)
		}
		clients[s] = c
		if room := pop.RoomOf(pop.UserOf(s)); room != chat.Lobby {
			if _, err := c.Send(ctx, chat.Envelope{Type: chat.TypeJoin, Room: room}); err != nil {
				return fmt.Errorf("session %d join %s: %w", s, room, err)
			}
		}
		return nil
	})
	if err != nil {
		return run, fmt.Errorf("connecting %d sessions: %w", pop.Sessions(), err)
	}

	opt.Logger.Debug("sessions connected", "transport", p.Transport, "sessions", pop.Sessions(), "took", time.Since(setupStart).Round(time.Millisecond))

	// Readers: one per session, owning its log.
	t0 := time.Now().Add(50 * time.Millisecond)
	rec := NewRecorder(pop, msgs, t0, sc.Warmup, sc.Duration)
	var readers sync.WaitGroup
	for s, c := range clients {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for d := range c.Messages() {
				rec.Deliver(s, d.Env, d.At)
			}
		}()
	}

	// The schedule: open loop. Each send starts at its time on its own goroutine, so a slow
	// send never delays the next (no coordinated omission).
	probe := startSchedProbe()
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	var senders sync.WaitGroup
	window := sc.Warmup + sc.Duration
	drainMax := 10*time.Second + 4*sc.PollInterval + 20*p.Delay
	sendCtx, cancelSends := context.WithDeadline(runCtx, t0.Add(window+drainMax))
	defer cancelSends()
	var mark windowMark
	timer := time.NewTimer(time.Until(t0))
	marked := false
	for i := 0; i < len(msgs); i++ {
		m := msgs[i]
		if !marked && m.At >= sc.Warmup {
			waitUntil(runCtx, timer, t0.Add(sc.Warmup))
			mark = startWindow(nw, links, srv, marks)
			marked = true
		}
		if !waitUntil(runCtx, timer, t0.Add(m.At)) {
			break
		}
		lag := time.Since(t0.Add(m.At))
		rec.Started(i, lag)
		senders.Add(1)
		go func() {
			defer senders.Done()
			env := chat.Envelope{Type: chat.TypeSay, Room: m.Room, Text: Text(m.Index, sc.Workload.Size), CID: CID(m.Index)}
			if m.Kind == KindDM {
				env = chat.Envelope{Type: chat.TypeDM, To: UserName(m.To), Text: env.Text, CID: env.CID}
			}
			if _, err := clients[m.Sender].Send(sendCtx, env); err == nil {
				rec.Acked(m.Index, time.Now())
			}
		}()
	}
	if !marked {
		waitUntil(runCtx, timer, t0.Add(sc.Warmup))
		mark = startWindow(nw, links, srv, marks)
	}
	waitUntil(runCtx, timer, t0.Add(window))
	end := endWindow(nw, links, srv, mark)
	// Drain: wait for the copies still on their way, up to drainMax.
	drainEnd := time.NewTimer(drainMax)
	func() {
		defer drainEnd.Stop()
		sendsDone := make(chan struct{})
		go func() { senders.Wait(); close(sendsDone) }()
		for {
			select {
			case <-sendsDone:
				sendsDone = nil
			case <-rec.Changed():
			case <-drainEnd.C:
				return
			case <-ctx.Done():
				return
			}
			if sendsDone == nil && rec.Outstanding() == 0 {
				return
			}
		}
	}()
	if path := os.Getenv("WIRELAB_DEBUG_DRAIN"); path != "" && rec.Outstanding() > 0 {
		debugDrain(path, srv, clients, opt.Logger)
	}
	opt.Logger.Debug("drained", "transport", p.Transport, "after window", time.Since(t0.Add(window)).Round(time.Millisecond), "outstanding", rec.Outstanding())
	cancelSends()
	senders.Wait()
	schedP99 := probe.stop()
	drops, unrecorded := nw.DropTrace()
	marks.mu.Lock()
	marks.on = false
	wm := marks.marks
	marks.mu.Unlock()

	if isQUIC(p.Transport) { // losses detected during the drain count too
		if st, err := srv.Stats(); err == nil {
			end.server.QUICLost = st.QUICLost
		}
	}
	sessionIDs := make([]string, len(clients))
	for i, c := range clients {
		sessionIDs[i] = c.Session()
	}
	// Close the clients now so the readers end, then audit.
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Close() }()
		clients[i] = c
	}
	wg.Wait()
	clients = nil
	readers.Wait()
	opt.Logger.Debug("clients closed", "transport", p.Transport, "after window", time.Since(t0.Add(window)).Round(time.Millisecond))

	a := rec.Audit()
	for _, k := range a.missing {
		m := msgs[k.msg]
		opt.Logger.Warn("lost copy", "transport", p.Transport, "session", k.session, "msg", k.msg,
			"kind", m.Kind, "sender", m.Sender, "at", m.At, "acked", rec.acked[k.msg].Load())
	}
	run.Sent, run.Expected, run.Delivered, run.Lost = a.sent, a.expected, a.delivered, a.lost
	run.Duplicates, run.OutOfOrder = a.dups, a.ooo
	run.Latency = latency(a.hist)
	run.Link = end.link
	st := end.server
	run.Server = results.ServerLoad{
		CPUSeconds: st.CPU.Seconds(), RSSPeakBytes: st.RSSPeak, Requests: st.Requests,
		GoroutinesPeak: st.GoroutinesPeak,
	}
	if st.RSSBase > 0 && st.RSSPeak > st.RSSBase {
		run.Server.RSSPerSession = float64(st.RSSPeak-st.RSSBase) / float64(run.Sessions)
	}
	if a.delivered > 0 {
		run.Server.CPUUSPerMsg = float64(st.CPU.Microseconds()) / float64(a.delivered)
		run.Server.BytesPerMsg = float64(end.link.Bytes) / float64(a.delivered)
	}
	// Stalls, attributed to the copy's own lost bytes or to someone else's (head of line).
	rtt := 2 * p.Delay
	threshold := time.Duration(noLossP99*float64(time.Millisecond)) + rtt
	if math.IsNaN(noLossP99) {
		threshold = time.Duration(run.Latency.P99*float64(time.Millisecond)) + rtt
	}
	att := newAttribution(drops, wm, t0, rec, isQUIC(p.Transport), udpOf, sessionIDs, end.server.QUICLost, upLoss.LostCommands(), traced)
	samples := subsample(a.lats, 5000, seed)
	stalled := map[copyKey]bool{}
	for s := range rec.sessions {
		for _, c := range rec.sessions[s].recs {
			if c.lat <= threshold {
				continue
			}
			run.Stalls.Count++
			run.Stalls.TotalMS += float64(c.lat-threshold) / 1e6
			own := att.ownLoss(s, c)
			hol := !own.any()
			if hol {
				run.Stalls.Collateral++
			}
			if own.up {
				run.Stalls.OwnUpstream++
			}
			if own.down {
				run.Stalls.OwnDownstream++
			}
			stalled[copyKey{int32(s), c.msg}] = hol
		}
	}
	winStart := sc.Warmup
	for _, c := range samples {
		smp := results.Sample{T: (c.recv - winStart - c.lat).Seconds(), LatencyMS: float64(c.lat) / 1e6}
		if hol, ok := stalled[copyKey{c.session, c.msg}]; ok {
			smp.Stall, smp.HOL = true, hol
		}
		run.Samples = append(run.Samples, smp)
	}
	for _, d := range drops {
		if t := (d.Time.Sub(t0) - winStart).Seconds(); t >= 0 && len(run.Drops) < 20000 {
			run.Drops = append(run.Drops, t)
		}
	}

	// The lab's own health.
	run.Lab = end.lab
	run.Lab.SendLagP99 = rec.sendLagP99()
	run.Lab.SchedulerMS = schedP99
	run.Warnings = append(run.Warnings, labWarnings(run, a, unrecorded, opt.InProcess, nw, hosts, srvHost)...)
	if n := connectRetries.Load(); n > 0 {
		run.Warnings = append(run.Warnings, fmt.Sprintf("%d first connections failed and were tried again before the run", n))
	}
	return run, nil
}

// connectPhases says in which order the sessions connect and, for short polling, when: each
// session polls every interval from its first poll, which it sends as it connects, so sessions
// that all connect within a few milliseconds (as the lab's would) poll in step, and a message's
// wait for the next poll then depends on where the measured window falls against that common
// phase instead of averaging interval/2. Browser tabs open at independent times: each short-polling
// session connects at a seeded uniform offset within one poll interval of the set-up's start, in
// the order of those offsets. Other transports connect at once, in session order (phase nil).
func connectPhases(transport string, n int, interval time.Duration, seed uint64) (order []int, phase []time.Duration) {
	order = make([]int, n)
	for i := range order {
		order[i] = i
	}
	if transport != transports.ShortPoll || interval <= 0 {
		return order, nil
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	phase = make([]time.Duration, n)
	for i := range phase {
		phase[i] = time.Duration(rng.Int64N(int64(interval)))
	}
	sort.Slice(order, func(a, b int) bool { return phase[order[a]] < phase[order[b]] })
	return order, phase
}

func needsUDP(t string) bool {
	return t == transports.WTStream || t == transports.WTUni || t == transports.WTDatagram || t == transports.Auto
}

func isQUIC(t string) bool {
	return t == transports.WTStream || t == transports.WTUni || t == transports.WTDatagram
}

// waitUntil sleeps until t; false if ctx ended first.
func waitUntil(ctx context.Context, timer *time.Timer, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer.Reset(d)
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		if !timer.Stop() {
			<-timer.C
		}
		return false
	}
}

// parallel runs f for 0..n-1 with at most width at once; the first error cancels the rest.
func parallel(ctx context.Context, n, width int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(ctx, i); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// windowMark is the state at the start of the measured window.
type windowMark struct {
	at     time.Time
	labCPU time.Duration
}

type windowEnd struct {
	link   results.LinkFigures
	server serverStats
	lab    results.LabLoad
}

func startWindow(nw *netem.Network, links []*netem.Link, srv serverHandle, marks *markLog) windowMark {
	for _, l := range links {
		l.AB.ResetStats()
		l.BA.ResetStats()
	}
	nw.ResetTrace()
	marks.mu.Lock()
	marks.on = true
	marks.mu.Unlock()
	_ = srv.Mark()
	return windowMark{at: time.Now(), labCPU: cpuTime()}
}

func endWindow(nw *netem.Network, links []*netem.Link, srv serverHandle, m windowMark) windowEnd {
	var e windowEnd
	var offered, lossDrops int64
	for _, l := range links {
		for _, st := range []netem.DirectionStats{l.AB.Stats(), l.BA.Stats()} {
			e.link.Packets += int64(st.Offered.Packets)
			e.link.Bytes += int64(st.Offered.Bytes)
			tot := st.Dropped.Total()
			e.link.Dropped += int64(tot.Packets)
			offered += int64(st.Offered.Packets)
			lossDrops += int64(st.Dropped.Loss.Packets)
			if int64(st.QueuePeak) > e.lab.QueuePeak {
				e.lab.QueuePeak = int64(st.QueuePeak)
			}
		}
	}
	if offered > 0 {
		e.link.LossMeasured = float64(lossDrops) / float64(offered)
	}
	e.server, _ = srv.Stats()
	wall := time.Since(m.at)
	e.lab.CPUSeconds = (cpuTime() - m.labCPU).Seconds()
	e.lab.CPUShare = e.lab.CPUSeconds / (wall.Seconds() * float64(runtime.NumCPU()))
	return e
}

func labWarnings(run results.Run, a audit, unrecorded uint64, inProcess bool, nw *netem.Network, hosts []*netem.Host, srvHost *netem.Host) []string {
	var w []string
	if inProcess {
		w = append(w, "the server ran inside the lab process: its CPU and memory are not measured apart")
	}
	if run.Lab.CPUShare > 0.85 {
		w = append(w, fmt.Sprintf("the lab process used %.0f%% of the machine's CPU: latencies may include the harness's own delay", run.Lab.CPUShare*100))
	}
	if run.Lab.SendLagP99 > 10 {
		w = append(w, fmt.Sprintf("senders started up to %.1f ms late (p99): the harness could not keep the schedule", run.Lab.SendLagP99))
	}
	if run.Lab.SchedulerMS > 10 {
		w = append(w, fmt.Sprintf("the Go scheduler woke the lab's goroutines %.1f ms late (p99): the harness was short of CPU", run.Lab.SchedulerMS))
	}
	if run.Lab.QueuePeak > 1000 {
		w = append(w, fmt.Sprintf("an emulated link queue grew to %d packets: some latency is the emulator's queueing", run.Lab.QueuePeak))
	}
	var nic, spurious uint64
	for _, h := range append(hosts, srvHost) {
		st := h.Stats()
		nic += st.NICDrops
		spurious += st.TCPSpuriousRTO
	}
	if spurious > 0 {
		w = append(w, fmt.Sprintf("the clients' TCP stacks saw %d spurious retransmission timeouts: ACKs came back later than gVisor's 200 ms minimum RTO, so the emulator or the machine fell behind and latencies include its queueing", spurious))
	}
	if nic > 0 {
		w = append(w, fmt.Sprintf("the emulator's NIC queues overflowed and dropped %d packets that the loss model did not choose", nic))
	}
	if unrecorded > 0 {
		w = append(w, fmt.Sprintf("%d drops were not recorded in the trace (trace full): stall attribution is partial", unrecorded))
	}
	if a.unacked > 0 {
		w = append(w, fmt.Sprintf("%d scheduled messages were never acknowledged by the server (not counted as sent)", a.unacked))
	}
	return w
}

// debugDrain is a diagnostic for copies that never arrived (WIRELAB_DEBUG_DRAIN=FILE): a goroutine
// dump to FILE and, with the server in-process, each session's newest seq on both sides.
func debugDrain(path string, srv serverHandle, clients []transports.Client, log *slog.Logger) {
	if f, err := os.Create(path); err == nil {
		_ = pprof.Lookup("goroutine").WriteTo(f, 2)
		f.Close()
	}
	if ips, ok := srv.(*inProcessServer); ok {
		for s, c := range clients {
			ss, err := ips.srv.Hub.Lookup(c.Session(), "")
			type lastSeqer interface{ LastSeq() uint64 }
			if e, ok := c.(lastSeqer); ok && err == nil && ss.LastSeq() != e.LastSeq() {
				direct, ents, _ := ss.Read(e.LastSeq(), 1)
				log.Warn("drain: behind", "session", s, "client", e.LastSeq(), "server", ss.LastSeq(), "direct", direct, "next", len(ents), "attached", ss.Attached())
			}
		}
	}
}
