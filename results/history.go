package results

import (
	"errors"
	"fmt"
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
	// lost and duplicates); NaN when that file has no such runs.
	Values map[Key][]float64
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
	h := &History{Metric: m, Values: map[Key][]float64{}}
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
				for j := range vs {
					vs[j] = math.NaN()
				}
				h.Values[g.Key] = vs
				if !slices.Contains(h.Transports, g.Transport) {
					h.Transports = append(h.Transports, g.Transport)
				}
				if !slices.Contains(h.Conds, g.Cond) {
					h.Conds = append(h.Conds, g.Cond)
				}
			}
			s := Summarize(g.Values(m))
			vs[i] = s.Median
			if m.Count {
				vs[i] = s.Mean * float64(s.N)
			}
		}
	}
	slices.SortFunc(h.Transports, compareTransports)
	slices.SortFunc(h.Conds, Cond.Compare)
	if len(h.Values) == 0 {
		slices.SortFunc(seen, compareTransports)
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
				v := math.NaN()
				if vs, ok := h.Values[Key{t, c}]; ok {
					v = vs[i]
				}
				fmt.Fprintf(tw, "%s\t", num(v))
			}
			fmt.Fprintf(tw, "%s\t\n", p.Name)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
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
	for _, t := range h.Transports {
		vs, ok := h.Values[Key{t, c}]
		if !ok {
			continue
		}
		col := TransportColor(t)
		var seg plotter.XYs
		var all plotter.XYs
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
			seg = append(seg, plotter.XY{X: float64(i), Y: v})
			all = append(all, plotter.XY{X: float64(i), Y: v})
			hi = math.Max(hi, v)
		}
		flush()
		if len(all) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(all)
		if err != nil {
			return Figure{}, err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(3), Shape: transportGlyph(t)}
		p.Add(sc)
		leg.Add(t, swatch{color: col, line: true, glyph: transportGlyph(t)})
	}
	n := len(h.Points)
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
	if m.Count {
		leg.Add("value: sum over repeats", swatch{})
	} else {
		leg.Add("value: median over repeats", swatch{})
	}
	return render(fmt.Sprintf("history-%s-%s", m.Name, c.Slug()),
		fmt.Sprintf("%s of each transport across results files; a step up is a regression to look at.", m.Label), p, leg)
}
