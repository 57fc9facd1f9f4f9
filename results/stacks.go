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

// StackPair is one transport at one link condition on both stacks: the report's "gVisor
// against Linux" section puts them side by side.
type StackPair struct {
	Transport string
	TCP       bool // the transport ran over TCP (its runs' carrier)
	Cond      Cond // the link condition (its Stack is "")
	GVisor    Row
	Linux     Row
}

// StackPairs lists every transport and link condition f has on both gVisor and the kernel
// stack, in Key order; nil when f holds one stack.
func StackPairs(f *File) []StackPair {
	rows := SummaryRows(f)
	kernel := map[Key]Row{}
	for _, r := range rows {
		if r.Stack() == StackKernel {
			kernel[Key{r.Transport, r.Cond.Link()}] = r
		}
	}
	var out []StackPair
	for _, r := range rows {
		if r.Stack() != StackGVisor {
			continue
		}
		k, ok := kernel[Key{r.Transport, r.Cond}]
		if !ok {
			continue
		}
		out = append(out, StackPair{Transport: r.Transport, TCP: f.TCP(r.Transport), Cond: r.Cond, GVisor: r, Linux: k})
	}
	return out
}

// stackTailLimit is how many times Linux's late share gVisor's may reach before the reading
// says plainly that gVisor's tail is off (issue 10's bar).
const stackTailLimit = 2.0

// tailRatio is gVisor's late share over Linux's: +Inf when only gVisor had late copies, NaN
// when neither had any or either is not measured.
func tailRatio(g, l float64) float64 {
	switch {
	case math.IsNaN(g) || math.IsNaN(l):
		return math.NaN()
	case l == 0 && g == 0:
		return math.NaN()
	case l == 0:
		return math.Inf(1)
	}
	return g / l
}

// ratioCell says a tail ratio: "4.9×", "0.8×", "gVisor only", "–".
func ratioCell(r float64) string {
	switch {
	case math.IsNaN(r):
		return "–"
	case math.IsInf(r, 1):
		return "Linux none"
	case r >= 10:
		return fmt.Sprintf("%.0f×", r)
	case r >= 0.1:
		return fmt.Sprintf("%.2g×", r)
	}
	return fmt.Sprintf("%.1g×", r)
}

// pairCell says a figure on both stacks: "291 / 299".
func pairCell(g, l float64, f func(float64) string) string { return f(g) + " / " + f(l) }

// StackTable is the side-by-side table, one row per pair: transport, condition, then each
// figure as "gVisor / Linux", then the two tail ratios.
func StackTable(pairs []StackPair) (head []string, rows [][]string) {
	head = []string{"transport", "condition", "p99 ms", "later than 200 ms", "later than 400 ms", "stall rate", "collateral share", "bytes/copy", "server µs/copy", "gVisor ÷ Linux, > 200 ms", "gVisor ÷ Linux, > 400 ms"}
	share := func(x float64) string {
		if math.IsNaN(x) {
			return "–"
		}
		return sharePct(x)
	}
	whole := func(x float64) string {
		if math.IsNaN(x) {
			return "–"
		}
		return fmt.Sprintf("%.0f%%", 100*x)
	}
	measured := func(x float64) string {
		if x == 0 {
			return "–"
		}
		return num(x)
	}
	for _, p := range pairs {
		g, l := p.GVisor, p.Linux
		rows = append(rows, []string{
			p.Transport, p.Cond.String(),
			pairCell(g.P99, l.P99, num),
			pairCell(g.Late200, l.Late200, share),
			pairCell(g.Late400, l.Late400, share),
			pairCell(g.StallRate(), l.StallRate(), share),
			pairCell(g.CollateralShare(), l.CollateralShare(), whole),
			pairCell(g.BytesPerMsg, l.BytesPerMsg, measured),
			pairCell(g.CPUUSPerMsg, l.CPUUSPerMsg, measured),
			ratioCell(tailRatio(g.Late200, l.Late200)),
			ratioCell(tailRatio(g.Late400, l.Late400)),
		})
	}
	return head, rows
}

