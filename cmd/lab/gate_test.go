package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wirelab/wirelab/results"
	"github.com/wirelab/wirelab/server"
)

// quickGate is the flags make bench-quick gives lab compare (the Makefile's QUICK_GATE), so
// that this test checks the gate CI runs, not a copy of it.
func quickGate(t *testing.T) []string {
	t.Helper()
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^QUICK_GATE \?= (.+)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("the Makefile has no QUICK_GATE ?= line")
	}
	gate := strings.Fields(string(m[1]))
	if !slices.Contains(gate, "--metric") || !strings.Contains(string(m[1]), "p99") || !strings.Contains(string(m[1]), "stall_rate") {
		t.Fatalf("QUICK_GATE %q does not gate p99 and stall_rate", m[1])
	}
	return gate
}

// gateScenario is a small quick.yaml: three transports (TCP, TCP server push, QUIC) at 0% and
// 2%, 3 s each, enough messages (300 a run) that every 20th of them held is 15 messages, well
// over 1% of the copies.
const gateScenario = `name: gate-test
seed: 1
duration: 3s
warmup: 1s
transports: [websocket, sse, wt-stream]
users: 10
tabs: 2
rooms: 2
workload: {rate: 100/s, size: 200, mix: {room: 0.8, dm: 0.2}}
link: {delay: 20ms, loss: [0%, 2%]}
`

// harness says how late each run's senders and server were, and its warnings: what to look at
// when a re-run on another seed fails the gate.
func harness(f *results.File) string {
	var b strings.Builder
	for _, r := range f.Runs {
		fmt.Fprintf(&b, "  seed %d %s: senders %.1f ms late, server scheduler %.1f ms (p99); %q\n", f.Seed, r.Ident(), r.Lab.SendLagP99, r.Server.SchedulerMS, r.Warnings)
	}
	return b.String()
}

// TestGateBothWays: the CI gate (make bench-quick's lab compare flags) passes the same scenario
// re-run on another seed, and fails the same seed with a server that holds every 20th message
// 100 ms (WIRELAB_TEST_HOLD), naming p99, the transport and condition and both intervals.
func TestGateBothWays(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: three lab runs of about 30 s each")
	}
	if os.Getenv("WIRELAB_GATE_TEST") != "1" {
		// Its three lab runs compare tails, and other packages' tests running beside it (go test
		// ./... runs packages in parallel: chromium, the conformance suites) took the CPU from
		// one run and not the other (websocket's stall rate at 2% 3.5% against 8.6%, a p99 past
		// the retransmission timeout in one run only): make test runs it on its own afterwards.
		t.Skip("WIRELAB_GATE_TEST=1 is not set: this test runs alone, after the other packages (make test sets it)")
	}
	bin := buildLab(t)
	gate := quickGate(t)

	// A malformed hold stops the lab before any run, saying what it wants.
	sc := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(sc, []byte(gateScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", sc, "--out", t.TempDir())
	cmd.Env = append(os.Environ(), server.HoldEnv+"=20")
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), `WIRELAB_TEST_HOLD="20": no colon; want EVERY:DELAY, e.g. 20:100ms`) {
		t.Fatalf("lab run with WIRELAB_TEST_HOLD=20: %v\n%s", err, b)
	}

	base, baseDir, _ := labRun(t, bin, gateScenario, "--seed", "1")
	other, otherDir, _ := labRun(t, bin, gateScenario, "--seed", "2")
	t.Setenv(server.HoldEnv, "20:100ms")
	held, heldDir, _ := labRun(t, bin, gateScenario, "--seed", "2")
	for _, r := range held.Runs {
		if !slices.ContainsFunc(r.Warnings, func(w string) bool { return strings.Contains(w, "test-only: the server held every 20th message 100ms") }) {
			t.Errorf("%s: the held run has no warning saying so: %q", r.Ident(), r.Warnings)
		}
	}
	compare := func(next string) (int, string, string) {
		args := append([]string{"compare"}, gate...)
		return runLab(append(args, filepath.Join(baseDir, "results.json"), filepath.Join(next, "results.json"))...)
	}

	code, out, errOut := compare(otherDir)
	t.Logf("seed 2 against seed 1:\n%s%s", out, errOut)
	if code != 0 {
		t.Errorf("another seed: exit %d, want 0 (no regression)\n%s\nthe runs' harness figures:\n%s%s", code, errOut, harness(&base), harness(&other))
	}
	if !strings.Contains(out, "p99 ms") || !strings.Contains(out, "stall_rate %") || !regexp.MustCompile(`\[\d[\d.]*-\d[\d.]*\]`).MatchString(out) {
		t.Errorf("another seed: the table does not show p99 and the stall rate with intervals:\n%s", out)
	}

	code, out, errOut = compare(heldDir)
	t.Logf("held against seed 1:\n%s%s", out, errOut)
	if code != 1 {
		t.Fatalf("every 20th message held 100 ms: exit %d, want 1 (a regression)\n%s", code, errOut)
	}
	// "  websocket at 0% loss, 20 ms one way: p99 46.7 [45.9-47.6] -> 146 [140-151] ms, intervals apart, +213%"
	line := regexp.MustCompile(`(?m)^  (websocket|sse|wt-stream) at 0% loss, 20 ms one way: p99 [\d.]+ \[[\d.]+-[\d.]+\] -> [\d.]+ \[[\d.]+-[\d.]+\] ms, intervals apart, \+\d`)
	if !line.MatchString(errOut) {
		t.Errorf("held: no regression line naming p99 at 0%% loss for a transport, with both intervals:\n%s", errOut)
	}
	if !strings.Contains(out, "regression (intervals apart)") {
		t.Errorf("held: the table does not show the regression:\n%s", out)
	}
}
