// Package resultstest makes synthetic, seeded results files for tests: realistic enough that
// every plot, report sentence and comparison path has something to show, without running the
// lab.
package resultstest

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/wirelab/wirelab/results"
)

// Options shape a synthetic file. The zero value gives the default: the eight transports of
// DESIGN at 0%, 2% and 5% loss, 20 ms one way, 3 repeats, 400 samples a run.
type Options struct {
	Seed       uint64
	Transports []string  // default: the eight of DESIGN (no auto)
	Losses     []float64 // default 0, 0.02, 0.05
	DelayMS    float64   // default 20
	Repeats    int       // default 3
	Samples    int       // per run; default 400
	PollMS     float64   // short-polling interval; default 1000
	DurationS  float64   // measured window; default 20
	Burst      float64   // Gilbert-Elliott burst length; 0 = Bernoulli
	Started    time.Time // default 2026-01-02T03:04:05Z
	// Scale multiplies every latency (1 = as modelled); 1.5 makes a file 50% slower.
	Scale float64
	// Stacks are the TCP/IP stacks every transport and condition runs on; default gvisor.
	// Two make a file for the "gVisor against Linux" section.
	Stacks []string
	// GVisorTail is the share of TCP copies held back by their own lost packet that wait about
	// 2 s more on gVisor (the cluster issue 10 describes); 0 = none. Linux runs never do.
	GVisorTail float64
}