// StackReading says in words how far gVisor is from Linux: for each TCP transport at each
// lossy condition, gVisor's late-200 and late-400 shares as a ratio of Linux's, plainly
// flagged when more than 2×; the QUIC transports as the control (the same quic-go on both
// stacks); server CPU per copy at the lowest loss. Nil without pairs.
func StackReading(f *File) []string {
	pairs := StackPairs(f)
	if len(pairs) == 0 {
		return nil
	}
	var out []string
	delays := map[float64]bool{}
	for _, p := range pairs {
		delays[p.Cond.DelayMS] = true
	}
	where := func(p StackPair) string {
		s := p.Transport + " at " + lossPhrase(p.Cond)
		if len(delays) > 1 {
			s += fmt.Sprintf(", %s ms one way", num(p.Cond.DelayMS))
		}
		return s
	}
	tail := func(p StackPair, ms float64) (string, float64) {
		g, l := p.GVisor.Late200, p.Linux.Late200
		if ms == 400 {
			g, l = p.GVisor.Late400, p.Linux.Late400
		}
		r := tailRatio(g, l)
		// How many copies the shares stand for: a handful is noise (and copies of one message
		// to a room are late together when the sender's packet was lost).
		copies := func(share float64, row Row) string { return group3(int64(math.Round(share * float64(row.Delivered)))) }
		switch {
		case math.IsNaN(g) || math.IsNaN(l):
			return fmt.Sprintf("copies later than %.0f ms not measured on both stacks", ms), r
		case math.IsNaN(r):
			return fmt.Sprintf("no copy later than %.0f ms on either stack", ms), r
		case math.IsInf(r, 1):
			return fmt.Sprintf("%s of copies later than %.0f ms (%s copies) where Linux had none", sharePct(g), ms, copies(g, p.GVisor)), r
		}
		return fmt.Sprintf("copies later than %.0f ms %s Linux's share (%s against %s; %s and %s copies)", ms, ratioCell(r), sharePct(g), sharePct(l), copies(g, p.GVisor), copies(l, p.Linux)), r
	}
	for _, tcp := range []bool{true, false} {
		var quic []string
		for _, p := range pairs {
			if p.TCP != tcp || p.Cond.Loss == 0 {
				continue
			}
			s200, r200 := tail(p, 200)
			s400, r400 := tail(p, 400)
			if !tcp {
				quic = append(quic, fmt.Sprintf("%s: %s, %s", where(p), s200, s400))
				continue
			}
			s := fmt.Sprintf("%s, gVisor had %s, and %s", where(p), s200, s400)
			if r200 > stackTailLimit || r400 > stackTailLimit {
				worst := math.Max(nanTo0(r200), nanTo0(r400))
				if math.IsInf(worst, 1) {
					s += ": gVisor's tail is longer than Linux's, which had no copy that late"
				} else {
					s += fmt.Sprintf(": gVisor's tail is more than %g× Linux's (up to %s)", stackTailLimit, ratioCell(worst))
				}
			} else if r200 < 1/stackTailLimit || r400 < 1/stackTailLimit {
				s += fmt.Sprintf(": gVisor's tail is shorter than Linux's, less than 1/%g of it at one threshold", stackTailLimit)
			} else if !math.IsNaN(r200) || !math.IsNaN(r400) {
				s += fmt.Sprintf(": within %g× of Linux", stackTailLimit)
			}
			out = append(out, s+".")
		}
		if len(quic) > 0 {
			out = append(out, "The QUIC transports run the same quic-go on both stacks (a control: only the UDP path differs); gVisor against Linux for "+strings.Join(quic, "; ")+".")
		}
	}
	out = append(out, stackVerdict(pairs))
	var cpu []string
	for _, p := range pairs {
		if p.Cond.Loss != 0 || p.GVisor.CPUUSPerMsg <= 0 || p.Linux.CPUUSPerMsg <= 0 {
			continue
		}
		cpu = append(cpu, fmt.Sprintf("%s %s against %s µs (%s)", p.Transport, num(p.GVisor.CPUUSPerMsg), num(p.Linux.CPUUSPerMsg), ratio(p.GVisor.CPUUSPerMsg, p.Linux.CPUUSPerMsg)))
	}
	if len(cpu) > 0 {
		out = append(out, "Server CPU per delivered copy at 0% loss, gVisor against Linux: "+strings.Join(cpu, "; ")+". On gVisor the server process runs its own netstack; on Linux the kernel's TCP/IP work is charged to the process only as far as it runs in its syscalls.")
	}
	return out
}

func nanTo0(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return x
}

