package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/wirelab/wirelab/results"
)

// labRun writes scenario to a file, runs `lab run FILE --out DIR ARGS...` with the binary bin
// (failing t when it fails) and returns its results file, the output directory and what it
// printed.
func labRun(t *testing.T, bin, scenario string, args ...string) (f results.File, out string, printed []byte) {
	t.Helper()
	dir := t.TempDir()
	sc := filepath.Join(dir, "scenario.yaml")
	if err := os.WriteFile(sc, []byte(scenario), 0o644); err != nil {
		t.Fatal(err)
	}
	out = filepath.Join(dir, "out")
	printed, err := exec.Command(bin, append([]string{"run", sc, "--out", out}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("lab run: %v\n%s", err, printed)
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f, out, printed
}
