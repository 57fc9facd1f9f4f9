package results_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wirelab/wirelab/results"
	"github.com/wirelab/wirelab/results/resultstest"
)

var allTransports = []string{"shortpoll", "longpoll", "stream", "sse", "websocket", "wt-stream", "wt-uni", "wt-datagram"}

// synthetic is the default synthetic file and its figures, rendered once for every test that
// only reads them (rendering is the slow part under -race).
var synthetic = sync.OnceValues(func() (*results.File, []results.Figure) {
	f := resultstest.File(resultstest.Options{Seed: 1})
	f.Runs[0].Warnings = []string{"<script>alert(1)</script> short of CPU"}
	figs, err := results.Plots(f)
	if err != nil {
		panic(err)
	}
	return f, figs
})

// lowestP99 is the transport whose first repeat at loss has the lowest p99, of those ok accepts.
func lowestP99(f *results.File, loss float64, ok func(*results.Run) bool) string {
	best := -1
	for i := range f.Runs {
		r := &f.Runs[i]
		if r.Loss == loss && r.Repeat == 0 && ok(r) && (best < 0 || r.Latency.P99 < f.Runs[best].Latency.P99) {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return f.Runs[best].Transport
}

func TestPlots(t *testing.T) {
	f, figs := synthetic()
	var names []string
	for _, fig := range figs {
		names = append(names, fig.Name)
	}
	// The timelines: the push transport over TCP with the lowest p99 at 2% against the one over
	// QUIC (head of line against none), by each run's carrier and delivery.
	tcp := lowestP99(f, 0.02, func(r *results.Run) bool { return r.IsTCP() && !r.Polls() })
	quic := lowestP99(f, 0.02, func(r *results.Run) bool { return !r.IsTCP() && !r.Polls() })
	if tcp == "" || quic == "" || f.Polls(tcp) || f.Polls(quic) {
		t.Fatalf("no push transport over TCP (%q) or QUIC (%q)", tcp, quic)
	}
	want := []string{
		"cdf-20ms-loss0pct", "cdf-20ms-loss2pct", "cdf-20ms-loss5pct",
		"latency-vs-loss-20ms", "stalls-vs-loss-20ms",
		"bytes-per-msg-20ms-loss0pct", "server-cpu-20ms-loss0pct",
		"timeline-" + tcp + "-20ms-loss2pct-r0", "timeline-" + quic + "-20ms-loss2pct-r0",
	}
	if !slices.Equal(names, want) {
		t.Fatalf("figures %v\nwant %v", names, want)
	}
	for _, fig := range figs {
		t.Run(fig.Name, func(t *testing.T) {
			img := decodePNG(t, fig.PNG)
			if b := img.Bounds(); strings.HasPrefix(fig.Name, "latency-vs-loss") {
				// small multiples: one panel per transport, three a row, 2.45 in a row
				if b.Dx() != 1152 || b.Dy() != int(math.Round((0.45+3*2.45)*96)) {
					t.Fatalf("PNG is %v, want 1152x%d", b.Size(), int(math.Round((0.45+3*2.45)*96)))
				}
			} else if b.Dx() != 960 || b.Dy() != 528 {
				t.Fatalf("PNG is %v, want 960x528", b.Size())
			}
			if n := inkPixels(img); n < 5000 {
				t.Fatalf("PNG nearly blank: %d non-white pixels", n)
			}
			var expect []string
			switch {
			case strings.HasPrefix(fig.Name, "timeline-"+tcp+"-"):
				expect = []string{tcp}
			case strings.HasPrefix(fig.Name, "timeline-"+quic+"-"):
				expect = []string{quic}
			default:
				expect = allTransports // every transport has its colour in the legend at least
			}
			for _, tr := range expect {
				if n := colourPixels(img, f.TransportColor(tr)); n < 20 {
					t.Errorf("%s's colour: %d pixels", tr, n)
				}
			}
			checkSVG(t, fig.SVG, fig.Title)
			if !strings.Contains(fig.Title, "synthetic") {
				t.Errorf("title %q does not name the scenario", fig.Title)
			}
			if fig.Caption == "" {
				t.Error("no caption")
			}
		})
	}
}

// TestTransportColours: a transport's colour is its place among the file's transports (its
// order), not its name: thirteen transports get thirteen distinct colours readable on white, a
// file read back draws each transport as the file it was written from did, and another order
// gives another colour.
func TestTransportColours(t *testing.T) {
	names := append(slices.Clone(allTransports), "auto", "peer/a", "peer/b", "peer/c", "peer/d")
	f := resultstest.File(resultstest.Options{Seed: 1, Repeats: 1, Samples: 5, Losses: []float64{0}, Transports: names})
	f.Order = names
	seen := map[color.RGBA]string{}
	for _, tr := range names {
		c := f.TransportColor(tr)
		if other, dup := seen[c]; dup {
			t.Fatalf("%s and %s share a colour", tr, other)
		}
		seen[c] = tr
		if c.R > 0xF0 && c.G > 0xF0 && c.B > 0xF0 {
			t.Fatalf("%s's colour is unreadable on white", tr)
		}
	}
	var buf bytes.Buffer
	if err := results.WriteJSON(&buf, f); err != nil {
		t.Fatal(err)
	}
	back, err := results.ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range names {
		if back.TransportColor(tr) != f.TransportColor(tr) {
			t.Errorf("%s: %v written, %v read back", tr, f.TransportColor(tr), back.TransportColor(tr))
		}
	}
	if f.TransportColor("carrier-pigeon") != f.TransportColor("carrier-pigeon") {
		t.Fatal("a transport without runs has no stable colour")
	}
	first, last := f.TransportColor(names[0]), f.TransportColor(names[len(names)-1])
	f.Order = slices.Clone(names)
	slices.Reverse(f.Order)
	if f.TransportColor(names[0]) != last || f.TransportColor(names[len(names)-1]) != first {
		t.Error("the colours do not follow the file's order")
	}
}

// Plots must cope with files that have little in them: no samples, a single loss rate, one
// transport, zeros everywhere, and no runs at all.
func TestPlotsSparseFiles(t *testing.T) {
	noSamples := resultstest.File(resultstest.Options{Seed: 5, Repeats: 1})
	for i := range noSamples.Runs {
		noSamples.Runs[i].Samples, noSamples.Runs[i].Drops = nil, nil
	}
	oneLoss := resultstest.File(resultstest.Options{Seed: 6, Losses: []float64{0}, Transports: []string{"websocket"}, Repeats: 1})
	zeros := &results.File{Schema: 1, Runs: []results.Run{{Transport: "websocket"}, {Transport: "sse", Loss: 0.02}}}
	bursty := resultstest.File(resultstest.Options{Seed: 7, Burst: 4, Repeats: 2, Transports: []string{"websocket", "wt-uni", "mystery"}})
	twoDelays := resultstest.File(resultstest.Options{Seed: 8, Repeats: 1, Samples: 50, Transports: []string{"shortpoll", "wt-uni"}, Losses: []float64{0, 0.01}})
	twoDelays.Runs = append(twoDelays.Runs, resultstest.File(resultstest.Options{Seed: 9, Repeats: 1, Samples: 50, DelayMS: 50, Transports: []string{"shortpoll", "wt-uni"}, Losses: []float64{0, 0.01}}).Runs...)
	for _, tc := range []struct {
		name   string
		f      *results.File
		prefix []string // every figure's name starts with one of these
		n      int
	}{
		{"no samples", noSamples, []string{"latency-vs-loss", "stalls-vs-loss", "bytes-per-msg", "server-cpu"}, 4},
		{"one loss", oneLoss, []string{"cdf", "bytes-per-msg", "server-cpu", "timeline-websocket"}, 4},
		{"zeros", zeros, []string{"latency-vs-loss", "stalls-vs-loss"}, 2},
		{"bursty, unknown transport", bursty, []string{"cdf", "latency-vs-loss-20ms-burst4", "stalls-vs-loss-20ms-burst4", "bytes-per-msg", "server-cpu", "timeline"}, 0},
		{"two delays", twoDelays, []string{"cdf-20ms", "cdf-50ms", "latency-vs-loss-20ms", "latency-vs-loss-50ms", "stalls-vs-loss-20ms", "stalls-vs-loss-50ms",
			"bytes-per-msg-20ms", "bytes-per-msg-50ms", "server-cpu-20ms", "server-cpu-50ms", "timeline-shortpoll-20ms-loss1pct", "timeline-wt-uni-20ms-loss1pct"}, 14},
		{"empty", &results.File{Schema: 1}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			figs, err := results.Plots(tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if tc.n > 0 && len(figs) != tc.n {
				t.Errorf("%d figures, want %d", len(figs), tc.n)
			}
			for _, fig := range figs {
				if !slices.ContainsFunc(tc.prefix, func(p string) bool { return strings.HasPrefix(fig.Name, p) }) {
					t.Errorf("unexpected figure %s", fig.Name)
				}
				decodePNG(t, fig.PNG)
				checkSVG(t, fig.SVG, fig.Title)
			}
		})
	}
}

func decodePNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("PNG does not decode: %v", err)
	}
	return img
}

