package results_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/wirelab/wirelab/results"
	"github.com/wirelab/wirelab/results/resultstest"
)

func historyFiles() ([]*results.File, []string) {
	var files []*results.File
	var names []string
	for i := 0; i < 5; i++ {
		o := resultstest.Options{Seed: uint64(i), Repeats: 1, Samples: 50, Losses: []float64{0, 0.02}, Transports: []string{"websocket", "wt-uni"},
			Started: time.Date(2026, 3, 10-i, 9, 0, 0, 0, time.UTC)} // given newest first
		f := resultstest.File(o)
		f.Commit = strings.Repeat(string(rune('a'+i)), 40)
		if i == 0 {
			f.Runs[0].Lost = 5 // websocket at 0%: the newest file lost copies
		}
		files = append(files, f)
		names = append(names, "r"+string(rune('0'+i))+".json")
	}
	// The oldest file has no wt-uni.
	files[4].Runs = files[4].Runs[:2]
	return files, names
}

func TestHistory(t *testing.T) {
	files, names := historyFiles()
	h, err := results.NewHistory(files, names, results.HistoryOptions{Metric: "lost"})
	if err != nil {
		t.Fatal(err)
	}
	if h.Points[0].Name != "r4.json" || h.Points[4].Name != "r0.json" {
		t.Fatalf("not ordered by start: %s ... %s", h.Points[0].Name, h.Points[4].Name)
	}
	if len(h.Transports) != 2 || len(h.Conds) != 2 {
		t.Fatalf("transports %v, conds %v", h.Transports, h.Conds)
	}
	ws := h.Values[results.Key{Transport: "websocket", Cond: results.Cond{DelayMS: 20}}]
	if ws[4] != 5 || ws[0] != 0 {
		t.Fatalf("websocket lost over time: %v", ws)
	}
	uni := h.Values[results.Key{Transport: "wt-uni", Cond: results.Cond{DelayMS: 20}}]
	if !math.IsNaN(uni[0]) || math.IsNaN(uni[1]) {
		t.Fatalf("wt-uni missing from the oldest file only: %v", uni)
	}
	var out bytes.Buffer
	if err := h.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"lost (copies) at 0% loss, 20 ms one way", "2026-03-06 09:00  eeeeeeeeeeee", "websocket  wt-uni", "–  r4.json", "r0.json"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	figs, err := h.Plots()
	if err != nil {
		t.Fatal(err)
	}
	if len(figs) != 2 || figs[0].Name != "history-lost-20ms-loss0pct" {
		t.Fatalf("figures: %d, first %q", len(figs), figs[0].Name)
	}
	for _, fig := range figs {
		img := decodePNG(t, fig.PNG)
		for _, tr := range []string{"websocket", "wt-uni"} {
			if n := colourPixels(img, h.TransportColor(tr)); n < 20 {
				t.Errorf("%s: %s's colour: %d pixels", fig.Name, tr, n)
			}
		}
		checkSVG(t, fig.SVG, fig.Title)
	}
}

func TestHistoryErrors(t *testing.T) {
	files, names := historyFiles()
	if _, err := results.NewHistory(files, names, results.HistoryOptions{Metric: "speed"}); err == nil || !strings.Contains(err.Error(), `unknown metric "speed"`) {
		t.Fatalf("unknown metric: %v", err)
	}
	_, err := results.NewHistory(files, names, results.HistoryOptions{Transports: []string{"sse"}})
	if !errors.Is(err, results.ErrNoHistory) || !strings.Contains(err.Error(), "no runs of sse in these files (they have: websocket, wt-uni)") {
		t.Fatalf("filter matching nothing: %v", err)
	}
	if _, err := results.NewHistory(nil, nil, results.HistoryOptions{}); !errors.Is(err, results.ErrNoHistory) {
		t.Fatalf("no files: %v", err)
	}
	h, err := results.NewHistory(files, names, results.HistoryOptions{Transports: []string{"wt-uni"}})
	if err != nil || len(h.Transports) != 1 || h.Metric.Name != "p99" {
		t.Fatalf("filtered: %+v, %v", h, err)
	}
}

