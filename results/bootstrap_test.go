package results

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// lognormal population: latency = exp(mu + sigma × N(0,1)) ms.
const (
	lnMu    = 3.8 // median ≈ 44.7 ms
	lnSigma = 0.5
	z99     = 2.3263478740408408
)

func lnQuantile(z float64) float64 { return math.Exp(lnMu + lnSigma*z) }

// independentSessions: n sessions of k copies, every copy drawn on its own; each copy stalls
// with probability p.
func independentSessions(rng *rand.Rand, n, k int, p float64) []SessionData {
	out := make([]SessionData, n)
	for s := range out {
		lat := make([]float64, k)
		for i := range lat {
			lat[i] = math.Exp(lnMu + lnSigma*rng.NormFloat64())
			if rng.Float64() < p {
				out[s].Stalled++
			}
		}
		out[s].LatencyMS = lat
	}
	return out
}

func evidenceOf(sessions []SessionData) *Evidence {
	e := NewEvidence()
	for _, s := range sessions {
		e.Add(s)
	}
	return e
}

var testKey = Key{"websocket", Cond{DelayMS: 20, Loss: 0.02}}

// With sessions whose copies are independent, the 95% intervals hold the population's true p50,
// p99 and stall rate in about 95% of samples.
func TestBootstrapCoverage(t *testing.T) {
	trials := 80
	if testing.Short() {
		trials = 30
	}
	rng := rand.New(rand.NewPCG(1, 2))
	truth := map[string]float64{"p50": lnQuantile(0), "p99": lnQuantile(z99), "stall": 0.03}
	hit := map[string]int{}
	for i := range trials {
		s := evidenceOf(independentSessions(rng, 100, 60, 0.03)).Bootstrap(testKey, uint64(i), 1000)
		for name, ci := range map[string][2]float64{"p50": s.P50CI95, "p99": s.P99CI95, "stall": s.StallRateCI95} {
			if ci[0] <= truth[name] && truth[name] <= ci[1] {
				hit[name]++
			}
		}
	}
	for name, h := range hit {
		cov := float64(h) / float64(trials)
		t.Logf("%s: coverage %.2f over %d samples", name, cov, trials)
		// Percentile intervals of a p99 from 6,000 copies undercover a little; far from 95%
		// would be a bug.
		if cov < 0.8 || cov > 1 {
			t.Errorf("%s: the 95%% interval held the truth in %.0f%% of %d samples", name, 100*cov, trials)
		}
	}
	for _, name := range []string{"p50", "p99", "stall"} {
		if _, ok := hit[name]; !ok {
			t.Errorf("%s: never covered", name)
		}
	}
}

// correlatedSessions: as a TCP connection behaves under loss: in some sessions a retransmission
// timeout delays a run of consecutive copies together by 200 ms or more, all of them stalled.
func correlatedSessions(rng *rand.Rand, n, k int) []SessionData {
	out := make([]SessionData, n)
	for s := range out {
		lat := make([]float64, k)
		for i := range lat {
			lat[i] = 40 + 5*rng.Float64()
		}
		if rng.Float64() < 0.3 { // this connection lost a packet: a block of copies waits
			start, length := rng.IntN(k), 5+rng.IntN(20)
			rto := 200 + 400*rng.Float64() // one timeout (and its backoff) for the whole block
			for i := start; i < min(k, start+length); i++ {
				lat[i] += rto + 5*rng.Float64()
				out[s].Stalled++
			}
		}
		out[s].LatencyMS = lat
	}
	return out
}

// perCopy splits sessions into one-copy "sessions": what a bootstrap over copies would resample.
func perCopy(sessions []SessionData, stallAboveMS float64) []SessionData {
	var out []SessionData
	for _, s := range sessions {
		for _, l := range s.LatencyMS {
			d := SessionData{LatencyMS: []float64{l}}
			if l > stallAboveMS {
				d.Stalled = 1
			}
			out = append(out, d)
		}
	}
	return out
}

