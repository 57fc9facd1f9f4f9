package results

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Figure is one rendered plot.
type Figure struct {
	Name    string // file name without extension: "cdf-20ms-loss2pct"
	Title   string
	Caption string // what the figure shows, for the report
	PNG     []byte
	SVG     []byte
}

// Figure size: a wide plot area plus a legend panel on the right.
const (
	figWidth   = 10 * vg.Inch
	figHeight  = 5.5 * vg.Inch
	legendW    = 3.0 * vg.Inch
	figDPI     = 96
	titleSize  = 13
	labelSize  = 11
	legendSize = 9.5
)

// palette: the transports' colours, given in the order a file shows its transports (Okabe-Ito
// and Tableau hues, chosen to stay apart for the common colour-vision deficiencies and readable
// on white; then four more). A file of the eight default transports in the lab's table order
// gets vermillion, orange, brown, reddish purple, blue, bluish green, cyan and purple.
var palette = []color.RGBA{
	{R: 0xD5, G: 0x5E, B: 0x00, A: 0xff}, // vermillion
	{R: 0xE6, G: 0x9F, B: 0x00, A: 0xff}, // orange
	{R: 0x8C, G: 0x56, B: 0x4B, A: 0xff}, // brown
	{R: 0xCC, G: 0x79, B: 0xA7, A: 0xff}, // reddish purple
	{R: 0x00, G: 0x72, B: 0xB2, A: 0xff}, // blue
	{R: 0x00, G: 0x9E, B: 0x73, A: 0xff}, // bluish green
	{R: 0x17, G: 0xBE, B: 0xCF, A: 0xff}, // cyan
	{R: 0x94, G: 0x67, B: 0xBD, A: 0xff}, // purple
	{R: 0x22, G: 0x22, B: 0x22, A: 0xff}, // near black
	{R: 0xBC, G: 0xBD, B: 0x22, A: 0xff}, // olive
	{R: 0x1F, G: 0x3A, B: 0x93, A: 0xff}, // dark blue
	{R: 0xA6, G: 0x36, B: 0x03, A: 0xff}, // rust
	{R: 0x66, G: 0x66, B: 0x00, A: 0xff}, // dark olive
}

// colorAt is the colour of the i-th transport shown (palette, again from its start past its end).
func colorAt(i int) color.RGBA { return palette[max(i, 0)%len(palette)] }

var (
	theoryColor = color.RGBA{R: 0x66, G: 0x66, B: 0x66, A: 0xff}
	dropColor   = color.RGBA{R: 0xB0, G: 0x00, B: 0x20, A: 0xff}
	holColor    = color.RGBA{R: 0x00, G: 0x00, B: 0x00, A: 0xff}
	systemColor = color.RGBA{R: 0x88, G: 0x88, B: 0x88, A: 0xff} // system stalls: grey, not the transport's colour
)

// TransportColor is transport's colour in every figure of f's report: the palette's colour at
// its place among f's transports (Transports: in File.Order, else in the order of the runs,
// which is the order WriteJSON wrote them in), so a file and the same file read back draw each
// transport alike. A transport with no run in f gets the colour after the last.
func (f *File) TransportColor(transport string) color.RGBA {
	ts := Transports(f)
	if i := slices.Index(ts, transport); i >= 0 {
		return colorAt(i)
	}
	return colorAt(len(ts))
}

// transportGlyph gives the i-th transport of a figure (in the order they are shown) a marker
// shape too, so lines stay apart in grey.
func transportGlyph(i int) draw.GlyphDrawer {
	glyphs := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.PyramidGlyph{},
		draw.BoxGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{}, draw.RingGlyph{}}
	return glyphs[i%len(glyphs)]
}

var (
	solid  []vg.Length
	dashed = []vg.Length{vg.Points(6), vg.Points(3)}
	dotted = []vg.Length{vg.Points(2), vg.Points(2.5)}
	// Theory lines are grey; each kind has its own dashes so the legend tells them apart.
	floorDash = []vg.Length{vg.Points(2), vg.Points(3)}
	pollDash  = []vg.Length{vg.Points(9), vg.Points(4)}
	rtoDash   = []vg.Length{vg.Points(10), vg.Points(3), vg.Points(2), vg.Points(3)}
)

// newPlot is a plot with the shared look: title, axis labels with units, a grid.
func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = titleSize
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.X.Label.TextStyle.Font.Size = labelSize
	p.Y.Label.TextStyle.Font.Size = labelSize
	p.X.Tick.Marker = linTicks{}
	p.Y.Tick.Marker = linTicks{}
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{Y: 0xDD}
	g.Horizontal.Color = color.Gray{Y: 0xDD}
	p.Add(g)
	return p
}

func newLegend() *plot.Legend {
	l := plot.NewLegend()
	l.Top = true
	l.Left = true
	l.TextStyle.Font.Size = legendSize
	l.Padding = vg.Points(2)
	l.ThumbnailWidth = vg.Points(26)
	return &l
}

// render draws p with leg in a panel on its right, as PNG and SVG.
func render(name, caption string, p *plot.Plot, leg *plot.Legend) (Figure, error) {
	fig := Figure{Name: name, Title: p.Title.Text, Caption: caption}
	draw1 := func(c vg.CanvasSizer) {
		dc := draw.New(c)
		// A white background (SVG and PNG alike): readable in dark-mode viewers too.
		dc.SetColor(color.White)
		var bg vg.Path
		bg.Move(vg.Point{})
		bg.Line(vg.Point{X: figWidth})
		bg.Line(vg.Point{X: figWidth, Y: figHeight})
		bg.Line(vg.Point{Y: figHeight})
		bg.Close()
		dc.Fill(bg)
		p.Draw(draw.Crop(dc, 0, -legendW, 0, 0))
		if leg != nil {
			pad := vg.Points(10)
			leg.Draw(draw.Crop(dc, figWidth-legendW+pad, -pad, pad, -vg.Points(34)))
		}
	}
	return encode(fig, name, figWidth, figHeight, draw1)
}

