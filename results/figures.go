package results

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// maxTimelinePoints is how many ordinary (not stalled) copies a timeline draws at most.
const maxTimelinePoints = 4000

// TCPMinRTOMS is gVisor's minimum retransmission timeout: a TCP copy whose segment was lost
// arrives at least this much after the no-loss latency.
const TCPMinRTOMS = 200

// Plots renders every figure f has data for, in report order: latency CDFs (one per
// condition), p50/p99 and stalls against loss (one per loss sweep of two or more points),
// bytes and server CPU per delivered copy (bar charts at the lowest loss of each delay), and
// timelines of single runs. Figures without data are left out, not drawn empty.
func Plots(f *File) ([]Figure, error) {
	var out []Figure
	add := func(fig Figure, err error) error {
		if err != nil {
			return err
		}
		out = append(out, fig)
		return nil
	}
	for _, c := range Conds(f) {
		if !hasSamples(f, c) {
			continue
		}
		if err := add(plotCDF(f, c)); err != nil {
			return nil, err
		}
	}
	for _, s := range sweeps(f) {
		if err := add(plotLatencyVsLoss(f, s)); err != nil {
			return nil, err
		}
		if err := add(plotStallsVsLoss(f, s)); err != nil {
			return nil, err
		}
	}
	for _, c := range barConds(f) {
		for _, k := range []barKind{barBytes, barCPU} {
			if !measuredAt(f, c, k.of) {
				continue // e.g. server CPU when the server ran in the lab's process
			}
			if err := add(plotBars(f, c, k)); err != nil {
				return nil, err
			}
		}
	}
	for _, r := range timelineRuns(f) {
		if err := add(plotTimeline(f, r)); err != nil {
			return nil, err
		}
	}
	for _, c := range stackConds(f) {
		if err := add(plotStackLate(f, c)); err != nil {
			return nil, err
		}
		if !hasSamples(f, c) {
			continue
		}
		if err := add(plotStackTail(f, c)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// measuredAt says whether any run at c has the figure (above zero).
func measuredAt(f *File, c Cond, of func(*Run) float64) bool {
	for i := range f.Runs {
		if f.Runs[i].Cond() == c && of(&f.Runs[i]) > 0 {
			return true
		}
	}
	return false
}

func scenarioName(f *File) string {
	if f.Scenario == "" {
		return "wirelab"
	}
	return f.Scenario
}

func hasSamples(f *File, c Cond) bool {
	for i := range f.Runs {
		if f.Runs[i].Cond() == c && len(f.Runs[i].Samples) > 0 {
			return true
		}
	}
	return false
}

// sweeps are the (delay, burst) families with two or more loss rates.
func sweeps(f *File) []sweep {
	n := map[sweep]int{}
	var out []sweep
	for _, c := range Conds(f) {
		s := c.sweep()
		if n[s]++; n[s] == 2 {
			out = append(out, s)
		}
	}
	return out
}

// barConds: the lowest loss of each delay and stack (Bernoulli first): where the cost of a
// transport shows without loss in the way.
func barConds(f *File) []Cond {
	var out []Cond
	for _, c := range Conds(f) {
		if !slices.ContainsFunc(out, func(d Cond) bool { return d.DelayMS == c.DelayMS && d.Stack == c.Stack }) {
			out = append(out, c)
		}
	}
	return out
}

// groupsAt are the groups at condition c, in transport order.
func groupsAt(f *File, c Cond) []Group {
	var out []Group
	for _, g := range Groups(f) {
		if g.Cond == c {
			out = append(out, g)
		}
	}
	return out
}

// noLossP50 is the transport's median p50 at 0% loss, the same delay and stack, or NaN.
func noLossP50(f *File, transport string, delayMS float64, stack string) float64 {
	var xs []float64
	for i := range f.Runs {
		r := &f.Runs[i]
		if r.Transport == transport && r.DelayMS == delayMS && r.Loss == 0 && r.StackName() == StackName(stack) {
			xs = append(xs, r.Latency.P50)
		}
	}
	return Summarize(xs).Median
}

func anyTCP(f *File, ts []string) bool { return slices.ContainsFunc(ts, f.TCP) }

// plotCDF: (a) latency CDF per transport at one condition, x log in ms.
func plotCDF(f *File, c Cond) (Figure, error) {
	p := newPlot(fmt.Sprintf("%s: latency CDF at %s", scenarioName(f), c), "latency, end to end per delivered copy (ms, log scale)", "fraction of copies delivered within")
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = logTicks125{}
	leg := newLegend()
	lo, hi := math.Inf(1), math.Inf(-1)
	var ts, missing []string
	for _, g := range groupsAt(f, c) {
		var lat []float64
		for _, r := range g.Runs {
			for _, s := range r.Samples {
				lat = append(lat, math.Max(s.LatencyMS, 0.1))
			}
		}
		if len(lat) == 0 {
			missing = append(missing, g.Transport)
			continue
		}
		slices.Sort(lat)
		lo, hi = math.Min(lo, lat[0]), math.Max(hi, lat[len(lat)-1])
		xys := cdfPoints(lat, 800)
		col := f.TransportColor(g.Transport)
		p.Add(line(xys, col, solid, vg.Points(1.8)))
		leg.Add(fmt.Sprintf("%s (%d copies)", g.Transport, len(lat)), swatch{color: col, line: true})
		ts = append(ts, g.Transport)
	}
	lo, hi = logRange(lo, hi)
	var notes []string
	vline := func(x float64, label string, dashes []vg.Length) {
		if x <= 0 {
			return
		}
		lo, hi = math.Min(lo, x/1.25), math.Max(hi, x*1.25)
		l := theoryLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: 1}}, dashes)
		p.Add(l)
		leg.Add(label, l)
		notes = append(notes, label)
	}
	vline(2*c.DelayMS, fmt.Sprintf("theory: push floor 2×%s ms", num(c.DelayMS)), floorDash)
	if th, _ := f.pollTheory(ts, c.DelayMS); th > 0 {
		vline(th, fmt.Sprintf("theory: short-poll mean %s ms", num(th)), pollDash)
	}
	if c.Loss > 0 && anyTCP(f, ts) {
		vline(2*c.DelayMS+TCPMinRTOMS, fmt.Sprintf("theory: TCP resend ≥ %s+%d ms", num(2*c.DelayMS), TCPMinRTOMS), rtoDash)
	}
	p.X.Min, p.X.Max = lo, hi
	p.Y.Min, p.Y.Max = 0, 1.02
	p.Y.Tick.Marker = fractionTicks{}
	caption := "Each line is one transport's latency distribution, all repeats pooled; further left is faster, a long flat tail is stalls."
	if len(missing) > 0 {
		caption += " No per-copy samples for " + strings.Join(missing, ", ") + "."
	}
	return render("cdf-"+c.Slug(), caption, p, leg)
}

