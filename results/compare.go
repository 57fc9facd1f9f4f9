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

// HarnessLateLimit is the harness lateness (HarnessLateness, ms) above which a run's stall rate
// is no evidence of a change: past it the lab warns that its senders fell behind the schedule,
// and copies late together for that can stall in every session (a stall is a copy later than
// the no-loss p99 plus one RTT).
const HarnessLateLimit = 10.0

// DefaultStallFloor is the smallest rise (or fall) of the stall rate that can be a verdict, as a
// fraction of the delivered copies: 0.5 percentage points. A stall rate that goes from 0 to
// 0.05% at 0% loss (a few copies late on a loaded machine) is a change beyond any relative
// threshold, but not one to fail a build on.
const DefaultStallFloor = 0.005

// CompareOptions tune Compare. The zero value means: DefaultCompareMetrics, a 10% threshold,
// alpha 0.05, the DefaultStallFloor.
type CompareOptions struct {
	// Threshold: a change smaller than this fraction is never a verdict (0.1 = 10%); 0 means
	// 10%, a negative value none (every change beyond noise is one; the Comparison's Options
	// then say 0).
	Threshold float64
	Metrics   []string // metric names (see Metrics)
	Alpha     float64  // significance level of the tests
	Seed      uint64   // of the bootstrap
	// StallFloor is the smallest absolute change of the stall rate that can be a verdict, a
	// fraction (0.005 = 0.5 percentage points); 0 means DefaultStallFloor, a negative value none.
	StallFloor float64
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
	// Delta is (new - base) / base of the figures compared: the medians over repeats, or with
	// Method "CI" the summaries' pooled figures; +Inf when base is 0 and new is not.
	Delta float64
	P     float64 // of the test; NaN when none was possible
	// Method is how the verdict was reached: "CI" (the two files' 95% intervals from their
	// summaries), "U" (Mann-Whitney on repeats), "bootstrap" (per-copy samples), "count" (a
	// rise from zero).
	Method  string
	Verdict Verdict
	Note    string // why the verdict: "n too small", "within threshold", "p=0.40", "was 0", "intervals overlap"
	// With Method "CI": each file's pooled figure of the point and its 95% interval, in the
	// metric's unit (the stall rate in %).
	BaseFigure, NewFigure float64
	BaseCI, NewCI         [2]float64
	// Lateness is, for a latency with Method "CI", how late the harness itself was in the run
	// the verdict had to see past (HarnessLateness: the new one for a rise, the base one for a
	// fall), in ms; 0 when it did not matter.
	Lateness float64
}

// Figures are the two figures a person reads: with Method "CI" the summaries' pooled figures,
// else Shown of Base and New.
func (ch Change) Figures() (base, new float64) {
	if ch.Method == "CI" {
		return ch.BaseFigure, ch.NewFigure
	}
	return ch.Shown(ch.Base), ch.Shown(ch.New)
}

// Line says the change in one line, for the lines of a regression: "p99 46.7 [45.9-47.6] ->
// 146 [140-151] ms, intervals apart, +213%" (the intervals when Method is "CI"), "lost 0
// copies -> 2 copies, was 0", "p50 42.1 ms -> 68.3 ms, U p=0.002, +62.2%". The caller names
// the transport and condition (Key).
func (ch Change) Line() string {
	unit := ""
	if ch.Metric.Unit != "" {
		unit = " " + ch.Metric.Unit
	}
	var b strings.Builder
	b.WriteString(ch.Metric.Name + " ")
	if ch.Method == "CI" {
		fmt.Fprintf(&b, "%s -> %s%s", figureCI(ch.BaseFigure, ch.BaseCI), figureCI(ch.NewFigure, ch.NewCI), unit)
	} else {
		bv, nv := ch.Figures()
		fmt.Fprintf(&b, "%s%s -> %s%s", lineNum(bv, ch.Base.N), unit, lineNum(nv, ch.New.N), unit)
	}
	if why := verdictWhy(ch); len(why) > 0 {
		b.WriteString(", " + strings.Join(why, ", "))
	}
	if !math.IsNaN(ch.Delta) && ch.Delta != 0 {
		b.WriteString(", " + deltaCell(ch.Delta))
	}
	return b.String()
}

