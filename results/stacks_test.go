package results_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wirelab/wirelab/results"
	"github.com/wirelab/wirelab/results/resultstest"
)

func TestLateShares(t *testing.T) {
	if l := results.LateShares(0, nil); l != nil {
		t.Fatalf("no copies: %+v, want nil", l)
	}
	ms := []float64{50, 100, 100.5, 150, 200, 201, 399, 400, 401, 999, 1000, 1001, 5000, 40, 41, 42, 43, 44, 45, 46}
	l := results.LateShares(len(ms), func(i int) time.Duration { return time.Duration(ms[i] * float64(time.Millisecond)) })
	// Later than the threshold, strictly: 100 ms is not later than 100 ms.
	want := results.Late{Over100: 11.0 / 20, Over200: 8.0 / 20, Over400: 5.0 / 20, Over1000: 2.0 / 20}
	if *l != want {
		t.Fatalf("late %+v, want %+v", *l, want)
	}
	for i, th := range results.LateMS {
		if got := l.Share(th); got != []float64{want.Over100, want.Over200, want.Over400, want.Over1000}[i] {
			t.Errorf("Share(%g) = %g", th, got)
		}
	}
	var none *results.Late
	if none.Share(200) != 0 || l.Share(300) != 0 {
		t.Fatal("Share of nil or of an unknown threshold must be 0")
	}
	b, _ := json.Marshal(l)
	if string(b) != `{"100":0.55,"200":0.4,"400":0.25,"1000":0.1}` {
		t.Fatalf("late as JSON: %s", b)
	}
}

func bothStacks() *results.File {
	return resultstest.File(resultstest.Options{Seed: 7, Stacks: []string{"gvisor", "kernel"}, GVisorTail: 0.6,
		Transports: []string{"websocket", "sse", "wt-stream", "wt-uni"}, Losses: []float64{0, 0.02}, Repeats: 2, Samples: 2000})
}

