package lab

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/netem"
	"github.com/wirelab/wirelab/peers"
	"github.com/wirelab/wirelab/results"
	"github.com/wirelab/wirelab/scenarios"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/all"
	"github.com/wirelab/wirelab/transports/webtransport"
)

// point is one run's world: the emulated network, the server, the client hosts and the
// simulated sessions.
type point struct {
	sc   *scenarios.Scenario
	p    scenarios.Point
	seed uint64
	opt  Options
	pop  Population

	nw         *netem.Network
	srv        serverHandle
	peer       *peerPoint // a peer server's run (PEER/TRANSPORT), else nil
	srvHost    *netem.Host
	srvHosts   []*netem.Host  // every node's host (one without a cluster)
	cluster    *clusterServer // nodes > 1
	hosts      []*netem.Host
	links      []*netem.Link
	prof       netem.LinkProfile // the run's link, both directions (lossOn applies it)
	setupAt    time.Time
	marks      *markLog
	clients    []transports.Client
	pcMu       sync.Mutex
	pcs        []net.PacketConn
	udpOf      []netip.AddrPort // session -> its UDP address (QUIC transports)
	upLoss     *LossMap         // the QUIC clients' upstream losses
	traced     []bool           // session -> its client records upstream losses in upLoss
	retries    atomic.Int64     // first connections tried again
	firstRetry atomic.Value     // string: why the first of them failed
	closeCli   sync.Once
	// sessionData is each session's copies and stalls (audit), for the point's bootstrap.
	sessionData []results.SessionData
}

// setup builds the network and the client hosts and starts the server.
func (pt *point) setup(ctx context.Context) error {
	prof, err := pt.sc.Profile(pt.p)
	if err != nil {
		return err
	}
	pt.prof = prof
	pt.setupAt = time.Now()
	pt.nw = netem.New(netem.Config{Seed: pt.seed})
	hubCfg := chat.Config{Outbox: 4096, SendQueue: 4096}
	kernel := pt.p.Stack == scenarios.StackKernel
	newHost := pt.nw.Host
	if kernel {
		newHost = pt.nw.KernelHost
	}
	peer, isPeer := peers.Lookup(pt.p.Transport)
	switch {
	case isPeer && (!kernel || pt.sc.Nodes > 1 || pt.opt.InProcess):
		return fmt.Errorf("%s is a peer server's transport: it runs on the kernel stack, as one node, in a process of its own (stack: kernel, no nodes, no --in-process)", pt.p.Transport)
	case isPeer:
		if pt.srvHost, err = newHost("10.0.0.1"); err != nil {
			return err
		}
		if pt.peer, err = startPeerPoint(ctx, pt.srvHost, peer, pt.opt.peers, pt.opt.serverDied); err == nil {
			pt.srv = pt.peer
		}
	case pt.sc.Nodes > 1 && kernel:
		return fmt.Errorf("scenario %s has nodes: %d on stack: kernel; several nodes run on the gvisor stack only (their Redis is on the machine's loopback, outside the namespaces)", pt.sc.Name, pt.sc.Nodes)
	case pt.sc.Nodes > 1 && pt.opt.InProcess:
		return fmt.Errorf("scenario %s has nodes: %d, and each node runs in a process of its own: run it without --in-process", pt.sc.Name, pt.sc.Nodes)
	case pt.sc.Nodes > 1:
		if pt.cluster, err = startCluster(ctx, pt.nw, pt.sc.Nodes, hubCfg, pt.opt); err == nil {
			pt.srv, pt.srvHosts = pt.cluster, pt.cluster.hosts
			pt.srvHost = pt.srvHosts[0]
		}
	case pt.opt.InProcess:
		if pt.srvHost, err = newHost("10.0.0.1"); err != nil {
			return err
		}
		pt.srv, err = startInProcess(pt.srvHost, hubCfg)
	default:
		pt.srvHost, pt.srv, err = startChild(ctx, pt.nw, "10.0.0.1", hubCfg, pt.opt, kernel)
	}
	if err != nil {
		return fmt.Errorf("starting the server: %w", err)
	}
	if pt.srvHosts == nil {
		pt.srvHosts = []*netem.Host{pt.srvHost}
	}
	nHosts := min(16, max(1, pt.pop.Sessions()/1000))
	pt.hosts = make([]*netem.Host, nHosts)
	pt.links = make([]*netem.Link, 0, nHosts*len(pt.srvHosts))
	for i := range pt.hosts {
		if pt.hosts[i], err = newHost(fmt.Sprintf("10.1.%d.%d", i/200, i%200+1)); err != nil {
			return err
		}
		for _, sh := range pt.srvHosts {
			// The sessions open on a link that does not lose yet (lossOn switches the loss on
			// once they are connected): the set-up is not measured, and a lost SYN would
			// poison gVisor's RTT estimate for the rest of the run (it takes the echo of the
			// first SYN's timestamp as a sample: SRTT about 1 s, RTO about 3 s), a tail no
			// Linux connection has.
			clean := prof
			clean.Loss, clean.Blackhole, clean.Drops = netem.Loss{}, netem.Blackhole{}, nil
			l, err := pt.nw.Connect(pt.hosts[i], sh, clean, clean)
			if err != nil {
				return err
			}
			pt.links = append(pt.links, l)
		}
	}
	return nil
}

