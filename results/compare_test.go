package results_test

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/wirelab/wirelab/results"
	"github.com/wirelab/wirelab/results/resultstest"
)

func TestMannWhitneyExact(t *testing.T) {
	for _, tc := range []struct {
		name string
		x, y []float64
		p    float64
	}{
		{"3 vs 3 apart", []float64{1, 2, 3}, []float64{4, 5, 6}, 0.1},
		{"5 vs 5 apart", []float64{1, 2, 3, 4, 5}, []float64{6, 7, 8, 9, 10}, 2.0 / 252},
		{"reversed", []float64{6, 7, 8, 9, 10}, []float64{1, 2, 3, 4, 5}, 2.0 / 252},
		{"interleaved", []float64{1, 3, 5}, []float64{2, 4, 6}, 0.7},
		{"all equal", []float64{2, 2, 2}, []float64{2, 2, 2}, 1},
		// With ties, exact too (the normal approximation said 0.37): of the 20 ways to split
		// {1, 2, 2, 3, 3, 4} into three and three, 5 give x a U of 2 or less; two-sided, 10.
		{"tied, apart", []float64{1, 2, 3}, []float64{2, 3, 4}, 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, y := slices.Clone(tc.x), slices.Clone(tc.y)
			p := results.MannWhitney(x, y)
			if math.Abs(p-tc.p) > 1e-9 {
				t.Fatalf("p=%g, want %g", p, tc.p)
			}
			if !slices.Equal(x, tc.x) || !slices.Equal(y, tc.y) {
				t.Fatalf("the samples changed: %v %v", x, y)
			}
		})
	}
	if p := results.MannWhitney(nil, []float64{1}); !math.IsNaN(p) {
		t.Fatalf("empty sample: p=%g, want NaN", p)
	}
}

// Past 50 values a side the normal approximation takes over; it must agree with the exact answer
// at the switch.
func TestMannWhitneyApproximation(t *testing.T) {
	x := make([]float64, 50)
	y := make([]float64, 51)
	for i := range x {
		x[i] = float64(i)
	}
	for i := range y {
		y[i] = float64(i) + 12.5
	}
	pApprox := results.MannWhitney(x, y) // 51 values on one side: approximation
	pExact := results.MannWhitney(x, y[:50])
	if pApprox > 0.05 || pExact > 0.05 || math.Abs(pApprox-pExact) > 0.02 {
		t.Fatalf("approx p=%g, exact p=%g", pApprox, pExact)
	}
	// With ties: a clear shift is significant, none is not.
	tx := []float64{1, 1, 2, 2, 3, 3, 4, 4}
	ty := []float64{5, 5, 6, 6, 7, 7, 8, 8}
	if p := results.MannWhitney(tx, ty); p > 0.01 {
		t.Fatalf("tied, apart: p=%g", p)
	}
	if p := results.MannWhitney(tx, tx); p < 0.9 {
		t.Fatalf("tied, same: p=%g", p)
	}
}

func verdicts(c *results.Comparison, metric string) map[string]results.Change {
	out := map[string]results.Change{}
	for _, ch := range c.Changes {
		if ch.Metric.Name == metric {
			out[ch.Transport+" "+ch.Cond.String()] = ch
		}
	}
	return out
}