// cdfPoints turns sorted latencies into at most n CDF points (a step per copy when fewer).
func cdfPoints(sorted []float64, n int) plotter.XYs {
	m := len(sorted)
	step := max(1, m/n)
	xys := make(plotter.XYs, 0, m/step+2)
	for i := 0; i < m; i += step {
		xys = append(xys, plotter.XY{X: sorted[i], Y: float64(i+1) / float64(m)})
	}
	xys = append(xys, plotter.XY{X: sorted[m-1], Y: 1})
	return xys
}

// lossSeries is one transport's metric against loss: median and min-max over repeats.
func lossSeries(f *File, s sweep, transport string, of func(*Run) (float64, bool)) (plotter.XYs, plotter.YErrors) {
	var xys plotter.XYs
	var errs plotter.YErrors
	for _, g := range Groups(f) {
		if g.Transport != transport || g.sweep() != s {
			continue
		}
		var xs []float64
		for _, r := range g.Runs {
			if v, ok := of(r); ok {
				xs = append(xs, v)
			}
		}
		if len(xs) == 0 {
			continue
		}
		sm := Summarize(xs)
		xys = append(xys, plotter.XY{X: g.Loss * 100, Y: sm.Median})
		errs = append(errs, struct{ Low, High float64 }{sm.Median - sm.Min, sm.Max - sm.Median})
	}
	return xys, errs
}

func sweepLosses(f *File, s sweep) []float64 {
	var out []float64
	for _, c := range Conds(f) {
		if c.sweep() == s {
			out = append(out, c.Loss*100)
		}
	}
	return out
}

// nudge spreads transports a little along x so their error bars do not sit on each other.
func nudge(xys plotter.XYs, i, n int, span float64) plotter.XYs {
	off := (float64(i) - float64(n-1)/2) * span * 0.007
	out := slices.Clone(xys)
	for j := range out {
		out[j].X += off
	}
	return out
}

