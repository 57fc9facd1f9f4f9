package lab

import (
	"context"
	"testing"

	"github.com/wirelab/wirelab/scenarios"
)

// TestQUICAttributionUnderLoss: behind a lossy link, the lab tells a QUIC copy's own loss from
// head of line through the observer seam (the server's loss map and the clients'): wt-uni, a
// stream per message, has stalls of its own loss and far fewer head-of-line ones than wt-stream,
// whose one stream holds every later message behind a lost packet. Were the attribution broken,
// every stall would count as head of line (no own loss found) and wt-uni's share would be 1.
func TestQUICAttributionUnderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: four lab runs")
	}
	sc, err := scenarios.Parse("quicattr.yaml", []byte(`name: quicattr
seed: 11
duration: 3s
warmup: 500ms
transports: [wt-stream, wt-uni]
users: 10
tabs: 2
rooms: 2
workload: {rate: 100/s, size: 100}
link: {delay: 20ms, loss: [0%, 5%]}
`))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Run(context.Background(), sc, Options{InProcess: true})
	if err != nil {
		t.Fatal(err)
	}
	share := map[string]float64{}
	for _, r := range f.Runs {
		if r.Loss == 0 {
			continue
		}
		st := r.Stalls
		t.Logf("%s at %g: stalls %d, collateral %d, system %d, dropped %d", r.Transport, r.Loss, st.Count, st.Collateral, st.System, r.Link.Dropped)
		own := st.Count - st.Collateral - st.System
		if st.Count == 0 || own <= 0 {
			t.Errorf("%s at %g: %d stalls, %d of them of their own loss: want some of each", r.Transport, r.Loss, st.Count, own)
			continue
		}
		share[r.Transport] = float64(st.Collateral) / float64(st.Count)
	}
	if u, s := share["wt-uni"], share["wt-stream"]; u >= s || u > 0.5 {
		t.Errorf("head-of-line share of stalls: wt-uni %.2f, wt-stream %.2f: want wt-uni's below wt-stream's and under half", u, s)
	}
}