func lineNum(x float64, n int) string {
	if n == 0 {
		return "–"
	}
	return num(x)
}

// figureCI is a figure with its interval: "46.7 [45.9-47.6]".
func figureCI(x float64, ci [2]float64) string {
	return fmt.Sprintf("%s [%s-%s]", num(x), num(ci[0]), num(ci[1]))
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
// when it is beyond noise AND beyond the threshold (for the stall rate also beyond the stall
// floor, in percentage points); lost or duplicated copies rising from zero are always a
// regression. Beyond noise means: for p50, p99 and stall_rate when both files have the point
// in their summary, that the two 95% intervals are apart (the new one wholly above the base
// one, or wholly below); otherwise Mann-Whitney U on the repeat values, p < alpha, and with
// too few repeats for that a bootstrap over the per-copy latency samples for latency metrics.
func Compare(base, new *File, o CompareOptions) (*Comparison, error) {
	if o.Threshold == 0 {
		o.Threshold = 0.10
	}
	if o.Alpha == 0 {
		o.Alpha = 0.05
	}
	if o.StallFloor == 0 {
		o.StallFloor = DefaultStallFloor
	}
	if len(o.Metrics) == 0 {
		o.Metrics = DefaultCompareMetrics
	}
	if math.IsNaN(o.Threshold) {
		return nil, fmt.Errorf("results: threshold is not a number")
	}
	o.Threshold = max(o.Threshold, 0)
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
		bs, bok := SummaryOf(base, b.Key)
		ns, nok := SummaryOf(new, b.Key)
		for _, m := range metrics {
			if m.Summary != nil && bok && nok && bs.Copies > 0 && ns.Copies > 0 {
				c.Changes = append(c.Changes, compareIntervals(b, n, m, bs, ns, o))
				continue
			}
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

func relDelta(base, new float64) float64 {
	switch {
	case base == 0 && new == 0:
		return 0
	case base == 0:
		return math.Inf(1)
	}
	return (new - base) / base
}

// belowFloor says whether a change of metric m from base to new (in m's unit) is too small in
// absolute terms to be a verdict: the stall rate's floor, in percentage points.
func belowFloor(m Metric, base, new float64, o CompareOptions) bool {
	return m.Name == "stall_rate" && o.StallFloor > 0 && math.Abs(new-base) <= 100*o.StallFloor
}

func floorNote(o CompareOptions) string {
	return fmt.Sprintf("below the %s-point floor", num(100*o.StallFloor))
}

// HarnessLateness is how late the harness itself made the copies of a point's runs, in ms: the
// worst run's senders' lateness against their schedule (p99 of results.json's
// lab.send_lag_p99_ms). Latency counts from the scheduled send time, so a send the lab starts
// late makes all its copies that much later. On a quiet machine it is a few ms; on a machine
// other work is loading, tens (and the lab warns above 10). It is what every session of a run
// shares, so the bootstrap's interval does not cover it. The server's own scheduler delay is
// left out on purpose: a server short of CPU may be the regression itself.
func HarnessLateness(g Group) float64 {
	var most float64
	for _, r := range g.Runs {
		most = math.Max(most, r.Lab.SendLagP99)
	}
	return most
}

// compareIntervals decides a metric the files' summaries carry: beyond noise only when the
// two 95% intervals are apart, for a latency by more than the harness's own lateness in the
// run that got worse (HarnessLateness). The intervals come from the bootstrap over sessions
// and messages (bootstrap.go); they do not cover what every session of a run shares (a busy
// machine), which is what that allowance, the threshold and the stall floor are for.
func compareIntervals(b, n Group, m Metric, bs, ns PointSummary, o CompareOptions) Change {
	ch := Change{Key: b.Key, Metric: m, Base: Summarize(b.Values(m)), New: Summarize(n.Values(m)), P: math.NaN(), Method: "CI"}
	ch.BaseFigure, ch.BaseCI = m.Summary(bs)
	ch.NewFigure, ch.NewCI = m.Summary(ns)
	ch.Delta = relDelta(ch.BaseFigure, ch.NewFigure)
	up := ch.NewCI[0] > ch.BaseCI[1]
	down := ch.NewCI[1] < ch.BaseCI[0]
	var late float64 // how late the harness was in the run that got worse
	switch {
	case up:
		late = HarnessLateness(n)
	case down:
		late = HarnessLateness(b)
	}
	side := "new"
	if down {
		side = "base"
	}
	switch {
	case !up && !down:
		ch.Verdict, ch.Note = Same, "intervals overlap"
	case math.Abs(ch.Delta) <= o.Threshold || (up && ch.Delta < 0) || (down && ch.Delta > 0):
		ch.Verdict, ch.Note = Same, "intervals apart, within threshold"
	case belowFloor(m, ch.BaseFigure, ch.NewFigure, o):
		ch.Verdict, ch.Note = Same, "intervals apart, "+floorNote(o)
	case m.Unit == "ms" && ((up && ch.NewCI[0] <= ch.BaseCI[1]+late) || (down && ch.NewCI[1]+late >= ch.BaseCI[0])):
		// A latency: the intervals must be apart by more than the harness's lateness.
		ch.Lateness = late
		ch.Verdict, ch.Note = Same, fmt.Sprintf("apart by less than the %s run's harness lateness, %s ms", side, num(late))
	case m.Unit != "ms" && late > HarnessLateLimit:
		// The stall rate: no verdict from a run whose harness fell behind.
		ch.Lateness = late
		ch.Verdict, ch.Note = Same, fmt.Sprintf("intervals apart, but the %s run's harness was %s ms late (over %s)", side, num(late), num(HarnessLateLimit))
	case up:
		ch.Lateness = late
		ch.Verdict, ch.Note = Regression, "intervals apart"
	default:
		ch.Lateness = late
		ch.Verdict, ch.Note = Improvement, "intervals apart"
	}
	return ch
}

func compareGroup(b, n Group, m Metric, o CompareOptions) Change {
	bv, nv := b.Values(m), n.Values(m)
	ch := Change{Key: b.Key, Metric: m, Base: Summarize(bv), New: Summarize(nv), P: math.NaN()}
	ch.Delta = relDelta(ch.Base.Median, ch.New.Median)
	beyond := math.Abs(ch.Delta) > o.Threshold
	verdict := func(p float64) {
		ch.P = p
		switch {
		case p >= o.Alpha:
			ch.Verdict, ch.Note = Same, fmt.Sprintf("p=%.2f", p)
		case !beyond:
			ch.Verdict, ch.Note = Same, "within threshold"
		case belowFloor(m, ch.Base.Median, ch.New.Median, o):
			ch.Verdict, ch.Note = Same, floorNote(o)
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
		p := MannWhitney(bv, nv)
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
		bc, nc := summaryCell(ch.Base, ch.Metric), summaryCell(ch.New, ch.Metric)
		if ch.Method == "CI" {
			bc, nc = figureCI(ch.BaseFigure, ch.BaseCI), figureCI(ch.NewFigure, ch.NewCI)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", ch.Cond, metricHead(ch.Metric), bc, nc, deltaCell(ch.Delta), verdictCell(ch))
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
	floor := "none"
	if c.Options.StallFloor > 0 {
		floor = num(100*c.Options.StallFloor) + " points"
	}
	fmt.Fprintf(w, "\n%d regression(s), %d improvement(s), %d unchanged or undecided; threshold %s, alpha %g, stall-rate floor %s.\n",
		reg, imp, len(c.Changes)-reg-imp, num(c.Options.Threshold*100)+"%", c.Options.Alpha, floor)
	fmt.Fprintln(w, "Tests: figures with [LO-HI] are pooled over repeats with their 95% intervals from the files' summaries (bootstrap over sessions and blocks of messages): a change only when the intervals are apart, for latency by more than the harness's own lateness in that run (its senders' lag, p99), and no stall-rate verdict from a run whose senders were over 10 ms late; U = Mann-Whitney on repeat values; bootstrap = per-copy samples (within-run noise only, when repeats are too few); count = lost/duplicates rising from 0 (always a regression).")
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
	if why := verdictWhy(ch); len(why) > 0 {
		b.WriteString(" (" + strings.Join(why, ", ") + ")")
	}
	return b.String()
}

// verdictWhy says how the verdict was reached: the test and its p, then the note.
func verdictWhy(ch Change) []string {
	var why []string
	if ch.Method != "" && ch.Method != "count" && ch.Method != "CI" {
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
	return why
}
