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
			if n := colourPixels(img, results.TransportColor(tr)); n < 20 {
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