// addSeries draws a series (line, markers, min-max bars) in the transport's style.
func addSeries(p *plot.Plot, col color.RGBA, glyph draw.GlyphDrawer, xys plotter.XYs, errs plotter.YErrors, dashes []vg.Length) error {
	p.Add(line(xys, col, dashes, vg.Points(1.6)))
	sc, err := plotter.NewScatter(xys)
	if err != nil {
		return err
	}
	sc.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(3), Shape: glyph}
	p.Add(sc)
	if len(errs) > 0 {
		eb, err := plotter.NewYErrorBars(errPoints{xys, errs})
		if err != nil {
			return err
		}
		eb.LineStyle = draw.LineStyle{Color: col, Width: vg.Points(1)}
		eb.CapWidth = vg.Points(5)
		p.Add(eb)
	}
	return nil
}

func repeatsNote(f *File) string {
	n := 0
	for _, g := range Groups(f) {
		n = max(n, len(g.Runs))
	}
	if n <= 1 {
		return "one run per point: no spread"
	}
	return fmt.Sprintf("bars: min–max over %d repeats", n)
}

// plotStallsVsLoss: (c) stalled copies (solid), collateral ones (dashed) and, when any run had
// them, system ones (dotted) per 1,000 delivered copies, against loss.
func plotStallsVsLoss(f *File, s sweep) (Figure, error) {
	p := newPlot(fmt.Sprintf("%s: stalls against loss, %s", scenarioName(f), s), "configured loss per direction (%)", "stalled copies per 1,000 delivered")
	leg := newLegend()
	losses := sweepLosses(f, s)
	span := losses[len(losses)-1] - losses[0]
	ts := Transports(f)
	hi := 0.0
	type series struct {
		of     func(*Run) int64
		dashes []vg.Length
	}
	kinds := []series{{func(r *Run) int64 { return r.Stalls.Count }, solid}, {func(r *Run) int64 { return r.Stalls.Collateral }, dashed}}
	system := hasSystemStalls(f)
	if system {
		kinds = append(kinds, series{func(r *Run) int64 { return r.Stalls.System }, dotted})
	}
	for i, t := range ts {
		any := false
		for _, q := range kinds {
			ofRun := func(r *Run) (float64, bool) {
				if r.Delivered <= 0 {
					return 0, false
				}
				return 1000 * float64(q.of(r)) / float64(r.Delivered), true
			}
			var xys plotter.XYs
			var errs plotter.YErrors
			if q.dashes == nil { // all stalls: the stall rate with its interval when the file has one
				xys, errs = pointSeries(f, s, t, func(ps PointSummary) (float64, [2]float64, bool) {
					return 1000 * ps.StallRate, [2]float64{1000 * ps.StallRateCI95[0], 1000 * ps.StallRateCI95[1]}, true
				}, ofRun)
			} else {
				xys, errs = lossSeries(f, s, t, ofRun)
			}
			if len(xys) == 0 {
				continue
			}
			any = true
			for j, xy := range xys {
				hi = math.Max(hi, xy.Y+errs[j].High)
			}
			if err := addSeries(p, f.TransportColor(t), transportGlyph(i), nudge(xys, i, len(ts), span), errs, q.dashes); err != nil {
				return Figure{}, err
			}
		}
		if any {
			leg.Add(t, swatch{color: f.TransportColor(t), line: true, glyph: transportGlyph(i)})
		}
	}
	leg.Add("all stalls", swatch{color: theoryColor, line: true})
	leg.Add("collateral (head-of-line)", swatch{color: theoryColor, line: true, dashes: dashed})
	caption := "A stall is a copy later than its transport's no-loss p99 plus one RTT; collateral stalls lost none of their own packets: they waited behind another message's loss (head-of-line blocking)."
	if system {
		leg.Add("system (the machine)", swatch{color: theoryColor, line: true, dashes: dotted})
		caption += " System stalls (dotted) lost none of their own packets either but were late together with many senders' messages across many sessions: the machine (a server or lab short of CPU) delayed them, not the network."
	}
	if len(f.Summary) > 0 {
		leg.Add("bars on all stalls: 95% CI", swatch{})
		leg.Add("(bootstrap: sessions, messages)", swatch{})
		if system {
			leg.Add("collateral, system: "+repeatsNote(f), swatch{})
		} else {
			leg.Add("collateral: "+repeatsNote(f), swatch{})
		}
	} else {
		leg.Add(repeatsNote(f), swatch{})
	}
	p.Y.Min, p.Y.Max = 0, math.Max(hi*1.1, 1)
	p.X.Min, p.X.Max = losses[0]-span*0.06, losses[len(losses)-1]+span*0.06
	p.X.Tick.Marker = valueTicks(losses, "%")
	return render("stalls-vs-loss-"+sweepSlug(s), caption, p, leg)
}

