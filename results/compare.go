package results

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// DefaultCompareMetrics are the metrics `lab compare` looks at unless told otherwise.
var DefaultCompareMetrics = []string{"p50", "p99", "bytes_per_msg", "cpu_us_per_msg", "lost", "duplicates"}

// ErrNoCommonRuns is returned by Compare when the two files share no transport and condition.
var ErrNoCommonRuns = errors.New("results: the two files have no runs in common")

// CompareOptions tune Compare. The zero value means: DefaultCompareMetrics, a 10% threshold,
// alpha 0.05.
type CompareOptions struct {
	Threshold float64  // a change smaller than this fraction is never a verdict (0.1 = 10%)
	Metrics   []string // metric names (see Metrics)
	Alpha     float64  // significance level of the tests
	Seed      uint64   // of the bootstrap
}

// Verdict of one comparison.
type Verdict string

const (
	Same        Verdict = "~"
	Regression  Verdict = "regression"
	Improvement Verdict = "improvement"
)

// Shown is the figure a person reads for s: the median over repeats, or for count metrics
// (lost, duplicates) the sum over repeats.
func (ch Change) Shown(s Summary) float64 {
	if ch.Metric.Count {
		return s.Mean * float64(s.N)
	}
	return s.Median
}

// Change is one metric of one transport at one condition, base against new.
type Change struct {
	Key
	Metric    Metric
	Base, New Summary // over repeats
	Delta     float64 // (new - base) / base of the medians; +Inf when base is 0 and new is not
	P         float64 // of the test; NaN when none was possible
	Method    string  // "U" (Mann-Whitney on repeats), "bootstrap" (per-copy samples), "count" (a rise from zero)
	Verdict   Verdict
	Note      string // why the verdict: "n too small", "within threshold", "p=0.40", "was 0"
}

// Comparison is the result of Compare.
type Comparison struct {
	Options  CompareOptions
	Changes  []Change // in Key order, then metric order
	BaseOnly []Key    // in base only
	NewOnly  []Key
}

// Regressions are the changes that got the Regression verdict.
func (c *Comparison) Regressions() []Change {
	var out []Change
	for _, ch := range c.Changes {
		if ch.Verdict == Regression {
			out = append(out, ch)
		}
	}
	return out
}

// Compare compares new against base, group by group (transport, delay, loss, burst), metric by
// metric. Every metric is lower-is-better. A change is a regression or an improvement only
// when it is beyond noise (Mann-Whitney U on the repeat values, p < alpha; with too few
// repeats for that, a bootstrap over the per-copy latency samples for latency metrics) AND
// beyond the threshold; lost or duplicated copies rising from zero are always a regression.
func Compare(base, new *File, o CompareOptions) (*Comparison, error) {
	if o.Threshold == 0 {
		o.Threshold = 0.10
	}
	if o.Alpha == 0 {
		o.Alpha = 0.05
	}
	if len(o.Metrics) == 0 {
		o.Metrics = DefaultCompareMetrics
	}
	if o.Threshold < 0 || math.IsNaN(o.Threshold) {
		return nil, fmt.Errorf("results: threshold %g is negative", o.Threshold)
	}
	if o.Alpha <= 0 || o.Alpha >= 1 {
		return nil, fmt.Errorf("results: alpha %g is not between 0 and 1 (try 0.05)", o.Alpha)
	}
	var metrics []Metric
	for _, name := range o.Metrics {
		m, err := MetricByName(name)
		if err != nil {
			return nil, fmt.Errorf("results: %w", err)
		}
		metrics = append(metrics, m)
	}
	c := &Comparison{Options: o}
	bg, ng := Groups(base), Groups(new)
	index := map[Key]Group{}
	for _, g := range ng {
		index[g.Key] = g
	}
	seen := map[Key]bool{}
	for _, b := range bg {
		n, ok := index[b.Key]
		if !ok {
			c.BaseOnly = append(c.BaseOnly, b.Key)
			continue
		}
		seen[b.Key] = true
		for _, m := range metrics {
			c.Changes = append(c.Changes, compareGroup(b, n, m, o))
		}
	}
	for _, g := range ng {
		if !seen[g.Key] {
			c.NewOnly = append(c.NewOnly, g.Key)
		}
	}
	if len(c.Changes) == 0 {
		return c, fmt.Errorf("%w: base has %s; new has %s", ErrNoCommonRuns, describeKeys(bg), describeKeys(ng))
	}
	return c, nil
}

