package results

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// ErrNoHistory is returned by NewHistory when nothing is left to show.
var ErrNoHistory = errors.New("results: nothing to show")

// HistoryOptions choose what History shows. The zero value: p99, every transport.
type HistoryOptions struct {
	Metric     string   // a Metrics name; default "p99"
	Transports []string // only these; default all
}

// HistoryPoint is one results file in a history.
type HistoryPoint struct {
	Name    string // as given (a path)
	Started time.Time
	Commit  string
	File    *File
}

// Label is the point's short name on an axis: "01-02 0123456" (date and short commit).
func (p HistoryPoint) Label() string {
	s := p.Started.UTC().Format("Jan 2 15:04")
	if c := p.Commit; c != "" {
		s += " " + c[:min(7, len(c))]
	}
	return s
}

// History is one metric across many results files, ordered by when they started.
type History struct {
	Metric     Metric
	Points     []HistoryPoint
	Transports []string
	Conds      []Cond
	// Values[key][i] is the metric for key in Points[i]: the median over repeats (the sum for
	// lost and duplicates); NaN when that file has no such runs. For p50, p99 and stall_rate in
	// a file with a summary for key, the summary's figure (every copy of all repeats pooled).
	Values map[Key][]float64
	// Intervals[key][i] is that figure's 95% interval from the file's summary (p50, p99 and
	// stall_rate); both NaN when the file has none (a file from before issue 11, another
	// metric).
	Intervals map[Key][][2]float64
}

// TransportColor is transport's colour in h's figures: the palette's colour at its place in
// h.Transports (their order in the files, oldest first), as File.TransportColor gives it in
// one file's.
func (h *History) TransportColor(transport string) color.RGBA {
	if i := slices.Index(h.Transports, transport); i >= 0 {
		return colorAt(i)
	}
	return colorAt(len(h.Transports))
}

// HasIntervals says whether any file gave an interval for the metric.
func (h *History) HasIntervals() bool {
	for _, cis := range h.Intervals {
		for _, ci := range cis {
			if !math.IsNaN(ci[0]) {
				return true
			}
		}
	}
	return false
}