// Copies delayed together inside a session are one piece of evidence, not many: the bootstrap
// over sessions gives a much wider interval than a bootstrap over copies would, and the wide
// one is the honest one (it covers the truth; the narrow one does not, often).
func TestBootstrapSessionsWidenCorrelated(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	sessions := correlatedSessions(rng, 120, 80)
	bySession := evidenceOf(sessions).Bootstrap(testKey, 1, 1000)
	byCopy := evidenceOf(perCopy(sessions, 100)).Bootstrap(testKey, 1, 1000)
	if bySession.Copies != byCopy.Copies || bySession.StallRate != byCopy.StallRate || bySession.P99 != byCopy.P99 {
		t.Fatalf("same copies, different figures: %+v against %+v", bySession, byCopy)
	}
	w := func(ci [2]float64) float64 { return ci[1] - ci[0] }
	t.Logf("stall rate %.4f: sessions %v, copies %v; p99 %.1f: sessions %v, copies %v",
		bySession.StallRate, bySession.StallRateCI95, byCopy.StallRateCI95, bySession.P99, bySession.P99CI95, byCopy.P99CI95)
	if ratio := w(bySession.StallRateCI95) / w(byCopy.StallRateCI95); ratio < 2 {
		t.Errorf("stall-rate interval over sessions only %.2f× as wide as over copies", ratio)
	}
	if ratio := w(bySession.P99CI95) / w(byCopy.P99CI95); ratio < 2 {
		t.Errorf("p99 interval over sessions only %.2f× as wide as over copies", ratio)
	}

	// Coverage of the true stall rate (the population's: 0.3 × mean block length 14.5 clipped
	// at the session's end, over 80 copies, found by a large simulation).
	var st, n int
	for _, s := range correlatedSessions(rand.New(rand.NewPCG(99, 99)), 200000, 80) {
		st += s.Stalled
		n += len(s.LatencyMS)
	}
	truth := float64(st) / float64(n)
	var hitS, hitC int
	trials := 30
	for i := range trials {
		ss := correlatedSessions(rng, 120, 80)
		a := evidenceOf(ss).Bootstrap(testKey, uint64(i), 400)
		b := evidenceOf(perCopy(ss, 100)).Bootstrap(testKey, uint64(i), 400)
		if a.StallRateCI95[0] <= truth && truth <= a.StallRateCI95[1] {
			hitS++
		}
		if b.StallRateCI95[0] <= truth && truth <= b.StallRateCI95[1] {
			hitC++
		}
	}
	t.Logf("true stall rate %.4f: covered by sessions %d/%d, by copies %d/%d", truth, hitS, trials, hitC, trials)
	if float64(hitS)/float64(trials) < 0.8 {
		t.Errorf("the session bootstrap covered the true stall rate in only %d of %d samples", hitS, trials)
	}
	if hitC >= hitS {
		t.Errorf("the copy bootstrap covered as often as the session bootstrap (%d against %d): the test shows nothing", hitC, hitS)
	}
}

func TestBootstrapDeterministicAndFast(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	sessions := independentSessions(rng, 240, 180, 0.02) // 43,200 copies
	start := time.Now()
	a := evidenceOf(sessions).Bootstrap(testKey, 11, 0)
	took := time.Since(start)
	b := evidenceOf(sessions).Bootstrap(testKey, 11, 0)
	if a != b {
		t.Errorf("same seed, different summaries:\n%+v\n%+v", a, b)
	}
	c := evidenceOf(sessions).Bootstrap(testKey, 12, 0)
	if a.StallRateCI95 == c.StallRateCI95 {
		t.Errorf("another seed, the same stall-rate interval %v", a.StallRateCI95)
	}
	t.Logf("43,200 copies in 240 sessions, %d resamples: %v; p99 %.2f %v", BootstrapRounds, took, a.P99, a.P99CI95)
	if a.Copies != 43200 || a.Sessions != 240 {
		t.Errorf("copies %d sessions %d", a.Copies, a.Sessions)
	}
	// The binned percentile is within 0.2% of the exact one.
	var all []float64
	for _, s := range sessions {
		all = append(all, s.LatencyMS...)
	}
	slices.Sort(all)
	exact := all[int(math.Ceil(0.99*float64(len(all))))-1]
	if math.Abs(a.P99/exact-1) > 0.002 {
		t.Errorf("p99 %.3f, exact %.3f", a.P99, exact)
	}
	if !(a.P99CI95[0] <= a.P99 && a.P99 <= a.P99CI95[1]) || !(a.P50CI95[0] <= a.P50 && a.P50 <= a.P50CI95[1]) {
		t.Errorf("a figure outside its interval: %+v", a)
	}
}