func describeKeys(gs []Group) string {
	if len(gs) == 0 {
		return "no runs"
	}
	var ts []string
	var conds []Cond
	for _, g := range gs {
		if !slices.Contains(ts, g.Transport) {
			ts = append(ts, g.Transport)
		}
		if !slices.Contains(conds, g.Cond) {
			conds = append(conds, g.Cond)
		}
	}
	cs := make([]string, len(conds))
	for i, c := range conds {
		cs[i] = c.String()
	}
	return fmt.Sprintf("%s at %s", strings.Join(ts, ", "), strings.Join(cs, "; "))
}

func compareGroup(b, n Group, m Metric, o CompareOptions) Change {
	bv, nv := b.Values(m), n.Values(m)
	ch := Change{Key: b.Key, Metric: m, Base: Summarize(bv), New: Summarize(nv), P: math.NaN()}
	switch {
	case ch.Base.Median == 0 && ch.New.Median == 0:
		ch.Delta = 0
	case ch.Base.Median == 0:
		ch.Delta = math.Inf(1)
	default:
		ch.Delta = (ch.New.Median - ch.Base.Median) / ch.Base.Median
	}
	beyond := math.Abs(ch.Delta) > o.Threshold
	verdict := func(p float64) {
		ch.P = p
		switch {
		case p >= o.Alpha:
			ch.Verdict, ch.Note = Same, fmt.Sprintf("p=%.2f", p)
		case !beyond:
			ch.Verdict, ch.Note = Same, "within threshold"
		case ch.Delta > 0:
			ch.Verdict = Regression
		default:
			ch.Verdict = Improvement
		}
	}
	if m.Count {
		bs, ns := sum(bv), sum(nv)
		if bs == 0 && ns > 0 {
			ch.Method, ch.Verdict, ch.Note = "count", Regression, "was 0"
			return ch
		}
		if bs == 0 && ns == 0 {
			ch.Verdict, ch.Note = Same, "none"
			return ch
		}
	}
	if !m.Count && (ch.Base.Max == 0) != (ch.New.Max == 0) {
		// Zero everywhere on one side is a figure that side did not measure (server CPU with
		// the server in the lab's process), not a change.
		side := "base"
		if ch.New.Max == 0 {
			side = "new"
		}
		ch.Verdict, ch.Note = Same, "not measured in "+side
		return ch
	}
	if minExactP(len(bv), len(nv)) < o.Alpha {
		ch.Method = "U"
		_, p := MannWhitney(bv, nv)
		verdict(p)
		return ch
	}
	if stat, ok := sampleStat(m.Name); ok {
		bs, ns := pooledSamples(b), pooledSamples(n)
		if need := stat.minSamples; len(bs) >= need && len(ns) >= need {
			ch.Method = "bootstrap"
			verdict(bootstrapP(capSamples(bs), capSamples(ns), stat.q, bootstrapRounds, o.Seed))
			if ch.Verdict == Same && ch.Note != "within threshold" {
				ch.Note += ", within-run noise"
			}
			return ch
		}
	}
	ch.Verdict, ch.Note = Same, fmt.Sprintf("n too small: %d vs %d repeats", len(bv), len(nv))
	return ch
}

const bootstrapRounds = 400

type sampleStatistic struct {
	q          float64 // quantile; 0 = the mean
	minSamples int
}

// sampleStat is a latency metric computed from per-copy samples, for the bootstrap.
func sampleStat(metric string) (sampleStatistic, bool) {
	q := map[string]float64{"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999}
	if v, ok := q[metric]; ok {
		return sampleStatistic{q: v, minSamples: max(50, int(math.Ceil(10/(1-v))))}, true
	}
	if metric == "mean" {
		return sampleStatistic{minSamples: 50}, true
	}
	return sampleStatistic{}, false
}

func pooledSamples(g Group) []float64 {
	var out []float64
	for _, r := range g.Runs {
		for _, s := range r.Samples {
			out = append(out, s.LatencyMS)
		}
	}
	return out
}

// capSamples keeps the bootstrap affordable: at most 20,000 samples, evenly strided.
func capSamples(xs []float64) []float64 {
	const most = 20000
	if len(xs) <= most {
		return xs
	}
	out := make([]float64, 0, most)
	step := float64(len(xs)) / most
	for i := 0; i < most; i++ {
		out = append(out, xs[int(float64(i)*step)])
	}
	return out
}

func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}

