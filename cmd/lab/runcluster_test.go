package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wirelab/wirelab/internal/redistest"
)

// TestRunCluster runs a small scenario on two server nodes and Redis with the real binary (each
// node its own process): nothing is lost or doubled, copies cross nodes, and the results and
// the report carry the cluster figures.
func TestRunCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: skips building the lab binary")
	}
	redistest.Binary(t) // skips, or fails under WIRELAB_REQUIRE=redis, without redis-server
	bin := buildLab(t)
	f, out, _ := labRun(t, bin, `name: cluster-test
seed: 7
duration: 1s
warmup: 500ms
transports: [websocket, longpoll]
nodes: 2
users: 20
tabs: 2
rooms: 2
workload: {rate: 60/s, size: 100, mix: {room: 0.7, dm: 0.3}}
link: {delay: 5ms, loss: [0%]}
repeat: 1
`)
	if len(f.Runs) != 2 {
		t.Fatalf("%d runs, want 2", len(f.Runs))
	}
	redisCPU := 0.0
	for _, r := range f.Runs {
		if r.Lost != 0 || r.Duplicates != 0 || r.Delivered == 0 {
			t.Errorf("%s: delivered %d, lost %d, duplicates %d", r.Transport, r.Delivered, r.Lost, r.Duplicates)
		}
		c := r.Cluster
		if c == nil {
			t.Errorf("%s: no cluster figures", r.Transport)
			continue
		}
		if c.Nodes != 2 || c.CrossCopies == 0 || c.CrossCopies >= r.Delivered || c.CrossNode.P50 <= 0 || c.SameNode.P50 <= 0 {
			t.Errorf("%s: cluster figures %+v (delivered %d)", r.Transport, *c, r.Delivered)
		}
		redisCPU += c.RedisCPUS
	}
	if redisCPU <= 0 {
		t.Errorf("Redis CPU not measured in any run")
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "## Cluster") || !strings.Contains(string(md), "crossed nodes") {
		t.Errorf("report.md has no cluster section or reading")
	}
}
