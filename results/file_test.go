package results_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wirelab/wirelab/results"
	"github.com/wirelab/wirelab/results/resultstest"
)

func TestJSONRoundTrip(t *testing.T) {
	f := resultstest.File(resultstest.Options{Seed: 1})
	// Shuffle the runs: the written order must not depend on the caller's.
	shuffled := *f
	shuffled.Runs = slices.Clone(f.Runs)
	slices.Reverse(shuffled.Runs)

	var a, b bytes.Buffer
	if err := results.WriteJSON(&a, f); err != nil {
		t.Fatal(err)
	}
	if err := results.WriteJSON(&b, &shuffled); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("WriteJSON output depends on the order of runs")
	}
	if !bytes.Contains(a.Bytes(), []byte("\n  \"scenario\": \"synthetic\"")) {
		t.Fatalf("not indented:\n%.300s", a.String())
	}
	for _, field := range []string{`"schema": 1`, `"latency_ms"`, `"p999"`, `"stalls"`, `"collateral"`, `"loss_measured"`, `"cpu_us_per_msg"`, `"rss_peak_bytes"`, `"bytes_per_msg"`, `"goroutines_peak"`, `"out_of_order"`, `"delay_ms"`, `"repeat"`} {
		if !bytes.Contains(a.Bytes(), []byte(field)) {
			t.Errorf("results.json lacks %s", field)
		}
	}
	got, err := results.ReadJSON(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Runs) != len(f.Runs) || got.Runs[0].Transport != "shortpoll" || got.Runs[len(got.Runs)-1].Transport != "wt-datagram" {
		t.Fatalf("runs after round trip: %d, first %q", len(got.Runs), got.Runs[0].Transport)
	}
	if !got.Started.Equal(f.Started) || got.Runs[5].Latency != f.Runs[5].Latency || len(got.Runs[5].Samples) != len(f.Runs[5].Samples) {
		t.Fatal("round trip changed figures")
	}
	if len(f.Runs) != 8*3*3 {
		t.Fatalf("synthetic file has %d runs, want 72", len(f.Runs))
	}
}

func TestReadJSONErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		schema         bool
	}{
		{"not json", "hello", "not JSON results", true},
		{"array", "[1,2]", "not JSON results", true},
		{"no schema", `{"runs":[]}`, `no "schema" field`, true},
		{"schema string", `{"schema":"one","runs":[]}`, `not a version number`, true},
		{"newer", `{"schema":2,"runs":[]}`, "newer wirelab", true},
		{"older", `{"schema":0,"runs":[]}`, "schema 0 is not one", true},
		{"no runs", `{"schema":1}`, `no "runs"`, true},
		{"bad type", `{"schema":1,"runs":[{"transport":"websocket","sent":"many"}]}`, `field "runs.sent" holds a JSON string`, false},
		{"no transport", `{"schema":1,"runs":[{"loss":0}]}`, "runs[0] has no transport", false},
		{"loss as percent", `{"schema":1,"runs":[{"transport":"websocket","loss":2}]}`, "loss 2 is not a fraction", false},
		{"negative delay", `{"schema":1,"runs":[{"transport":"websocket","delay_ms":-20}]}`, "negative delay_ms", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := results.ReadJSON(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if errors.Is(err, results.ErrSchema) != tc.schema {
				t.Fatalf("errors.Is(err, ErrSchema) = %v, want %v", !tc.schema, tc.schema)
			}
		})
	}
}

