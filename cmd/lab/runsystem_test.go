package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunSystemStalls freezes the server process (SIGSTOP, WIRELAB_TEST_PAUSE) for 200 ms in the
// middle of the second run of a loss-free websocket scenario: every session's copies of the
// messages sent meanwhile are late together, with no packet dropped. They must be counted as
// system stalls, not head-of-line, and the run must carry the warning; the first run (the
// no-loss p99 the second is measured against) is not paused.
func TestRunSystemStalls(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: skips building the lab binary")
	}
	bin := buildLab(t)
	t.Setenv("WIRELAB_TEST_PAUSE", "run=2,at=1500ms,for=200ms")
	f, out, printed := labRun(t, bin, `name: system-test
seed: 5
duration: 3s
warmup: 500ms
transports: [websocket]
users: 10
tabs: 2
rooms: 1
workload: {rate: 50/s, size: 100, mix: {room: 1, dm: 0}, sender: turns}
link: {delay: 20ms, loss: [0%]}
repeat: 2
stack: gvisor
`)
	if len(f.Runs) != 2 {
		t.Fatalf("%d runs, want 2", len(f.Runs))
	}
	base, paused := f.Runs[0], f.Runs[1]
	if base.Repeat != 0 || paused.Repeat != 1 {
		t.Fatalf("runs out of order: repeats %d, %d", base.Repeat, paused.Repeat)
	}
	t.Logf("unpaused: p99 %.1f ms, stalls %+v; paused: p99 %.1f ms, stalls %+v, server scheduler p99 %.1f ms",
		base.Latency.P99, base.Stalls, paused.Latency.P99, paused.Stalls, paused.Server.SchedulerMS)
	if paused.Link.Dropped != 0 {
		t.Fatalf("the link dropped %d packets: the test needs a loss-free run", paused.Link.Dropped)
	}
	// 200 ms at 50 messages a second, each to all 20 sessions: about 10 messages, 200 copies,
	// are late by more than the no-loss p99 plus one RTT.
	st := paused.Stalls
	if st.System < 100 {
		t.Errorf("paused run: %d system stalls of %d, want at least 100 (five messages' copies)", st.System, st.Count)
	}
	if st.Collateral > st.System/10 {
		t.Errorf("paused run: %d collateral (head-of-line) stalls beside %d system ones on a link that lost nothing", st.Collateral, st.System)
	}
	if st.Count != st.System+st.Collateral {
		t.Errorf("paused run: count %d is not collateral %d + system %d (nothing was lost, so nothing is own)", st.Count, st.Collateral, st.System)
	}
	warned := false
	for _, w := range paused.Warnings {
		warned = warned || strings.Contains(w, "late together") && strings.Contains(w, "the machine, not the network")
	}
	if !warned {
		t.Errorf("paused run: no system-stall warning among %q", paused.Warnings)
	}
	if !strings.Contains(string(printed), "system)") {
		t.Errorf("lab run's progress line does not count the system stalls:\n%s", printed)
	}
	n := 0
	for _, s := range paused.Samples {
		if s.System {
			n++
			if !s.Stall || s.HOL {
				t.Errorf("sample %+v: a system stall must be a stall and not head-of-line", s)
			}
		}
	}
	if n == 0 {
		t.Errorf("paused run: no sample is marked system")
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| collateral | system |") || !strings.Contains(string(md), "system stalls: the machine, not the network") {
		t.Errorf("report.md has no system column beside collateral, or its reading does not name the system stalls")
	}
}