// With summaries, p99 and the stall rate follow the summaries' figures and draw their 95%
// intervals as bars; a file without a summary keeps the median over repeats and no bar.
func TestHistoryIntervals(t *testing.T) {
	files, names := historyFiles()
	// Every file but the oldest two (r4, r3) has a summary; websocket at 0% rises in the newest.
	for i, f := range files[:3] {
		for _, g := range results.Groups(f) {
			p99, ci := 46.0, [2]float64{38.0, 56.0}
			if g.Loss > 0 {
				p99, ci = 250, [2]float64{150, 400}
			}
			if i == 0 && g.Transport == "websocket" && g.Loss == 0 {
				p99, ci = 146, [2]float64{140, 151}
			}
			f.Summary = append(f.Summary, results.PointSummary{Transport: g.Transport, Loss: g.Loss, DelayMS: g.DelayMS, Stack: "gvisor",
				Copies: 3000, Sessions: 20, P50: 42, P50CI95: [2]float64{41.8, 42.2}, P99: p99, P99CI95: ci, StallRate: 0.02, StallRateCI95: [2]float64{0.01, 0.035}})
		}
	}
	h, err := results.NewHistory(files, names, results.HistoryOptions{Metric: "p99"})
	if err != nil {
		t.Fatal(err)
	}
	k := results.Key{Transport: "websocket", Cond: results.Cond{DelayMS: 20}}
	ws, cis := h.Values[k], h.Intervals[k]
	// Points are oldest first: r4 r3 r2 r1 r0.
	if ws[4] != 146 || cis[4] != [2]float64{140, 151} || ws[2] != 46 || cis[2] != [2]float64{38, 56} {
		t.Errorf("websocket 0%%: values %v, intervals %v", ws, cis)
	}
	if !math.IsNaN(cis[0][0]) || !math.IsNaN(cis[1][1]) || math.IsNaN(ws[0]) || ws[0] != files[4].Runs[0].Latency.P99 {
		t.Errorf("files without a summary: values %v, intervals %v (want the run's p99, no interval)", ws, cis)
	}
	var out bytes.Buffer
	if err := h.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"146 [140-151]", "46 [38-56]", "250 [150-400]", "[LO-HI]: the file's 95% interval"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	// The stall rate in %, from the summary.
	sr, err := results.NewHistory(files, names, results.HistoryOptions{Metric: "stall_rate"})
	if err != nil {
		t.Fatal(err)
	}
	if v, ci := sr.Values[k][4], sr.Intervals[k][4]; math.Abs(v-2) > 1e-9 || math.Abs(ci[0]-1) > 1e-9 || math.Abs(ci[1]-3.5) > 1e-9 {
		t.Errorf("stall rate: %g %v, want 2 [1-3.5] (%%)", v, ci)
	}

	figs, err := h.Plots()
	if err != nil {
		t.Fatal(err)
	}
	// A history without any summary has no bars and says so.
	bare, _ := historyFiles()
	hb, err := results.NewHistory(bare, names, results.HistoryOptions{Metric: "p99"})
	if err != nil {
		t.Fatal(err)
	}
	if hb.HasIntervals() || !h.HasIntervals() {
		t.Fatalf("HasIntervals: %v with summaries, %v without", h.HasIntervals(), hb.HasIntervals())
	}
	bareFigs, err := hb.Plots()
	if err != nil {
		t.Fatal(err)
	}
	// The same figures with every interval shrunk to its figure: the same points, lines and
	// scale, and bars of no height; the real bars add tens of pixels each.
	flat := *h
	flat.Intervals = map[results.Key][][2]float64{}
	for k, cis := range h.Intervals {
		for i, ci := range cis {
			if !math.IsNaN(ci[0]) {
				v := h.Values[k][i]
				ci = [2]float64{v, v}
			}
			flat.Intervals[k] = append(flat.Intervals[k], ci)
		}
	}
	flatFigs, err := flat.Plots()
	if err != nil {
		t.Fatal(err)
	}
	for i, fig := range figs {
		if !strings.Contains(fig.Caption, "Bars are each file's 95% interval") || strings.Contains(bareFigs[i].Caption, "Bars are") {
			t.Errorf("%s: captions %q / %q", fig.Name, fig.Caption, bareFigs[i].Caption)
		}
		checkSVG(t, fig.SVG, fig.Title)
		img, flatImg := decodePNG(t, fig.PNG), decodePNG(t, flatFigs[i].PNG)
		for _, tr := range []string{"websocket", "wt-uni"} {
			col := h.TransportColor(tr)
			with, without := colourPixels(img, col), colourPixels(flatImg, col)
			// Three bars, each several pixels tall, in the transport's colour.
			if with < without+30 {
				t.Errorf("%s: %s's colour covers %d pixels with intervals, %d with flat ones: no bars drawn", fig.Name, tr, with, without)
			}
		}
	}
}
