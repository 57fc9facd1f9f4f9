package results_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/wirelab/wirelab/results"
	"github.com/wirelab/wirelab/results/resultstest"
)

func TestMannWhitneyExact(t *testing.T) {
	for _, tc := range []struct {
		name string
		x, y []float64
		u, p float64
	}{
		{"3 vs 3 apart", []float64{1, 2, 3}, []float64{4, 5, 6}, 0, 0.1},
		{"5 vs 5 apart", []float64{1, 2, 3, 4, 5}, []float64{6, 7, 8, 9, 10}, 0, 2.0 / 252},
		{"reversed", []float64{6, 7, 8, 9, 10}, []float64{1, 2, 3, 4, 5}, 25, 2.0 / 252},
		{"interleaved", []float64{1, 3, 5}, []float64{2, 4, 6}, 3, 0.7},
		{"all equal", []float64{2, 2, 2}, []float64{2, 2, 2}, 4.5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, p := results.MannWhitney(tc.x, tc.y)
			if u != tc.u || math.Abs(p-tc.p) > 1e-9 {
				t.Fatalf("U=%g p=%g, want U=%g p=%g", u, p, tc.u, tc.p)
			}
		})
	}
	if _, p := results.MannWhitney(nil, []float64{1}); !math.IsNaN(p) {
		t.Fatalf("empty sample: p=%g, want NaN", p)
	}
}

// Past 60 values the normal approximation takes over; it must agree with the exact answer
// just below the switch.
func TestMannWhitneyApproximation(t *testing.T) {
	x := make([]float64, 30)
	y := make([]float64, 31)
	for i := range x {
		x[i] = float64(i)
	}
	for i := range y {
		y[i] = float64(i) + 7.5
	}
	_, pApprox := results.MannWhitney(x, y) // 61 values: approximation
	_, pExact := results.MannWhitney(x, y[:30])
	if pApprox > 0.05 || pExact > 0.05 || math.Abs(pApprox-pExact) > 0.02 {
		t.Fatalf("approx p=%g, exact p=%g", pApprox, pExact)
	}
	// With ties (approximation, tie-corrected): a clear shift is significant, none is not.
	tx := []float64{1, 1, 2, 2, 3, 3, 4, 4}
	ty := []float64{5, 5, 6, 6, 7, 7, 8, 8}
	if _, p := results.MannWhitney(tx, ty); p > 0.01 {
		t.Fatalf("tied, apart: p=%g", p)
	}
	if _, p := results.MannWhitney(tx, tx); p < 0.9 {
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