// lossOn gives every link the run's profile: the loss, blackholes and drop rules the sessions
// were connected without.
func (pt *point) lossOn() error {
	for _, l := range pt.links {
		if err := l.SetProfiles(pt.prof, pt.prof); err != nil {
			return err
		}
	}
	return nil
}

// close ends what setup and connect started: the clients, their sockets, the server, the network.
func (pt *point) close() {
	pt.closeClients()
	for _, pc := range pt.pcs {
		_ = pc.Close()
	}
	if pt.srv != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := pt.srv.Close(cctx); err != nil {
			pt.opt.Logger.Warn("server shutdown", "err", err)
		}
	}
	if pt.nw != nil {
		pt.nw.Close()
	}
}

// closeClients closes every client at once and waits for them (once).
func (pt *point) closeClients() {
	pt.closeCli.Do(func() {
		var wg sync.WaitGroup
		for _, c := range pt.clients {
			if c != nil {
				wg.Go(func() { _ = c.Close() })
			}
		}
		wg.Wait()
	})
}

// connect opens every session (64 at a time, QUIC 24) and joins each to its room.
func (pt *point) connect(ctx context.Context) error {
	n := pt.pop.Sessions()
	pt.marks = &markLog{}
	pt.clients = make([]transports.Client, n)
	pt.udpOf = make([]netip.AddrPort, n)
	pt.upLoss = NewLossMap()
	pt.traced = make([]bool, n)
	base := fmt.Sprintf("http://%s:%d", pt.srvHost.Addr(), ServerPort)
	hashes := [][32]byte{pt.srv.CertHash()}
	if pt.cluster != nil {
		hashes = pt.cluster.CertHashes()
	}
	// A watchdog, not a target: QUIC handshakes cost about 10 ms of CPU each here (both ends in
	// this machine), so 10,000 wt-stream sessions take about 100 s to connect on 2 cores.
	connectCtx, cancel := context.WithTimeout(ctx, 60*time.Second+time.Duration(n)*20*time.Millisecond)
	defer cancel()
	order, phase := connectPhases(pt.p.Transport, n, pt.sc.PollInterval, pt.seed)
	// quic-go's server queues at most 32 finished handshakes for its accept loop and refuses the
	// next one (CONNECTION_REFUSED) when that queue is full, as it can be when 64 handshakes end
	// together on a busy machine: QUIC sessions connect at most 24 at a time.
	width := 64
	if needsUDP(pt.p.Transport) {
		width = 24
	}
	err := parallel(connectCtx, n, width, func(ctx context.Context, i int) error {
		s := order[i]
		if phase != nil {
			t := time.NewTimer(time.Until(pt.setupAt.Add(phase[s])))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
		url := base
		if pt.cluster != nil {
			url = fmt.Sprintf("http://%s:%d", pt.srvHosts[pt.nodeOf(s)].Addr(), ServerPort)
		}
		return pt.connectSession(ctx, s, url, hashes)
	})
	if err != nil {
		return fmt.Errorf("connecting %d sessions: %w", n, err)
	}
	pt.opt.Logger.Debug("sessions connected", "transport", pt.p.Transport, "sessions", n, "took", time.Since(pt.setupAt).Round(time.Millisecond))
	return nil
}

// connectSession opens session s on its client host and joins its room.
func (pt *point) connectSession(ctx context.Context, s int, base string, hashes [][32]byte) error {
	h := pt.hosts[s%len(pt.hosts)]
	textLen := pt.sc.Workload.Size
	o := transports.Options{
		URL: base, User: UserName(pt.pop.UserOf(s)), PollInterval: pt.sc.PollInterval,
		CertHashes: hashes,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := h.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return newTapConn(c, pt.marks, s, textLen), nil
		},
	}
	if needsUDP(pt.p.Transport) {
		pc, err := h.ListenPacket(0)
		if err != nil {
			return err
		}
		pt.pcMu.Lock()
		pt.pcs = append(pt.pcs, pc)
		pt.pcMu.Unlock()
		o.PacketConn = pc
		pt.udpOf[s], _ = netip.ParseAddrPort(pc.LocalAddr().String())
	}
	// A user whose first connection fails (a handshake lost twice over a lossy link) tries
	// again, as a browser page would; the run fails only if it cannot connect at all.
	var c transports.Client
	var err error
	for attempt := 1; ; attempt++ {
		if pt.peer != nil {
			c, err = pt.peer.inst.NewClient(pt.p.Transport, o)
		} else {
			c, err = all.NewClient(pt.p.Transport, o)
		}
		if err != nil {
			return err
		}
		if tl, ok := c.(interface {
			Observe(webtransport.ClientObserver)
		}); ok {
			tl.Observe(pt.upLoss)
			pt.traced[s] = true
		}
		if err = c.Connect(ctx); err == nil {
			break
		}
		_ = c.Close()
		if attempt == 4 || ctx.Err() != nil {
			return fmt.Errorf("session %d connect (%d attempts): %w", s, attempt, err)
		}
		if pt.retries.Add(1) == 1 {
			pt.firstRetry.Store(err.Error())
		}
	}
	pt.clients[s] = c
	if room := pt.pop.RoomOf(pt.pop.UserOf(s)); room != chat.Lobby {
		if _, err := c.Send(ctx, chat.Envelope{Type: chat.TypeJoin, Room: room}); err != nil {
			return fmt.Errorf("session %d join %s: %w", s, room, err)
		}
	}
	return nil
}

