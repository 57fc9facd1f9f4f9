package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wirelab/wirelab/results"
)

// TestRunSystemStalls freezes the server process (SIGSTOP, WIRELAB_TEST_PAUSE) for 200 ms in the
// middle of the second run of a websocket scenario: every session's copies of the messages sent
// meanwhile are late together, with no packet of theirs dropped. They must be counted as system
// stalls, not head-of-line, and the run must carry the warning; the first run (the no-loss p99
// the second is measured against) is not paused.
//   - lossless: the second run is a repeat at 0% loss (no stall can be head of line there);
//   - lossy: the second run is at 1% loss, so the window rule (many senders' messages late
//     together across the sessions) must find the freeze among genuine own and head-of-line
//     stalls, and no system stall may lie outside it.
func TestRunSystemStalls(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: skips building the lab binary")
	}
	bin := buildLab(t)
	t.Setenv("WIRELAB_TEST_PAUSE", "run=2,at=1500ms,for=200ms")
	const scenario = `name: system-test
seed: 5
duration: 3s
warmup: 500ms
transports: [websocket]
users: 10
tabs: 2
rooms: 1
workload: {rate: 50/s, size: 100, mix: {room: 1, dm: 0}, sender: turns}
stack: gvisor
`
	for _, tc := range []struct {
		name, link string
		lossy      bool
	}{
		{"lossless", "link: {delay: 20ms, loss: [0%]}\nrepeat: 2\n", false},
		{"lossy", "link: {delay: 20ms, loss: [0%, 1%]}\nrepeat: 1\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, out, printed := labRun(t, bin, scenario+tc.link)
			if len(f.Runs) != 2 {
				t.Fatalf("%d runs, want 2", len(f.Runs))
			}
			base, paused := f.Runs[0], f.Runs[1]
			if base.Loss != 0 || paused.Loss == 0 != !tc.lossy || (!tc.lossy && paused.Repeat != 1) {
				t.Fatalf("runs out of order: %s %g%% #%d, %s %g%% #%d", base.Transport, 100*base.Loss, base.Repeat, paused.Transport, 100*paused.Loss, paused.Repeat)
			}
			t.Logf("unpaused: p99 %.1f ms, stalls %+v; paused: p99 %.1f ms, stalls %+v, dropped %d, server scheduler p99 %.1f ms",
				base.Latency.P99, base.Stalls, paused.Latency.P99, paused.Stalls, paused.Link.Dropped, paused.Server.SchedulerMS)
			if tc.lossy != (paused.Link.Dropped > 0) {
				t.Fatalf("the paused run's link dropped %d packets", paused.Link.Dropped)
			}
			// 200 ms at 50 messages a second, each to all 20 sessions: about 10 messages, 200
			// copies, are late by more than the no-loss p99 plus one RTT.
			st := paused.Stalls
			if st.System < 100 {
				t.Errorf("paused run: %d system stalls of %d, want at least 100 (five messages' copies)", st.System, st.Count)
			}
			if st.Collateral > st.System/5 {
				t.Errorf("paused run: %d collateral (head-of-line) stalls beside %d system ones", st.Collateral, st.System)
			}
			if !tc.lossy && st.Count != st.System {
				t.Errorf("paused run: count %d is not all system (%d) on a link that lost nothing", st.Count, st.System)
			}
			together := "late together"
			if !tc.lossy {
				together = "on a link that lost nothing in this run"
			}
			warned := false
			for _, w := range paused.Warnings {
				warned = warned || strings.Contains(w, together) && strings.Contains(w, "the machine, not the network")
			}
			if !warned {
				t.Errorf("paused run: no system-stall warning (%q) among %q", together, paused.Warnings)
			}
			if !strings.Contains(string(printed), "system)") {
				t.Errorf("lab run's progress line does not count the system stalls:\n%s", printed)
			}
			checkSystemSamples(t, paused, 1.5, 1.7)
			md, err := os.ReadFile(filepath.Join(out, "report.md"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(md), "| collateral | system |") || !strings.Contains(string(md), "system stalls: the machine, not the network") {
				t.Errorf("report.md has no system column beside collateral, or its reading does not name the system stalls")
			}
		})
	}
}

// checkSystemSamples: some samples are system stalls, each a stall and not head-of-line, every
// one of them sent during the freeze [from, to] (seconds into the window), or shortly before it
// (on its way through the server when it stopped) or after it (behind the backlog the server
// works off when it goes on).
func checkSystemSamples(t *testing.T, r results.Run, from, to float64) {
	t.Helper()
	n := 0
	for _, s := range r.Samples {
		if !s.System {
			continue
		}
		n++
		if !s.Stall || s.HOL {
			t.Errorf("sample %+v: a system stall must be a stall and not head-of-line", s)
		}
		if s.T < from-0.2 || s.T > to+0.2 {
			t.Errorf("sample %+v: a system stall sent at %.2f s, far from the freeze (%.1f-%.1f s)", s, s.T, from, to)
		}
	}
	if n == 0 {
		t.Errorf("no sample is marked system")
	}
}