func TestBootstrapNoStalls(t *testing.T) {
	s := evidenceOf(independentSessions(rand.New(rand.NewPCG(1, 1)), 50, 100, 0)).Bootstrap(testKey, 1, 200)
	if s.StallRate != 0 || s.StallRateCI95[0] != 0 || math.Abs(s.StallRateCI95[1]-3.0/5000) > 1e-12 {
		t.Errorf("no stalls: rate %g interval %v, want 0 [0, 3/5000]", s.StallRate, s.StallRateCI95)
	}
	empty := NewEvidence().Bootstrap(testKey, 1, 10)
	if empty.Copies != 0 || empty.P99 != 0 || empty.Sessions != 0 {
		t.Errorf("empty: %+v", empty)
	}
}

// Two points drawn from one population: the ratio's interval holds 1. One with a tail twice as
// long: the interval is clearly above 1.
func TestBootstrapRatio(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	k2 := Key{"wt-uni", testKey.Cond}
	a, b := evidenceOf(independentSessions(rng, 100, 100, 0.02)), evidenceOf(independentSessions(rng, 100, 100, 0.02))
	a.Bootstrap(testKey, BootstrapSeed(1, testKey), 0)
	b.Bootstrap(k2, BootstrapSeed(1, k2), 0)
	r, ci, ok := bootstrapRatio(a, b, repP99)
	if !ok || !(ci[0] < 1 && 1 < ci[1]) || !(ci[0] <= r && r <= ci[1]) {
		t.Errorf("same population: p99 ratio %.3f %v", r, ci)
	}
	slow := independentSessions(rng, 100, 100, 0.06)
	for _, s := range slow {
		for i := range s.LatencyMS {
			s.LatencyMS[i] *= 2
		}
	}
	c := evidenceOf(slow)
	c.Bootstrap(k2, BootstrapSeed(1, k2), 0)
	r, ci, _ = bootstrapRatio(c, b, repP99)
	if !(ci[0] > 1.5 && ci[1] < 2.6) {
		t.Errorf("twice the latency: p99 ratio %.3f %v", r, ci)
	}
	r, ci, _ = bootstrapRatio(c, b, repStall)
	if !(ci[0] > 1.5) || !(r > 2 && r < 4.5) {
		t.Errorf("three times the stalls: ratio %.3f %v", r, ci)
	}
}

func TestRunRatio(t *testing.T) {
	if _, _, ok := RunRatio([]float64{100}, []float64{50, 51}); ok {
		t.Error("one run: no interval, no finding")
	}
	r, ci, ok := RunRatio([]float64{200, 200, 200}, []float64{100, 100})
	if !ok || math.Abs(r-2) > 1e-9 || ci[0] != r || ci[1] != r {
		t.Errorf("no spread: %g %v", r, ci)
	}
	r, ci, ok = RunRatio([]float64{198, 202, 200}, []float64{99, 101, 100})
	if !ok || math.Abs(r-2) > 0.01 || !(ci[0] > 1.9 && ci[1] < 2.1 && ci[0] < r && r < ci[1]) {
		t.Errorf("small spread: %g %v", r, ci)
	}
	r, ci, _ = RunRatio([]float64{90, 110, 100}, []float64{80, 120, 100})
	if !(ci[0] < 1 && ci[1] > 1) {
		t.Errorf("overlapping runs: %g %v should hold 1", r, ci)
	}
	if tQuantile975(1) != 12.706 || math.Abs(tQuantile975(1000)-1.962) > 0.003 {
		t.Errorf("t quantiles %g %g", tQuantile975(1), tQuantile975(1000))
	}
}

