package lab

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wirelab/wirelab/netem"
	"github.com/wirelab/wirelab/peers"
	"github.com/wirelab/wirelab/results"
	"github.com/wirelab/wirelab/scenarios"
	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/all"
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
	// StackChosen, if set, hears which stack `stack: auto` became and, when gvisor, why the
	// kernel stack was not available (default: nothing).
	StackChosen func(stack string, kernelErr error)

	// PeerInstall hears the progress line of a peer server's first install (default: nothing).
	PeerInstall io.Writer

	peers   peerSet    // the peer servers the scenario names, installed by Run
	version string     // wirelab's version (its module version, else its commit), set by Run
	pause   *testPause // this run's WIRELAB_TEST_PAUSE (pause.go), set by Run
	// serverDied hears, once, why the run's server process is gone (a *childError: it exited,
	// or hung and was killed); set by runPoint, where it ends the run at once.
	serverDied func(error)
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
	// wirelab's own version: a release's module version, else the commit it was built from, else
	// what the build says ("(devel)": built outside a repository).
	opt.version = cmp.Or(commit, vers.Wirelab, "(devel)")
	if v := vers.Wirelab; v != "" && v != "(devel)" {
		opt.version = v
	}
	f := &results.File{
		Schema: results.Schema, Scenario: sc.Name, Commit: commit, Go: runtime.Version(),
		Started: time.Now().UTC().Truncate(time.Second), Seed: sc.Seed, Machine: machineInfo(),
		Versions: vers, ScenarioText: opt.ScenarioText,
		PollIntervalMS: float64(sc.PollInterval) / 1e6, LossModel: sc.Link.LossModel,
		Order: all.Names(), // results shows transports in the table's order
	}
	for _, t := range sc.Transports {
		if _, ok := peers.Lookup(t); ok {
			continue
		}
		if _, err := all.NewClient(t, transports.Options{}); err != nil {
			return nil, err
		}
	}
	// The test-only hold (server.HoldEnv) is read by the server, in its process or in this
	// one; a malformed value stops the lab here, before any run, and a set one is said on
	// every run.
	hold, err := server.HoldFromEnv()
	if err != nil {
		return nil, err
	}
	pause, err := pauseFromEnv(opt)
	if err != nil {
		return nil, err
	}
	kernelErr := netem.KernelAvailable()
	if to := sc.ResolveStack(kernelErr == nil); to != "" {
		opt.Logger.Info("stack: auto", "chose", to, "kernel", kernelErr)
		if opt.StackChosen != nil {
			opt.StackChosen(to, kernelErr)
		}
	}
	if kernelErr != nil && slices.Contains(sc.Stacks, scenarios.StackKernel) {
		return nil, fmt.Errorf("scenario %s asks for stack: kernel, which this machine cannot give: %w", sc.Name, kernelErr)
	}
	if slices.Contains(sc.Stacks, scenarios.StackKernel) {
		f.Machine.KernelTCPCC, _ = netem.KernelTCPDefaults()
	}
	progress := opt.PeerInstall
	if progress == nil {
		progress = io.Discard
	}
	if opt.peers, err = ensurePeers(ctx, sc, progress); err != nil {
		return nil, err
	}
	f.Order = append(f.Order, peers.Names()...)
	points := sc.Points()
	f.Stack = results.JoinStacks(sc.Stacks) // after ResolveStack: auto is kernel or gvisor by now
	if opt.Progress != nil {
		opt.Progress.Start(len(points), sc.Estimate())
		defer opt.Progress.Done()
	}
	labCPU0, wall0 := cpuTime(), time.Now()
	// Every point's sessions, all repeats pooled, for the summary's bootstrap (issue 11): a
	// point is bootstrapped once its last repeat is done; the summary and the findings are
	// written whatever way Run returns.
	evidence, left := map[results.Key]*results.Evidence{}, map[results.Key]int{}
	for _, p := range points {
		left[pointKey(p)]++
	}
	defer results.SummarizePoints(f, evidence)
	noLoss := map[string][]float64{} // transport/delay -> p99s of 0% runs
	failed := 0
	for i, p := range points {
		if err := ctx.Err(); err != nil {
			return f, err
		}
		if opt.Progress != nil {
			opt.Progress.Begin(i, p)
		}
		key := fmt.Sprintf("%s/%s/%v", p.Transport, p.Stack, p.Delay) // each stack has its own no-loss p99
		base := math.NaN()
		if ps := noLoss[key]; len(ps) > 0 {
			base = median(ps)
		}
		// Both stacks of one transport, condition and repeat share a seed (p.Pair): the same
		// schedule and the same loss draws, so a side-by-side compares stacks, not luck.
		popt := opt
		popt.pause = pause.forRun(i + 1)
		run, sessions, err := runPoint(ctx, sc, p, p.Pair, base, popt)
		run.Stack = p.Stack // a run that failed before its audit says its stack too
		k := pointKey(p)
		if evidence[k] == nil {
			evidence[k] = results.NewEvidence()
		}
		for _, s := range sessions { // none when the run failed
			evidence[k].Add(s)
		}
		if dir := os.Getenv("WIRELAB_DEBUG_EVIDENCE"); dir != "" {
			dumpEvidence(dir, p, sessions)
		}
		if left[k]--; left[k] == 0 && evidence[k].Sessions() > 0 {
			evidence[k].Bootstrap(k, results.BootstrapSeed(f.Seed, k), 0)
		}
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
		if p.Loss == 0 && err == nil && run.Stalls.ThresholdMS > 0 {
			// the run's typical no-loss p99 (typicalP99), which its threshold was made of
			noLoss[key] = append(noLoss[key], run.Stalls.ThresholdMS-2*float64(p.Delay)/1e6)
		}
		if hold != nil {
			run.Warnings = append(run.Warnings, hold.Describe())
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

// serverIdentity names the server a run of transport t talks to, and its version.
func serverIdentity(t string, opt Options) (name, version string) {
	if pt, ok := peers.Lookup(t); ok {
		if srv := opt.peers[pt.Server]; srv != nil {
			return srv.Name(), srv.Version()
		}
		return pt.Server, ""
	}
	return "wirelab", opt.version
}

// carrierOf is a transport's carrier, wirelab's or a peer's.
func carrierOf(name string) transports.Carrier {
	if t, ok := peers.Lookup(name); ok {
		return t.Carrier
	}
	return all.CarrierOf(name)
}

// deliveryOf is a transport's delivery (results.json's "push" or "poll"), wirelab's or a
// peer's, and the interval in ms its clients poll at when the scenario's poll_interval is every
// (0: they do not poll at an interval).
func deliveryOf(name string, every time.Duration) (string, float64) {
	if t, ok := peers.Lookup(name); ok {
		if t.Polls {
			return string(transports.Poll), 0
		}
		return string(transports.Push), 0
	}
	return string(all.DeliveryOf(name)), float64(all.PollInterval(name, every)) / 1e6
}

// pointKey is the results' Key of p: its transport and condition, the stack included.
func pointKey(p scenarios.Point) results.Key {
	r := results.Run{Transport: p.Transport, Loss: p.Loss, Burst: p.Burst, DelayMS: float64(p.Delay) / 1e6, Stack: p.Stack}
	return r.Key()
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// runPoint runs one transport at one link setting: it builds the network, starts the server and
// the simulated users (setup, connect), drives the schedule (drive) and audits what arrived
// (audit).
func runPoint(ctx context.Context, sc *scenarios.Scenario, p scenarios.Point, index int, noLossP99 float64, opt Options) (results.Run, []results.SessionData, error) {
	run := results.Run{Transport: p.Transport, Carrier: string(carrierOf(p.Transport)), Loss: p.Loss, Burst: p.Burst,
		DelayMS: float64(p.Delay) / 1e6, Repeat: p.Repeat, Sessions: sc.Users * sc.Tabs}
	run.Delivery, run.PollIntervalMS = deliveryOf(p.Transport, sc.PollInterval)
	run.Server.Name, run.Server.Version = serverIdentity(p.Transport, opt)
	// A server process that exits or hangs ends the run at once: every phase stops on ctx, and
	// the run fails with the process's exit status and the end of its stderr.
	ctx, serverGone := context.WithCancelCause(ctx)
	defer serverGone(nil)
	opt.serverDied = serverGone
	// orServer is why the server process is gone, if it is, else err.
	orServer := func(err error) error {
		if ce := (*childError)(nil); errors.As(context.Cause(ctx), &ce) {
			return ce
		}
		return err
	}
	pt := &point{sc: sc, p: p, seed: sc.Seed*1_000_003 + uint64(index), opt: opt,
		pop: Population{Users: sc.Users, Tabs: sc.Tabs, Rooms: sc.Rooms}}
	defer pt.close()
	if err := pt.setup(ctx); err != nil {
		return run, nil, orServer(err)
	}
	if err := pt.connect(ctx); err != nil {
		return run, nil, orServer(err)
	}
	settled, qerr := pt.quiesce(ctx)
	pt.opt.Logger.Debug("set-up traffic drained", "transport", p.Transport, "took", settled.Round(time.Millisecond), "err", qerr)
	// The loss starts with the warmup, once every session is connected and the set-up drained.
	if err := pt.lossOn(); err != nil {
		return run, nil, orServer(err)
	}
	d := pt.drive(ctx)
	if err := orServer(nil); err != nil {
		return run, nil, err // what drive saw ended with the server
	}
	if ctx.Err() != nil {
		// Interrupted (the lab was stopped): the schedule was cut short, so what drive saw is
		// not a run's figures; the file keeps only the runs that ended.
		return run, nil, fmt.Errorf("interrupted during the run: %w", context.Cause(ctx))
	}
	pt.audit(&run, d, noLossP99)
	if qerr != nil {
		run.Warnings = append(run.Warnings, fmt.Sprintf("the set-up's traffic (joins, presence) had not drained after %v (%v): the first measured messages may have waited behind it", settled.Round(time.Millisecond), qerr))
	}
	return run, pt.sessionData, nil
}

// needsUDP says whether transport t's clients need a UDP socket (the table's carrier).
func needsUDP(t string) bool { return all.UsesUDP(t) }

// isQUIC says whether transport t's losses are attributed as QUIC's (the table's carrier, auto
// not: it may run on TCP).
func isQUIC(t string) bool { return all.AttributesQUIC(t) }

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

// parallel runs f for 0..n-1 with at most width at once. The first error cancels the ctx the
// others got and starts no more; parallel returns it, or ctx's error when ctx ended first.
func parallel(ctx context.Context, n, width int, f func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(width)
	for i := 0; i < n && gctx.Err() == nil; i++ {
		g.Go(func() error { return f(gctx, i) })
	}
	if err := g.Wait(); err != nil {
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
	link      results.LinkFigures
	server    serverStats
	serverErr error // the server's figures could not be read
	lab       results.LabLoad
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
	e.server, e.serverErr = srv.Stats()
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
	if run.Server.SchedulerMS > 10 {
		w = append(w, fmt.Sprintf("the server process's Go scheduler woke its goroutines %.1f ms late (p99): the server was short of CPU, and copies were late together for that", run.Server.SchedulerMS))
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
	switch {
	case spurious > 0 && srvHost.IsKernel() && run.Link.Dropped == 0:
		w = append(w, fmt.Sprintf("the Linux stacks saw %d spurious retransmission timeouts while the link dropped nothing: ACKs came back later than the RTO, so the emulator or the machine fell behind and latencies include its queueing", spurious))
	case spurious > 0 && !srvHost.IsKernel():
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

// dumpEvidence writes a run's copies (session, message, latency, stall) as CSV into dir, for
// studying the bootstrap offline (WIRELAB_DEBUG_EVIDENCE=DIR; developers only).
func dumpEvidence(dir string, p scenarios.Point, sessions []results.SessionData) {
	name := fmt.Sprintf("%s/%s-%g-%g-r%d.csv", dir, p.Transport, p.Loss, p.Burst, p.Repeat)
	f, err := os.Create(name)
	if err != nil {
		return
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	defer w.Flush()
	for s, sd := range sessions {
		for i, ms := range sd.LatencyMS {
			var m int64
			var st bool
			if i < len(sd.Message) {
				m, st = sd.Message[i], sd.Stall[i]
			}
			fmt.Fprintf(w, "%d,%d,%.3f,%t\n", s, m, ms, st)
		}
	}
}