// stackVerdict is one sentence: for which TCP transports and conditions gVisor's tail (copies
// later than 200 or 400 ms) is more than 2× Linux's, or that it is within 2× everywhere.
func stackVerdict(pairs []StackPair) string {
	var over, under []string
	n, repeats := 0, math.MaxInt
	for _, p := range pairs {
		if !p.TCP || p.Cond.Loss == 0 {
			continue
		}
		r200, r400 := tailRatio(p.GVisor.Late200, p.Linux.Late200), tailRatio(p.GVisor.Late400, p.Linux.Late400)
		if math.IsNaN(r200) && math.IsNaN(r400) {
			continue
		}
		n++
		repeats = min(repeats, p.GVisor.Repeats, p.Linux.Repeats)
		what := fmt.Sprintf("%s at %s (> 200 ms %s, > 400 ms %s)", p.Transport, lossPhrase(p.Cond), ratioCell(r200), ratioCell(r400))
		switch {
		case r200 > stackTailLimit || r400 > stackTailLimit:
			over = append(over, what)
		case r200 < 1/stackTailLimit || r400 < 1/stackTailLimit:
			under = append(under, what)
		}
	}
	if n == 0 {
		return "gVisor against Linux: no TCP transport ran under loss on both stacks, so there is no tail to compare."
	}
	var s string
	if len(over) == 0 {
		s = fmt.Sprintf("gVisor against Linux: for no TCP transport under loss (%d points) was gVisor's share of copies later than 200 or 400 ms more than %g× Linux's", n, stackTailLimit)
	} else {
		s = fmt.Sprintf("gVisor against Linux: gVisor's TCP tail is more than %g× Linux's for %d of %d TCP points under loss: %s; read the TCP transports' tails on gVisor with that in mind", stackTailLimit, len(over), n, strings.Join(over, "; "))
	}
	if len(under) > 0 {
		s += fmt.Sprintf(". It is shorter than half of Linux's for %s", strings.Join(under, "; "))
	}
	if repeats == 1 {
		s += ". One run per point: a few lost messages to a room move these shares (every copy of a message whose own packet was lost is late), so repeat for a firmer figure"
	}
	return s + "."
}

// stackConds are the lossy link conditions (Stack "") with at least one transport on both
// stacks: each gets a figure of late copies, gVisor against Linux.
func stackConds(f *File) []Cond {
	var out []Cond
	for _, p := range StackPairs(f) {
		if p.Cond.Loss > 0 && !slices.Contains(out, p.Cond) {
			out = append(out, p.Cond)
		}
	}
	return out
}

// Stack colours (Okabe-Ito orange and blue; lighter for the 200 ms threshold).
var (
	gvisorColor      = color.RGBA{R: 0xD5, G: 0x5E, B: 0x00, A: 0xff}
	gvisorLightColor = color.RGBA{R: 0xF0, G: 0xB2, B: 0x80, A: 0xff}
	linuxColor       = color.RGBA{R: 0x00, G: 0x55, B: 0x99, A: 0xff}
	linuxLightColor  = color.RGBA{R: 0x8C, G: 0xC4, B: 0xEC, A: 0xff}
)

// plotStackLate: grouped bars per transport at one link condition: copies later than 200 ms
// and 400 ms, gVisor next to Linux.
func plotStackLate(f *File, c Cond) (Figure, error) {
	p := newPlot(fmt.Sprintf("%s: copies later than 200 and 400 ms at %s, gVisor against Linux", scenarioName(f), c), "transport", "share of delivered copies later than the threshold (%)")
	leg := newLegend()
	var pairs []StackPair
	for _, sp := range StackPairs(f) {
		if sp.Cond == c {
			pairs = append(pairs, sp)
		}
	}
	if len(pairs) == 0 {
		return Figure{}, fmt.Errorf("results: no transport on both stacks at %s", c)
	}
	// Bars as wide as the groups allow (about 480 pt of plot for 5 bar widths a group).
	w := vg.Points(math.Min(18, 480/(5*float64(len(pairs)))))
	series := []struct {
		label string
		col   color.RGBA
		of    func(StackPair) float64
	}{
		{"gVisor, later than 200 ms", gvisorLightColor, func(sp StackPair) float64 { return sp.GVisor.Late200 }},
		{"Linux, later than 200 ms", linuxLightColor, func(sp StackPair) float64 { return sp.Linux.Late200 }},
		{"gVisor, later than 400 ms", gvisorColor, func(sp StackPair) float64 { return sp.GVisor.Late400 }},
		{"Linux, later than 400 ms", linuxColor, func(sp StackPair) float64 { return sp.Linux.Late400 }},
	}
	var names []string
	for _, sp := range pairs {
		names = append(names, sp.Transport)
	}
	var labels plotter.XYLabels
	hi := 0.0
	for i, s := range series {
		vals := make(plotter.Values, len(pairs))
		for j, sp := range pairs {
			v := s.of(sp)
			if math.IsNaN(v) {
				v = 0
			}
			vals[j] = 100 * v
			hi = math.Max(hi, vals[j])
		}
		bc, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return Figure{}, err
		}
		bc.Color = s.col
		bc.LineStyle.Width = 0
		bc.Offset = w * vg.Length(float64(i)-1.5)
		p.Add(bc)
		leg.Add(s.label, swatch{color: s.col, fill: true})
		for j, sp := range pairs {
			// A label above each bar; the offset in data units is not known before drawing, so
			// labels sit over the group centre, shifted by the bar's place in points.
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(j), Y: vals[j]})
			labels.Labels = append(labels.Labels, sharePct(s.of(sp)))
		}
	}
	lb, err := centredLabels(labels, 7.5, 3)
	if err != nil {
		return Figure{}, err
	}
	p.Add(barLabels{lb, w, len(pairs)})
	p.NominalX(names...)
	p.Y.Min, p.Y.Max = 0, math.Max(hi*1.15, 0.01)
	p.X.Min, p.X.Max = -0.6, float64(len(pairs))-0.4
	leg.Add("shares from every delivered copy", swatch{})
	return render("stacks-late-"+c.Slug(),
		"Share of delivered copies later than 200 ms (light) and 400 ms (dark) on each stack, all repeats together; a bar far above its neighbour is a stack whose loss recovery is slower.", p, leg)
}

