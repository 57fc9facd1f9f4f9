package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/wirelab/wirelab/results"
)

func init() {
	commands["history"] = command{summary: "a metric across many results files: a table and a chart per condition", run: runHistory}
}

// runHistory is `lab history [--metric p99] [--transport T] [--out DIR] FILE|DIR...`. A
// directory stands for the results files in it (DIR/*.json and DIR/*/results.json). For p50,
// p99 and stall_rate, a file with a summary gives its pooled figure and 95% interval: the
// table shows "46.7 [45.9-47.6]", the chart a bar.
func runHistory(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("history", "[--metric p99] [--transport T] [--out DIR] FILE.json|DIR...", stderr)
	metric := fs.String("metric", "p99", "metric to follow (p50, p99, stall_rate, bytes_per_msg, cpu_us_per_msg, lost, ...); p50, p99 and stall_rate show each file's 95% interval where it has a summary")
	var only csvListFlag
	fs.Var(&only, "transport", "only this transport (repeat or comma-separate)")
	out := fs.String("out", filepath.Join("out", "history"), "directory for the charts (PNG and SVG)")
	args, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	bad := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "lab history: "+format+"\n", a...)
		return exitCode(2)
	}
	if len(args) == 0 {
		fs.Usage()
		return bad("no results files given")
	}
	var paths []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return bad("%v", err)
		}
		if !st.IsDir() {
			paths = append(paths, a)
			continue
		}
		var found []string
		for _, pat := range []string{"*.json", filepath.Join("*", "results.json")} {
			m, _ := filepath.Glob(filepath.Join(a, pat))
			found = append(found, m...)
		}
		if len(found) == 0 {
			return bad("%s holds no results files (*.json or */results.json)", a)
		}
		sort.Strings(found)
		paths = append(paths, found...)
	}
	files := make([]*results.File, 0, len(paths))
	for _, p := range paths {
		f, err := results.ReadJSONFile(p)
		if err != nil {
			return bad("%v", err)
		}
		files = append(files, f)
	}
	scenarios := map[string]bool{}
	for _, f := range files {
		scenarios[f.Scenario] = true
	}
	if len(scenarios) > 1 {
		names := make([]string, 0, len(scenarios))
		for n := range scenarios {
			names = append(names, fmt.Sprintf("%q", n))
		}
		sort.Strings(names)
		fmt.Fprintf(stderr, "lab history: note: these files come from %d scenarios (%s); their figures may not be comparable\n", len(names), strings.Join(names, ", "))
	}
	h, err := results.NewHistory(files, paths, results.HistoryOptions{Metric: *metric, Transports: only})
	if err != nil {
		return bad("%v", err)
	}
	if err := h.WriteText(stdout); err != nil {
		return err
	}
	figs, err := h.Plots()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	for _, fig := range figs {
		for ext, data := range map[string][]byte{".png": fig.PNG, ".svg": fig.SVG} {
			if err := os.WriteFile(filepath.Join(*out, fig.Name+ext), data, 0o644); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "chart: %s (.svg beside it)\n", filepath.Join(*out, fig.Name+".png"))
	}
	return nil
}