func TestCompare(t *testing.T) {
	six := resultstest.Options{Seed: 10, Repeats: 6, Transports: []string{"websocket", "wt-uni"}, Losses: []float64{0, 0.02}}
	base := resultstest.File(six)
	same := six
	same.Seed = 11
	slower := same
	slower.Scale = 1.5
	faster := same
	faster.Scale = 0.6

	t.Run("same model, other seed", func(t *testing.T) {
		c, err := results.Compare(base, resultstest.File(same), results.CompareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r := c.Regressions(); len(r) > 0 {
			t.Fatalf("regressions in noise: %+v", r[0])
		}
		ch := verdicts(c, "p50")["websocket 0% loss, 20 ms one way"]
		if ch.Method != "U" || ch.Verdict != results.Same {
			t.Fatalf("p50: %+v", ch)
		}
	})
	t.Run("50% slower", func(t *testing.T) {
		c, err := results.Compare(base, resultstest.File(slower), results.CompareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"p50", "p99"} {
			for k, ch := range verdicts(c, m) {
				if m == "p99" && strings.Contains(k, "2%") {
					continue // the tail at loss is noisy in 6 repeats
				}
				if ch.Verdict != results.Regression || ch.Method != "U" || ch.P >= 0.05 || ch.Delta < 0.4 {
					t.Errorf("%s %s: %+v", m, k, ch)
				}
			}
		}
		for k, ch := range verdicts(c, "bytes_per_msg") {
			if ch.Verdict != results.Same {
				t.Errorf("bytes_per_msg %s: %+v", k, ch)
			}
		}
	})
	t.Run("40% faster", func(t *testing.T) {
		c, err := results.Compare(base, resultstest.File(faster), results.CompareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r := c.Regressions(); len(r) > 0 {
			t.Fatalf("regression: %+v", r[0])
		}
		if ch := verdicts(c, "p50")["wt-uni 0% loss, 20 ms one way"]; ch.Verdict != results.Improvement {
			t.Fatalf("p50: %+v", ch)
		}
	})
	t.Run("50% slower, 60% threshold", func(t *testing.T) {
		c, err := results.Compare(base, resultstest.File(slower), results.CompareOptions{Threshold: 0.6})
		if err != nil {
			t.Fatal(err)
		}
		ch := verdicts(c, "p50")["websocket 0% loss, 20 ms one way"]
		if ch.Verdict != results.Same || ch.Note != "within threshold" {
			t.Fatalf("p50: %+v", ch)
		}
	})
}

func TestCompareFewRepeats(t *testing.T) {
	three := resultstest.Options{Seed: 20, Transports: []string{"websocket"}, Losses: []float64{0}}
	base := resultstest.File(three)
	slow := three
	slow.Seed, slow.Scale = 21, 1.5
	c, err := results.Compare(base, resultstest.File(slow), results.CompareOptions{Metrics: []string{"p50", "bytes_per_msg"}})
	if err != nil {
		t.Fatal(err)
	}
	p50 := verdicts(c, "p50")["websocket 0% loss, 20 ms one way"]
	if p50.Method != "bootstrap" || p50.Verdict != results.Regression {
		t.Fatalf("3 repeats with samples: %+v", p50)
	}
	bytesCh := verdicts(c, "bytes_per_msg")["websocket 0% loss, 20 ms one way"]
	if bytesCh.Verdict != results.Same || !strings.HasPrefix(bytesCh.Note, "n too small") {
		t.Fatalf("3 repeats, no samples for bytes: %+v", bytesCh)
	}

	// One repeat, few samples: nothing can be told, except lost copies rising from zero.
	one := resultstest.Options{Seed: 30, Transports: []string{"websocket"}, Losses: []float64{0}, Repeats: 1, Samples: 20}
	b1 := resultstest.File(one)
	one.Seed, one.Scale = 31, 3
	n1 := resultstest.File(one)
	n1.Runs[0].Lost = 4
	c, err = results.Compare(b1, n1, results.CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range c.Changes {
		switch ch.Metric.Name {
		case "lost":
			if ch.Verdict != results.Regression || ch.Note != "was 0" {
				t.Errorf("lost 0 -> 4: %+v", ch)
			}
		case "duplicates":
			if ch.Verdict != results.Same || ch.Note != "none" {
				t.Errorf("duplicates 0 -> 0: %+v", ch)
			}
		default:
			if ch.Verdict != results.Same || !strings.HasPrefix(ch.Note, "n too small") {
				t.Errorf("%s with one repeat: %+v", ch.Metric.Name, ch)
			}
		}
	}
	if len(c.Regressions()) != 1 {
		t.Fatalf("%d regressions, want 1 (lost)", len(c.Regressions()))
	}
	var out bytes.Buffer
	if err := c.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"websocket\n", "condition", "p50 ms", "regression (was 0)", "~ (n too small: 1 vs 1 repeats)", "1 regression(s), 0 improvement(s)", "+∞"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCompareInputs(t *testing.T) {
	a := resultstest.File(resultstest.Options{Seed: 1, Transports: []string{"websocket"}, Repeats: 1, Samples: 5})
	b := resultstest.File(resultstest.Options{Seed: 1, Transports: []string{"sse"}, Repeats: 1, Samples: 5})
	_, err := results.Compare(a, b, results.CompareOptions{})
	if !errors.Is(err, results.ErrNoCommonRuns) || !strings.Contains(err.Error(), "base has websocket at 0% loss") || !strings.Contains(err.Error(), "new has sse") {
		t.Fatalf("no common runs: %v", err)
	}
	if _, err := results.Compare(a, a, results.CompareOptions{Metrics: []string{"p42"}}); err == nil || !strings.Contains(err.Error(), `unknown metric "p42" (known: p50,`) {
		t.Fatalf("unknown metric: %v", err)
	}
	c := resultstest.File(resultstest.Options{Seed: 1, Transports: []string{"websocket", "sse"}, Repeats: 1, Samples: 5, Losses: []float64{0}})
	cmp, err := results.Compare(a, c, results.CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmp.BaseOnly) != 2 || len(cmp.NewOnly) != 1 {
		t.Fatalf("base only %v, new only %v", cmp.BaseOnly, cmp.NewOnly)
	}
	var out bytes.Buffer
	cmp.WriteText(&out)
	if !strings.Contains(out.String(), "Only in base (not compared): websocket at 2% loss") || !strings.Contains(out.String(), "Only in new (not compared): sse at 0% loss") {
		t.Fatalf("table:\n%s", out.String())
	}
}

// A figure one side did not measure (all zero) is not a change.
func TestCompareUnmeasured(t *testing.T) {
	o := resultstest.Options{Seed: 40, Repeats: 5, Transports: []string{"websocket"}, Losses: []float64{0}, Samples: 20}
	base := resultstest.File(o)
	o.Seed = 41
	next := resultstest.File(o)
	for i := range next.Runs {
		next.Runs[i].Server.CPUUSPerMsg = 0
	}
	c, err := results.Compare(base, next, results.CompareOptions{Metrics: []string{"cpu_us_per_msg"}})
	if err != nil {
		t.Fatal(err)
	}
	if ch := c.Changes[0]; ch.Verdict != results.Same || ch.Note != "not measured in new" {
		t.Fatalf("%+v", ch)
	}
}

// point is a summary entry of websocket at loss, 20 ms one way: p50, p99 (ms) and the stall
// rate (a fraction), each with its interval.
func point(loss float64, p50 float64, p50ci [2]float64, p99 float64, p99ci [2]float64, sr float64, srci [2]float64) results.PointSummary {
	return results.PointSummary{Transport: "websocket", Loss: loss, DelayMS: 20, Stack: "gvisor", Copies: 5000, Sessions: 40,
		P50: p50, P50CI95: p50ci, P99: p99, P99CI95: p99ci, StallRate: sr, StallRateCI95: srci}
}

// A file of websocket at 0% and 2% loss, one repeat, with the given summary.
func withSummary(seed uint64, scale float64, summary ...results.PointSummary) *results.File {
	f := resultstest.File(resultstest.Options{Seed: seed, Repeats: 1, Samples: 300, Scale: scale, Transports: []string{"websocket"}, Losses: []float64{0, 0.02}})
	f.Summary = summary
	return f
}

// With a summary on both sides, p50, p99 and the stall rate are decided by the 95% intervals:
// apart and beyond the threshold (and, for the stall rate, beyond the floor) or nothing.
func TestCompareIntervals(t *testing.T) {
	const at0, at2 = "websocket 0% loss, 20 ms one way", "websocket 2% loss, 20 ms one way"
	base := withSummary(50, 1,
		point(0, 42.1, [2]float64{41.9, 42.3}, 46.7, [2]float64{45.9, 47.6}, 0, [2]float64{0, 0.0004}),
		point(0.02, 42.4, [2]float64{42.0, 42.9}, 300, [2]float64{120, 420}, 0.01, [2]float64{0.006, 0.014}))
	for _, tc := range []struct {
		name    string
		next    []results.PointSummary
		opt     results.CompareOptions
		want    map[string]results.Verdict // "metric condition" -> verdict
		notes   map[string]string
		nRegr   int
		stderrs []string // Line() of the regressions, in order
	}{
		{
			name: "p99 apart and beyond the threshold, stall rate within the floor",
			next: []results.PointSummary{
				point(0, 42.2, [2]float64{41.9, 42.4}, 146, [2]float64{140, 151}, 0.0005, [2]float64{0.00045, 0.001}),
				point(0.02, 42.5, [2]float64{42.0, 43.0}, 350, [2]float64{150, 500}, 0.012, [2]float64{0.007, 0.016})},
			opt: results.CompareOptions{Threshold: 0.5},
			want: map[string]results.Verdict{"p99 " + at0: results.Regression, "p99 " + at2: results.Same, "p50 " + at0: results.Same,
				"stall_rate " + at0: results.Same, "stall_rate " + at2: results.Same},
			notes: map[string]string{"p99 " + at0: "intervals apart", "p99 " + at2: "intervals overlap", "p50 " + at0: "intervals overlap",
				"stall_rate " + at0: "intervals apart, below the 0.5-point floor", "stall_rate " + at2: "intervals overlap"},
			nRegr:   1,
			stderrs: []string{"p99 46.7 [45.9-47.6] -> 146 [140-151] ms, intervals apart, +212.6%"},
		},
		{
			name: "apart but within the threshold",
			next: []results.PointSummary{
				point(0, 43.5, [2]float64{43.3, 43.7}, 52, [2]float64{50, 54}, 0, [2]float64{0, 0.0004}),
				point(0.02, 42.4, [2]float64{42.0, 42.9}, 300, [2]float64{120, 420}, 0.01, [2]float64{0.006, 0.014})},
			opt:   results.CompareOptions{Threshold: 0.5},
			want:  map[string]results.Verdict{"p50 " + at0: results.Same, "p99 " + at0: results.Same},
			notes: map[string]string{"p50 " + at0: "intervals apart, within threshold", "p99 " + at0: "intervals apart, within threshold"},
		},
		{
			name: "overlapping intervals are no verdict however far the figures",
			next: []results.PointSummary{
				point(0, 42.1, [2]float64{41.9, 42.3}, 46.7, [2]float64{45.9, 47.6}, 0, [2]float64{0, 0.0004}),
				point(0.02, 42.4, [2]float64{42.0, 42.9}, 900, [2]float64{400, 1500}, 0.03, [2]float64{0.009, 0.05})},
			want:  map[string]results.Verdict{"p99 " + at2: results.Same, "stall_rate " + at2: results.Same},
			notes: map[string]string{"p99 " + at2: "intervals overlap", "stall_rate " + at2: "intervals overlap"},
		},
		{
			name: "stall rate apart, beyond the threshold and the floor",
			next: []results.PointSummary{
				point(0, 42.1, [2]float64{41.9, 42.3}, 46.7, [2]float64{45.9, 47.6}, 0, [2]float64{0, 0.0004}),
				point(0.02, 42.4, [2]float64{42.0, 42.9}, 300, [2]float64{120, 420}, 0.04, [2]float64{0.03, 0.05})},
			opt:     results.CompareOptions{Threshold: 0.5},
			want:    map[string]results.Verdict{"stall_rate " + at2: results.Regression},
			nRegr:   1,
			stderrs: []string{"stall_rate 1 [0.6-1.4] -> 4 [3-5] %, intervals apart, +300.0%"},
		},
		{
			name: "no floor: 0 to 0.05% apart is a regression",
			next: []results.PointSummary{
				point(0, 42.1, [2]float64{41.9, 42.3}, 46.7, [2]float64{45.9, 47.6}, 0.0005, [2]float64{0.00045, 0.0008}),
				point(0.02, 42.4, [2]float64{42.0, 42.9}, 300, [2]float64{120, 420}, 0.01, [2]float64{0.006, 0.014})},
			opt:   results.CompareOptions{Threshold: 0.5, StallFloor: -1},
			want:  map[string]results.Verdict{"stall_rate " + at0: results.Regression},
			nRegr: 1,
		},
		{
			name: "improvement, symmetric",
			next: []results.PointSummary{
				point(0, 42.1, [2]float64{41.9, 42.3}, 46.7, [2]float64{45.9, 47.6}, 0, [2]float64{0, 0.0004}),
				point(0.02, 42.4, [2]float64{42.0, 42.9}, 90, [2]float64{70, 110}, 0.001, [2]float64{0, 0.003})},
			opt:   results.CompareOptions{Threshold: 0.5},
			want:  map[string]results.Verdict{"p99 " + at2: results.Improvement, "stall_rate " + at2: results.Improvement},
			notes: map[string]string{"p99 " + at2: "intervals apart"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opt
			o.Metrics = []string{"p50", "p99", "stall_rate", "lost"}
			c, err := results.Compare(base, withSummary(51, 1, tc.next...), o)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]results.Change{}
			for _, ch := range c.Changes {
				got[ch.Metric.Name+" "+ch.Transport+" "+ch.Cond.String()] = ch
				if ch.Metric.Name != "lost" && ch.Method != "CI" {
					t.Errorf("%s %s: method %q, want CI (both files have a summary)", ch.Metric.Name, ch.Cond, ch.Method)
				}
			}
			for k, v := range tc.want {
				if ch := got[k]; ch.Verdict != v {
					t.Errorf("%s: %s (%s), want %s", k, ch.Verdict, ch.Note, v)
				}
			}
			for k, n := range tc.notes {
				if ch := got[k]; ch.Note != n {
					t.Errorf("%s: note %q, want %q", k, ch.Note, n)
				}
			}
			reg := c.Regressions()
			if len(reg) != tc.nRegr {
				t.Fatalf("%d regressions, want %d: %+v", len(reg), tc.nRegr, reg)
			}
			for i, want := range tc.stderrs {
				if line := reg[i].Line(); line != want {
					t.Errorf("regression line %q, want %q", line, want)
				}
			}
		})
	}

	// The table shows both intervals and says how it decided.
	c, err := results.Compare(base, withSummary(51, 1,
		point(0, 42.2, [2]float64{41.9, 42.4}, 146, [2]float64{140, 151}, 0, [2]float64{0, 0.0004}),
		point(0.02, 42.4, [2]float64{42.0, 42.9}, 300, [2]float64{120, 420}, 0.01, [2]float64{0.006, 0.014})),
		results.CompareOptions{Threshold: 0.5, Metrics: []string{"p99"}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := c.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"0% loss, 20 ms one way  p99 ms  46.7 [45.9-47.6]  146 [140-151]  +212.6%  regression (intervals apart)",
		"threshold 50%, alpha 0.05, stall-rate floor 0.5 points", "a change only when the intervals are apart"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// Without a summary on both sides the repeat and per-copy tests decide, as before intervals;
// lost copies from zero stay a regression whatever the summaries say.
func TestCompareIntervalsFallback(t *testing.T) {
	same := []results.PointSummary{
		point(0, 42.1, [2]float64{30, 90}, 46.7, [2]float64{30, 150}, 0, [2]float64{0, 0.0004}),
		point(0.02, 42.4, [2]float64{30, 90}, 300, [2]float64{30, 900}, 0.01, [2]float64{0, 0.03})}
	base := withSummary(60, 1, same...)
	slow := withSummary(61, 2, same...) // twice as slow, but the (wide) intervals overlap
	o := results.CompareOptions{Metrics: []string{"p50", "lost"}, Threshold: 0.3}

	c, err := results.Compare(base, slow, o)
	if err != nil {
		t.Fatal(err)
	}
	if ch := verdicts(c, "p50")["websocket 0% loss, 20 ms one way"]; ch.Method != "CI" || ch.Verdict != results.Same || ch.Note != "intervals overlap" {
		t.Fatalf("both with summaries: %+v", ch)
	}
	oldBase := withSummary(60, 1) // a file from before summaries
	oldBase.Summary = nil
	c, err = results.Compare(oldBase, slow, o)
	if err != nil {
		t.Fatal(err)
	}
	ch := verdicts(c, "p50")["websocket 0% loss, 20 ms one way"]
	if ch.Method != "bootstrap" || ch.Verdict != results.Regression {
		t.Fatalf("base without a summary: %+v", ch)
	}
	if line := ch.Line(); !strings.HasPrefix(line, "p50 ") || !strings.Contains(line, " ms -> ") || strings.Contains(line, "[") || !strings.Contains(line, "bootstrap") {
		t.Errorf("fallback line %q", line)
	}

	lossy := withSummary(61, 1, same...)
	lossy.Runs[1].Lost = 3
	c, err = results.Compare(base, lossy, o)
	if err != nil {
		t.Fatal(err)
	}
	if ch := verdicts(c, "lost")["websocket 2% loss, 20 ms one way"]; ch.Verdict != results.Regression || ch.Note != "was 0" || ch.Line() != "lost 0 copies -> 3 copies, was 0, +∞" {
		t.Fatalf("lost from zero: %+v, %q", ch, ch.Line())
	}
}

// A latency interval that rose by less than the harness's own lateness in the new run (a
// machine other work was loading: the lab's senders late against their schedule) is no
// verdict: the interval does not cover what every session of a run shares. Neither is a stall
// rate from a run whose senders were more than 10 ms late.
func TestCompareIntervalsHarnessLateness(t *testing.T) {
	base := withSummary(70, 1,
		point(0, 42.1, [2]float64{41.9, 42.3}, 46.7, [2]float64{45.9, 47.6}, 0, [2]float64{0, 0.0004}),
		point(0.02, 42.4, [2]float64{42.0, 42.9}, 300, [2]float64{120, 420}, 0.01, [2]float64{0.006, 0.014}))
	next := func(sendLag, serverSched float64) *results.File {
		f := withSummary(71, 1,
			point(0, 42.2, [2]float64{41.9, 42.4}, 124, [2]float64{106, 125}, 0, [2]float64{0, 0.0004}),
			point(0.02, 42.4, [2]float64{42.0, 42.9}, 300, [2]float64{120, 420}, 0.01, [2]float64{0.006, 0.014}))
		f.Runs[0].Lab.SendLagP99, f.Runs[0].Server.SchedulerMS = sendLag, serverSched
		return f
	}
	o := results.CompareOptions{Threshold: 0.25, Metrics: []string{"p99"}}
	for _, tc := range []struct {
		name         string
		lag, sched   float64
		verdict      results.Verdict
		note         string
		wantLateness float64
	}{
		{"quiet machine", 2, 1.5, results.Regression, "intervals apart", 2},
		{"senders 81 ms late", 81, 9, results.Same, "apart by less than the new run's harness lateness, 81 ms", 81},
		// A server short of CPU may be the regression itself: it is no excuse.
		{"server short of CPU alone", 1, 60, results.Regression, "intervals apart", 1},
	} {
		c, err := results.Compare(base, next(tc.lag, tc.sched), o)
		if err != nil {
			t.Fatal(err)
		}
		ch := verdicts(c, "p99")["websocket 0% loss, 20 ms one way"]
		if ch.Verdict != tc.verdict || ch.Note != tc.note || ch.Lateness != tc.wantLateness {
			t.Errorf("%s: %s (%s), lateness %g; want %s (%s), %g", tc.name, ch.Verdict, ch.Note, ch.Lateness, tc.verdict, tc.note, tc.wantLateness)
		}
	}
	// The base run's lateness guards an improvement the same way.
	slowBase := withSummary(70, 1, base.Summary...)
	slowBase.Runs[0].Lab.SendLagP99 = 80
	c, err := results.Compare(slowBase, withSummary(71, 1,
		point(0, 42.1, [2]float64{41.9, 42.3}, 30, [2]float64{28, 31}, 0, [2]float64{0, 0.0004}), base.Summary[1]), o)
	if err != nil {
		t.Fatal(err)
	}
	if ch := verdicts(c, "p99")["websocket 0% loss, 20 ms one way"]; ch.Verdict != results.Same || ch.Note != "apart by less than the base run's harness lateness, 80 ms" {
		t.Errorf("improvement past a late base: %s (%s)", ch.Verdict, ch.Note)
	}

	stalls := func(sendLag float64) results.Change {
		f := withSummary(71, 1, base.Summary[0],
			point(0.02, 42.4, [2]float64{42.0, 42.9}, 300, [2]float64{120, 420}, 0.04, [2]float64{0.03, 0.05}))
		f.Runs[1].Lab.SendLagP99 = sendLag
		c, err := results.Compare(base, f, results.CompareOptions{Threshold: 0.25, Metrics: []string{"stall_rate"}})
		if err != nil {
			t.Fatal(err)
		}
		return verdicts(c, "stall_rate")["websocket 2% loss, 20 ms one way"]
	}
	if ch := stalls(9); ch.Verdict != results.Regression {
		t.Errorf("stall rate 1%% -> 4%%, senders 9 ms late: %s (%s)", ch.Verdict, ch.Note)
	}
	if ch := stalls(24); ch.Verdict != results.Same || ch.Note != "intervals apart, but the new run's harness was 24 ms late (over 10)" {
		t.Errorf("stall rate 1%% -> 4%%, senders 24 ms late: %s (%s)", ch.Verdict, ch.Note)
	}
}