func (o *Options) defaults() {
	if o.Transports == nil {
		o.Transports = []string{"shortpoll", "longpoll", "stream", "sse", "websocket", "wt-stream", "wt-uni", "wt-datagram"}
	}
	if o.Losses == nil {
		o.Losses = []float64{0, 0.02, 0.05}
	}
	if o.DelayMS == 0 {
		o.DelayMS = 20
	}
	if o.Repeats == 0 {
		o.Repeats = 3
	}
	if o.Samples == 0 {
		o.Samples = 400
	}
	if o.PollMS == 0 {
		o.PollMS = 1000
	}
	if o.DurationS == 0 {
		o.DurationS = 20
	}
	if o.Started.IsZero() {
		o.Started = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	if o.Scale == 0 {
		o.Scale = 1
	}
	if o.Stacks == nil {
		o.Stacks = []string{results.StackGVisor}
	}
}

// model is how a transport behaves in this synthetic world.
type model struct {
	bytesPerMsg float64 // at no loss
	cpuUS       float64 // per delivered copy
	hol         bool    // a loss delays later messages (one ordered stream)
	quic        bool    // it runs over QUIC (the run's carrier), else TCP
	polls       bool    // its clients poll (the run's delivery), else they are pushed
	interval    bool    // they poll every PollMS (short polling), recorded in the run
	recoveryMS  float64 // how long a loss holds a message back
}

// order is the order the lab's table of transports (transports/all) shows them in, as a lab
// run's File.Order holds it; results itself holds no list of names.
var order = []string{"shortpoll", "longpoll", "stream", "sse", "websocket", "wt-stream", "wt-uni", "wt-datagram", "auto"}

var models = map[string]model{
	"shortpoll":   {bytesPerMsg: 3100, cpuUS: 42, hol: true, recoveryMS: 200, polls: true, interval: true},
	"longpoll":    {bytesPerMsg: 920, cpuUS: 31, hol: true, recoveryMS: 200, polls: true},
	"stream":      {bytesPerMsg: 290, cpuUS: 10, hol: true, recoveryMS: 200},
	"sse":         {bytesPerMsg: 310, cpuUS: 11, hol: true, recoveryMS: 200},
	"websocket":   {bytesPerMsg: 262, cpuUS: 8, hol: true, recoveryMS: 200},
	"wt-stream":   {bytesPerMsg: 330, cpuUS: 24, hol: true, recoveryMS: 60, quic: true},
	"wt-uni":      {bytesPerMsg: 352, cpuUS: 33, hol: false, recoveryMS: 60, quic: true},
	"wt-datagram": {bytesPerMsg: 318, cpuUS: 29, hol: false, recoveryMS: 100, quic: true},
	"auto":        {bytesPerMsg: 352, cpuUS: 34, hol: false, recoveryMS: 60, quic: true},
}

// File makes a synthetic results file.
func File(o Options) *results.File {
	o.defaults()
	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	f := &results.File{
		Schema:         results.Schema,
		Scenario:       "synthetic",
		Commit:         "0123456789abcdef0123456789abcdef01234567",
		Go:             "go1.26.8",
		Started:        o.Started,
		Seed:           o.Seed,
		Machine:        results.Machine{OS: "linux", Arch: "amd64", CPUs: 2, CPUModel: "Synthetic CPU @ 3.0GHz", MemBytes: 24 << 30, Kernel: "6.1.0"},
		Versions:       results.Versions{Wirelab: "dev", QuicGo: "v0.64.1", WebTrans: "v0.13.0", Gorilla: "v1.5.3", GVisor: "v0.0.0-20260905035102-160fafc42237", GonumPlot: "v0.17.0"},
		ScenarioText:   "name: synthetic\nseed: 1\nduration: 20s\ntransports: [...]\nlink: {delay: 20ms, loss: [0%, 2%, 5%]}\nrepeat: 3\n",
		PollIntervalMS: o.PollMS,
		Order:          order,
		LossModel:      "bernoulli",
		Lab:            results.LabLoad{CPUSeconds: 140, CPUShare: 0.31, SendLagP99: 0.8, QueuePeak: 210, SchedulerMS: 0.4},
	}
	if o.Burst > 0 {
		f.LossModel = "gilbert-elliott"
	}
	losses := slices.Clone(o.Losses)
	slices.Sort(losses)
	for _, t := range o.Transports {
		m, ok := models[t]
		if !ok {
			m = models["websocket"]
			m.quic = true // not TCP: no gVisor tail, as before runs had a carrier
		}
		for _, stack := range o.Stacks {
			var stallAt float64 // no-loss p99 + RTT, from the first 0% run
			for _, loss := range losses {
				for rep := 0; rep < o.Repeats; rep++ {
					r := run(rng, o, t, m, loss, rep, stack)
					if loss == 0 && stallAt == 0 {
						stallAt = percentile(latencies(r.Samples), 0.99) + 2*o.DelayMS
					}
					finish(&r, stallAt)
					f.Runs = append(f.Runs, r)
				}
			}
		}
	}
	f.Stack = results.FileStack(f)
	return f
}

func run(rng *rand.Rand, o Options, transport string, m model, loss float64, rep int, stack string) results.Run {
	d := o.DelayMS
	r := results.Run{Transport: transport, Carrier: results.CarrierTCP, Loss: loss, DelayMS: d, Repeat: rep, Burst: 0, Stack: stack}
	if m.quic {
		r.Carrier = results.CarrierQUIC
	}
	r.Delivery = results.DeliveryPush
	if m.polls {
		r.Delivery = results.DeliveryPoll
	}
	if m.interval {
		r.PollIntervalMS = o.PollMS
	}
	if loss > 0 {
		r.Burst = o.Burst
	}
	// Packets: both directions, ~3 a delivered copy.
	fanout := 20.0
	sent := int64(100 * o.DurationS)
	delivered := sent * int64(fanout)
	packets := int64(float64(delivered) * 3 * (0.97 + 0.06*rng.Float64()))
	dropped := binomial(rng, packets, loss)
	// Drop times: uniform over the window (the timeline only needs a few hundred).
	nd := min(dropped, 300)
	r.Drops = make([]float64, nd)
	for i := range r.Drops {
		r.Drops[i] = rng.Float64() * o.DurationS
	}
	slices.Sort(r.Drops)
	// Which drops hit this sampled conversation: a share so the picture stays readable.
	var hits []float64
	for range int(loss * 250 * (0.7 + 0.6*rng.Float64())) {
		hits = append(hits, rng.Float64()*o.DurationS)
	}
	slices.Sort(hits)
	r.Samples = make([]results.Sample, o.Samples)
	for i := range r.Samples {
		t := (float64(i) + rng.Float64()) * o.DurationS / float64(o.Samples)
		var lat float64
		switch transport {
		case "shortpoll":
			lat = rng.Float64()*o.PollMS + 2*d
		case "longpoll":
			lat = 2*d + rng.ExpFloat64()*1.5
			if rng.Float64() < 0.3 {
				lat += rng.Float64() * 2 * d
			}
		default:
			lat = 2*d + rng.ExpFloat64()*1.2
		}
		// A drop shortly before t holds this copy back: its own packet for the first copy
		// after the drop, head of line for the rest when the transport is one ordered stream.
		for _, h := range hits {
			gap := (t - h) * 1000
			window := m.recoveryMS + 2*d
			if gap < 0 || gap > window {
				continue
			}
			own := gap < 25
			if !own && !m.hol {
				continue
			}
			held := window - gap + 2*d
			if own && o.GVisorTail > 0 && stack == results.StackGVisor && !m.quic && rng.Float64() < o.GVisorTail {
				held += 1800 + 400*rng.Float64()
			}
			if held > lat {
				lat = held + rng.ExpFloat64()
				r.Samples[i].HOL = !own
			}
			break
		}
		r.Samples[i].T = t
		r.Samples[i].LatencyMS = lat * o.Scale
	}
	r.Sent = sent
	r.Expected = delivered
	r.Delivered = delivered
	r.Link = results.LinkFigures{Packets: packets, Bytes: packets * 190, Dropped: dropped, LossMeasured: float64(dropped) / float64(packets)}
	cpu := m.cpuUS * (1 + 0.5*loss) * (0.95 + 0.1*rng.Float64())
	r.Server = results.ServerLoad{
		CPUSeconds:     cpu * float64(delivered) / 1e6,
		CPUUSPerMsg:    cpu,
		RSSPeakBytes:   int64(40e6 + 10e6*rng.Float64()),
		Requests:       requests(transport, o, sent),
		BytesPerMsg:    m.bytesPerMsg * (1 + 1.5*loss) * (0.98 + 0.04*rng.Float64()),
		GoroutinesPeak: 250 + rng.Int64N(50),
	}
	r.Lab = results.LabLoad{CPUSeconds: 4 + rng.Float64(), CPUShare: 0.25 + 0.1*rng.Float64(), SendLagP99: 0.5 + rng.Float64(), QueuePeak: 50 + rng.Int64N(100), SchedulerMS: 0.2 + 0.3*rng.Float64()}
	return r
}

// finish computes the percentiles and stall figures from the samples.
func finish(r *results.Run, stallAt float64) {
	lat := latencies(r.Samples)
	var sum float64
	for _, x := range lat {
		sum += x
	}
	r.Latency = results.Latency{
		P50: percentile(lat, 0.5), P90: percentile(lat, 0.9), P99: percentile(lat, 0.99),
		P999: percentile(lat, 0.999), Max: percentile(lat, 1), Mean: sum / float64(len(lat)),
	}
	scale := float64(r.Delivered) / float64(len(r.Samples))
	var count, hol int
	var total float64
	for i := range r.Samples {
		s := &r.Samples[i]
		if stallAt > 0 && s.LatencyMS > stallAt {
			s.Stall = true
			count++
			total += s.LatencyMS
			if s.HOL {
				hol++
			}
		} else {
			s.HOL = false
		}
	}
	r.Stalls = results.Stalls{Count: int64(float64(count) * scale), Collateral: int64(float64(hol) * scale), TotalMS: total * scale}
	// The samples stand for every copy here.
	r.Late = results.LateShares(len(r.Samples), func(i int) time.Duration {
		return time.Duration(r.Samples[i].LatencyMS * float64(time.Millisecond))
	})
}

func requests(t string, o Options, sent int64) int64 {
	sessions := 100.0
	switch t {
	case "shortpoll":
		return int64(sessions*o.DurationS*1000/o.PollMS) + sent
	case "longpoll":
		return int64(float64(sent)*4) + sent
	case "stream", "sse":
		return int64(sessions) + sent
	default:
		return int64(sessions)
	}
}

func latencies(s []results.Sample) []float64 {
	out := make([]float64, len(s))
	for i := range s {
		out[i] = s[i].LatencyMS
	}
	slices.Sort(out)
	return out
}

func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func binomial(rng *rand.Rand, n int64, p float64) int64 {
	if p <= 0 {
		return 0
	}
	mean := float64(n) * p
	sd := math.Sqrt(mean * (1 - p))
	k := int64(math.Round(mean + sd*rng.NormFloat64()))
	return max(0, min(k, n))
}