func TestReadJSONFileNamesPath(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(p, []byte(`{"schema":7,"runs":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := results.ReadJSONFile(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+": ") {
		t.Fatalf("error %v does not start with the path", err)
	}
}

func TestWriteJSONRejectsNaN(t *testing.T) {
	f := resultstest.File(resultstest.Options{Seed: 2, Transports: []string{"websocket"}, Repeats: 1, Samples: 10})
	f.Runs[1].Latency.P99 = math.NaN()
	err := results.WriteJSON(&bytes.Buffer{}, f)
	if err == nil || !strings.Contains(err.Error(), "latency_ms.p99 is NaN") || !strings.Contains(err.Error(), "websocket 2% loss") {
		t.Fatalf("error %v, want it to name the run and field", err)
	}
}

func TestWriteCSV(t *testing.T) {
	f := resultstest.File(resultstest.Options{Seed: 3})
	f.Runs[0].Warnings = []string{"harness short of CPU", "link queue grew to 9000 packets"}
	var buf bytes.Buffer
	if err := results.WriteCSV(&buf, f); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+len(f.Runs) {
		t.Fatalf("%d rows, want a header and %d runs", len(rows), len(f.Runs))
	}
	head := rows[0]
	for _, col := range head {
		known := []string{"transport", "stack", "repeat", "warnings"}
		units := []string{"_ms", "_pct", "_bytes", "_s", "_msgs", "_copies", "_packets", "_per_msg", "_peak", "_requests", "_count"}
		ok := slices.Contains(known, col)
		for _, u := range units {
			ok = ok || strings.HasSuffix(col, u)
		}
		if !ok {
			t.Errorf("column %q does not say its unit", col)
		}
	}
	idx := func(name string) int {
		i := slices.Index(head, name)
		if i < 0 {
			t.Fatalf("no column %q in %v", name, head)
		}
		return i
	}
	sorted := results.SortedRuns(f)
	r := rows[1+4] // shortpoll, 2% loss, repeat 1
	if r[idx("transport")] != sorted[4].Transport || r[idx("loss_pct")] != "2" || r[idx("repeat")] != "1" {
		t.Fatalf("row 5: %v", r[:5])
	}
	if got := rows[1][idx("warnings")]; got != "harness short of CPU; link queue grew to 9000 packets" {
		t.Fatalf("warnings column %q", got)
	}
	if slices.Contains(head, "samples") || slices.Contains(head, "drops_s") {
		t.Fatal("samples and drops belong in results.json only")
	}
}

func FuzzReadJSON(f *testing.F) {
	var buf bytes.Buffer
	file := resultstest.File(resultstest.Options{Seed: 4, Transports: []string{"websocket", "wt-uni"}, Repeats: 1, Samples: 5})
	if err := results.WriteJSON(&buf, file); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"schema":1,"runs":[{"transport":"sse","loss":0.5,"samples":[{"t":1,"ms":2}]}]}`))
	f.Add([]byte(`{"schema":2}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := results.ReadJSON(bytes.NewReader(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "results: ") {
				t.Fatalf("error %q does not say where it comes from", err)
			}
			return
		}
		// What reads must write and read back the same.
		var out bytes.Buffer
		if err := results.WriteJSON(&out, got); err != nil {
			t.Fatalf("a file that read cannot be written: %v", err)
		}
		if _, err := results.ReadJSON(&out); err != nil {
			t.Fatalf("a file that was written cannot be read: %v", err)
		}
	})
}

func TestWriteJSONValidates(t *testing.T) {
	f := resultstest.File(resultstest.Options{Seed: 2, Transports: []string{"websocket"}, Repeats: 1, Samples: 10})
	f.Runs[1].Loss = 2 // 2%, written as a percentage
	if err := results.WriteJSON(&bytes.Buffer{}, f); err == nil || !strings.Contains(err.Error(), "loss 2 is not a fraction between 0 and 1 (2% is 0.02)") {
		t.Fatalf("loss as a percentage: %v", err)
	}
}

// Implausible figures are written and read, and listed as problems the report shows.
func TestProblems(t *testing.T) {
	f := resultstest.File(resultstest.Options{Seed: 2, Transports: []string{"websocket"}, Repeats: 1, Samples: 10})
	if p := results.Problems(f); len(p) != 0 {
		t.Fatalf("synthetic file has problems: %v", p)
	}
	f.Runs = append(f.Runs, f.Runs[1]) // a Gilbert-Elliott run without its Burst looks like this
	f.Runs[0].Lost = -3
	f.Runs[0].Samples[0].T = -0.3 // sent in warmup, received in the window: fine
	f.Runs[1].Samples[2].LatencyMS = -1
	var buf bytes.Buffer
	if err := results.WriteJSON(&buf, f); err != nil {
		t.Fatal(err)
	}
	back, err := results.ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(results.Problems(back), "\n")
	for _, want := range []string{"runs[0] (websocket 0% loss 20ms #0): lost is negative (-3)", "samples[2].ms is negative (-1)", "runs[2] (websocket 2% loss 20ms #0) repeats runs[1]"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, ".t is") {
		t.Errorf("a sample before the window is not a problem:\n%s", got)
	}
	md := &bytes.Buffer{}
	if err := results.WriteReportMD(md, back, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "lost is negative (-3)") {
		t.Errorf("report.md does not show the problems:\n%.600s", md.String())
	}
}

// TestCarrier: every run written says its carrier; a run from a file written before carriers
// (none in the JSON) is read with the carrier its transport's name implied then.
func TestCarrier(t *testing.T) {
	f := resultstest.File(resultstest.Options{Seed: 1, Transports: []string{"websocket", "wt-uni", "auto"}})
	want := map[string]string{"websocket": results.CarrierTCP, "wt-uni": results.CarrierQUIC, "auto": results.CarrierQUIC}
	var buf bytes.Buffer
	if err := results.WriteJSON(&buf, f); err != nil {
		t.Fatal(err)
	}
	if n, runs := bytes.Count(buf.Bytes(), []byte(`"carrier": "`)), len(f.Runs); n != runs {
		t.Fatalf("%d carriers written for %d runs", n, runs)
	}
	old := regexp.MustCompile(`\s*"carrier": "[a-z]+",`).ReplaceAll(buf.Bytes(), nil)
	if bytes.Contains(old, []byte(`"carrier"`)) {
		t.Fatal("the test did not strip the carriers")
	}
	for name, data := range map[string][]byte{"new": buf.Bytes(), "before carriers": old} {
		g, err := results.ReadJSON(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i := range g.Runs {
			r := &g.Runs[i]
			if got := r.CarrierName(); got != want[r.Transport] {
				t.Errorf("%s: %s has carrier %q, want %q", name, r.Ident(), got, want[r.Transport])
			}
			if r.IsTCP() != (want[r.Transport] == results.CarrierTCP) {
				t.Errorf("%s: %s: IsTCP %v", name, r.Ident(), r.IsTCP())
			}
		}
		if !g.TCP("websocket") || g.TCP("wt-uni") || g.TCP("absent") {
			t.Errorf("%s: File.TCP: websocket %v, wt-uni %v, absent %v", name, g.TCP("websocket"), g.TCP("wt-uni"), g.TCP("absent"))
		}
	}
}

// TestOrder: transports are shown in File.Order (the lab's table), which is not written; a file
// read back shows them in the order of its runs, which WriteJSON wrote in that order.
func TestOrder(t *testing.T) {
	for _, order := range [][]string{
		{"shortpoll", "websocket", "wt-uni"},
		{"wt-uni", "websocket", "shortpoll"},
	} {
		f := resultstest.File(resultstest.Options{Seed: 1, Transports: []string{"websocket", "shortpoll", "wt-uni"}})
		f.Order = slices.Clone(order)
		f.Runs = append(f.Runs, f.Runs[0])
		f.Runs[len(f.Runs)-1].Transport = "carrier-pigeon" // not in Order: after it
		want := append(slices.Clone(order), "carrier-pigeon")
		if got := results.Transports(f); !slices.Equal(got, want) {
			t.Fatalf("Order %v: transports %v, want %v", order, got, want)
		}
		var buf bytes.Buffer
		if err := results.WriteJSON(&buf, f); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(buf.Bytes(), []byte(`"order"`)) {
			t.Fatal("Order was written")
		}
		g, err := results.ReadJSON(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := results.Transports(g); !slices.Equal(got, want) {
			t.Fatalf("Order %v: read back, transports %v, want %v", order, got, want)
		}
		if gs := results.Groups(g); gs[0].Transport != order[0] || gs[len(gs)-1].Transport != "carrier-pigeon" {
			t.Fatalf("Order %v: groups run from %s to %s", order, gs[0].Key, gs[len(gs)-1].Key)
		}
	}
}