// NewHistory orders files by their start time (ties by name) and gathers the metric.
func NewHistory(files []*File, names []string, o HistoryOptions) (*History, error) {
	if o.Metric == "" {
		o.Metric = "p99"
	}
	m, err := MetricByName(o.Metric)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	h := &History{Metric: m, Values: map[Key][]float64{}, Intervals: map[Key][][2]float64{}}
	for i, f := range files {
		name := fmt.Sprintf("file %d", i+1)
		if i < len(names) {
			name = names[i]
		}
		h.Points = append(h.Points, HistoryPoint{Name: name, Started: f.Started, Commit: f.Commit, File: f})
	}
	slices.SortStableFunc(h.Points, func(a, b HistoryPoint) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	var seen []string
	for i, p := range h.Points {
		for _, g := range Groups(p.File) {
			if !slices.Contains(seen, g.Transport) {
				seen = append(seen, g.Transport)
			}
			if len(o.Transports) > 0 && !slices.Contains(o.Transports, g.Transport) {
				continue
			}
			vs, ok := h.Values[g.Key]
			if !ok {
				vs = make([]float64, len(h.Points))
				cis := make([][2]float64, len(h.Points))
				for j := range vs {
					vs[j] = math.NaN()
					cis[j] = [2]float64{math.NaN(), math.NaN()}
				}
				h.Values[g.Key] = vs
				h.Intervals[g.Key] = cis
				if !slices.Contains(h.Transports, g.Transport) {
					h.Transports = append(h.Transports, g.Transport)
				}
				if !slices.Contains(h.Conds, g.Cond) {
					h.Conds = append(h.Conds, g.Cond)
				}
			}
			if ps, ok := SummaryOf(p.File, g.Key); ok && m.Summary != nil && ps.Copies > 0 {
				vs[i], h.Intervals[g.Key][i] = m.Summary(ps)
				continue
			}
			s := Summarize(g.Values(m))
			vs[i] = s.Median
			if m.Count {
				vs[i] = s.Mean * float64(s.N)
			}
		}
	}
	slices.SortFunc(h.Conds, Cond.Compare)
	if len(h.Values) == 0 {
		if len(files) == 0 {
			return nil, fmt.Errorf("%w: no results files", ErrNoHistory)
		}
		return nil, fmt.Errorf("%w: no runs of %s in these files (they have: %s)", ErrNoHistory, strings.Join(o.Transports, ", "), strings.Join(seen, ", "))
	}
	return h, nil
}

// WriteText prints a table per condition: a row per file, a column per transport.
func (h *History) WriteText(w io.Writer) error {
	for ci, c := range h.Conds {
		if ci > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s (%s) at %s\n", h.Metric.Name, h.Metric.Unit, c)
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "started\tcommit\t")
		for _, t := range h.Transports {
			fmt.Fprintf(tw, "%s\t", t)
		}
		fmt.Fprintf(tw, "file\t\n")
		for i, p := range h.Points {
			commit := p.Commit[:min(12, len(p.Commit))]
			if commit == "" {
				commit = "–"
			}
			fmt.Fprintf(tw, "%s\t%s\t", p.Started.UTC().Format("2006-01-02 15:04"), commit)
			for _, t := range h.Transports {
				cell := "–"
				if vs, ok := h.Values[Key{t, c}]; ok {
					cell = num(vs[i])
					if ci := h.Intervals[Key{t, c}][i]; !math.IsNaN(ci[0]) {
						cell = figureCI(vs[i], ci)
					}
				}
				fmt.Fprintf(tw, "%s\t", cell)
			}
			fmt.Fprintf(tw, "%s\t\n", p.Name)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if h.HasIntervals() {
		fmt.Fprintf(w, "\n[LO-HI]: the file's 95%% interval (bootstrap over sessions and blocks of messages) around its figure pooled over repeats; a bare figure is the median over repeats (a file without a summary).\n")
	}
	return nil
}

// Plots draws the history: one chart per condition, a line per transport, files along x in
// start order (labelled by date and commit).
func (h *History) Plots() ([]Figure, error) {
	var out []Figure
	for _, c := range h.Conds {
		fig, err := h.plot(c)
		if err != nil {
			return nil, err
		}
		out = append(out, fig)
	}
	return out, nil
}

func (h *History) plot(c Cond) (Figure, error) {
	scen := ""
	if len(h.Points) > 0 {
		scen = scenarioName(h.Points[len(h.Points)-1].File) + ": "
	}
	m := h.Metric
	p := newPlot(fmt.Sprintf("%shistory of %s at %s (%d results files)", scen, m.Label, c, len(h.Points)),
		"results file, oldest to newest (start date and commit)", fmt.Sprintf("%s (%s)", m.Label, m.Unit))
	leg := newLegend()
	hi := 0.0
	n := len(h.Points)
	var drawn []string
	for _, t := range h.Transports {
		if _, ok := h.Values[Key{t, c}]; ok {
			drawn = append(drawn, t)
		}
	}
	bars := false
	for ti, t := range drawn {
		vs, cis := h.Values[Key{t, c}], h.Intervals[Key{t, c}]
		col := h.TransportColor(t)
		// Transports sit a little apart along x, so that their interval bars do not cover
		// each other.
		off := 0.0
		if len(drawn) > 1 {
			off = (float64(ti) - float64(len(drawn)-1)/2) * math.Min(0.6/float64(len(drawn)), 0.1)
		}
		var seg, all, withCI plotter.XYs
		var errs plotter.YErrors
		flush := func() {
			if len(seg) > 1 {
				p.Add(line(seg, col, solid, vg.Points(1.6)))
			}
			seg = nil
		}
		for i, v := range vs {
			if math.IsNaN(v) {
				flush()
				continue
			}
			xy := plotter.XY{X: float64(i) + off, Y: v}
			seg = append(seg, xy)
			all = append(all, xy)
			hi = math.Max(hi, v)
			if ci := cis[i]; !math.IsNaN(ci[0]) {
				withCI = append(withCI, xy)
				errs = append(errs, struct{ Low, High float64 }{math.Max(0, v-ci[0]), math.Max(0, ci[1]-v)})
				hi = math.Max(hi, ci[1])
			}
		}
		flush()
		if len(all) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(all)
		if err != nil {
			return Figure{}, err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(3), Shape: transportGlyph(slices.Index(h.Transports, t))}
		p.Add(sc)
		if len(withCI) > 0 {
			eb, err := plotter.NewYErrorBars(errPoints{withCI, errs})
			if err != nil {
				return Figure{}, err
			}
			eb.LineStyle = draw.LineStyle{Color: col, Width: vg.Points(1.2)}
			eb.CapWidth = vg.Points(6)
			p.Add(eb)
			bars = true
		}
		leg.Add(t, swatch{color: col, line: true, glyph: transportGlyph(slices.Index(h.Transports, t))})
	}
	p.X.Min, p.X.Max = -0.5, float64(n)-0.5
	p.Y.Min, p.Y.Max = 0, math.Max(hi*1.1, 1e-9)
	var ticks plot.ConstantTicks
	every := max(1, (n+11)/12)
	for i := 0; i < n; i++ {
		t := plot.Tick{Value: float64(i)}
		if i%every == 0 || i == n-1 {
			t.Label = h.Points[i].Label()
		}
		ticks = append(ticks, t)
	}
	p.X.Tick.Marker = ticks
	p.X.Tick.Label.Rotation = math.Pi / 2
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	caption := fmt.Sprintf("%s of each transport across results files; a step up is a regression to look at.", m.Label)
	switch {
	case m.Count:
		leg.Add("value: sum over repeats", swatch{})
	case bars:
		leg.Add("value: pooled over repeats, bar: 95% interval", swatch{})
		caption += " Bars are each file's 95% interval (bootstrap over sessions and blocks of messages): a step is evidence of a change where the bars before and after it are apart; a point without a bar is the median over repeats of a file without intervals."
	default:
		leg.Add("value: median over repeats", swatch{})
	}
	return render(fmt.Sprintf("history-%s-%s", m.Name, c.Slug()), caption, p, leg)
}
