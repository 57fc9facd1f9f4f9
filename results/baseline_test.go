package results_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wirelab/wirelab/results"
)

// The committed CI baseline must read, and hold every transport of quick.yaml at 0% and 2%.
func TestBaselineQuick(t *testing.T) {
	f, err := results.ReadJSONFile("baseline/quick.json")
	if err != nil {
		t.Fatal(err)
	}
	if f.Scenario != "quick" {
		t.Fatalf("baseline scenario %q, want quick", f.Scenario)
	}
	for _, tr := range []string{"shortpoll", "longpoll", "stream", "sse", "websocket", "wt-stream", "wt-uni", "wt-datagram"} {
		for _, loss := range []float64{0, 0.02} {
			if !slices.ContainsFunc(f.Runs, func(r results.Run) bool { return r.Transport == tr && r.Loss == loss && len(r.Samples) > 0 }) {
				t.Errorf("baseline has no %s run with samples at %g%% loss", tr, loss*100)
			}
		}
	}
	// It has a summary for every point: the CI gate (make bench-quick) decides p99 and the
	// stall rate on the summaries' intervals.
	for _, g := range results.Groups(f) {
		if s, ok := results.SummaryOf(f, g.Key); !ok || s.Copies == 0 {
			t.Errorf("baseline has no summary for %s: regenerate it with make baseline", g.Key)
		}
	}
	// Comparing the baseline with itself finds nothing.
	c, err := results.Compare(f, f, results.CompareOptions{Threshold: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Regressions(); len(r) > 0 {
		t.Fatalf("baseline against itself: %+v", r[0])
	}
}

// A file from before intervals (no summary, no findings) renders: every figure, both reports,
// and a reading that says it has no intervals and states no ratio between transports. The
// baseline, measured since, has them: they are taken out, as a file from before lacks them
// (null in JSON).
func TestBaselineRendersWithoutSummary(t *testing.T) {
	f, err := results.ReadJSONFile("baseline/quick.json")
	if err != nil {
		t.Fatal(err)
	}
	f.Summary, f.Findings = nil, nil
	dir := t.TempDir()
	if _, err := results.WriteDir(dir, f); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "This file has no intervals") || !strings.Contains(string(md), "Medians over repeats for latency (no intervals") {
		t.Error("report.md does not say the file has no intervals")
	}
	if regexp.MustCompile(`\d× [a-z-]+'s|no clear difference`).Match(md) {
		t.Error("report.md compares transports without intervals")
	}
	for _, name := range []string{"latency-vs-loss-20ms.png", "stalls-vs-loss-20ms.svg", "report.html", "results.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	// Written back, it still has no summary: null, not an empty list that would claim one.
	back, err := results.ReadJSONFile(filepath.Join(dir, "results.json"))
	if err != nil || back.Summary != nil {
		t.Fatalf("read back: %v, summary %v", err, back.Summary)
	}
}
