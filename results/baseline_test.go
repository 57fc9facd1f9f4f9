package results_test

import (
	"slices"
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
	// Comparing the baseline with itself finds nothing.
	c, err := results.Compare(f, f, results.CompareOptions{Threshold: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Regressions(); len(r) > 0 {
		t.Fatalf("baseline against itself: %+v", r[0])
	}
}
