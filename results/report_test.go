package results_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/wirelab/wirelab/results"
	"github.com/wirelab/wirelab/results/resultstest"
)

func TestWriteDir(t *testing.T) {
	f := resultstest.File(resultstest.Options{Seed: 1})
	f.Runs[13].Warnings = []string{"harness short of CPU: the lab used 97% of the cores"}
	f.Runs[40].Warnings = []string{"link queue grew to 9000 packets"}
	dir := t.TempDir()
	written, err := results.WriteDir(dir, f)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(written[0]) != "report.html" {
		t.Fatalf("first path %s, want report.html", written[0])
	}
	for _, name := range []string{"results.json", "results.csv", "report.html", "report.md", "cdf-20ms-loss2pct.png", "cdf-20ms-loss2pct.svg"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
	if tl, _ := filepath.Glob(filepath.Join(dir, "timeline-*-20ms-loss2pct-r0.svg")); len(tl) != 2 {
		t.Errorf("timelines %v, want two (TCP and QUIC)", tl)
	}
	back, err := results.ReadJSONFile(filepath.Join(dir, "results.json"))
	if err != nil || len(back.Runs) != len(f.Runs) {
		t.Fatalf("results.json does not read back: %v", err)
	}

	// report.md refers to plot files that exist next to it.
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	refs := regexp.MustCompile(`\]\(([^)]+\.(?:png|svg))\)`).FindAllStringSubmatch(string(md), -1)
	if len(refs) != 2*9 {
		t.Fatalf("report.md refers to %d plot files, want 18", len(refs))
	}
	for _, m := range refs {
		if _, err := os.Stat(filepath.Join(dir, m[1])); err != nil {
			t.Errorf("report.md refers to %s: %v", m[1], err)
		}
	}
	for _, want := range []string{"⚠ 2 warning(s)", "harness short of CPU", "| websocket | 2% loss, 20 ms one way | 3 |", "## Reading", "seed", "commit", "quic-go", "name: synthetic", "lab (harness) CPU"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	// The warning stands on its run's row too.
	for _, line := range strings.Split(string(md), "\n") {
		if strings.Contains(line, "link queue grew") && strings.HasPrefix(line, "| ") && !strings.Contains(line, "⚠") {
			t.Errorf("row warning not marked: %s", line)
		}
	}
}

func TestReportHTMLSelfContained(t *testing.T) {
	f, figs := synthetic()
	var buf bytes.Buffer
	if err := results.WriteReportHTML(&buf, f, figs); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var imgs, warnRows int
	var text strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "link", "iframe", "object", "embed":
				t.Errorf("report.html has a <%s>: it must be self-contained", n.Data)
			case "img":
				imgs++
			case "tr":
				for _, a := range n.Attr {
					if a.Key == "class" && a.Val == "warn" {
						warnRows++
					}
				}
			}
			for _, a := range n.Attr {
				if (a.Key == "src" || a.Key == "href") && !strings.HasPrefix(a.Val, "data:image/png;base64,") && !strings.HasPrefix(a.Val, "#") {
					t.Errorf("<%s %s=%.60q> points outside the file", n.Data, a.Key, a.Val)
				}
			}
		}
		if n.Type == html.TextNode {
			text.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if imgs != len(figs) {
		t.Errorf("%d images inline, want %d", imgs, len(figs))
	}
	if warnRows != 1 {
		t.Errorf("%d rows marked with warnings, want 1", warnRows)
	}
	if strings.Contains(buf.String(), "@import") || strings.Contains(buf.String(), "url(") {
		t.Error("CSS refers outside the file")
	}
	s := text.String()
	for _, want := range []string{"⚠ 1 warning(s)", "<script>alert(1)</script> short of CPU", "Reading", "p99 ms", "bytes/msg", "server µs/msg", "Synthetic CPU", "v0.64.1", "0123456789abcdef", "lab (harness) CPU"} {
		if !strings.Contains(s, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	for _, r := range results.Reading(f) {
		if !strings.Contains(s, r) {
			t.Errorf("report.html lacks the reading %q", r)
		}
	}
}

// A small hand-made file whose reading is known exactly.
func handFile() *results.File {
	run := func(t string, loss, p50, p99 float64, stalls, hol int64, bytes, cpu float64) results.Run {
		return results.Run{Transport: t, Loss: loss, DelayMS: 20, Sent: 100, Expected: 1000, Delivered: 1000,
			Latency: results.Latency{P50: p50, P99: p99, Mean: p50},
			Stalls:  results.Stalls{Count: stalls, Collateral: hol},
			Link:    results.LinkFigures{Packets: 100000, Dropped: int64(loss * 100000), LossMeasured: loss},
			Server:  results.ServerLoad{BytesPerMsg: bytes, CPUUSPerMsg: cpu}}
	}
	return &results.File{Schema: 1, Scenario: "hand", PollIntervalMS: 1000, Runs: []results.Run{
		run("shortpoll", 0, 530, 1030, 0, 0, 3640, 40),
		run("websocket", 0, 40.4, 44, 0, 0, 260, 8),
		run("wt-uni", 0, 41, 45, 0, 0, 350, 30),
		run("shortpoll", 0.02, 540, 1040, 0, 0, 3700, 41),
		run("websocket", 0.02, 41, 310, 100, 61, 270, 8.5),
		run("wt-uni", 0.02, 41, 100, 10, 0, 360, 31),
	}}
}

func TestReadingComputed(t *testing.T) {
	f := handFile()
	got := strings.Join(results.Reading(f), "\n")
	for _, want := range []string{
		"At 0% loss and 20 ms one way, the push transports' p50 ranged from 40.4 ms (websocket) to 41 ms (wt-uni), against a floor of 40 ms (two one-way delays): 2.5% above it.",
		"The mean latency of shortpoll, which polls every 1,000 ms, was 530 ms, 1.9% below the theory (540 ms: 1,000 ms / 2 + 2 × 20 ms).",
		"At 2% loss the p99 ranged from 100 ms (wt-uni) to 1,040 ms (shortpoll).",
		"Stalls at 2% loss: websocket 100 (10.0% of 1,000 delivered, 61% head-of-line); wt-uni 10 (1.0% of 1,000 delivered, 0% head-of-line); none for shortpoll.",
		"This file has no intervals (it was written before results carried a summary)",
		"Bytes on the wire per delivered copy at 0% loss ranged from 260 B (websocket) to 3,640 B (shortpoll) (one run per point: no interval, so no ratio is claimed).",
		"The server's CPU per delivered copy ranged from 8 µs (websocket) to 40 µs (shortpoll); per 1,000 copies that is 8 ms against 40 ms (one run per point: no interval, so no ratio is claimed).",
		"No transport lost or duplicated a copy, at any loss rate (6 runs).",
		"inside the 99% interval of the configured rate in 3 of 3 lossy runs.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("reading lacks\n  %s\ngot:\n%s", want, got)
		}
	}
	if strings.Contains(got, "warning") || strings.Contains(got, "lab itself") {
		t.Errorf("reading talks of warnings or lab load the file does not have:\n%s", got)
	}
	// Without intervals, no ratio between transports: a ratio is only ever against theory.
	if regexp.MustCompile(`× (websocket|wt-uni|shortpoll)`).MatchString(got) || strings.Contains(got, "× the bytes") {
		t.Errorf("a reading without intervals states a ratio between transports:\n%s", got)
	}

	// Losses and duplicates are named, with their transport and condition.
	f.Runs[5].Lost, f.Runs[5].Delivered = 3, 997
	f.Runs[4].Duplicates = 2
	f.Runs[4].Warnings = []string{"link queue grew"}
	f.Runs[3].Warnings = []string{"harness short of CPU"}
	f.Runs[3].Lab.SendLagP99 = 3.5
	f.Runs[1].Latency.P50 = 130 // websocket at 0%: far above the floor
	f.Lab = results.LabLoad{CPUSeconds: 12, CPUShare: 0.4}
	got = strings.Join(results.Reading(f), "\n")
	for _, want := range []string{
		"Lost copies (all repeats together): wt-uni at 2% loss 3 (0.3% of 1,000 expected).",
		"Duplicated copies (all repeats together): websocket at 2% loss 2.",
		"The lab itself used 12 CPU-seconds, 40% of the machine's cores over the whole file; its senders were at most 3.5 ms late (p99 of the worst run).",
		"2 warning(s) on 2 run(s)",
		"At 2% loss the p99 ranged from 100 ms (wt-uni) to 1,040 ms (shortpoll, a run with warnings).",
		"ranged from 41 ms (wt-uni) to 130 ms (websocket), against a floor of 40 ms (two one-way delays): 3.2× it.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("reading lacks\n  %s\ngot:\n%s", want, got)
		}
	}
}

// Zeros and missing transports leave sentences out; nothing divides by zero.
func TestReadingZerosAndMissing(t *testing.T) {
	f := handFile()
	for i := range f.Runs {
		if f.Runs[i].Transport == "wt-uni" {
			f.Runs[i].Latency = results.Latency{}
			f.Runs[i].Server = results.ServerLoad{}
		}
		if f.Runs[i].Transport == "websocket" {
			f.Runs[i].Server.BytesPerMsg = 0
		}
	}
	f.PollIntervalMS = 0
	got := strings.Join(results.Reading(f), "\n")
	for _, bad := range []string{"NaN", "Inf", "∞", "wt-uni's", "short polling sent", "–"} {
		if strings.Contains(got, bad) {
			t.Errorf("reading has %q:\n%s", bad, got)
		}
	}
	if !strings.Contains(got, "the poll interval is not in the file") {
		t.Errorf("reading does not say the theory is missing:\n%s", got)
	}
	// Two delays: a sentence for each.
	two := resultstest.File(resultstest.Options{Seed: 8, Repeats: 1, Samples: 50, Transports: []string{"websocket", "wt-uni"}, Losses: []float64{0, 0.01}})
	two.Runs = append(two.Runs, resultstest.File(resultstest.Options{Seed: 9, Repeats: 1, Samples: 50, DelayMS: 50, Transports: []string{"websocket", "wt-uni"}, Losses: []float64{0, 0.01}}).Runs...)
	got = strings.Join(results.Reading(two), "\n")
	for _, want := range []string{"At 0% loss and 20 ms one way", "At 0% loss and 50 ms one way", "against a floor of 100 ms", "At 1% loss and 50 ms one way"} {
		if !strings.Contains(got, want) {
			t.Errorf("two delays: reading lacks %q:\n%s", want, got)
		}
	}
	if r := results.Reading(&results.File{Schema: 1}); !slices.Equal(r, []string{"The file has no runs: nothing to read."}) {
		t.Errorf("empty file: %q", r)
	}
	var buf bytes.Buffer
	if err := results.WriteReportMD(&buf, &results.File{Schema: 1}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestReportGroupsSharedWarnings(t *testing.T) {
	f := handFile()
	for i := range f.Runs {
		f.Runs[i].Warnings = []string{"the server ran inside the lab process"}
	}
	f.Runs[4].Warnings = append(f.Runs[4].Warnings, "link queue grew to 900 packets")
	f.Runs[5].Warnings = append(f.Runs[5].Warnings, "harness short of CPU")
	f.Runs[3].Warnings = append(f.Runs[3].Warnings, "harness short of CPU")
	var buf bytes.Buffer
	if err := results.WriteReportMD(&buf, f, nil); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		"⚠ 9 warning(s)",
		"> - the server ran inside the lab process (every run, 6)\n",
		"> - websocket 2% loss 20ms #0: link queue grew to 900 packets\n",
		"> - harness short of CPU (2 runs: shortpoll 2% loss 20ms #0, wt-uni 2% loss 20ms #0)\n",
		"| 3,700 | 41 | 0% | ⚠ harness short of CPU |\n",
		"| 260 | 8 | 0% | |\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
}

func TestReportServerMemoryPerSession(t *testing.T) {
	f := handFile()
	var buf bytes.Buffer
	if err := results.WriteReportMD(&buf, f, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "KB/session") {
		t.Error("a file without memory per session shows the column")
	}
	for i := range f.Runs {
		f.Runs[i].Sessions = 20000
		f.Runs[i].Server.RSSPerSession = map[string]float64{"shortpoll": 4000, "websocket": 29500, "wt-uni": 61000}[f.Runs[i].Transport]
	}
	buf.Reset()
	if err := results.WriteReportMD(&buf, f, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| server KB/session |", "| 29.5 |", "each session cost the server from 4 KB (shortpoll) to 61 KB (wt-uni) of memory"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report.md lacks %q:\n%s", want, buf.String())
		}
	}
	buf.Reset()
	if err := results.WriteReportHTML(&buf, f, nil); err != nil || !strings.Contains(buf.String(), "<th>server KB/session</th>") {
		t.Errorf("report.html lacks the column: %v", err)
	}
}

// withIntervals gives handFile a summary and findings: wt-uni's p99 at 2% is clearly the lowest,
// websocket's p50 there is no clearly different from wt-uni's.
func withIntervals(f *results.File) *results.File {
	sum := func(t string, loss, p50 float64, p50ci [2]float64, p99 float64, p99ci [2]float64, sr float64, srci [2]float64) results.PointSummary {
		return results.PointSummary{Transport: t, Loss: loss, DelayMS: 20, Stack: "gvisor", Copies: 1000, Sessions: 40,
			P50: p50, P50CI95: p50ci, P99: p99, P99CI95: p99ci, StallRate: sr, StallRateCI95: srci}
	}
	f.Summary = []results.PointSummary{
		sum("shortpoll", 0, 530, [2]float64{510, 550}, 1030, [2]float64{1000, 1050}, 0, [2]float64{0, 0.003}),
		sum("websocket", 0, 40.4, [2]float64{40.3, 40.5}, 44, [2]float64{43, 45}, 0, [2]float64{0, 0.003}),
		sum("wt-uni", 0, 41, [2]float64{40.9, 41.1}, 45, [2]float64{44, 46}, 0, [2]float64{0, 0.003}),
		sum("shortpoll", 0.02, 540, [2]float64{520, 560}, 1040, [2]float64{1010, 1070}, 0, [2]float64{0, 0.003}),
		sum("websocket", 0.02, 41, [2]float64{40.5, 41.5}, 310, [2]float64{240, 380}, 0.1, [2]float64{0.07, 0.13}),
		sum("wt-uni", 0.02, 41, [2]float64{40.6, 41.4}, 100, [2]float64{90, 115}, 0.01, [2]float64{0.006, 0.015}),
	}
	fd := func(metric string, loss float64, a, b string, r, lo, hi float64) results.Finding {
		return results.Finding{Metric: metric, Loss: loss, DelayMS: 20, Stack: "gvisor", A: a, B: b, Ratio: r, RatioCI95: [2]float64{lo, hi}}
	}
	f.Findings = []results.Finding{
		fd("p50", 0.02, "shortpoll", "websocket", 13.2, 12.6, 13.8),
		fd("p50", 0.02, "wt-uni", "websocket", 1.0, 0.98, 1.02),
		fd("p99", 0.02, "shortpoll", "wt-uni", 10.4, 8.9, 11.8),
		fd("p99", 0.02, "websocket", "wt-uni", 3.1, 2.2, 4.0),
		fd("stall_rate", 0.02, "websocket", "wt-uni", 10, 6.1, 19),
	}
	return f
}

// With intervals, the reading states every finding and only the findings: each ratio with its
// interval, "no clear difference" where the interval holds 1.
func TestReadingWithIntervals(t *testing.T) {
	f := withIntervals(handFile())
	lines := results.Reading(f)
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		"At 0% loss and 20 ms one way, the lowest p50 of the push transports was websocket's, 40.4 ms (95% CI 40.3-40.5), against a floor of 40 ms (two one-way delays): 1.0% above it.",
		"At 2% loss the lowest p50 was websocket's, 41 ms (95% CI 40.5-41.5); against it: shortpoll 13× (95% CI 13-14); wt-uni no clear difference (1.00×, 95% CI 0.98-1.02).",
		"At 2% loss the lowest p99 was wt-uni's, 100 ms (95% CI 90-115); against it: shortpoll 10× (95% CI 8.9-12); websocket 3.1× (95% CI 2.2-4.0).",
		"At 2% loss the lowest stall rate was wt-uni's, 1.00% of copies (95% CI 0.6%-1.50%); against it: websocket 10× (95% CI 6.1-19).",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("reading lacks\n  %s\ngot:\n%s", want, got)
		}
	}
	for _, not := range []string{"This file has no intervals", "the p99 ranged from", "wt-uni's p50 was", "× websocket's (", "websocket's p99 was 3.1× wt-uni's (310"} {
		if strings.Contains(got, not) {
			t.Errorf("reading says %q:\n%s", not, got)
		}
	}
	// Every finding is stated, and every "N×" between transports is a finding's.
	n := len(regexp.MustCompile(`\d×`).FindAllString(got, -1))
	if want := len(f.Findings); n != want {
		t.Errorf("%d ratios stated, %d findings:\n%s", n, want, got)
	}
	// A named pair (not against the lowest) reads as a sentence of its own.
	f.Findings = append(f.Findings, results.Finding{Metric: "p99", Loss: 0.02, DelayMS: 20, Stack: "gvisor", A: "shortpoll", B: "websocket", Ratio: 3.4, RatioCI95: [2]float64{0.9, 5}})
	got = strings.Join(results.Reading(f), "\n")
	if !strings.Contains(got, "At 2% loss shortpoll's and websocket's p99: no clear difference (3.4×, 95% CI 0.90-5.0).") {
		t.Errorf("pair sentence missing:\n%s", got)
	}

	// The report's table shows the intervals.
	var md, h bytes.Buffer
	if err := results.WriteReportMD(&md, f, nil); err != nil {
		t.Fatal(err)
	}
	if err := results.WriteReportHTML(&h, f, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"stall rate (95% CI)", "| 310 (240–380) |", "10.0% (7.00%–13.0%)", "bootstrap over sessions"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	if !strings.Contains(h.String(), "310<small> (240–380)</small>") {
		t.Errorf("report.html lacks the p99 interval")
	}
}