// driven is what drive saw: the deliveries, the window's counters and the traces.
type driven struct {
	msgs       []Message
	rec        *Recorder
	t0         time.Time
	end        windowEnd
	schedP99   float64
	drops      []netem.DropEvent
	unrecorded uint64
	marks      []wireMark
	sessionIDs []string
	redisCPU   time.Duration // the cluster's Redis, in the window
}

// drive sends the schedule open loop, waits for the copies still on their way (the drain), then
// closes the clients so that every delivery is recorded.
func (pt *point) drive(ctx context.Context) *driven {
	sc, p := pt.sc, pt.p
	d := &driven{msgs: Schedule(sc, pt.seed)}
	msgs := d.msgs

	// Readers: one per session, owning its log.
	d.t0 = time.Now().Add(50 * time.Millisecond)
	t0 := d.t0
	rec := NewRecorder(pt.pop, msgs, t0, sc.Warmup, sc.Duration)
	d.rec = rec
	var readers sync.WaitGroup
	for s, c := range pt.clients {
		readers.Go(func() {
			for dl := range c.Messages() {
				rec.Deliver(s, dl.Env, dl.At)
			}
		})
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
			mark = startWindow(pt.nw, pt.links, pt.srv, pt.marks)
			marked = true
		}
		if !waitUntil(runCtx, timer, t0.Add(m.At)) {
			break
		}
		rec.Started(i, time.Since(t0.Add(m.At)))
		senders.Go(func() {
			env := chat.Envelope{Type: chat.TypeSay, Room: m.Room, Text: Text(m.Index, sc.Workload.Size), CID: CID(m.Index)}
			if m.Kind == KindDM {
				env = chat.Envelope{Type: chat.TypeDM, To: UserName(m.To), Text: env.Text, CID: env.CID}
			}
			if _, err := pt.clients[m.Sender].Send(sendCtx, env); err == nil {
				rec.Acked(m.Index, time.Now())
			}
		})
	}
	if !marked {
		waitUntil(runCtx, timer, t0.Add(sc.Warmup))
		mark = startWindow(pt.nw, pt.links, pt.srv, pt.marks)
	}
	waitUntil(runCtx, timer, t0.Add(window))
	d.end = endWindow(pt.nw, pt.links, pt.srv, mark)
	if pt.cluster != nil {
		d.redisCPU = pt.cluster.RedisCPU()
	}
	pt.drain(ctx, rec, &senders, drainMax)
	pt.opt.Logger.Debug("drained", "transport", p.Transport, "after window", time.Since(t0.Add(window)).Round(time.Millisecond), "outstanding", rec.Outstanding())
	cancelSends()
	senders.Wait()
	d.schedP99 = probe.stop()
	d.drops, d.unrecorded = pt.nw.DropTrace()
	pt.marks.mu.Lock()
	pt.marks.on = false
	d.marks = pt.marks.marks
	pt.marks.mu.Unlock()

	if isQUIC(p.Transport) { // losses detected during the drain count too
		if st, err := pt.srv.Stats(); err == nil {
			d.end.server.QUICLost = st.QUICLost
		} else if d.end.serverErr == nil {
			d.end.serverErr = err
		}
	}
	d.sessionIDs = make([]string, len(pt.clients))
	for i, c := range pt.clients {
		d.sessionIDs[i] = c.Session()
	}
	// Close the clients now so the readers end, then audit.
	pt.closeClients()
	readers.Wait()
	pt.opt.Logger.Debug("clients closed", "transport", p.Transport, "after window", time.Since(t0.Add(window)).Round(time.Millisecond))
	return d
}