// The file's summary and findings have exactly DESIGN's fields (and stack, per issue 7).
func TestSummaryFindingsJSONShape(t *testing.T) {
	f := &File{Schema: Schema, Seed: 1}
	ev := map[Key]*Evidence{}
	rng := rand.New(rand.NewPCG(9, 9))
	for i, tr := range []string{"websocket", "wt-uni", "sse"} {
		k := Key{tr, Cond{DelayMS: 20, Loss: 0.02, Burst: 3}}
		for rep := range 2 {
			f.Runs = append(f.Runs, Run{Transport: tr, Loss: 0.02, Burst: 3, DelayMS: 20, Repeat: rep, Delivered: 100,
				Server: ServerLoad{BytesPerMsg: float64(300 * (i + 1)), CPUUSPerMsg: float64(40 + i + rep)}})
		}
		e := NewEvidence()
		for _, s := range independentSessions(rng, 20, 20, 0.05*float64(i+1)) {
			e.Add(s)
		}
		ev[k] = e
	}
	SummarizePoints(f, ev)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, f); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Summary  []map[string]json.RawMessage `json:"summary"`
		Findings []map[string]json.RawMessage `json:"findings"`
	}
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	wantKeys := func(what string, m map[string]json.RawMessage, keys ...string) {
		t.Helper()
		var got []string
		for k := range m {
			got = append(got, k)
		}
		slices.Sort(got)
		slices.Sort(keys)
		if !slices.Equal(got, keys) {
			t.Errorf("%s keys %v, want %v", what, got, keys)
		}
	}
	if len(raw.Summary) != 3 {
		t.Fatalf("%d summary entries", len(raw.Summary))
	}
	for _, s := range raw.Summary {
		wantKeys("summary", s, "transport", "loss", "burst", "delay_ms", "stack", "copies", "sessions",
			"p50", "p50_ci95", "p99", "p99_ci95", "stall_rate", "stall_rate_ci95")
		var ci []float64
		if err := json.Unmarshal(s["p99_ci95"], &ci); err != nil || len(ci) != 2 || ci[0] > ci[1] {
			t.Errorf("p99_ci95 %s", s["p99_ci95"])
		}
	}
	if string(raw.Summary[0]["burst"]) != "3" || string(raw.Summary[0]["sessions"]) != "20" || string(raw.Summary[0]["copies"]) != "400" {
		t.Errorf("summary[0]: %s", mustJSON(raw.Summary[0]))
	}
	if len(raw.Findings) == 0 {
		t.Fatal("no findings")
	}
	metrics := map[string]bool{}
	for _, fd := range raw.Findings {
		wantKeys("finding", fd, "metric", "loss", "burst", "delay_ms", "stack", "a", "b", "ratio", "ratio_ci95")
		var m string
		_ = json.Unmarshal(fd["metric"], &m)
		metrics[m] = true
	}
	for _, m := range FindingMetrics {
		if !metrics[m] {
			t.Errorf("no %s finding: %v", m, metrics)
		}
	}
	back, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Summary, f.Summary) || !slices.Equal(back.Findings, f.Findings) {
		t.Error("summary or findings do not round-trip")
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// fanOut: every message reaches every session (one room); a message whose sender's upstream
// lost a packet stalls in every session at once (pMsg), and each copy has its own small noise.
func fanOut(rng *rand.Rand, sessions, messages int, pMsg float64, withMessages bool) []SessionData {
	late := make([]bool, messages)
	for m := range late {
		late[m] = rng.Float64() < pMsg
	}
	out := make([]SessionData, sessions)
	for s := range out {
		d := &out[s]
		for m := range messages {
			lat := 40 + 4*rng.Float64()
			if late[m] {
				lat += 200 + 20*rng.Float64()
				d.Stalled++
			}
			d.LatencyMS = append(d.LatencyMS, lat)
			if withMessages {
				d.Message = append(d.Message, int64(m))
				d.Stall = append(d.Stall, late[m])
			}
		}
	}
	return out
}

// Copies of one message are delayed together across sessions (an upstream loss, a burst at the
// server): resampling sessions alone cannot see that, resampling messages too can. Over many
// samples the two-way interval holds the true stall rate about 95% of the time; the
// sessions-only one almost never.
func TestBootstrapTwoWayMessages(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 21))
	const truth = 0.05
	trials := 40
	var hitTwo, hitOne int
	for i := range trials {
		seed := rng.Uint64()
		two := evidenceOf(fanOut(rand.New(rand.NewPCG(seed, 1)), 40, 100, truth, true)).Bootstrap(testKey, uint64(i), 400)
		one := evidenceOf(fanOut(rand.New(rand.NewPCG(seed, 1)), 40, 100, truth, false)).Bootstrap(testKey, uint64(i), 400)
		if two.StallRate != one.StallRate || two.Copies != 4000 {
			t.Fatalf("same copies, different figures: %+v against %+v", two, one)
		}
		if two.StallRateCI95[0] <= truth && truth <= two.StallRateCI95[1] {
			hitTwo++
		}
		if one.StallRateCI95[0] <= truth && truth <= one.StallRateCI95[1] {
			hitOne++
		}
	}
	t.Logf("true stall rate %g covered: sessions and messages %d/%d, sessions only %d/%d", truth, hitTwo, trials, hitOne, trials)
	if float64(hitTwo)/float64(trials) < 0.8 {
		t.Errorf("the two-way interval covered the truth in only %d of %d samples", hitTwo, trials)
	}
	if hitOne >= hitTwo/2 {
		t.Errorf("sessions only covered %d of %d: the test shows nothing", hitOne, trials)
	}
	// Mixed input (a session without messages) falls back to sessions only, and says the same
	// figures.
	mixed := fanOut(rand.New(rand.NewPCG(5, 5)), 10, 20, truth, true)
	mixed[3].Message, mixed[3].Stall = nil, nil
	a := evidenceOf(mixed).Bootstrap(testKey, 1, 100)
	b := evidenceOf(fanOut(rand.New(rand.NewPCG(5, 5)), 10, 20, truth, false)).Bootstrap(testKey, 1, 100)
	if a != b {
		t.Errorf("mixed input: %+v, sessions only: %+v", a, b)
	}
}

func TestBootstrapTwoWaySpeed(t *testing.T) {
	// 240 sessions in 4 rooms, 720 messages: 43,200 copies.
	rng := rand.New(rand.NewPCG(8, 8))
	var ss []SessionData
	for s := range 240 {
		d := SessionData{}
		for m := range 720 {
			if m%4 != s%4 {
				continue
			}
			l := 40 + 10*rng.ExpFloat64()
			d.LatencyMS = append(d.LatencyMS, l)
			d.Message = append(d.Message, int64(m))
			d.Stall = append(d.Stall, l > 80)
		}
		ss = append(ss, d)
	}
	start := time.Now()
	s := evidenceOf(ss).Bootstrap(testKey, 1, 0)
	t.Logf("two-way, %d copies, %d sessions, 720 messages, %d resamples: %v; p99 %.1f %v", s.Copies, s.Sessions, BootstrapRounds, time.Since(start), s.P99, s.P99CI95)
	if s.Copies != 43200 {
		t.Errorf("copies %d", s.Copies)
	}
}
