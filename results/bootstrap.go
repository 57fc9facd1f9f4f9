package results

import (
	"cmp"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
)

// Intervals (issue 11): every figure a reader compares carries a 95% confidence interval from a
// bootstrap over sessions. A session (one connection) is the independent unit: one lost packet
// and its retransmission timeout delay every copy queued behind it on that connection, so the
// copies of a session are not independent and a bootstrap over copies would give intervals far
// too narrow. The sessions of every repeat of a point are pooled (session 3 of repeat 0 and
// session 3 of repeat 1 are different connections, different units). Copies are also tied
// across sessions: a room message reaches every session of its room, and a loss on its
// sender's upstream delays all its copies together; so when the lab says which message each
// copy carries, messages are resampled too, crossed with sessions. docs/METRICS.md says how to
// read the intervals.

// BootstrapRounds is how many resamples a point's bootstrap draws.
const BootstrapRounds = 2000

// SessionData is what the bootstrap needs of one session of one run: the end-to-end latency
// of every copy it received (ms) and how many of those copies stalled.
//
// Message and Stall are optional (both or neither), one entry per copy: the copy's message, as
// an id unique within the point, and whether the copy stalled. The id is the resampled unit: the
// lab gives every message of one 250 ms block of its schedule the same id (repeat<<32 | block),
// since messages sent together share the machine's state as well as their own losses. With them the bootstrap resamples messages as well as sessions: a room message
// reaches every session of its room at once, and a loss on its sender's upstream, or a burst
// at the server, delays all its copies together, in many sessions.
type SessionData struct {
	LatencyMS []float64
	Stalled   int
	Message   []int64
	Stall     []bool
}

// PointSummary is one transport × condition of results.json's "summary": all repeats of the
// point pooled. Latencies in ms, the stall rate a fraction (stalled copies / delivered
// copies); every interval is a 95% percentile interval from a bootstrap over sessions (and messages).
type PointSummary struct {
	Transport     string     `json:"transport"`
	Loss          float64    `json:"loss"`
	Burst         float64    `json:"burst"` // 0 = independent loss, else the mean burst length
	DelayMS       float64    `json:"delay_ms"`
	Stack         string     `json:"stack"`
	Copies        int64      `json:"copies"`
	Sessions      int        `json:"sessions"`
	P50           float64    `json:"p50"`
	P50CI95       [2]float64 `json:"p50_ci95"`
	P99           float64    `json:"p99"`
	P99CI95       [2]float64 `json:"p99_ci95"`
	StallRate     float64    `json:"stall_rate"`
	StallRateCI95 [2]float64 `json:"stall_rate_ci95"`
}

// Key is the point's transport and condition.
func (s PointSummary) Key() Key {
	return Key{s.Transport, Cond{DelayMS: s.DelayMS, Loss: s.Loss, Burst: s.Burst, Stack: condStack(s.Stack)}}
}

// Finding is one comparison the reading states: a's figure / b's figure at one condition,
// with its 95% interval. Metric is "p99", "p50", "stall_rate" (from the session bootstrap of
// both points, each resampled on its own), "bytes_per_msg" or "cpu_us_per_msg" (the run is
// the unit there: see RunRatio).
type Finding struct {
	Metric    string     `json:"metric"`
	Loss      float64    `json:"loss"`
	Burst     float64    `json:"burst"`
	DelayMS   float64    `json:"delay_ms"`
	Stack     string     `json:"stack"`
	A         string     `json:"a"`
	B         string     `json:"b"`
	Ratio     float64    `json:"ratio"`
	RatioCI95 [2]float64 `json:"ratio_ci95"`
}

// Cond is the finding's condition.
func (f Finding) Cond() Cond {
	return Cond{DelayMS: f.DelayMS, Loss: f.Loss, Burst: f.Burst, Stack: condStack(f.Stack)}
}

// Clear says whether the interval excludes 1: the evidence says which of a and b is higher.
// Where it does not, the reading says "no clear difference".
func (f Finding) Clear() bool { return f.RatioCI95[0] > 1 || f.RatioCI95[1] < 1 }

// Latency bins: log-spaced, each 0.4% wider than the last, from 0.01 ms to over 10 minutes. A
// latency is represented by its bin's geometric middle, within 0.2% of the true value: far
// finer than any interval, and it lets a resample's percentiles come from summed per-session
// counts instead of a sort of every copy.
const (
	binLo    = 0.01  // ms
	binRatio = 1.004 // upper/lower edge of a bin
	nBins    = 4600  // binLo × binRatio^nBins ≈ 9.5e5 ms
)

var logBinRatio = math.Log(binRatio)

