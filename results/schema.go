package results

import (
	"math"
	"time"
)

// Schema is the version of results.json this package writes.
const Schema = 1

// File is results.json.
type File struct {
	Schema   int       `json:"schema"`
	Scenario string    `json:"scenario"`
	Commit   string    `json:"commit"`
	Go       string    `json:"go"`
	Started  time.Time `json:"started"` // RFC 3339
	Seed     uint64    `json:"seed"`
	// Stack is the TCP/IP stack of the runs: "gvisor" or "kernel", or "gvisor,kernel" when the
	// file holds runs on both (FileStack). A file from before stacks has none: gVisor.
	Stack    string   `json:"stack,omitempty"`
	Machine  Machine  `json:"machine"`
	Versions Versions `json:"versions"`
	// ScenarioText is the scenario file as run, so a result says exactly what produced it.
	ScenarioText string `json:"scenario_text,omitempty"`
	Runs         []Run  `json:"runs"`
	// Order is the order transports are shown in: the lab's table of transports
	// (transports/all), which results does not import. It is not written: WriteJSON writes
	// the runs in it, and a file read back shows them in the order of their runs.
	Order []string `json:"-"`
	// Lab is the harness's own load over the whole file.
	Lab LabLoad `json:"lab"`

	// PollIntervalMS is the scenario's short-polling interval; 0 = unknown. Each run of a
	// transport that polls at an interval carries it too (Run.PollIntervalMS), which is what
	// the reading and the plots use; a file from before runs carried it is read with this one.
	PollIntervalMS float64 `json:"poll_interval_ms,omitempty"`
	// LossModel is the scenario's loss model ("bernoulli", "gilbert-elliott"), for titles.
	LossModel string `json:"loss_model,omitempty"`

	// Summary is one entry per transport × condition, every repeat pooled: copies, sessions,
	// p50, p99 and stall rate, each with a 95% interval from a bootstrap over sessions and
	// messages (bootstrap.go). Findings are the comparisons the reading states, each a ratio with its
	// interval. Both are null in a file from before issue 11: the reading then claims no
	// difference between transports.
	Summary  []PointSummary `json:"summary"`
	Findings []Finding      `json:"findings"`
}