// summarized gives a synthetic file a summary and findings the way the lab does: each run's
// copies (its samples here) split into sessions, all repeats of a point pooled, bootstrapped.
func summarized(f *results.File, sessionsPerRun int) *results.File {
	ev := map[results.Key]*results.Evidence{}
	for i := range f.Runs {
		r := &f.Runs[i]
		e := ev[r.Key()]
		if e == nil {
			e = results.NewEvidence()
			ev[r.Key()] = e
		}
		sess := make([]results.SessionData, sessionsPerRun)
		for j, s := range r.Samples {
			sd := &sess[j%sessionsPerRun]
			sd.LatencyMS = append(sd.LatencyMS, s.LatencyMS)
			if s.Stall {
				sd.Stalled++
			}
		}
		for _, s := range sess {
			e.Add(s)
		}
	}
	results.SummarizePoints(f, ev)
	return f
}

// On a bootstrapped file, the reading states exactly the file's findings: one ratio with its
// interval per finding, "no clear difference" exactly where the interval holds 1.
func TestReadingStatesEveryFinding(t *testing.T) {
	f := summarized(resultstest.File(resultstest.Options{Seed: 3, Repeats: 3, Samples: 300}), 12)
	if len(f.Summary) != len(results.Groups(f)) {
		t.Fatalf("%d summary entries for %d points", len(f.Summary), len(results.Groups(f)))
	}
	lines := results.Reading(f)
	got := strings.Join(lines, "\n")
	stated := regexp.MustCompile(`\d×(, | \(| [\w-]+'s \()95% CI`).FindAllString(got, -1)
	if len(stated) != len(f.Findings) {
		t.Errorf("%d ratios with intervals stated, %d findings:\n%s", len(stated), len(f.Findings), got)
	}
	metrics := map[string]int{}
	unclear := 0
	for _, fd := range f.Findings {
		metrics[fd.Metric]++
		if !fd.Clear() {
			unclear++
			if !strings.Contains(got, fd.A+" "+results.FindingPhrase(fd)) && !strings.Contains(got, fd.A+"'s and "+fd.B+"'s") {
				t.Errorf("finding %+v not stated as no clear difference", fd)
			}
		} else if !strings.Contains(got, fd.A+" "+results.FindingPhrase(fd)) && !strings.Contains(got, fd.A+"'s") {
			t.Errorf("finding %+v not stated", fd)
		}
	}
	if n := strings.Count(got, "no clear difference"); n != unclear {
		t.Errorf("'no clear difference' %d times for %d findings whose interval holds 1", n, unclear)
	}
	for _, m := range results.FindingMetrics {
		if metrics[m] == 0 {
			t.Errorf("no %s finding (three repeats: bytes and CPU too)", m)
		}
	}
	if strings.Contains(got, "no intervals") {
		t.Error("a file with a summary says it has none")
	}
	// It writes, reads back and renders.
	dir := t.TempDir()
	if _, err := results.WriteDir(dir, f); err != nil {
		t.Fatal(err)
	}
	back, err := results.ReadJSONFile(filepath.Join(dir, "results.json"))
	if err != nil || len(back.Findings) != len(f.Findings) || len(back.Summary) != len(f.Summary) {
		t.Fatalf("read back: %v", err)
	}
}