func latencyBin(ms float64) uint16 {
	if !(ms > binLo) {
		return 0
	}
	b := int(math.Log(ms/binLo) / logBinRatio)
	return uint16(min(b, nBins-1))
}

func binValue(b int) float64 { return binLo * math.Exp((float64(b)+0.5)*logBinRatio) }

type binCount struct {
	bin   uint16
	count uint32
}

// msgCopy is one copy in two-way mode: its latency bin, its message (an index into the
// point's messages) and whether it stalled.
type msgCopy struct {
	bin   uint16
	stall bool
	msg   int32
}

// Evidence is what the bootstrap of one point keeps: every session of every repeat, binned.
// The lab fills it run by run (Add), then calls Bootstrap once the point's repeats are done.
// After Bootstrap only the resampled figures are kept (for Findings).
type Evidence struct {
	sessions [][]binCount
	copies   []uint32
	stalled  []uint32
	// Two-way mode (every session came with its copies' messages): each session's copies,
	// and the messages' ids.
	byMsg   [][]msgCopy
	msgs    map[int64]int32
	oneWay  bool // some session came without messages: sessions only
	summary PointSummary
	done    bool
	// rep[m][i] is resample i's figure for metric m (p50, p99, stall rate); NaN when the
	// resample drew no copy.
	rep [3][]float64
}

const (
	repP50 = iota
	repP99
	repStall
)

// NewEvidence is an empty point.
func NewEvidence() *Evidence { return &Evidence{} }

// Add records one session of one run.
func (e *Evidence) Add(s SessionData) {
	var bins []binCount
	if len(s.LatencyMS) > 0 {
		bs := make([]uint16, len(s.LatencyMS))
		for i, ms := range s.LatencyMS {
			bs[i] = latencyBin(ms)
		}
		slices.Sort(bs)
		for i := 0; i < len(bs); {
			j := i
			for j < len(bs) && bs[j] == bs[i] {
				j++
			}
			bins = append(bins, binCount{bs[i], uint32(j - i)})
			i = j
		}
	}
	stalled := s.Stalled
	if len(s.Message) == len(s.LatencyMS) && len(s.Stall) == len(s.LatencyMS) && !e.oneWay {
		if e.msgs == nil {
			e.msgs = map[int64]int32{}
		}
		cs := make([]msgCopy, len(s.LatencyMS))
		stalled = 0
		for i, ms := range s.LatencyMS {
			id, ok := e.msgs[s.Message[i]]
			if !ok {
				id = int32(len(e.msgs))
				e.msgs[s.Message[i]] = id
			}
			cs[i] = msgCopy{bin: latencyBin(ms), stall: s.Stall[i], msg: id}
			if s.Stall[i] {
				stalled++
			}
		}
		e.byMsg = append(e.byMsg, cs)
	} else {
		e.oneWay, e.byMsg, e.msgs = true, nil, nil
	}
	e.sessions = append(e.sessions, bins)
	e.copies = append(e.copies, uint32(len(s.LatencyMS)))
	e.stalled = append(e.stalled, uint32(min(stalled, len(s.LatencyMS))))
}

// twoWay says whether the bootstrap resamples messages as well as sessions.
func (e *Evidence) twoWay() bool {
	return !e.oneWay && len(e.byMsg) == len(e.sessions) && len(e.msgs) > 0
}

// Sessions is how many sessions were added.
func (e *Evidence) Sessions() int { return len(e.sessions) }

// Summary is the point's summary entry (after Bootstrap).
func (e *Evidence) Summary() PointSummary { return e.summary }

// Done says whether Bootstrap has run.
func (e *Evidence) Done() bool { return e.done }

// BootstrapSeed derives a point's bootstrap seed from the scenario's seed and the point, so a
// file's intervals are the same every time it is made from the same runs.
func BootstrapSeed(seed uint64, k Key) uint64 {
	h := fnv.New64a()
	h.Write([]byte(k.Transport + "|" + k.Cond.Slug()))
	return seed ^ h.Sum64()
}