// Machine describes where the run happened.
type Machine struct {
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model,omitempty"`
	MemBytes uint64 `json:"mem_bytes,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	Kernel   string `json:"kernel,omitempty"`
	// KernelTCPCC is the congestion control Linux gives the lab's namespaces (stack: kernel runs).
	KernelTCPCC string `json:"kernel_tcp_cc,omitempty"`
}

// Versions of the parts that shape the figures.
type Versions struct {
	Wirelab   string `json:"wirelab"`
	QuicGo    string `json:"quic_go"`
	WebTrans  string `json:"webtransport_go"`
	Gorilla   string `json:"gorilla_websocket"`
	GVisor    string `json:"gvisor"`
	GonumPlot string `json:"gonum_plot,omitempty"`
}

// Run is one transport at one link setting, one repeat.
type Run struct {
	Transport string `json:"transport"`
	// Carrier is what the transport's bytes travel on: "tcp" or "quic" (from the lab's table of
	// transports, transports/all). A file from before carriers has none; ReadJSON derives it
	// (legacyCarrier). results orders, groups and draws TCP against QUIC by it, never by name.
	Carrier string `json:"carrier,omitempty"`
	// Delivery is how the transport's clients got their messages: "push" (over a connection
	// they held) or "poll" (by asking: short and long polling), from the lab's table of
	// transports. A file from before deliveries has none; DeliveryName derives it
	// (legacyDelivery). results tells push from polling by it, never by name.
	Delivery string `json:"delivery,omitempty"`
	// PollIntervalMS is how often the run's clients asked for messages when they polled at an
	// interval (short polling: the scenario's poll_interval); absent for every other
	// transport. The reading and the plots draw short polling's theory (interval/2 + 2 one-way
	// delays) from it. A file from before it takes File.PollIntervalMS for its interval poller.
	PollIntervalMS float64 `json:"poll_interval_ms,omitempty"`
	Loss           float64 `json:"loss"`     // configured loss per direction, a fraction
	DelayMS        float64 `json:"delay_ms"` // configured one-way delay
	Repeat         int     `json:"repeat"`
	// Sessions is how many simulated sessions (users × tabs) the run held.
	Sessions int `json:"sessions,omitempty"`
	// Burst is the mean loss-burst length in packets of a Gilbert-Elliott link; 0 = Bernoulli
	// (independent) loss. Runs that differ only in Burst are different conditions.
	Burst float64 `json:"burst,omitempty"`
	// Stack is the TCP/IP stack both ends ran on: "gvisor" (gVisor's netstack in the lab's
	// process) or "kernel" (Linux kernel stacks in network namespaces). Empty (a file from
	// before stacks) means gvisor; StackName says it. Runs on different stacks are different
	// conditions.
	Stack string `json:"stack"`

	Sent       int64 `json:"sent"`      // messages sent (acknowledged by the server) in the measured window
	Expected   int64 `json:"expected"`  // copies that should have been delivered
	Delivered  int64 `json:"delivered"` // distinct copies delivered
	Lost       int64 `json:"lost"`      // expected - delivered
	Duplicates int64 `json:"duplicates"`
	OutOfOrder int64 `json:"out_of_order"`

	Latency Latency `json:"latency_ms"`
	// Late is the share of delivered copies later than 100, 200, 400 and 1,000 ms, from every
	// copy (not the samples); nil in a file from before it, or when nothing was delivered.
	Late   *Late       `json:"late,omitempty"`
	Stalls Stalls      `json:"stalls"`
	Link   LinkFigures `json:"link"`
	Server ServerLoad  `json:"server"`
	Lab    LabLoad     `json:"lab"`
	// Cluster is set when the chat ran as several nodes on Redis (scenario nodes > 1).
	Cluster *Cluster `json:"cluster,omitempty"`

	// Warnings say why figures of this run may be off (the harness short of CPU, link queues
	// that grew). The report shows them loudly.
	Warnings []string `json:"warnings,omitempty"`

	// Samples are per-copy latencies for the CDF and timeline plots (a seeded subsample when
	// there are many); omitted from results.json when empty.
	Samples []Sample `json:"samples,omitempty"`
	// Drops are the dropped packets' times, for the timeline plot.
	Drops []float64 `json:"drops_s,omitempty"`
}

// Latency percentiles in milliseconds, end to end per delivered copy: from the sender's
// scheduled send time to the recipient's receipt.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// LateMS are the thresholds of Late, in ms.
var LateMS = []float64{100, 200, 400, 1000}

// Late is the share (a fraction of the delivered copies) later than each threshold, end to end
// like Latency. Written as {"100": 0.036, "200": 0.004, "400": 0.0004, "1000": 0}.
type Late struct {
	Over100  float64 `json:"100"`
	Over200  float64 `json:"200"`
	Over400  float64 `json:"400"`
	Over1000 float64 `json:"1000"`
}

// Share is the share of copies later than ms (one of LateMS); 0 when l is nil (not measured)
// or ms is not a threshold of Late.
func (l *Late) Share(ms float64) float64 {
	if l == nil {
		return 0
	}
	switch ms {
	case 100:
		return l.Over100
	case 200:
		return l.Over200
	case 400:
		return l.Over400
	case 1000:
		return l.Over1000
	}
	return 0
}

// LateShares computes Late from every delivered copy: n copies, latency(i) the i-th one's
// end-to-end latency. A copy is late when its latency is above the threshold. Nil when n is 0.
func LateShares(n int, latency func(i int) time.Duration) *Late {
	if n <= 0 {
		return nil
	}
	var over [4]int
	for i := 0; i < n; i++ {
		ms := float64(latency(i)) / float64(time.Millisecond)
		for j, t := range LateMS {
			if ms > t {
				over[j]++
			}
		}
	}
	share := func(k int) float64 { return float64(k) / float64(n) }
	return &Late{Over100: share(over[0]), Over200: share(over[1]), Over400: share(over[2]), Over1000: share(over[3])}
}

// lateOr is the share later than ms, or NaN when l is nil (not measured).
func lateOr(l *Late, ms float64) float64 {
	if l == nil {
		return math.NaN()
	}
	return l.Share(ms)
}

// Stalls: copies later than the transport's no-loss p99 plus one RTT. Count = own + collateral +
// system: own stalls had some of their own bytes dropped, upstream (a packet of the sender's
// command), downstream (a packet of the copy to its recipient), or both; collateral ones (head
// of line) had none dropped and waited behind another's loss; system ones had none dropped
// either but were late together with many senders' messages across many sessions: the machine
// (a server or lab short of CPU), not the network, delayed them (docs/METRICS.md).
type Stalls struct {
	Count      int64   `json:"count"`
	Collateral int64   `json:"collateral"`
	TotalMS    float64 `json:"total_ms"`
	// System counts the stalls the machine caused, not the network: no loss of their own, late
	// together across many sessions and senders. Beyond DESIGN's three fields; absent (0) in a
	// file from before it, where such stalls were counted collateral.
	System int64 `json:"system"`
	// OwnUpstream and OwnDownstream count the stalls whose own bytes were dropped on the way
	// up and on the way down (a stall can be both). Beyond DESIGN's three fields.
	OwnUpstream   int64 `json:"own_upstream,omitempty"`
	OwnDownstream int64 `json:"own_downstream,omitempty"`
	// ThresholdMS is the latency past which a copy stalled in this run: the transport's
	// no-loss p99 (the median over the no-loss run's 250 ms blocks of each block's p99, so that
	// a busy moment of the machine in that run does not move it) plus one RTT.
	ThresholdMS float64 `json:"threshold_ms,omitempty"`
}

// LinkFigures count what the emulated link carried, both directions, all clients.
type LinkFigures struct {
	Packets      int64   `json:"packets"`
	Bytes        int64   `json:"bytes"`
	Dropped      int64   `json:"dropped"`
	LossMeasured float64 `json:"loss_measured"`
}

// ServerLoad is what the server process paid during the measured window.
type ServerLoad struct {
	// Name and Version say which server ran: "wirelab" (Version: its commit) or a peer server
	// ("socket.io" 4.8.4, "centrifugo" 6.9.1) for PEER/TRANSPORT runs.
	Name           string  `json:"name,omitempty"`
	Version        string  `json:"version,omitempty"`
	CPUSeconds     float64 `json:"cpu_s"`
	CPUUSPerMsg    float64 `json:"cpu_us_per_msg"` // per delivered copy
	RSSPeakBytes   int64   `json:"rss_peak_bytes"`
	Requests       int64   `json:"requests"`
	BytesPerMsg    float64 `json:"bytes_per_msg"` // all bytes on the wire, both directions, / delivered copies
	GoroutinesPeak int64   `json:"goroutines_peak"`
	// RSSPerSession is the server's peak RSS above its idle RSS (before any session), divided
	// by the sessions: what one connected user costs the server in memory.
	RSSPerSession float64 `json:"rss_per_session_bytes,omitempty"`
	// SchedulerMS is how late the server process's Go scheduler woke a 5 ms timer over the
	// window (p99, ms): above 10 the server itself was short of CPU and the run has a warning.
	// 0 when the server ran in the lab's process (the lab's own figure covers it).
	SchedulerMS float64 `json:"sched_delay_p99_ms,omitempty"`
}

// Cluster is what a run on several server nodes adds: latency of copies whose sender and
// recipient were on different nodes (through Redis) and of those on the same node, and the
// Redis server's own CPU. Server figures of the run add up every node.
type Cluster struct {
	Nodes            int     `json:"nodes"`
	CrossNode        Latency `json:"cross_node_latency_ms"`
	SameNode         Latency `json:"same_node_latency_ms"`
	CrossCopies      int64   `json:"cross_node_copies"`
	RedisCPUS        float64 `json:"redis_cpu_s"`
	RedisCPUUSPerMsg float64 `json:"redis_cpu_us_per_msg"` // per delivered copy
}

// LabLoad is the harness's own load: if it was short of CPU, figures may be late because of
// the lab, not the transport.
type LabLoad struct {
	CPUSeconds  float64 `json:"cpu_s"`
	CPUShare    float64 `json:"cpu_share"`          // CPU seconds / (wall seconds × cores)
	SendLagP99  float64 `json:"send_lag_p99_ms"`    // how late senders were against their schedule
	QueuePeak   int64   `json:"link_queue_peak"`    // largest emulated-link queue seen, packets
	SchedulerMS float64 `json:"sched_delay_p99_ms"` // Go scheduler latency seen by a probe goroutine
}

// Sample is one delivered copy: when it was scheduled to be sent (seconds since the measured
// window began) and its latency.
type Sample struct {
	T         float64 `json:"t"`
	LatencyMS float64 `json:"ms"`
	Stall     bool    `json:"stall,omitempty"`
	HOL       bool    `json:"hol,omitempty"`    // a collateral (head-of-line) stall
	System    bool    `json:"system,omitempty"` // a system stall (the machine, not the network)
}