// hasSystemStalls reports whether any run had system stalls (the figures then show them).
func hasSystemStalls(f *File) bool {
	for _, r := range f.Runs {
		if r.Stalls.System > 0 {
			return true
		}
	}
	return false
}

func sweepSlug(s sweep) string {
	out := slugNum(s.DelayMS) + "ms"
	if s.Burst > 0 {
		out += "-burst" + slugNum(s.Burst)
	}
	return out
}

// valueTicks labels exactly the given values.
func valueTicks(vs []float64, suffix string) plot.ConstantTicks {
	var ts plot.ConstantTicks
	for _, v := range vs {
		ts = append(ts, plot.Tick{Value: v, Label: num(v) + suffix})
	}
	return ts
}

type barKind struct {
	slug, ylabel, what, caption string
	of                          func(*Run) float64
}

var (
	barBytes = barKind{
		slug: "bytes-per-msg", ylabel: "bytes on the wire per delivered copy (B)", what: "bytes on the wire per delivered copy",
		caption: "Every byte on the emulated link in both directions (headers, acks, idle polls) divided by the copies delivered: polling pays for the polls that found nothing.",
		of:      func(r *Run) float64 { return r.Server.BytesPerMsg },
	}
	barCPU = barKind{
		slug: "server-cpu", ylabel: "server CPU per 1,000 delivered copies (ms)", what: "server CPU per 1,000 delivered copies",
		caption: "CPU time of the server process (its own process: the lab's load is not in it) per 1,000 delivered copies.",
		of:      func(r *Run) float64 { return r.Server.CPUUSPerMsg }, // µs/copy = ms per 1,000 copies
	}
)

// plotBars: (d) bytes and (e) server CPU per delivered copy, one bar per transport.
func plotBars(f *File, c Cond, k barKind) (Figure, error) {
	p := newPlot(fmt.Sprintf("%s: %s at %s", scenarioName(f), k.what, c), "transport", k.ylabel)
	leg := newLegend()
	var names []string
	var labels plotter.XYLabels
	hi := 0.0
	for i, g := range groupsAt(f, c) {
		sm := Summarize(g.Values(Metric{Of: k.of}))
		col := f.TransportColor(g.Transport)
		bc, err := plotter.NewBarChart(plotter.Values{sm.Mean}, vg.Points(34))
		if err != nil {
			return Figure{}, err
		}
		bc.XMin = float64(i)
		bc.Color = col
		bc.LineStyle.Width = 0
		p.Add(bc)
		if sm.N > 1 {
			eb, err := plotter.NewYErrorBars(errPoints{plotter.XYs{{X: float64(i), Y: sm.Mean}}, plotter.YErrors{{Low: sm.Mean - sm.Min, High: sm.Max - sm.Mean}}})
			if err != nil {
				return Figure{}, err
			}
			eb.LineStyle.Width = vg.Points(1)
			p.Add(eb)
		}
		names = append(names, g.Transport)
		labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: sm.Max})
		if sm.Mean > 0 {
			labels.Labels = append(labels.Labels, num(sm.Mean))
		} else {
			labels.Labels = append(labels.Labels, "not measured")
		}
		hi = math.Max(hi, sm.Max)
		leg.Add(g.Transport, swatch{color: col, fill: true})
	}
	if len(names) == 0 {
		return Figure{}, fmt.Errorf("results: no runs at %s", c)
	}
	lb, err := centredLabels(labels, 9, 4)
	if err != nil {
		return Figure{}, err
	}
	p.Add(lb)
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = 0.35
	p.X.Tick.Label.XAlign = draw.XRight
	p.Y.Min, p.Y.Max = 0, math.Max(hi*1.15, 1e-9)
	if n := len(groupsAt(f, c)[0].Runs); n > 1 {
		leg.Add(fmt.Sprintf("bar: mean of %d repeats", n), swatch{})
		leg.Add("whisker: min–max", swatch{})
	}
	return render(k.slug+"-"+c.Slug(), k.caption, p, leg)
}

