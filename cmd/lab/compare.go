package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/wirelab/wirelab/results"
)

func init() {
	commands["compare"] = command{summary: "compare two results.json files; exit 1 on a regression beyond noise", run: runCompare}
}

// compareHelp says how `lab compare` decides; printed after the flags by --help.
const compareHelp = `
Every metric is lower-is-better. A change is a regression (or an improvement) only when it is
beyond noise AND beyond --threshold (the relative change of the figure):
  - p50, p99 and stall_rate, when both files have a summary for the transport and condition
    (results.json "summary", written since issue 11): beyond noise means the two 95% intervals
    are apart, the new one wholly above the base one (or wholly below). The figures are the
    summaries' (every copy of all repeats pooled). For p50 and p99 the intervals must be apart
    by more than the harness lateness of the run that got worse (its senders' lag behind their
    schedule, p99: a machine busy with other work makes every copy late together, which the
    intervals do not cover). The stall rate must also move by more than --stall-floor
    percentage points (0 -> 0.05% at 0% loss is not a regression), and a run whose senders were
    over 10 ms late decides nothing for it.
  - otherwise (a file without a summary, other metrics): Mann-Whitney U on the repeat values
    with 4 repeats or more on each side (p < --alpha); with fewer, latency percentiles fall back
    to a bootstrap over the per-copy samples (within-run noise only); the rest is "n too small".
  - lost or duplicated copies rising from zero are always a regression.
Output: a table per transport (figures with [LO-HI] are 95% intervals), then on stderr one line
per regression naming the transport, condition, metric and both figures.
Exit status: 0 no regression, 1 a regression, 2 bad input.
`

// runCompare is `lab compare BASE.json NEW.json [--threshold 10%] [--metric p99,...]`.
// Exit status: 0 no regression, 1 a regression beyond noise and threshold, 2 bad input.
func runCompare(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("compare", "BASE.json NEW.json [--threshold 10%] [--metric p50,p99,...] [--alpha 0.05] [--stall-floor 0.5%]", stderr)
	usage := fs.Usage
	fs.Usage = func() { usage(); fmt.Fprint(stderr, compareHelp) }
	threshold := fs.String("threshold", "10%", "smallest relative change that counts, as a percentage (every metric): 0% to 1000%; 0% counts every change beyond noise")
	var metrics csvListFlag
	fs.Var(&metrics, "metric", "metric to compare (repeat or comma-separate; default "+strings.Join(results.DefaultCompareMetrics, ",")+"; also stall_rate, p90, ...)")
	alpha := fs.Float64("alpha", 0.05, "significance level of the U test (files without a summary): above 0, at most 0.5")
	stallFloor := fs.String("stall-floor", fmtPercent(100*results.DefaultStallFloor)+"%", "smallest absolute change of the stall rate that counts, in percentage points of the delivered copies (0% to 100%)")
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	bad := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "lab compare: "+format+"\n", a...)
		return exitCode(2)
	}
	if len(files) != 2 {
		fs.Usage()
		return bad("want two files, BASE.json and NEW.json; got %d", len(files))
	}
	th, err := parsePercent(*threshold, 1000)
	if err != nil {
		return bad("--threshold: %v", err)
	}
	floor, err := parsePercent(*stallFloor, 100)
	if err != nil {
		return bad("--stall-floor: %v", err)
	}
	if err := fraction("alpha", *alpha, 0.5, "0.05"); err != nil {
		return bad("%v", err)
	}
	if floor == 0 {
		floor = -1 // "0%": no floor (the zero value would mean the default)
	}
	base, err := results.ReadJSONFile(files[0])
	if err != nil {
		return bad("base: %v", err)
	}
	next, err := results.ReadJSONFile(files[1])
	if err != nil {
		return bad("new: %v", err)
	}
	if th == 0 {
		th = -1 // "0%": every change beyond noise counts (the zero value would mean the default)
	}
	c, err := results.Compare(base, next, results.CompareOptions{Threshold: th, Metrics: metrics, Alpha: *alpha, Seed: base.Seed, StallFloor: floor})
	if err != nil {
		return bad("%v", err)
	}
	fmt.Fprintf(stdout, "base: %s (%s)\nnew:  %s (%s)\n\n", files[0], describeFile(base), files[1], describeFile(next))
	if err := c.WriteText(stdout); err != nil {
		return err
	}
	if reg := c.Regressions(); len(reg) > 0 {
		fmt.Fprintf(stderr, "lab compare: %d regression(s) beyond noise and the %s threshold:\n", len(reg), *threshold)
		for _, ch := range reg {
			fmt.Fprintf(stderr, "  %s: %s\n", ch.Key, ch.Line())
		}
		return exitCode(1)
	}
	return nil
}

func describeFile(f *results.File) string {
	commit := f.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	parts := []string{f.Scenario}
	if commit != "" {
		parts = append(parts, "commit "+commit)
	}
	if !f.Started.IsZero() {
		parts = append(parts, f.Started.UTC().Format("2006-01-02 15:04Z"))
	}
	parts = append(parts, fmt.Sprintf("%d runs", len(f.Runs)))
	return strings.Join(parts, ", ")
}

// fmtPercent formats a percentage for a flag's default: 0.5, not 0.5000000001.
func fmtPercent(x float64) string { return strconv.FormatFloat(x, 'g', 4, 64) }

// parsePercent reads "10%" as 0.10; the percentage must be from 0 to hi.
func parsePercent(s string, hi float64) (float64, error) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	if !ok {
		return 0, fmt.Errorf("%q is not a percentage (try 10%%)", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a percentage (try 10%%)", s)
	}
	if v < 0 || v > hi {
		return 0, fmt.Errorf("%s is out of range (0%% to %g%%)", s, hi)
	}
	return v / 100, nil
}

// csvListFlag is a flag that may be repeated or comma-separated.
type csvListFlag []string

func (l *csvListFlag) String() string { return strings.Join(*l, ",") }

func (l *csvListFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// parseInterleaved parses flags that may come before, between or after the positional
// arguments (`lab compare a.json b.json --threshold 20%`); "--" ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