// encode draws a figure of w × h with draw1 once as PNG and once as SVG.
func encode(fig Figure, name string, w, h vg.Length, draw1 func(vg.CanvasSizer)) (Figure, error) {
	png := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(figDPI))}
	draw1(png)
	var b bytes.Buffer
	if _, err := png.WriteTo(&b); err != nil {
		return fig, fmt.Errorf("results: %s.png: %w", name, err)
	}
	fig.PNG = b.Bytes()
	svg := vgsvg.NewWith(vgsvg.UseWH(w, h))
	draw1(svg)
	var s bytes.Buffer
	if _, err := svg.WriteTo(&s); err != nil {
		return fig, fmt.Errorf("results: %s.svg: %w", name, err)
	}
	fig.SVG = s.Bytes()
	return fig, nil
}

// line makes a line in a transport's colour with a dash pattern.
func line(xys plotter.XYs, c color.Color, dashes []vg.Length, width vg.Length) *plotter.Line {
	l := &plotter.Line{XYs: xys}
	l.LineStyle = draw.LineStyle{Color: c, Width: width, Dashes: dashes}
	return l
}

// theoryLine is a grey dashed line; thin enough not to hide data.
func theoryLine(xys plotter.XYs, dashes []vg.Length) *plotter.Line {
	return line(xys, theoryColor, dashes, vg.Points(1.4))
}

// linTicks label about six round values (1, 2, 2.5 or 5 times a power of ten) with short
// labels ("250", not "250.00").
type linTicks struct{}

func (linTicks) Ticks(min, max float64) []plot.Tick {
	if !(max > min) || math.IsInf(max-min, 0) {
		return plot.DefaultTicks{}.Ticks(min, max)
	}
	raw := (max - min) / 6
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag * 10
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ts []plot.Tick
	for v := math.Ceil(min/step) * step; v <= max+step*1e-9; v += step {
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		ts = append(ts, plot.Tick{Value: v, Label: num(v)})
	}
	return ts
}

// swatch is a legend entry for a transport: its line and marker.
type swatch struct {
	color  color.Color
	glyph  draw.GlyphDrawer
	dashes []vg.Length
	line   bool
	fill   bool // a filled box (bar charts)
}

func (s swatch) Thumbnail(c *draw.Canvas) {
	if s.fill {
		pts := []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Min.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Min.Y}}
		c.FillPolygon(s.color, c.ClipPolygonY(pts))
		return
	}
	y := c.Center().Y
	if s.line {
		c.StrokeLine2(draw.LineStyle{Color: s.color, Width: vg.Points(1.6), Dashes: s.dashes}, c.Min.X, y, c.Max.X, y)
	}
	if s.glyph != nil {
		c.DrawGlyph(draw.GlyphStyle{Color: s.color, Radius: vg.Points(3), Shape: s.glyph}, c.Center())
	}
}

// logTicks125 marks 1, 2 and 5 times powers of ten, labelled, on a log axis; readable where
// plot.LogTicks would leave one label.
type logTicks125 struct{}

func (logTicks125) Ticks(min, max float64) []plot.Tick {
	if min <= 0 || max <= min {
		return plot.DefaultTicks{}.Ticks(min, max)
	}
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(min)); e <= math.Ceil(math.Log10(max)); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v < min*0.999 || v > max*1.001 {
				continue
			}
			ticks = append(ticks, plot.Tick{Value: v, Label: num(v)})
		}
		for m := 3.0; m <= 9; m++ {
			if m == 5 {
				continue
			}
			if v := m * math.Pow(10, e); v >= min && v <= max {
				ticks = append(ticks, plot.Tick{Value: v})
			}
		}
	}
	return ticks
}

// logRange widens [lo, hi] a little for a log axis and keeps it positive.
func logRange(lo, hi float64) (float64, float64) {
	lo = math.Max(lo, 0.1)
	hi = math.Max(hi, lo*1.5)
	return lo / 1.25, hi * 1.25
}

// dropTicks draws a short vertical tick at the bottom of the data area for each time in T.
type dropTicks struct {
	T      []float64
	Color  color.Color
	Height vg.Length
}

func (d dropTicks) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	sty := draw.LineStyle{Color: d.Color, Width: vg.Points(0.9)}
	// One tick per half point of width: thousands of drops in a burst stay one mark, not
	// thousands of SVG elements.
	drawn := map[int]bool{}
	for _, t := range d.T {
		x := trX(t)
		px := int(math.Round(float64(x) * 2))
		if !c.ContainsX(x) || drawn[px] {
			continue
		}
		drawn[px] = true
		c.StrokeLine2(sty, x, c.Min.Y, x, c.Min.Y+d.Height)
	}
}

func (d dropTicks) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = math.Inf(1), math.Inf(-1)
	for _, t := range d.T {
		xmin, xmax = math.Min(xmin, t), math.Max(xmax, t)
	}
	return xmin, xmax, math.Inf(1), math.Inf(-1) // no say in the y range
}

func (d dropTicks) Thumbnail(c *draw.Canvas) {
	x := c.Center().X
	c.StrokeLine2(draw.LineStyle{Color: d.Color, Width: vg.Points(1.2)}, x, c.Min.Y, x, c.Max.Y)
}

// errPoints are points with relative y errors, for plotter.NewYErrorBars.
type errPoints struct {
	plotter.XYs
	plotter.YErrors
}
