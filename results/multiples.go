package results

import (
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Small multiples (issue 11): the latency-against-loss chart is one panel per transport, every
// panel on the same axes, p50 and p99 with their intervals, so eight transports stay readable.

const (
	gridWidth   = 12 * vg.Inch
	gridLegendW = 2.7 * vg.Inch
	gridRowH    = 2.45 * vg.Inch
	gridTitleH  = 0.45 * vg.Inch
)

// pointSeries is one transport's figure against loss along sweep s, with its interval: from
// the file's summary (the 95% interval of a bootstrap over sessions and blocks of messages) when it has one, else the
// median and the min–max over repeats (a file from before intervals). of picks the figure and
// its interval from a summary entry; ofRun the figure of one run.
func pointSeries(f *File, s sweep, transport string, of func(PointSummary) (float64, [2]float64, bool), ofRun func(*Run) (float64, bool)) (plotter.XYs, plotter.YErrors) {
	if len(f.Summary) == 0 {
		return lossSeries(f, s, transport, ofRun)
	}
	var xys plotter.XYs
	var errs plotter.YErrors
	for _, c := range Conds(f) {
		if c.sweep() != s {
			continue
		}
		ps, ok := SummaryOf(f, Key{transport, c})
		if !ok || ps.Copies == 0 {
			continue
		}
		v, ci, ok := of(ps)
		if !ok {
			continue
		}
		xys = append(xys, plotter.XY{X: c.Loss * 100, Y: v})
		errs = append(errs, struct{ Low, High float64 }{math.Max(0, v-ci[0]), math.Max(0, ci[1]-v)})
	}
	return xys, errs
}

// intervalNote says what the bars are.
func intervalNote(f *File) string {
	if len(f.Summary) > 0 {
		return "bars: 95% intervals"
	}
	return repeatsNote(f)
}

// plotLatencyVsLoss: (b) p50 (solid) and p99 (dashed) against loss, one panel per transport on
// shared axes, with intervals.
func plotLatencyVsLoss(f *File, s sweep) (Figure, error) {
	title := fmt.Sprintf("%s: latency against loss, %s", scenarioName(f), s)
	losses := sweepLosses(f, s)
	span := losses[len(losses)-1] - losses[0]
	if span <= 0 {
		span = 1
	}
	floor := 2 * s.DelayMS
	p50 := func(ps PointSummary) (float64, [2]float64, bool) { return ps.P50, ps.P50CI95, ps.P50 > 0 }
	p99 := func(ps PointSummary) (float64, [2]float64, bool) { return ps.P99, ps.P99CI95, ps.P99 > 0 }
	type series struct {
		xys  plotter.XYs
		errs plotter.YErrors
		dash []vg.Length
	}
	var panels []*plot.Plot
	var names []string
	var all [][]series
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, t := range Transports(f) {
		var ss []series
		for _, q := range []struct {
			of    func(PointSummary) (float64, [2]float64, bool)
			ofRun func(*Run) (float64, bool)
			dash  []vg.Length
		}{
			{p50, func(r *Run) (float64, bool) { return r.Latency.P50, r.Latency.P50 > 0 }, solid},
			{p99, func(r *Run) (float64, bool) { return r.Latency.P99, r.Latency.P99 > 0 }, dashed},
		} {
			xys, errs := pointSeries(f, s, t, q.of, q.ofRun)
			if len(xys) == 0 {
				continue
			}
			for j, xy := range xys {
				lo, hi = math.Min(lo, math.Max(xy.Y-errs[j].Low, 0.1)), math.Max(hi, xy.Y+errs[j].High)
			}
			ss = append(ss, series{xys, errs, q.dash})
		}
		if len(ss) == 0 {
			continue
		}
		names = append(names, t)
		all = append(all, ss)
	}

	pollTh, polls := f.pollTheory(names, s.DelayMS)
	theory := []struct {
		y     float64
		label string
		dash  []vg.Length
		for_  func(t string) bool
	}{
		{floor, fmt.Sprintf("theory: push floor %s ms", num(floor)), floorDash, func(string) bool { return true }},
		{pollTh, fmt.Sprintf("theory: short-poll mean %s ms", num(pollTh)), pollDash, polls},
		{floor + TCPMinRTOMS, fmt.Sprintf("theory: TCP resend ≥ %s ms", num(floor+TCPMinRTOMS)), rtoDash, f.TCP},
	}
	for _, th := range theory {
		if th.y > 0 && slices.ContainsFunc(names, th.for_) {
			lo, hi = math.Min(lo, th.y), math.Max(hi, th.y)
		}
	}
	if math.IsInf(lo, 1) { // nothing measured: one empty panel says so
		lo, hi = 2*math.Max(s.DelayMS, 1), 4*math.Max(s.DelayMS, 1)
	}
	ylo, yhi := logRange(lo, hi)
	for i, t := range names {
		p := newPlot(t, "loss (%)", "ms (log)")
		p.Title.TextStyle.Font.Size = labelSize
		p.Title.TextStyle.Color = f.TransportColor(t)
		p.X.Label.TextStyle.Font.Size = 8
		p.Y.Label.TextStyle.Font.Size = 8
		p.X.Tick.Label.Font.Size = 8
		p.Y.Tick.Label.Font.Size = 8
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks125{}
		for _, th := range theory {
			if th.y > 0 && th.for_(t) {
				p.Add(theoryLine(plotter.XYs{{X: losses[0] - span*0.05, Y: th.y}, {X: losses[len(losses)-1] + span*0.05, Y: th.y}}, th.dash))
			}
		}
		for _, sr := range all[i] {
			if err := addSeries(p, f.TransportColor(t), transportGlyph(i), sr.xys, sr.errs, sr.dash); err != nil {
				return Figure{}, err
			}
		}
		p.Y.Min, p.Y.Max = ylo, yhi
		p.X.Min, p.X.Max = losses[0]-span*0.08, losses[len(losses)-1]+span*0.08
		p.X.Tick.Marker = valueTicks(losses, "")
		panels = append(panels, p)
	}
	if len(panels) == 0 {
		p := newPlot("no latency measured", "loss (%)", "ms (log)")
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks125{}
		p.Y.Min, p.Y.Max = ylo, yhi
		p.X.Min, p.X.Max = losses[0]-span*0.08, losses[len(losses)-1]+span*0.08
		panels = append(panels, p)
	}
	leg := newLegend()
	leg.Add("p50", swatch{color: theoryColor, line: true, glyph: draw.CircleGlyph{}})
	leg.Add("p99", swatch{color: theoryColor, line: true, dashes: dashed, glyph: draw.CircleGlyph{}})
	for _, th := range theory {
		if th.y > 0 && slices.ContainsFunc(names, th.for_) {
			leg.Add(th.label, theoryLine(nil, th.dash))
		}
	}
	leg.Add(intervalNote(f), swatch{})
	leg.Add("one panel per transport,", swatch{})
	leg.Add("all on the same axes", swatch{})
	caption := "Median and tail latency as loss grows, one panel per transport on the same axes; a p99 that jumps by about 200 ms is TCP waiting for a retransmission."
	if len(f.Summary) > 0 {
		caption += " Bars are 95% confidence intervals from a bootstrap over sessions and blocks of messages (all repeats pooled): where two transports' bars overlap, the file does not tell their figures apart."
	} else {
		caption += " The file has no intervals: bars are the min–max over repeats, if any."
	}
	return renderGrid("latency-vs-loss-"+sweepSlug(s), title, caption, panels, leg)
}

// renderGrid draws panels as a grid of small multiples (three columns at most), aligned, with
// a title above and leg in a panel on the right, as PNG and SVG.
func renderGrid(name, title, caption string, panels []*plot.Plot, leg *plot.Legend) (Figure, error) {
	cols := min(3, len(panels))
	rows := (len(panels) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for r := range grid {
		grid[r] = make([]*plot.Plot, cols)
		for c := range grid[r] {
			if i := r*cols + c; i < len(panels) {
				grid[r][c] = panels[i]
			}
		}
	}
	w, h := gridWidth, gridTitleH+vg.Length(rows)*gridRowH
	fig := Figure{Name: name, Title: title, Caption: caption}
	draw1 := func(c vg.CanvasSizer) {
		dc := draw.New(c)
		dc.SetColor(color.White)
		var bg vg.Path
		bg.Move(vg.Point{})
		bg.Line(vg.Point{X: w})
		bg.Line(vg.Point{X: w, Y: h})
		bg.Line(vg.Point{Y: h})
		bg.Close()
		dc.Fill(bg)
		ts := newPlot(title, "", "").Title.TextStyle
		ts.XAlign, ts.YAlign = draw.XCenter, draw.YTop
		dc.FillText(ts, vg.Point{X: (w - gridLegendW) / 2, Y: h - vg.Points(8)}, title)
		area := draw.Crop(dc, 0, -gridLegendW, 0, -gridTitleH)
		tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(14), PadY: vg.Points(10), PadTop: vg.Points(2), PadLeft: vg.Points(4), PadBottom: vg.Points(4)}
		cs := plot.Align(grid, tiles, area)
		for r := range grid {
			for c, p := range grid[r] {
				if p != nil {
					p.Draw(cs[r][c])
				}
			}
		}
		if leg != nil {
			pad := vg.Points(10)
			leg.Draw(draw.Crop(dc, w-gridLegendW+pad, -pad, pad, -gridTitleH-vg.Points(10)))
		}
	}
	return encode(fig, name, w, h, draw1)
}