// timelineRuns picks the runs worth a timeline: at the showcase loss (2% when swept, else
// the highest), the push transport over TCP and the one over QUIC with the lowest p99 there
// (head of line against none: chosen by each run's carrier and delivery; without push
// transports, the first TCP and the first QUIC transport), first repeat, with samples; on each
// stack of the file.
func timelineRuns(f *File) []*Run {
	var out []*Run
	for _, st := range Stacks(f) {
		out = append(out, timelineRunsOn(f, st)...)
	}
	return out
}

func timelineRunsOn(f *File, stack string) []*Run {
	var loss = -1.0
	for _, c := range Conds(f) {
		if c.Burst > 0 || c.Loss == 0 {
			continue
		}
		if loss < 0 || c.Loss == 0.02 || (loss != 0.02 && c.Loss > loss) {
			loss = c.Loss
		}
	}
	if loss < 0 {
		loss = 0
	}
	pick := func(ok func(string) bool) *Run {
		var best *Run
		for i := range f.Runs {
			r := &f.Runs[i]
			if r.Loss != loss || r.Burst > 0 || len(r.Samples) == 0 || !ok(r.Transport) || r.StackName() != stack {
				continue
			}
			if best == nil || r.DelayMS < best.DelayMS || (r.DelayMS == best.DelayMS && r.Repeat < best.Repeat) {
				best = r
			}
		}
		return best
	}
	// lowest is the picked run with the lowest p99 of the transports ok accepts; first the
	// picked run of the first of them (in the order they are shown).
	lowest := func(ok func(string) bool) *Run {
		var best *Run
		for _, t := range Transports(f) {
			if !ok(t) {
				continue
			}
			if r := pick(func(s string) bool { return s == t }); r != nil && (best == nil || r.Latency.P99 < best.Latency.P99) {
				best = r
			}
		}
		return best
	}
	first := func(ok func(string) bool) *Run {
		for _, t := range Transports(f) {
			if ok(t) {
				if r := pick(func(s string) bool { return s == t }); r != nil {
					return r
				}
			}
		}
		return nil
	}
	var out []*Run
	for _, want := range [][2]func(string) bool{
		{f.PushTCP, f.TCP},
		{f.PushQUIC, func(t string) bool { return !f.TCP(t) }},
	} {
		r := lowest(want[0])
		if r == nil {
			r = first(want[1])
		}
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

// plotTimeline: (f) one run's copies, latency against send time, drops as ticks, stalls,
// head-of-line stalls and system stalls marked.
func plotTimeline(f *File, r *Run) (Figure, error) {
	p := newPlot(fmt.Sprintf("%s: timeline of %s at %s (repeat %d)", scenarioName(f), r.Transport, r.Cond(), r.Repeat),
		"scheduled send time (s since the measured window began)", "latency of the copy (ms)")
	leg := newLegend()
	col := f.TransportColor(r.Transport)
	var plain, own, hol, system plotter.XYs
	hi, tmax := 0.0, 0.0
	// Every stall is drawn; ordinary copies are thinned evenly past maxTimelinePoints (the
	// picture is the same and the SVG stays small).
	ordinary := 0
	for _, s := range r.Samples {
		if !s.Stall && !s.HOL {
			ordinary++
		}
	}
	keep, seen := 1.0, 0.0
	if ordinary > maxTimelinePoints {
		keep = float64(maxTimelinePoints) / float64(ordinary)
	}
	thinned := false
	for _, s := range r.Samples {
		xy := plotter.XY{X: s.T, Y: s.LatencyMS}
		hi, tmax = math.Max(hi, s.LatencyMS), math.Max(tmax, s.T)
		if !s.Stall && !s.HOL {
			before := math.Floor(seen * keep)
			seen++
			if math.Floor(seen*keep) == before {
				thinned = true
				continue
			}
		}
		switch {
		case s.System:
			system = append(system, xy)
		case s.HOL:
			hol = append(hol, xy)
		case s.Stall:
			own = append(own, xy)
		default:
			plain = append(plain, xy)
		}
	}
	for _, d := range r.Drops {
		tmax = math.Max(tmax, d)
	}
	scatter := func(xys plotter.XYs, sty draw.GlyphStyle, label string) error {
		if len(xys) == 0 {
			return nil
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return err
		}
		sc.GlyphStyle = sty
		p.Add(sc)
		leg.Add(fmt.Sprintf("%s (%d)", label, len(xys)), sc)
		return nil
	}
	plainLabel := r.Transport + ": a delivered copy"
	if thinned {
		plainLabel = fmt.Sprintf("%s: delivered copies, 1 in %.0f", r.Transport, 1/keep)
	}
	if err := scatter(plain, draw.GlyphStyle{Color: col, Radius: vg.Points(1.6), Shape: draw.CircleGlyph{}}, plainLabel); err != nil {
		return Figure{}, err
	}
	if err := scatter(own, draw.GlyphStyle{Color: col, Radius: vg.Points(3.5), Shape: draw.TriangleGlyph{}}, "stall, own packet lost"); err != nil {
		return Figure{}, err
	}
	if err := scatter(hol, draw.GlyphStyle{Color: col, Radius: vg.Points(3), Shape: draw.CircleGlyph{}}, "head-of-line stall (collateral)"); err != nil {
		return Figure{}, err
	}
	if len(hol) > 0 {
		ring, _ := plotter.NewScatter(hol)
		ring.GlyphStyle = draw.GlyphStyle{Color: holColor, Radius: vg.Points(4.5), Shape: draw.RingGlyph{}}
		p.Add(ring)
		leg.Add("ringed: head-of-line", ring)
	}
	if err := scatter(system, draw.GlyphStyle{Color: systemColor, Radius: vg.Points(3), Shape: draw.SquareGlyph{}}, "system stall (the machine, no loss)"); err != nil {
		return Figure{}, err
	}
	hline := func(y float64, label string, dashes []vg.Length) {
		if y <= 0 || math.IsNaN(y) {
			return
		}
		hi = math.Max(hi, y)
		l := theoryLine(plotter.XYs{{X: 0, Y: y}, {X: tmax, Y: y}}, dashes)
		p.Add(l)
		leg.Add(label, l)
	}
	hline(2*r.DelayMS, fmt.Sprintf("theory: push floor %s ms", num(2*r.DelayMS)), floorDash)
	if th := f.pollTheoryMS(r.Transport, r.DelayMS); th > 0 {
		hline(th, fmt.Sprintf("theory: short-poll mean %s ms", num(th)), pollDash)
	}
	if r.IsTCP() && r.Loss > 0 {
		base := noLossP50(f, r.Transport, r.DelayMS, r.Stack)
		label := "no-loss p50"
		if math.IsNaN(base) {
			base, label = 2*r.DelayMS, "push floor"
		}
		hline(base+TCPMinRTOMS, fmt.Sprintf("theory: %s + %d ms (min RTO)", label, TCPMinRTOMS), rtoDash)
	}
	if len(r.Drops) > 0 {
		dt := dropTicks{T: r.Drops, Color: dropColor, Height: vg.Points(12)}
		p.Add(dt)
		leg.Add(fmt.Sprintf("dropped packet, any flow (%d)", len(r.Drops)), dt)
	}
	p.X.Min, p.X.Max = 0, math.Max(tmax, 1e-3)
	p.Y.Min, p.Y.Max = 0, hi*1.08
	caption := "Every sampled copy of one run. Ticks at the bottom are dropped packets; copies that stalled although none of their own packets was lost (ringed) waited behind another message's loss."
	if len(system) > 0 {
		caption += " Grey squares are system stalls: no loss of their own either, but late together with many senders' messages across many sessions (vertical bands): the machine delayed them, not the network."
	}
	// A peer's transport (PEER/TRANSPORT) has a slash, which a file name cannot.
	return render(fmt.Sprintf("timeline-%s-%s-r%d", strings.ReplaceAll(r.Transport, "/", "-"), r.Cond().Slug(), r.Repeat), caption, p, leg)
}

// fractionTicks mark 0 to 1 by tenths, labelled every fifth.
type fractionTicks struct{}

func (fractionTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for i := 0; i <= 10; i++ {
		t := plot.Tick{Value: float64(i) / 10}
		if i%2 == 0 {
			t.Label = num(t.Value)
		}
		ts = append(ts, t)
	}
	return ts
}

// centredLabels are value labels centred over their points, size points high and offset points
// above them (the numbers on bars).
func centredLabels(labels plotter.XYLabels, size, offset float64) (*plotter.Labels, error) {
	lb, err := plotter.NewLabels(labels)
	if err != nil {
		return nil, err
	}
	for i := range lb.TextStyle {
		lb.TextStyle[i].XAlign = draw.XCenter
		lb.TextStyle[i].Font.Size = vg.Length(size)
	}
	lb.Offset = vg.Point{Y: vg.Points(offset)}
	return lb, nil
}
