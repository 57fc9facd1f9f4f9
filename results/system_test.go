package results_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/wirelab/wirelab/results"
)

// System stalls (the machine, not the network) are shown apart from head-of-line ones wherever
// collateral stalls are: the reading, both reports' tables, the CSV, the stalls chart and the
// timeline; a file without them shows no system column or series.
func TestSystemStallsShown(t *testing.T) {
	plain := handFile()
	var md bytes.Buffer
	if err := results.WriteReportMD(&md, plain, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(md.String(), "| system |") || strings.Contains(strings.Join(results.Reading(plain), "\n"), "system") {
		t.Errorf("a file without system stalls shows a system column or reading")
	}

	f := handFile()
	ws := &f.Runs[4] // websocket at 2%: 100 stalls, 61 collateral
	ws.Stalls.Collateral, ws.Stalls.System = 40, 21
	for i := 0; i < 200; i++ {
		s := results.Sample{T: float64(i) / 100, LatencyMS: 42}
		switch {
		case i >= 100 && i < 110:
			s.LatencyMS, s.Stall, s.System = 150, true, true
		case i == 150:
			s.LatencyMS, s.Stall, s.HOL = 250, true, true
		}
		ws.Samples = append(ws.Samples, s)
	}
	reading := strings.Join(results.Reading(f), "\n")
	for _, want := range []string{
		"websocket 100 (10.0% of 1,000 delivered, 40% head-of-line, 21% system: the machine, not the network)",
		"(system stalls: the machine, not the network, delayed them; see the warnings): websocket at 2% loss 21 of 1,000 delivered.",
	} {
		if !strings.Contains(reading, want) {
			t.Errorf("reading lacks %q:\n%s", want, reading)
		}
	}
	md.Reset()
	if err := results.WriteReportMD(&md, f, nil); err != nil {
		t.Fatal(err)
	}
	var header, sep, row string
	for _, line := range strings.Split(md.String(), "\n") {
		switch {
		case strings.HasPrefix(line, "| transport | condition |") && header == "":
			header = line
		case strings.HasPrefix(line, "| --- | --- |") && sep == "":
			sep = line
		case strings.HasPrefix(line, "| websocket | 2% loss"):
			row = line
		}
	}
	if !strings.Contains(header, "| collateral | system |") || !strings.Contains(row, "| 40 (40%) | 21 (21%) |") {
		t.Errorf("report.md's summary has no system column beside collateral:\n%s\n%s", header, row)
	}
	if n, m, k := strings.Count(header, "|"), strings.Count(sep, "|"), strings.Count(row, "|"); n != m || n != k {
		t.Errorf("report.md's summary: %d, %d and %d cell borders in header, separator and row", n, m, k)
	}
	if !strings.Contains(md.String(), "system ones lost none of their own packets either") {
		t.Errorf("report.md does not say what a system stall is")
	}
	var html bytes.Buffer
	if err := results.WriteReportHTML(&html, f, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html.String(), "<th>system</th>") || !strings.Contains(html.String(), "<td>21 (21%)</td>") {
		t.Errorf("report.html's summary has no system column")
	}
	var csv bytes.Buffer
	if err := results.WriteCSV(&csv, f); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(csv.String(), "\n")
	col := -1
	for i, h := range strings.Split(lines[0], ",") {
		if h == "stalls_system_copies" {
			col = i
		}
	}
	if col < 0 {
		t.Fatalf("results.csv has no stalls_system_copies column: %s", lines[0])
	}
	found := false
	for _, l := range lines[1:] {
		cells := strings.Split(l, ",")
		found = found || len(cells) > col && strings.HasPrefix(l, "websocket,2,") && cells[col] == "21"
	}
	if !found {
		t.Errorf("results.csv's websocket 2%% row does not hold 21 system stalls:\n%s", csv.String())
	}

	figs, err := results.Plots(f)
	if err != nil {
		t.Fatal(err)
	}
	var stalls, timeline bool
	for _, fig := range figs {
		switch {
		case strings.HasPrefix(fig.Name, "stalls-vs-loss"):
			stalls = bytes.Contains(fig.SVG, []byte("system (the machine)")) && strings.Contains(fig.Caption, "System stalls")
		case strings.HasPrefix(fig.Name, "timeline-websocket"):
			timeline = bytes.Contains(fig.SVG, []byte("system stall (the machine, no loss) (10)")) && strings.Contains(fig.Caption, "system stalls")
		}
	}
	if !stalls || !timeline {
		t.Errorf("system stalls drawn in the stalls chart %v, in the timeline %v; want both", stalls, timeline)
	}
}
