package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunSeed: --seed overrides the scenario's seed and results.json records the one used; a
// seed that is not a number is refused with the accepted form.
func TestRunSeed(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: skips building the lab binary")
	}
	bin := buildLab(t)
	scenario := "name: seed-test\nseed: 1\nduration: 500ms\nwarmup: 200ms\ntransports: [websocket]\nusers: 4\nworkload: {rate: 20/s}\nlink: {delay: 5ms, loss: [0%]}\n"
	sc := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(sc, []byte(scenario), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := exec.Command(bin, "run", sc, "--seed", "x7").CombinedOutput()
	if err == nil || !strings.Contains(string(b), "--seed \"x7\" is not a non-negative integer") {
		t.Errorf("--seed x7: %v\n%s", err, b)
	}
	f, _, _ := labRun(t, bin, scenario, "--seed", "42")
	if f.Seed != 42 {
		t.Errorf("results.json seed %d, want 42 (the --seed given)", f.Seed)
	}
}
