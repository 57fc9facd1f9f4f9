package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wirelab/wirelab/internal/kerneltest"
)

// TestRunKernel runs a small scenario on both stacks with the real binary: on the kernel stack the
// server process runs in its own network namespace and the users' sockets in another, Linux TCP and
// UDP at both ends behind the same emulated link. Nothing is lost or doubled on either stack, no
// copy beats two one-way delays, the runs and the file say their stack, every run has its late
// shares, and the report puts the stacks side by side.
func TestRunKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: skips building the lab binary")
	}
	kerneltest.Need(t)
	bin := buildLab(t)
	f, out, printed := labRun(t, bin, `name: stacks-test
seed: 3
duration: 2s
warmup: 500ms
transports: [websocket, wt-uni]
users: 10
tabs: 2
rooms: 2
workload: {rate: 40/s, size: 100, mix: {room: 0.8, dm: 0.2}}
link: {delay: 10ms, loss: [1%]}
stack: [gvisor, kernel]
`)
	if !strings.Contains(string(printed), "stack: gvisor, kernel") {
		t.Errorf("lab run does not say its stacks:\n%s", printed)
	}
	if f.Stack != "gvisor,kernel" {
		t.Errorf("file stack %q, want gvisor,kernel", f.Stack)
	}
	seen := map[string]int{}
	for _, r := range f.Runs {
		seen[r.Stack]++
		if r.Lost != 0 || r.Duplicates != 0 || r.Delivered == 0 {
			t.Errorf("%s on %s: delivered %d, lost %d, duplicates %d", r.Transport, r.Stack, r.Delivered, r.Lost, r.Duplicates)
		}
		if r.Latency.P50 < 2*r.DelayMS {
			t.Errorf("%s on %s: p50 %.1f ms is below two one-way delays (%.0f ms): the link was bypassed", r.Transport, r.Stack, r.Latency.P50, 2*r.DelayMS)
		}
		if r.Late == nil || r.Late.Over100 < r.Late.Over200 || r.Late.Over200 < r.Late.Over400 {
			t.Errorf("%s on %s: late shares %+v", r.Transport, r.Stack, r.Late)
		}
		if r.Server.CPUSeconds <= 0 || r.Link.Packets == 0 || (r.Loss > 0) != (r.Link.Dropped > 0) {
			t.Errorf("%s on %s: server CPU %.3f s, link packets %d dropped %d: want all measured", r.Transport, r.Stack, r.Server.CPUSeconds, r.Link.Packets, r.Link.Dropped)
		}
	}
	if seen["gvisor"] != 4 || seen["kernel"] != 4 { // 0% (the stall baseline) and 1%, two transports
		t.Errorf("runs per stack %v, want 4 on each", seen)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "## gVisor against Linux") {
		t.Errorf("report.md has no side-by-side section of the stacks")
	}
}

// TestProbeKernel: lab probe --stack kernel --json measures a link between two Linux stacks and
// says so; the delay it reports is the link's, the loss near the configured one.
func TestProbeKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: skips building the lab binary")
	}
	kerneltest.Need(t)
	bin := buildLab(t)
	b, err := exec.Command(bin, "probe", "--stack", "kernel", "--delay", "20ms", "--loss", "2%", "--packets", "20000", "--json").Output()
	if err != nil {
		t.Fatalf("lab probe: %v", err)
	}
	var r struct {
		Stack        string  `json:"stack"`
		LossMeasured float64 `json:"loss_measured"`
		DelayMS      struct {
			P50 float64 `json:"p50"`
		} `json:"delay_ms"`
		TCPMbitS    float64 `json:"tcp_mbit_s"`
		PacketsPerS float64 `json:"packets_per_s"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if r.Stack != "kernel" || r.DelayMS.P50 < 20 || r.TCPMbitS <= 0 || r.PacketsPerS <= 0 {
		t.Errorf("probe %s", b)
	}
	// 20,000 probes at 2%: the binomial's standard deviation is 0.1 percentage point.
	if r.LossMeasured < 0.015 || r.LossMeasured > 0.025 {
		t.Errorf("measured loss %.4f at 2%% configured: the probe lost packets outside the link", r.LossMeasured)
	}
}