// WriteText writes the comparison as a table per transport, then a summary line.
func (c *Comparison) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	transport := ""
	for _, ch := range c.Changes {
		if ch.Transport != transport {
			if transport != "" {
				fmt.Fprintln(tw)
			}
			transport = ch.Transport
			fmt.Fprintf(tw, "%s\n", transport)
			fmt.Fprintf(tw, "  condition\tmetric\tbase\tnew\tdelta\tverdict\n")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", ch.Cond, metricHead(ch.Metric), summaryCell(ch.Base, ch.Metric), summaryCell(ch.New, ch.Metric), deltaCell(ch.Delta), verdictCell(ch))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	reg, imp := 0, 0
	for _, ch := range c.Changes {
		switch ch.Verdict {
		case Regression:
			reg++
		case Improvement:
			imp++
		}
	}
	fmt.Fprintf(w, "\n%d regression(s), %d improvement(s), %d unchanged or undecided; threshold %s, alpha %g.\n",
		reg, imp, len(c.Changes)-reg-imp, num(c.Options.Threshold*100)+"%", c.Options.Alpha)
	fmt.Fprintln(w, "Tests: U = Mann-Whitney on repeat values; bootstrap = per-copy samples (within-run noise only, when repeats are too few); count = lost/duplicates rising from 0 (always a regression).")
	if len(c.BaseOnly) > 0 {
		fmt.Fprintf(w, "Only in base (not compared): %s.\n", joinKeys(c.BaseOnly))
	}
	if len(c.NewOnly) > 0 {
		fmt.Fprintf(w, "Only in new (not compared): %s.\n", joinKeys(c.NewOnly))
	}
	return nil
}

func joinKeys(ks []Key) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = k.String()
	}
	return strings.Join(s, "; ")
}

func metricHead(m Metric) string {
	if m.Unit == "" || m.Unit == "copies" {
		return m.Name
	}
	return m.Name + " " + m.Unit
}

func summaryCell(s Summary, m Metric) string {
	if s.N == 0 {
		return "–"
	}
	if m.Count {
		return fmt.Sprintf("%s in all (n=%d)", num(s.Mean*float64(s.N)), s.N)
	}
	if s.N == 1 || s.Max == s.Min || s.Median == 0 {
		return fmt.Sprintf("%s (n=%d)", num(s.Median), s.N)
	}
	spread := 100 * math.Max(s.Max-s.Median, s.Median-s.Min) / math.Abs(s.Median)
	return fmt.Sprintf("%s ±%.0f%% (n=%d)", num(s.Median), spread, s.N)
}

func deltaCell(d float64) string {
	switch {
	case math.IsInf(d, 1):
		return "+∞"
	case math.IsNaN(d):
		return "–"
	case d == 0:
		return "0%"
	}
	return fmt.Sprintf("%+.1f%%", 100*d)
}

func verdictCell(ch Change) string {
	var b strings.Builder
	b.WriteString(string(ch.Verdict))
	var why []string
	if ch.Method != "" && ch.Method != "count" {
		why = append(why, ch.Method)
		switch {
		case math.IsNaN(ch.P) || strings.HasPrefix(ch.Note, "p="):
		case ch.Method == "bootstrap" && ch.P < 2.0/bootstrapRounds:
			why = append(why, fmt.Sprintf("p<%.3f", 2.0/bootstrapRounds))
		default:
			why = append(why, fmt.Sprintf("p=%.3f", ch.P))
		}
	}
	if ch.Note != "" {
		why = append(why, ch.Note)
	}
	if len(why) > 0 {
		b.WriteString(" (" + strings.Join(why, ", ") + ")")
	}
	return b.String()
}
