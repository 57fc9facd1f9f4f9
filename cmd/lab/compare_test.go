package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/wirelab/wirelab/results"
	"github.com/wirelab/wirelab/results/resultstest"
)

func writeResults(t *testing.T, dir, name string, f *results.File) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := results.WriteJSONFile(p, f); err != nil {
		t.Fatal(err)
	}
	return p
}

func runLab(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = dispatch(args, &o, &e)
	return code, o.String(), e.String()
}

func TestCompareCommand(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	opt := resultstest.Options{Seed: 1, Repeats: 6, Transports: []string{"websocket", "wt-uni"}, Losses: []float64{0, 0.02}, Samples: 100}
	base := writeResults(t, dir, "base.json", resultstest.File(opt))
	opt.Seed = 2
	same := writeResults(t, dir, "same.json", resultstest.File(opt))
	opt.Scale = 1.6
	slow := writeResults(t, dir, "slow.json", resultstest.File(opt))
	lossy := resultstest.File(resultstest.Options{Seed: 2, Repeats: 6, Transports: []string{"websocket", "wt-uni"}, Losses: []float64{0, 0.02}, Samples: 100})
	lossy.Runs[3].Lost = 2
	lost := writeResults(t, dir, "lost.json", lossy)
	other := writeResults(t, dir, "other.json", resultstest.File(resultstest.Options{Seed: 3, Transports: []string{"sse"}, Repeats: 1, Samples: 5}))
	garbage := filepath.Join(dir, "garbage.json")
	os.WriteFile(garbage, []byte(`{"schema": 9, "runs": []}`), 0o644)

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"no change", []string{"compare", base, same}, 0, []string{"websocket\n", "wt-uni\n", "0 regression(s)", "p99 ms", "bytes_per_msg B"}, nil},
		{"slower", []string{"compare", base, slow}, 1, []string{"regression (U, p=0.002)"}, []string{"regression(s) beyond noise and the 10% threshold", "websocket at 0% loss, 20 ms one way: p50"}},
		{"slower, flags after files, generous threshold", []string{"compare", base, slow, "--threshold", "80%"}, 0, []string{"within threshold", "threshold 80%"}, nil},
		{"slower, one metric", []string{"compare", "--metric", "bytes_per_msg", base, slow}, 0, []string{"bytes_per_msg"}, nil},
		{"lost from zero", []string{"compare", base, lost, "--metric=lost,duplicates"}, 1, []string{"regression (was 0)"}, []string{"lost 0 copies -> 2 copies"}},
		{"missing file", []string{"compare", base, filepath.Join(dir, "nope.json")}, 2, nil, []string{"lab compare: new: open ", "no such file"}},
		{"wrong schema", []string{"compare", garbage, base}, 2, nil, []string{"base: ", "garbage.json: results: wrong schema: schema 9 was written by a newer wirelab"}},
		{"no common runs", []string{"compare", base, other}, 2, nil, []string{"no runs in common: base has websocket, wt-uni", "new has sse"}},
		{"one file", []string{"compare", base}, 2, nil, []string{"want two files"}},
		{"bad threshold", []string{"compare", base, same, "--threshold", "10"}, 2, nil, []string{`"10" is not a percentage (try 10%)`}},
		{"bad metric", []string{"compare", base, same, "--metric", "latency"}, 2, nil, []string{`unknown metric "latency"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runLab(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}