// Bootstrap computes the point's figures and their intervals: rounds resamples (0 means
// BootstrapRounds), each drawing as many sessions as there are, with replacement, and taking
// the percentiles over every copy of the drawn sessions and the stall rate as their stalled
// copies over their copies. When every session came with its copies' messages, each resample
// also draws as many messages as there are, with replacement, and a copy counts as often as
// its session was drawn times as often as its message was (a two-way, "pigeonhole"
// bootstrap: sessions and messages are both units, crossed). The intervals are the 2.5th and 97.5th percentiles of the
// resampled figures. It frees the per-session data and keeps the resampled figures for
// Findings.
func (e *Evidence) Bootstrap(k Key, seed uint64, rounds int) PointSummary {
	if rounds <= 0 {
		rounds = BootstrapRounds
	}
	s := PointSummary{Transport: k.Transport, Loss: k.Loss, Burst: k.Burst, DelayMS: k.DelayMS, Stack: StackName(k.Stack),
		Sessions: len(e.sessions)}
	n := len(e.sessions)
	hist := make([]uint32, nBins)
	all := make([]uint32, n)
	for i := range all {
		all[i] = 1
	}
	var stalled uint64
	s.Copies, stalled = e.resample(all, hist)
	s.P50, s.P99 = histQuantile(hist, uint64(s.Copies), 0.50), histQuantile(hist, uint64(s.Copies), 0.99)
	if s.Copies > 0 {
		s.StallRate = float64(stalled) / float64(s.Copies)
	}
	for m := range e.rep {
		e.rep[m] = make([]float64, rounds)
	}
	if n > 0 {
		rng := rand.New(rand.NewPCG(seed, 0x5e55))
		w := make([]uint32, n)
		var wm []uint32
		if e.twoWay() {
			wm = make([]uint32, len(e.msgs))
		}
		for i := range rounds {
			clear(w)
			for range n {
				w[rng.IntN(n)]++
			}
			clear(hist)
			var c int64
			var st uint64
			if wm != nil {
				clear(wm)
				for range len(wm) {
					wm[rng.IntN(len(wm))]++
				}
				c, st = e.resample2(w, wm, hist)
			} else {
				c, st = e.resample(w, hist)
			}
			if c == 0 {
				e.rep[repP50][i], e.rep[repP99][i], e.rep[repStall][i] = math.NaN(), math.NaN(), math.NaN()
				continue
			}
			e.rep[repP50][i] = histQuantile(hist, uint64(c), 0.50)
			e.rep[repP99][i] = histQuantile(hist, uint64(c), 0.99)
			e.rep[repStall][i] = float64(st) / float64(c)
		}
	}
	s.P50CI95 = widenBin(percentileInterval(e.rep[repP50], s.P50))
	s.P99CI95 = widenBin(percentileInterval(e.rep[repP99], s.P99))
	s.StallRateCI95 = percentileInterval(e.rep[repStall], s.StallRate)
	if stalled == 0 && s.Copies > 0 {
		// No stall at all: every resample has none too and the bootstrap collapses to [0, 0].
		// The upper limit is then the rule of three (3/n, the 95% bound for zero events in n
		// independent trials) over the copies: a lower bound of the honest limit, since copies
		// are not independent.
		s.StallRateCI95[1] = math.Min(1, 3/float64(s.Copies))
	}
	e.sessions, e.copies, e.stalled, e.byMsg, e.msgs = nil, nil, nil, nil, nil
	e.summary, e.done = s, true
	return s
}

// binErr is how far a binned latency can be from the copy's own: half a bin.
var binErr = math.Sqrt(binRatio)

// widenBin widens a latency interval by the binning's error, so that copies whose latencies
// differ by less than a bin (0% loss: every copy within a few hundredths of a millisecond) do
// not get an interval narrower than the binning can tell.
func widenBin(ci [2]float64) [2]float64 { return [2]float64{ci[0] / binErr, ci[1] * binErr} }

// resample adds the sessions, session i w[i] times, into hist; it returns their copies and
// stalled copies.
func (e *Evidence) resample(w []uint32, hist []uint32) (copies int64, stalled uint64) {
	for i, k := range w {
		if k == 0 {
			continue
		}
		for _, bc := range e.sessions[i] {
			hist[bc.bin] += k * bc.count
		}
		copies += int64(k) * int64(e.copies[i])
		stalled += uint64(k) * uint64(e.stalled[i])
	}
	return copies, stalled
}

// resample2 is resample over sessions and messages at once (Owen's pigeonhole bootstrap): a
// copy of message m in session s counts ws[s] × wm[m] times.
func (e *Evidence) resample2(ws, wm []uint32, hist []uint32) (copies int64, stalled uint64) {
	for i, k := range ws {
		if k == 0 {
			continue
		}
		for _, c := range e.byMsg[i] {
			w := k * wm[c.msg]
			if w == 0 {
				continue
			}
			hist[c.bin] += w
			copies += int64(w)
			if c.stall {
				stalled += uint64(w)
			}
		}
	}
	return copies, stalled
}

