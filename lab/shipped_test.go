package lab

import (
	"path/filepath"
	"testing"

	"github.com/wirelab/wirelab/peers"
	"github.com/wirelab/wirelab/scenarios"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/all"
)

// TestShippedScenarios: every scenario file in scenarios/ loads, names transports the lab can
// run, and starts its sweep with the 0% point.
func TestShippedScenarios(t *testing.T) {
	files, err := filepath.Glob("../scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files in ../scenarios (%v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			sc, err := scenarios.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range sc.Transports {
				if _, ok := peers.Lookup(name); ok {
					continue // a peer's client needs its server's instance (TestRunPeers runs them)
				}
				c, err := all.NewClient(name, transports.Options{})
				if err != nil {
					t.Fatalf("transport %q: %v", name, err)
				}
				_ = c.Close()
			}
			pts := sc.Points()
			if len(pts) == 0 || pts[0].Loss != 0 {
				t.Errorf("the sweep does not start with the 0%% point: %+v", pts[:min(1, len(pts))])
			}
		})
	}
}
