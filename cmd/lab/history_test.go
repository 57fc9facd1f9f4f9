package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wirelab/wirelab/results/resultstest"
)

func TestHistoryCommand(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	hist := filepath.Join(dir, "history")
	os.MkdirAll(filepath.Join(hist, "run3"), 0o755)
	for i := 0; i < 3; i++ {
		f := resultstest.File(resultstest.Options{Seed: uint64(i), Repeats: 1, Samples: 20, Transports: []string{"websocket", "sse"}, Losses: []float64{0, 0.02},
			Started: time.Date(2026, 4, 1+i, 0, 0, 0, 0, time.UTC)})
		if i == 1 {
			f.Scenario = "quick"
		}
		name := filepath.Join(hist, "r"+string(rune('0'+i))+".json")
		if i == 2 {
			name = filepath.Join(hist, "run3", "results.json")
		}
		writeResults(t, filepath.Dir(name), filepath.Base(name), f)
	}
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o644)
	charts := filepath.Join(dir, "charts")

	code, out, errOut := runLab("history", hist, "--metric", "p50", "--out", charts, "--transport", "websocket")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"p50 (ms) at 0% loss, 20 ms one way", "p50 (ms) at 2% loss", "run3/results.json", "chart: " + filepath.Join(charts, "history-p50-20ms-loss2pct.png")} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, `these files come from 2 scenarios ("quick", "synthetic")`) {
		t.Errorf("no note on mixed scenarios: %q", errOut)
	}
	if strings.Contains(out, "sse") {
		t.Errorf("--transport websocket shows sse:\n%s", out)
	}
	for _, name := range []string{"history-p50-20ms-loss0pct.png", "history-p50-20ms-loss0pct.svg", "history-p50-20ms-loss2pct.svg"} {
		if _, err := os.Stat(filepath.Join(charts, name)); err != nil {
			t.Error(err)
		}
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"history"}, "no results files given"},
		{[]string{"history", filepath.Join(dir, "nope.json")}, "no such file"},
		{[]string{"history", filepath.Join(dir, "bad.json")}, "bad.json: results: wrong schema: not JSON results"},
		{[]string{"history", hist, "--metric", "speed"}, `unknown metric "speed"`},
		{[]string{"history", hist, "--transport", "wt-uni", "--out", charts}, "no runs of wt-uni in these files (they have: sse, websocket)"},
		{[]string{"history", charts}, "holds no results files"},
	} {
		code, _, errOut := runLab(tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}