// drain waits for the sends to end and the copies still on their way, up to limit.
func (pt *point) drain(ctx context.Context, rec *Recorder, senders *sync.WaitGroup, limit time.Duration) {
	drainEnd := time.NewTimer(limit)
	defer drainEnd.Stop()
	sendsDone := make(chan struct{})
	go func() { senders.Wait(); close(sendsDone) }()
	defer func() {
		if path := os.Getenv("WIRELAB_DEBUG_DRAIN"); path != "" && rec.Outstanding() > 0 {
			debugDrain(path, pt.srv, pt.clients, pt.opt.Logger)
		}
	}()
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
}

// audit fills run with the figures of what drive saw: the delivery audit, latency, link and
// server load, stalls and their attribution, the timeline's samples and the lab's own health.
func (pt *point) audit(run *results.Run, d *driven, noLossP99 float64) {
	p, rec := pt.p, d.rec
	a := rec.Audit()
	for _, k := range a.missing {
		m := d.msgs[k.msg]
		pt.opt.Logger.Warn("lost copy", "transport", p.Transport, "session", k.session, "msg", k.msg,
			"kind", m.Kind, "sender", m.Sender, "at", m.At, "acked", rec.acked[k.msg].Load())
	}
	run.Sent, run.Expected, run.Delivered, run.Lost = a.sent, a.expected, a.delivered, a.lost
	run.Duplicates, run.OutOfOrder = a.dups, a.ooo
	run.Latency = latency(a.hist)
	run.Late = results.LateShares(len(a.lats), func(i int) time.Duration { return a.lats[i].lat }) // every copy, not the samples
	run.Stack = pt.p.Stack
	run.Link = d.end.link
	st := d.end.server
	run.Server = results.ServerLoad{Name: run.Server.Name, Version: run.Server.Version,
		CPUSeconds: st.CPU.Seconds(), RSSPeakBytes: st.RSSPeak, Requests: st.Requests,
		GoroutinesPeak: st.GoroutinesPeak, SchedulerMS: st.SchedMS,
	}
	if st.RSSBase > 0 && st.RSSPeak > st.RSSBase {
		run.Server.RSSPerSession = float64(st.RSSPeak-st.RSSBase) / float64(run.Sessions)
	}
	if a.delivered > 0 {
		run.Server.CPUUSPerMsg = float64(st.CPU.Microseconds()) / float64(a.delivered)
		run.Server.BytesPerMsg = float64(d.end.link.Bytes) / float64(a.delivered)
	}
	if pt.cluster != nil {
		run.Cluster = pt.clusterFigures(d, a.delivered, d.redisCPU)
	}
	// Stalls, attributed to the copy's own lost bytes or to someone else's (head of line).
	rtt := 2 * p.Delay
	if math.IsNaN(noLossP99) { // a no-loss run (the first of its transport): its own
		noLossP99 = typicalP99(a.lats, d.msgs, msgBlock(pt.sc.Duration), run.Latency.P99)
	}
	threshold := time.Duration(noLossP99*float64(time.Millisecond)) + rtt
	run.Stalls.ThresholdMS = float64(threshold) / 1e6
	att := newAttribution(d.drops, d.marks, d.t0, rec, isQUIC(p.Transport), pt.udpOf, d.sessionIDs, st.QUICLost, pt.upLoss.LostCommands(), pt.traced)
	// A stall with none of its own bytes lost is head of line (collateral), unless it was late
	// together with many senders' messages across many sessions: then the machine delayed it
	// (a system stall, system.go).
	var arrivals []arrival
	for s := range rec.sessions {
		for _, c := range rec.sessions[s].recs {
			a := arrival{session: int32(s), msg: c.msg, sender: int32(d.msgs[c.msg].Sender), recv: c.recv, stall: c.lat > threshold}
			if a.stall {
				run.Stalls.Count++
				run.Stalls.TotalMS += float64(c.lat-threshold) / 1e6
				own := att.ownLoss(s, c)
				a.own = own.any()
				if own.up {
					run.Stalls.OwnUpstream++
				}
				if own.down {
					run.Stalls.OwnDownstream++
				}
			}
			arrivals = append(arrivals, a)
		}
	}
	stalled := map[copyKey]stallKind{}
	lossless := len(d.drops) == 0 && d.unrecorded == 0 && pt.prof.Jitter == 0 && pt.prof.Rate == 0
	sys := systemStalls(arrivals, lossless)
	sysSessions := map[int32]bool{}
	var sysFrom, sysTo time.Duration
	for i, a := range arrivals {
		switch {
		case !a.stall:
			continue
		case a.own:
			stalled[copyKey{a.session, a.msg}] = stallOwn
		case sys[i]:
			stalled[copyKey{a.session, a.msg}] = stallSystem
			if run.Stalls.System == 0 || a.recv < sysFrom {
				sysFrom = a.recv
			}
			sysTo = max(sysTo, a.recv)
			run.Stalls.System++
			sysSessions[a.session] = true
		default:
			stalled[copyKey{a.session, a.msg}] = stallHOL
			run.Stalls.Collateral++
		}
	}
	// Each session's copies, their messages and stalls, for the point's bootstrap over sessions
	// and messages (issue 11). The message unit is a block of the schedule, not one message:
	// messages sent close together share the machine's state (a garbage collection, a busy
	// moment of the server or of the lab delays all of them at once), so they are not
	// independent either; a unit is repeat<<32 | block, unique within the point.
	block := msgBlock(pt.sc.Duration)
	pt.sessionData = make([]results.SessionData, len(rec.sessions))
	for s := range rec.sessions {
		recs := rec.sessions[s].recs
		sd := &pt.sessionData[s]
		sd.LatencyMS, sd.Message, sd.Stall = make([]float64, len(recs)), make([]int64, len(recs)), make([]bool, len(recs))
		for i, c := range recs {
			sd.LatencyMS[i] = float64(c.lat) / 1e6
			sd.Message[i] = int64(p.Repeat)<<32 | int64(d.msgs[c.msg].At/block)
			if sd.Stall[i] = c.lat > threshold; sd.Stall[i] {
				sd.Stalled++
			}
		}
	}
	winStart := pt.sc.Warmup
	for _, c := range subsample(a.lats, 5000, pt.seed) {
		smp := results.Sample{T: (c.recv - winStart - c.lat).Seconds(), LatencyMS: float64(c.lat) / 1e6}
		if k, ok := stalled[copyKey{c.session, c.msg}]; ok {
			smp.Stall, smp.HOL, smp.System = true, k == stallHOL, k == stallSystem
		}
		run.Samples = append(run.Samples, smp)
	}
	for _, dr := range d.drops {
		if t := (dr.Time.Sub(d.t0) - winStart).Seconds(); t >= 0 && len(run.Drops) < 20000 {
			run.Drops = append(run.Drops, t)
		}
	}

	// The lab's own health.
	run.Lab = d.end.lab
	run.Lab.SendLagP99 = rec.sendLagP99()
	run.Lab.SchedulerMS = d.schedP99
	run.Warnings = append(run.Warnings, labWarnings(*run, a, d.unrecorded, pt.opt.InProcess, pt.nw, pt.hosts, pt.srvHost)...)
	if float64(run.Stalls.System) >= systemWarnShare*float64(run.Delivered) && run.Stalls.System > 0 {
		run.Warnings = append(run.Warnings, systemWarning(int(run.Stalls.System), len(sysSessions),
			(sysFrom-winStart).Seconds(), (sysTo-winStart).Seconds(), run.Server.SchedulerMS, run.Lab.SchedulerMS, lossless))
	}
	if err := d.end.serverErr; err != nil {
		run.Warnings = append(run.Warnings, fmt.Sprintf("the server's figures could not be read (%v): its CPU, memory, requests and QUIC loss trace are missing, so QUIC stalls count as head-of-line", err))
	}
	if n := pt.retries.Load(); n > 0 {
		why, _ := pt.firstRetry.Load().(string)
		if len(why) > 200 {
			why = why[:200] + "…"
		}
		run.Warnings = append(run.Warnings, fmt.Sprintf("%d first connections failed and were tried again before the run (the first: %s)", n, why))
	}
}

