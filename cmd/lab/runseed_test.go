package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wirelab/wirelab/results"
)

// TestRunSeed: --seed overrides the scenario's seed and results.json records the one used; a
// seed that is not a number is refused with the accepted form.
func TestRunSeed(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: skips building the lab binary")
	}
	bin := buildLab(t)
	dir := t.TempDir()
	sc := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(sc, []byte("name: seed-test\nseed: 1\nduration: 500ms\nwarmup: 200ms\ntransports: [websocket]\nusers: 4\nworkload: {rate: 20/s}\nlink: {delay: 5ms, loss: [0%]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := exec.Command(bin, "run", sc, "--seed", "x7").CombinedOutput()
	if err == nil || !strings.Contains(string(b), "--seed \"x7\" is not a non-negative integer") {
		t.Errorf("--seed x7: %v\n%s", err, b)
	}
	out := filepath.Join(dir, "out")
	if b, err := exec.Command(bin, "run", sc, "--out", out, "--seed", "42").CombinedOutput(); err != nil {
		t.Fatalf("lab run --seed 42: %v\n%s", err, b)
	}
	b, err = os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f results.File
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if f.Seed != 42 {
		t.Errorf("results.json seed %d, want 42 (the --seed given)", f.Seed)
	}
}