// histogram counts each colour's pixels (one pass; the checks then look at distinct colours).
func histogram(img image.Image) map[color.RGBA]int {
	h := map[color.RGBA]int{}
	b := img.Bounds()
	if rgba, ok := img.(*image.RGBA); ok {
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := rgba.Pix[(y-b.Min.Y)*rgba.Stride:]
			for x := 0; x < b.Dx(); x++ {
				p := row[4*x : 4*x+4]
				h[color.RGBA{p[0], p[1], p[2], p[3]}]++
			}
		}
		return h
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			h[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), uint8(a >> 8)}]++
		}
	}
	return h
}

func inkPixels(img image.Image) int {
	n := 0
	for c, k := range histogram(img) {
		if c.R < 0xF0 || c.G < 0xF0 || c.B < 0xF0 {
			n += k
		}
	}
	return n
}

func colourPixels(img image.Image, want color.RGBA) int {
	n := 0
	near := func(a, b uint8) bool { d := int(a) - int(b); return d > -12 && d < 12 }
	for c, k := range histogram(img) {
		if near(c.R, want.R) && near(c.G, want.G) && near(c.B, want.B) {
			n += k
		}
	}
	return n
}

// checkSVG parses the SVG as XML: an <svg> root and the title among its text.
func checkSVG(t *testing.T, b []byte, title string) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	var root string
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
		case xml.CharData:
			text.Write(tok)
		}
	}
	if root != "svg" {
		t.Fatalf("SVG root element is %q", root)
	}
	if !strings.Contains(text.String(), title) {
		t.Errorf("SVG text lacks the title %q", title)
	}
}

// A run with many copies and drops: the timeline thins ordinary copies, keeps every stall,
// and its SVG stays small.
func TestTimelineThinsBigRuns(t *testing.T) {
	f := resultstest.File(resultstest.Options{Seed: 8, Transports: []string{"websocket"}, Losses: []float64{0, 0.02}, Repeats: 1, Samples: 30000})
	r := &f.Runs[1]
	r.Drops = r.Drops[:0]
	for i := 0; i < 20000; i++ {
		r.Drops = append(r.Drops, float64(i)*20/20000)
	}
	figs, err := results.Plots(f)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(figs, func(f results.Figure) bool { return strings.HasPrefix(f.Name, "timeline-websocket") })
	if i < 0 {
		t.Fatal("no timeline")
	}
	fig := figs[i]
	if len(fig.SVG) > 2<<20 {
		t.Errorf("timeline SVG is %d bytes", len(fig.SVG))
	}
	if !bytes.Contains(fig.SVG, []byte("delivered copies, 1 in")) {
		t.Error("the legend does not say the copies were thinned")
	}
	checkSVG(t, fig.SVG, fig.Title)
}