// typicalP99 is the no-loss p99 that sets a transport's stall threshold: the median, over the
// blocks of the schedule (msgBlock) with at least 200 copies, of each block's p99. At 0% loss a
// run's tail is the machine's, in episodes (a garbage collection, a busy moment of the server or
// of the lab): the p99 of the whole run moved by 10-30 ms between runs of one scenario, and
// every stall of the transport, at every loss rate, moved with it (wt-datagram at 2%: 0.8% of
// copies stalled against 1.3% on two seeds, from thresholds of 118 and 104 ms). The blocks'
// median p99 is the run's p99 outside those episodes (wt-datagram: 54 and 50 ms where the whole
// runs' p99s were 78 and 64). With fewer than 5 such blocks it is the run's own p99 (fallback).
func typicalP99(lats []copyRec, msgs []Message, block time.Duration, fallback float64) float64 {
	byBlock := map[time.Duration][]time.Duration{}
	for _, c := range lats {
		b := msgs[c.msg].At / block
		byBlock[b] = append(byBlock[b], c.lat)
	}
	var p99s []float64
	for _, ls := range byBlock {
		if len(ls) < 200 {
			continue
		}
		slices.Sort(ls)
		p99s = append(p99s, float64(ls[int(math.Ceil(0.99*float64(len(ls))))-1])/1e6)
	}
	if len(p99s) < 5 {
		return fallback
	}
	return median(p99s)
}

// msgBlock is the span of the schedule whose messages the bootstrap resamples together: 250 ms,
// or less in a short window so that it holds at least 20 blocks. At 0% loss a run's tail is the
// machine's: in a make bench run of wt-datagram, the p99 of half-second spans went from 44 to 93
// ms. Resampled one by one, messages gave two seeds' no-loss p99s intervals of 75-80 and 62-67
// ms; resampled in blocks of 125-500 ms, 64-84 and 53-70 ms, while the lossy points' intervals
// stayed as they were (their loss events are spread over the window).
func msgBlock(window time.Duration) time.Duration {
	return max(10*time.Millisecond, min(250*time.Millisecond, window/20))
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
	if interval = all.PollInterval(transport, interval); interval <= 0 {
		return order, nil // not a transport that polls at an interval
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	phase = make([]time.Duration, n)
	for i := range phase {
		phase[i] = time.Duration(rng.Int64N(int64(interval)))
	}
	sort.Slice(order, func(a, b int) bool { return phase[order[a]] < phase[order[b]] })
	return order, phase
}