// A run on gVisor and one on Linux are never one condition: not grouped, averaged, compared or
// counted as repeats of each other.
func TestStacksKeptApart(t *testing.T) {
	f := bothStacks()
	if f.Stack != "gvisor,kernel" || !slices.Equal(results.Stacks(f), []string{"gvisor", "kernel"}) {
		t.Fatalf("file stack %q, stacks %v", f.Stack, results.Stacks(f))
	}
	gs := results.Groups(f)
	if len(gs) != 4*2*2 {
		t.Fatalf("%d groups, want 16 (4 transports × 2 losses × 2 stacks)", len(gs))
	}
	for _, g := range gs {
		if len(g.Runs) != 2 {
			t.Fatalf("%s: %d runs, want the 2 repeats of one stack", g.Key, len(g.Runs))
		}
		for _, r := range g.Runs {
			if r.StackName() != results.StackName(g.Cond.Stack) {
				t.Fatalf("%s holds a %s run", g.Key, r.StackName())
			}
		}
	}
	// The two stacks of one transport and link sit next to each other, gVisor first.
	if gs[0].Transport != "sse" || gs[0].Cond.Stack != "" || gs[1].Cond.Stack != "kernel" || gs[0].Cond.Link() != gs[1].Cond.Link() {
		t.Fatalf("group order: %s, %s", gs[0].Key, gs[1].Key)
	}
	if s := gs[1].Cond.String(); s != "0% loss, 20 ms one way, Linux kernel stack" {
		t.Fatalf("kernel condition reads %q", s)
	}
	if s := gs[1].Cond.Slug(); s != "20ms-loss0pct-kernel" {
		t.Fatalf("kernel slug %q", s)
	}
	if len(results.Problems(f)) != 0 {
		t.Fatalf("runs of two stacks taken as repeats: %v", results.Problems(f))
	}
	if rows := results.SummaryRows(f); len(rows) != 16 {
		t.Fatalf("%d summary rows", len(rows))
	}

	// Compare: a gVisor-only file against a kernel-only file has nothing in common.
	gv, kn := &results.File{Schema: 1}, &results.File{Schema: 1}
	for _, r := range f.Runs {
		if r.StackName() == "kernel" {
			kn.Runs = append(kn.Runs, r)
		} else {
			gv.Runs = append(gv.Runs, r)
		}
	}
	if _, err := results.Compare(gv, kn, results.CompareOptions{}); err == nil || !strings.Contains(err.Error(), "Linux kernel stack") {
		t.Fatalf("gVisor against kernel compared: %v", err)
	}
	// Both-stacks file against itself: every change pairs a stack with itself.
	c, err := results.Compare(f, f, results.CompareOptions{Metrics: []string{"p99", "late200"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Changes) != 16*2 || len(c.Regressions()) != 0 {
		t.Fatalf("%d changes, %d regressions", len(c.Changes), len(c.Regressions()))
	}
	// History keeps a line per stack.
	h, err := results.NewHistory([]*results.File{f, f}, []string{"a", "b"}, results.HistoryOptions{Metric: "p99", Transports: []string{"websocket"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Conds) != 4 {
		t.Fatalf("history conditions %v, want both losses on both stacks", h.Conds)
	}
	kernelKey := results.Key{Transport: "websocket", Cond: results.Cond{DelayMS: 20, Loss: 0.02, Stack: "kernel"}}
	gvisorKey := results.Key{Transport: "websocket", Cond: results.Cond{DelayMS: 20, Loss: 0.02}}
	if h.Values[kernelKey][0] == h.Values[gvisorKey][0] {
		t.Fatal("history mixed the stacks")
	}

	// CSV: a stack column and the late shares.
	var buf bytes.Buffer
	if err := results.WriteCSV(&buf, f); err != nil {
		t.Fatal(err)
	}
	rows, _ := csv.NewReader(&buf).ReadAll()
	head := rows[0]
	for _, col := range []string{"stack", "late_100ms_pct", "late_200ms_pct", "late_400ms_pct", "late_1000ms_pct"} {
		if !slices.Contains(head, col) {
			t.Fatalf("CSV lacks %s: %v", col, head)
		}
	}
	stacks := map[string]int{}
	for _, r := range rows[1:] {
		stacks[r[slices.Index(head, "stack")]]++
	}
	if stacks["gvisor"] != 16 || stacks["kernel"] != 16 {
		t.Fatalf("CSV stacks %v", stacks)
	}
}

// A file from before stacks (the committed baseline) reads as gVisor: it compares with a new
// gVisor file and is written back with "stack": "gvisor".
func TestOldFileIsGVisor(t *testing.T) {
	base, err := results.ReadJSONFile("baseline/quick.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile("baseline/quick.json")
	old := !bytes.Contains(raw, []byte(`"stack"`))
	for _, r := range base.Runs {
		if r.StackName() != "gvisor" || (old && r.Late != nil) {
			t.Fatalf("baseline run %s: stack %q late %v", r.Ident(), r.StackName(), r.Late)
		}
	}
	newer := resultstest.File(resultstest.Options{Seed: 1, Transports: []string{"websocket", "wt-uni"}, Losses: []float64{0, 0.02}, DelayMS: 20})
	for i := range newer.Runs {
		newer.Runs[i].Stack = "gvisor"
	}
	if _, err := results.Compare(base, newer, results.CompareOptions{}); err != nil {
		t.Fatalf("an old gVisor file and a new one do not compare: %v", err)
	}
	if old {
		var buf bytes.Buffer
		if err := results.WriteJSON(&buf, base); err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(buf.Bytes(), []byte(`"stack": "gvisor"`)) || !bytes.Contains(buf.Bytes(), []byte("\n  \"stack\": \"gvisor\",")) {
			t.Fatal("an old file is not written back with its stack")
		}
		// Its report has no late shares to show: a dash, not a 0.
		var md bytes.Buffer
		if err := results.WriteReportMD(&md, base, nil); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(md.String(), "| **–** | – |") || !strings.Contains(md.String(), "TCP/IP: gVisor netstack (userspace)") {
			t.Fatalf("old file's report:\n%.1500s", md.String())
		}
	}
}

func TestReportGVisorAgainstLinux(t *testing.T) {
	f := bothStacks()
	dir := t.TempDir()
	if _, err := results.WriteDir(dir, f); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	html, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	for _, want := range []string{
		"TCP/IP: gVisor netstack (userspace) and Linux kernel stacks in network namespaces",
		"## gVisor against Linux",
		"| transport | condition | p99 ms | later than 200 ms | later than 400 ms | stall rate | collateral share | bytes/copy | server µs/copy |",
		"| websocket | 2% loss, 20 ms one way |",
		"gVisor's TCP tail is more than 2× Linux's",
		"The QUIC transports run the same quic-go on both stacks",
		"![", "stacks-late-20ms-loss2pct.png",
		"| later than 200 ms | later than 400 ms |", // the main table
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	for _, want := range []string{"gVisor against Linux", "TCP/IP: gVisor netstack", `id="stacks-late-20ms-loss2pct"`} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	for _, name := range []string{"stacks-late-20ms-loss2pct.png", "stacks-late-20ms-loss2pct.svg", "stacks-tail-20ms-loss2pct.png", "stacks-tail-20ms-loss2pct.svg", "cdf-20ms-loss2pct-kernel.png"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("missing %s", name)
		}
	}
	if tl, _ := filepath.Glob(filepath.Join(dir, "timeline-*-20ms-loss2pct-kernel-r0.png")); len(tl) != 2 {
		t.Errorf("kernel timelines %v, want two (TCP and QUIC)", tl)
	}
	back, err := results.ReadJSONFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if back.Stack != "gvisor,kernel" || back.Runs[0].Late == nil {
		t.Fatalf("results.json: stack %q, late %v", back.Stack, back.Runs[0].Late)
	}
	js, _ := os.ReadFile(filepath.Join(dir, "results.json"))
	for _, want := range []string{`"stack": "gvisor,kernel"`, `"stack": "kernel"`, `"late": {`, `"1000": `} {
		if !bytes.Contains(js, []byte(want)) {
			t.Errorf("results.json lacks %s", want)
		}
	}

	// The pairs and their reading, by the numbers.
	pairs := results.StackPairs(f)
	if len(pairs) != 8 {
		t.Fatalf("%d pairs, want 8", len(pairs))
	}
	for _, p := range pairs {
		if p.GVisor.Stack() != "gvisor" || p.Linux.Stack() != "kernel" || p.GVisor.Transport != p.Linux.Transport || p.GVisor.Cond.Link() != p.Linux.Cond.Link() {
			t.Fatalf("pair %+v", p)
		}
	}
	reading := strings.Join(results.StackReading(f), "\n")
	for _, p := range pairs {
		if !p.TCP || p.Cond.Loss == 0 {
			continue
		}
		if !strings.Contains(reading, p.Transport+" at 2% loss, gVisor had") {
			t.Errorf("reading lacks %s:\n%s", p.Transport, reading)
		}
	}

	// Within 2×: said as such.
	g := handStacks(0.02, 0.004, 0.024, 0.003)
	r := strings.Join(results.StackReading(g), "\n")
	if !strings.Contains(r, "copies later than 200 ms 0.83× Linux's share (2.00% against 2.40%; 200 and 240 copies)") || !strings.Contains(r, "within 2× of Linux") ||
		!strings.Contains(r, "for no TCP transport under loss (1 points) was gVisor's share of copies later than 200 or 400 ms more than 2× Linux's") || !strings.Contains(r, "One run per point") {
		t.Errorf("within 2×:\n%s", r)
	}
	// Beyond: said plainly, with the ratio.
	g = handStacks(0.022, 0.018, 0.026, 0.0037)
	r = strings.Join(results.StackReading(g), "\n")
	if !strings.Contains(r, "copies later than 400 ms 4.9× Linux's share (1.80% against 0.37%; 180 and 37 copies)") || !strings.Contains(r, "gVisor's tail is more than 2× Linux's (up to 4.9×)") ||
		!strings.Contains(r, "more than 2× Linux's for 1 of 1 TCP points under loss: websocket at 2% loss (> 200 ms 0.85×, > 400 ms 4.9×)") {
		t.Errorf("beyond 2×:\n%s", r)
	}
	if !strings.Contains(strings.Join(results.Reading(g), "\n"), "gVisor's TCP tail is more than 2× Linux's") {
		t.Error("the main reading does not carry the verdict")
	}
	// Shorter than half: said too.
	g = handStacks(0.01, 0.001, 0.026, 0.0037)
	r = strings.Join(results.StackReading(g), "\n")
	if !strings.Contains(r, "gVisor's tail is shorter than Linux's") || !strings.Contains(r, "It is shorter than half of Linux's for websocket at 2% loss") {
		t.Errorf("shorter:\n%s", r)
	}
	// One stack: no section, no pairs.
	one := resultstest.File(resultstest.Options{Seed: 1, Transports: []string{"websocket"}, Repeats: 1, Samples: 50})
	if results.StackPairs(one) != nil || results.StackReading(one) != nil {
		t.Fatal("a one-stack file has pairs")
	}
	var buf bytes.Buffer
	_ = results.WriteReportMD(&buf, one, nil)
	if strings.Contains(buf.String(), "gVisor against Linux") || !strings.Contains(buf.String(), "**TCP/IP: gVisor netstack (userspace).**") {
		t.Errorf("one-stack report:\n%.400s", buf.String())
	}
	for i := range one.Runs {
		one.Runs[i].Stack = "kernel"
	}
	one.Stack = ""
	buf.Reset()
	_ = results.WriteReportMD(&buf, one, nil)
	if !strings.Contains(buf.String(), "**TCP/IP: Linux kernel stacks in network namespaces.**") {
		t.Errorf("kernel report:\n%.400s", buf.String())
	}
}

// handStacks is websocket at 0% and 2% on both stacks with the given late shares at 2%.
func handStacks(g200, g400, l200, l400 float64) *results.File {
	run := func(stack string, loss, l200, l400 float64) results.Run {
		return results.Run{Transport: "websocket", Stack: stack, Loss: loss, DelayMS: 20, Delivered: 10000, Expected: 10000,
			Latency: results.Latency{P50: 42, P99: 300}, Late: &results.Late{Over100: math.Max(l200, 0.03), Over200: l200, Over400: l400},
			Stalls: results.Stalls{Count: 300, Collateral: 200}, Server: results.ServerLoad{BytesPerMsg: 260, CPUUSPerMsg: 40}}
	}
	return &results.File{Schema: 1, Scenario: "hand", Runs: []results.Run{
		run("gvisor", 0, 0, 0), run("kernel", 0, 0, 0), run("gvisor", 0.02, g200, g400), run("kernel", 0.02, l200, l400),
	}}
}