// plotStackTail: the tail of each transport's latency on both stacks at one link condition,
// as the share of copies later than x (log-log): gVisor solid, Linux dashed. A late cluster
// (copies waiting for a second retransmission timeout) shows as a shoulder.
func plotStackTail(f *File, c Cond) (Figure, error) {
	p := newPlot(fmt.Sprintf("%s: latency tail at %s, gVisor against Linux", scenarioName(f), c),
		"latency, end to end per delivered copy (ms, log scale)", "share of copies later than this (log scale)")
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = logTicks125{}, logTicks125{}
	leg := newLegend()
	xlo, xhi, ylo := math.Inf(1), math.Inf(-1), 1.0
	drawn := 0
	for _, sp := range StackPairs(f) {
		if sp.Cond != c {
			continue
		}
		col := f.TransportColor(sp.Transport)
		for _, side := range []struct {
			stack  string
			dashes []vg.Length
		}{{StackGVisor, solid}, {StackKernel, dashed}} {
			var lat []float64
			for _, g := range Groups(f) {
				if g.Transport != sp.Transport || g.Cond.Link() != c || StackName(g.Cond.Stack) != side.stack {
					continue
				}
				for _, r := range g.Runs {
					for _, smp := range r.Samples {
						lat = append(lat, math.Max(smp.LatencyMS, 0.1))
					}
				}
			}
			if len(lat) < 2 {
				continue
			}
			slices.Sort(lat)
			xys := ccdfPoints(lat, 600, 1500)
			if len(xys) == 0 {
				continue
			}
			p.Add(line(xys, col, side.dashes, vg.Points(1.6)))
			xlo, xhi = math.Min(xlo, lat[0]), math.Max(xhi, lat[len(lat)-1])
			ylo = math.Min(ylo, 1/float64(len(lat)))
			drawn++
		}
		leg.Add(sp.Transport, swatch{color: col, line: true})
	}
	if drawn == 0 {
		return Figure{}, fmt.Errorf("results: no samples on both stacks at %s", c)
	}
	leg.Add("gVisor", swatch{color: theoryColor, line: true})
	leg.Add("Linux", swatch{color: theoryColor, line: true, dashes: dashed})
	for _, ms := range []float64{200, 400} {
		l := theoryLine(plotter.XYs{{X: ms, Y: ylo / 1.5}, {X: ms, Y: 1.2}}, floorDash)
		p.Add(l)
		xlo, xhi = math.Min(xlo, ms/1.25), math.Max(xhi, ms*1.25)
	}
	leg.Add("200 and 400 ms", theoryLine(nil, floorDash))
	leg.Add("from the per-copy samples", swatch{})
	p.X.Min, p.X.Max = logRange(xlo, xhi)
	p.Y.Min, p.Y.Max = ylo/1.5, 1.2
	return render("stacks-tail-"+c.Slug(),
		"Share of copies later than each latency, per transport, gVisor (solid) against Linux (dashed), from the per-copy samples of all repeats; the lines should coincide when the stacks recover from loss alike, and a shoulder far right on one stack is copies that waited for a second retransmission timeout.", p, leg)
}

// ccdfPoints: the share of copies later than each latency of sorted (above 0), at most about
// n points evenly over the copies plus every one of the last tail copies.
func ccdfPoints(sorted []float64, n, tail int) plotter.XYs {
	m := len(sorted)
	step := max(1, m/n)
	var xys plotter.XYs
	for i := 0; i < m-1; i++ {
		if i%step != 0 && i < m-tail {
			continue
		}
		xys = append(xys, plotter.XY{X: sorted[i], Y: float64(m-1-i) / float64(m)})
	}
	return xys
}

// barLabels draws the labels of grouped bars: label k belongs to series k/n, and sits over
// that series' bar (offset by its place in the group).
type barLabels struct {
	*plotter.Labels
	width vg.Length
	n     int // bars per series
}

func (b barLabels) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for k, xy := range b.XYs {
		series := k / b.n
		x := trX(xy.X) + b.width*vg.Length(float64(series)-1.5)
		y := trY(xy.Y) + b.Offset.Y
		pt := vg.Point{X: x, Y: y}
		if !c.Contains(pt) {
			continue
		}
		c.FillText(b.TextStyle[k], pt, b.Labels.Labels[k])
	}
}