// histQuantile is the q-quantile of n binned copies: the latency of the copy of rank q×n
// rounded half up (at least 1), the rule HdrHistogram applies to the runs' own percentiles, so
// a point of one run has the run's p50 and p99 (within a bin); 0 when n is 0.
func histQuantile(hist []uint32, n uint64, q float64) float64 {
	if n == 0 {
		return 0
	}
	rank := uint64(max(1, math.Floor(q*float64(n)+0.5)))
	var cum uint64
	for b, c := range hist {
		if cum += uint64(c); cum >= rank {
			return binValue(b)
		}
	}
	return binValue(len(hist) - 1)
}

// percentileInterval is the 2.5th and 97.5th percentiles of the finite values of reps; [x, x]
// when there are none.
func percentileInterval(reps []float64, x float64) [2]float64 {
	vs := make([]float64, 0, len(reps))
	for _, v := range reps {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return [2]float64{x, x}
	}
	slices.Sort(vs)
	at := func(q float64) float64 {
		// linear interpolation between order statistics
		pos := q * float64(len(vs)-1)
		i := int(pos)
		if i+1 >= len(vs) {
			return vs[len(vs)-1]
		}
		return vs[i] + (pos-float64(i))*(vs[i+1]-vs[i])
	}
	return [2]float64{at(0.025), at(0.975)}
}

// bootstrapRatio is a/b of two points' figure (metric index m) with its interval: resample i of
// a over resample i of b. The two points were resampled with their own seeds, so pairing the
// i-th resamples is resampling both independently. ok is false when b's figure is 0.
func bootstrapRatio(a, b *Evidence, m int) (ratio float64, ci [2]float64, ok bool) {
	av, bv := a.figure(m), b.figure(m)
	if !(bv > 0) || !(av >= 0) {
		return 0, ci, false
	}
	ratio = av / bv
	defer func() {
		if m != repStall { // each latency within half a bin: the ratio within a bin
			ci = [2]float64{ci[0] / binRatio, ci[1] * binRatio}
		}
	}()
	n := min(len(a.rep[m]), len(b.rep[m]))
	rs := make([]float64, 0, n)
	for i := range n {
		x, y := a.rep[m][i], b.rep[m][i]
		if math.IsNaN(x) || math.IsNaN(y) {
			continue
		}
		switch {
		case y > 0:
			rs = append(rs, x/y)
		case x > 0:
			rs = append(rs, math.Inf(1)) // b's resample had no stall, a's had some
		default:
			rs = append(rs, 1) // neither: no difference in this resample
		}
	}
	ci = ratioInterval(rs, ratio)
	return ratio, ci, true
}

// ratioInterval is the 2.5th and 97.5th percentiles of resampled ratios, +Inf sorting last;
// an infinite limit (b's resamples had no stall where a's had some) is written as 1e6, since
// JSON has no infinity: unbounded, for a reader. [x, x] without resamples.
func ratioInterval(rs []float64, x float64) [2]float64 {
	ci := percentileInterval(rs, x) // the finite ones
	inf := 0
	for _, v := range rs {
		if math.IsInf(v, 1) {
			inf++
		}
	}
	if inf == 0 {
		return ci
	}
	slices.Sort(rs)
	at := func(q float64) float64 {
		v := rs[int(math.Round(q*float64(len(rs)-1)))]
		if math.IsInf(v, 1) {
			return math.Max(1e6, x)
		}
		return v
	}
	return [2]float64{at(0.025), at(0.975)}
}

func (e *Evidence) figure(m int) float64 {
	switch m {
	case repP50:
		return e.summary.P50
	case repP99:
		return e.summary.P99
	}
	return e.summary.StallRate
}

// SummaryOf finds the summary entry of k in f; false when f has none (a file from before
// issue 11, or a point whose runs all failed).
func SummaryOf(f *File, k Key) (PointSummary, bool) {
	for _, s := range f.Summary {
		if s.Key() == k {
			return s, true
		}
	}
	return PointSummary{}, false
}

// compareFindings orders findings by condition, metric (p50, p99, stall rate, bytes, CPU),
// then a and b in transport order.
func compareFindings(l lineup, a, b Finding) int {
	return cmp.Or(a.Cond().Compare(b.Cond()), cmp.Compare(metricRank(a.Metric), metricRank(b.Metric)),
		l.compare(a.A, b.A), l.compare(a.B, b.B))
}

// FindingMetrics are the metrics findings compare, in reading order.
var FindingMetrics = []string{"p50", "p99", "stall_rate", "bytes_per_msg", "cpu_us_per_msg"}

func metricRank(m string) int {
	if i := slices.Index(FindingMetrics, m); i >= 0 {
		return i
	}
	return len(FindingMetrics)
}
