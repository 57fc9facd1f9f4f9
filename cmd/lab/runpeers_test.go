package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wirelab/wirelab/internal/kerneltest"
	"github.com/wirelab/wirelab/internal/needtest"
)

// TestRunPeers runs both peer servers' transports beside wirelab's matching ones with the real
// binary, on the kernel stack (the peers' servers are processes in the server's namespace): the
// peers are installed on first use, every copy is accounted for (delivered + lost = expected,
// and at 0% nothing is lost), each run names its server and version, the report has its peer
// section, and no peer process is left once the lab has exited.
func TestRunPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: skips building the lab binary and installing the peers")
	}
	kerneltest.Need(t)
	_, err := exec.LookPath("node")
	needtest.Need(t, "node", err, "apt-get install -y nodejs npm")
	bin := buildLab(t)
	// The lab's environment, and so its peer servers', carries a mark of this test: other tests
	// (peers/socketio's, run at the same time) start peer servers of their own.
	mark := fmt.Sprintf("WIRELAB_PEERS_TEST_MARK=%d-%d", os.Getpid(), time.Now().UnixNano())
	k, v, _ := strings.Cut(mark, "=")
	t.Setenv(k, v)
	f, out, printed := labRun(t, bin, `name: peers-test
seed: 5
duration: 2s
warmup: 500ms
transports: [websocket, longpoll, socketio/longpoll, socketio/websocket, centrifugo/websocket, centrifugo/sse]
users: 10
tabs: 2
rooms: 2
workload: {rate: 60/s, size: 120, mix: {room: 0.8, dm: 0.2}}
link: {delay: 10ms, loss: [0%, 2%]}
stack: kernel
`)
	want := map[string]string{"websocket": "wirelab", "longpoll": "wirelab",
		"socketio/longpoll": "socket.io", "socketio/websocket": "socket.io",
		"centrifugo/websocket": "centrifugo", "centrifugo/sse": "centrifugo"}
	seen := map[string]int{}
	for _, r := range f.Runs {
		seen[r.Transport]++
		if r.Server.Name != want[r.Transport] || r.Server.Version == "" {
			t.Errorf("%s: server %q version %q, want %q and a version", r.Transport, r.Server.Name, r.Server.Version, want[r.Transport])
		}
		if r.Delivered == 0 || r.Delivered+r.Lost != r.Expected || (r.Loss == 0 && r.Lost != 0) {
			t.Errorf("%s at %g: expected %d, delivered %d, lost %d: every copy accounted for, none lost without loss", r.Transport, r.Loss, r.Expected, r.Delivered, r.Lost)
		}
		if r.Latency.P50 < 2*r.DelayMS || r.Server.CPUSeconds <= 0 || r.Server.RSSPeakBytes <= 0 || r.Carrier != "tcp" {
			t.Errorf("%s at %g: p50 %.1f ms (floor %.0f), server CPU %.3f s, RSS %d, carrier %q", r.Transport, r.Loss, r.Latency.P50, 2*r.DelayMS, r.Server.CPUSeconds, r.Server.RSSPeakBytes, r.Carrier)
		}
	}
	for tr := range want {
		if seen[tr] != 2 {
			t.Errorf("%s: %d runs, want 2\n%s", tr, seen[tr], printed)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"## Peer servers", "| socketio/websocket | websocket | socket.io ", "| socketio/longpoll | longpoll | socket.io ", "| centrifugo/websocket | websocket | centrifugo ", "| centrifugo/sse | – | centrifugo "} {
		if !strings.Contains(string(md), s) {
			t.Errorf("report.md lacks %q", s)
		}
	}
	if left := markedProcesses(t, mark); len(left) > 0 {
		t.Errorf("peer processes left after the lab exited: %v", left)
	}
}

// markedProcesses lists the command lines of running processes whose environment holds mark.
func markedProcesses(t *testing.T, mark string) []string {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range procs {
		env, err := os.ReadFile(filepath.Join(p, "environ"))
		if err != nil || !slices.Contains(strings.Split(string(env), "\x00"), mark) {
			continue // gone meanwhile, or not the lab's
		}
		cmd, _ := os.ReadFile(filepath.Join(p, "cmdline"))
		out = append(out, strings.ReplaceAll(string(cmd), "\x00", " "))
	}
	return out
}
