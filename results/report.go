package results

import (
	"encoding/base64"
	"fmt"
	htmltemplate "html/template"
	"io"
	"strings"
	texttemplate "text/template"
	"time"
)

// reportData is what both report templates read.
type reportData struct {
	F        *File
	Title    string
	Started  string
	Rows     []Row
	Reading  []string
	Warnings []string // grouped by text
	Warned   int      // warnings over all runs
	Figures  []Figure
	Facts    [][2]string // machine, versions and provenance, label -> value
	RSS      bool        // some run measured server memory per session: show the column
	System   bool        // some run had system stalls: show their column
	CI       bool        // the file has a summary: intervals in the table
	Cluster  []Run       // runs on several server nodes (scenario nodes > 1)
	// Stack says the TCP/IP stack(s) the runs used, for the header.
	Stack string
	// The "gVisor against Linux" section, when the file holds runs on both stacks.
	StackHead    []string
	StackRows    [][]string
	StackReading []string
	StackFigures []Figure
	// The "Peer servers" section, when the file holds PEER/TRANSPORT runs beside wirelab's
	// matching transports (issue 14).
	PeerHead    []string
	PeerRows    [][]string
	PeerReading []string
}

// StackLine says in the report's header which TCP/IP stack the runs used.
func StackLine(f *File) string {
	const (
		gv = "gVisor netstack (userspace)"
		lx = "Linux kernel stacks in network namespaces"
	)
	var parts []string
	for _, s := range Stacks(f) {
		switch s {
		case StackGVisor:
			parts = append(parts, gv)
		case StackKernel:
			parts = append(parts, lx)
		default:
			parts = append(parts, s)
		}
	}
	switch len(parts) {
	case 0:
		return "TCP/IP: " + gv
	case 1:
		return "TCP/IP: " + parts[0]
	}
	return "TCP/IP: " + strings.Join(parts, " and ") + ", each transport and condition run on both (see gVisor against Linux)"
}

func newReportData(f *File, figs []Figure) reportData {
	d := reportData{
		F:        f,
		Title:    "wirelab: " + scenarioName(f),
		Rows:     SummaryRows(f),
		Reading:  Reading(f),
		Warnings: append(Problems(f), warningLines(f)...),
		Warned:   len(warnedRuns(f)) + len(Problems(f)),
		Stack:    StackLine(f),
	}
	for _, fig := range figs {
		if strings.HasPrefix(fig.Name, "stacks-") {
			d.StackFigures = append(d.StackFigures, fig)
		} else {
			d.Figures = append(d.Figures, fig)
		}
	}
	if pairs := StackPairs(f); len(pairs) > 0 {
		d.StackHead, d.StackRows = StackTable(pairs)
		d.StackReading = StackReading(f)
	}
	if rows := PeerRows(f); len(rows) > 0 {
		d.PeerHead, d.PeerRows = peerTable(rows)
		d.PeerReading = PeerReading(rows)
	}
	if !f.Started.IsZero() {
		d.Started = f.Started.UTC().Format(time.RFC3339)
	}
	for _, r := range d.Rows {
		d.RSS = d.RSS || r.RSSPerSess > 0
		d.System = d.System || r.System > 0
		d.CI = d.CI || r.CI
	}
	for _, r := range f.Runs {
		if r.Cluster != nil {
			d.Cluster = append(d.Cluster, r)
		}
	}
	if len(d.Cluster) > 0 {
		d.Reading = append(d.Reading, clusterReading(d.Cluster))
	}
	// A warning every run carries is said once, at the top, not on every row.
	common := commonWarnings(f)
	for i := range d.Rows {
		var keep []string
		for _, w := range d.Rows[i].Warnings {
			if _, text, ok := strings.Cut(w, ": "); ok && strings.HasPrefix(w, "repeat ") && common[text] || common[w] {
				continue
			}
			keep = append(keep, w)
		}
		d.Rows[i].Warnings = keep
	}
	m := f.Machine
	add := func(k, v string) {
		if strings.TrimSpace(v) != "" && v != "0" {
			d.Facts = append(d.Facts, [2]string{k, v})
		}
	}
	add("scenario", f.Scenario)
	add("started", d.Started)
	add("seed", fmt.Sprint(f.Seed))
	add("commit", f.Commit)
	add("go", f.Go)
	add("loss model", f.LossModel)
	add("TCP/IP stack", strings.TrimPrefix(d.Stack, "TCP/IP: "))
	if f.PollIntervalMS > 0 {
		add("poll interval", num(f.PollIntervalMS)+" ms")
	}
	add("machine", strings.TrimSpace(fmt.Sprintf("%s/%s, %d CPUs", m.OS, m.Arch, m.CPUs)))
	add("CPU", m.CPUModel)
	if m.MemBytes > 0 {
		add("memory", fmt.Sprintf("%.1f GiB", float64(m.MemBytes)/(1<<30)))
	}
	add("kernel", m.Kernel)
	if m.KernelTCPCC != "" {
		add("Linux TCP congestion control", m.KernelTCPCC+" (the kernel stack's namespaces)")
	}
	add("host", m.Hostname)
	v := f.Versions
	add("wirelab", v.Wirelab)
	add("quic-go", v.QuicGo)
	add("webtransport-go", v.WebTrans)
	add("gorilla/websocket", v.Gorilla)
	add("gVisor", v.GVisor)
	add("gonum/plot", v.GonumPlot)
	l := labPeak(f)
	add("lab (harness) CPU", fmt.Sprintf("%s CPU-s, %.0f%% of the cores; sender lag p99 %s ms; link queue peak %s packets; scheduler delay p99 %s ms",
		num(l.CPUSeconds), 100*l.CPUShare, num(l.SendLagP99), group3(l.QueuePeak), num(l.SchedulerMS)))
	return d
}

// clusterReading says in words what the nodes cost: cross-node against same-node latency and
// Redis's CPU per delivered copy, over every cluster run.
func clusterReading(runs []Run) string {
	var cross, same, redis float64
	var n int
	nodes := 0
	for _, r := range runs {
		c := r.Cluster
		if c.CrossCopies == 0 {
			continue
		}
		cross += c.CrossNode.P50
		same += c.SameNode.P50
		redis += c.RedisCPUUSPerMsg
		nodes = c.Nodes
		n++
	}
	if n == 0 {
		return "the cluster runs delivered no copy across nodes"
	}
	cross, same, redis = cross/float64(n), same/float64(n), redis/float64(n)
	return fmt.Sprintf("on %d nodes, copies that crossed nodes had a median latency of %s ms against %s ms for copies whose sender was on the recipient's node (%+.1f ms; every copy passes through Redis either way), and Redis spent %s µs of CPU per delivered copy (mean over %d runs)",
		nodes, num(cross), num(same), cross-same, num(redis), n)
}

var funcs = map[string]any{
	"num": num,
	"kb": func(b float64) string {
		if b == 0 {
			return "–"
		}
		return num(b / 1e3)
	},
	"measured": func(x float64) string {
		if x == 0 {
			return "–"
		}
		return num(x)
	},
	"int": group3,
	"ci": func(ci [2]float64, ok bool) string {
		if !ok {
			return ""
		}
		return " (" + ciCell(ci, true) + ")"
	},
	"cipct":  func(ci [2]float64) string { return sharePct(ci[0]) + "–" + sharePct(ci[1]) },
	"late":   sharePct,
	"pct":    pct,
	"share":  func(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) },
	"cond":   func(c Cond) string { return c.String() },
	"b64":    func(b []byte) string { return base64.StdEncoding.EncodeToString(b) },
	"join":   strings.Join,
	"mdcell": func(s string) string { return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s) },
	"color": func(f *File, t string) htmltemplate.CSS {
		c := f.TransportColor(t)
		return htmltemplate.CSS(fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B))
	},
	"holpct": func(r Row) string {
		if r.Stalls == 0 {
			return ""
		}
		return fmt.Sprintf(" (%.0f%%)", 100*float64(r.Collateral)/float64(r.Stalls))
	},
	"syspct": func(r Row) string {
		if r.Stalls == 0 {
			return ""
		}
		return fmt.Sprintf(" (%.0f%%)", 100*float64(r.System)/float64(r.Stalls))
	},
}

var htmlReport = htmltemplate.Must(htmltemplate.New("report.html").Funcs(funcs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.86rem;margin:.5rem 0}
th,td{border:1px solid #ccc;padding:.25rem .45rem;text-align:right;vertical-align:top}
th{background:#f3f3f3} td.l,th.l{text-align:left}
tr.warn td{background:#fff3f0}
.warnings{background:#b00020;color:#fff;padding:.8rem 1rem;border-radius:6px;margin:1rem 0}
.warnings h2{color:#fff;border:none;margin:0 0 .4rem}
.warnings li{margin:.1rem 0}
.rowwarn{color:#b00020;font-weight:600;text-align:left}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.3em;vertical-align:-.05em}
figure{margin:1.5rem 0} figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9rem;color:#444}
pre{background:#f7f7f7;padding:.7rem;overflow:auto;font-size:.85rem}
dl{display:grid;grid-template-columns:max-content auto;gap:.15rem 1rem;font-size:.9rem} dt{font-weight:600}
dd{margin:0}
</style></head><body>
<h1>{{.Title}}</h1>
<p><b>{{.Stack}}.</b> {{with .Started}}Started {{.}}. {{end}}{{len .F.Runs}} runs, {{len .Rows}} transport × condition points.</p>
{{if .Warnings}}<div class="warnings" role="alert"><h2>⚠ {{.Warned}} warning(s): some figures may be late because of the lab, not the transport</h2><ul>
{{range .Warnings}}<li>{{.}}</li>
{{end}}</ul></div>{{end}}
<h2>Reading</h2>
<ul>{{range .Reading}}<li>{{.}}</li>
{{end}}</ul>
<h2>Summary</h2>
<p>{{if .CI}}p50 and p99: every copy of all repeats pooled, with the 95% confidence interval in brackets (a bootstrap over sessions and blocks of messages: docs/METRICS.md); stall rate likewise{{else}}Medians over repeats for latency (no intervals: the file has no summary){{end}}; sums over repeats for counts; means for bytes and CPU (– where not measured). Later than 200 / 400 ms: the share of every delivered copy (all repeats) that arrived later than that, end to end. Stalls: copies later than the transport's no-loss p99 plus one RTT; collateral ones (head-of-line) lost none of their own packets and waited behind another's loss{{if .System}}; system ones lost none of their own packets either but were late together with many senders' messages across many sessions: the machine (a server or lab short of CPU) delayed them, not the network{{end}}.</p>
<table>
<tr><th class="l">transport</th><th class="l">condition</th><th>repeats</th><th>p50 ms</th><th>p99 ms</th>{{if .CI}}<th>stall rate (95% CI)</th>{{end}}<th>later than 200 ms</th><th>later than 400 ms</th><th>lost</th><th>dup</th><th>stalls</th><th>collateral</th>{{if .System}}<th>system</th>{{end}}<th>bytes/msg</th><th>server µs/msg</th>{{if .RSS}}<th>server KB/session</th>{{end}}<th>lab CPU</th><th class="l">warnings</th></tr>
{{range .Rows}}<tr{{if .Warnings}} class="warn"{{end}}><td class="l"><span class="swatch" style="background:{{color $.F .Transport}}"></span>{{.Transport}}</td><td class="l">{{cond .Cond}}</td><td>{{.Repeats}}</td><td>{{num .P50}}<small>{{ci .P50CI .CI}}</small></td><td>{{num .P99}}<small>{{ci .P99CI .CI}}</small></td>{{if $.CI}}<td>{{if .CI}}{{late .PooledStallRate}} <small>({{cipct .StallRateCI95}})</small>{{end}}</td>{{end}}<td><b>{{late .Late200}}</b></td><td>{{late .Late400}}</td><td>{{int .Lost}}</td><td>{{int .Duplicates}}</td><td>{{int .Stalls}}</td><td>{{int .Collateral}}{{holpct .}}</td>{{if $.System}}<td>{{int .System}}{{syspct .}}</td>{{end}}<td>{{measured .BytesPerMsg}}</td><td>{{measured .CPUUSPerMsg}}</td>{{if $.RSS}}<td>{{kb .RSSPerSess}}</td>{{end}}<td>{{share .LabCPUShare}}</td><td class="rowwarn">{{range .Warnings}}⚠ {{.}}<br>{{end}}</td></tr>
{{end}}</table>
{{if .Cluster}}<h2>Cluster</h2>
<p>Latency of copies whose sender was on another node than the recipient (cross-node) and on the same node; the Redis server's CPU in the measured window. Server figures above add up every node.</p>
<table>
<tr><th class="l">transport</th><th>loss</th><th>repeat</th><th>nodes</th><th>cross-node p50 ms</th><th>p99 ms</th><th>same-node p50 ms</th><th>p99 ms</th><th>cross-node copies</th><th>Redis CPU s</th><th>Redis µs/copy</th></tr>
{{range .Cluster}}<tr><td class="l">{{.Transport}}</td><td>{{pct .Loss}}</td><td>{{.Repeat}}</td><td>{{.Cluster.Nodes}}</td><td>{{num .Cluster.CrossNode.P50}}</td><td>{{num .Cluster.CrossNode.P99}}</td><td>{{num .Cluster.SameNode.P50}}</td><td>{{num .Cluster.SameNode.P99}}</td><td>{{int .Cluster.CrossCopies}}</td><td>{{num .Cluster.RedisCPUS}}</td><td>{{num .Cluster.RedisCPUUSPerMsg}}</td></tr>
{{end}}</table>{{end}}
{{if .PeerRows}}<h2 id="peers">Peer servers</h2>
<p>Each peer server's transport (PEER/TRANSPORT: its own server, configured as a chat application would, behind the same link and audited the same way) beside wirelab's transport of the same kind at the same condition: every two-figure cell is peer / wirelab. Ratios are the peer's figure over wirelab's with a 95% interval from the bootstrap over sessions; "no clear difference" where the interval holds 1. A stall is a copy later than its own transport's no-loss p99 plus one RTT, so each server is measured against its own 0% run (a server slower without loss gets a higher bar); "later than 200 ms" is the same bar for both: the share of delivered copies later than 200 ms end to end. Lost: copies never delivered, summed over repeats (a peer that loses messages on a reconnect shows it here). Out of order is not measured for the peers: wirelab counts it against each session's seq, and their messages carry none (one TCP connection delivers in the server's order). Bytes: everything on the wire both ways per delivered copy; server CPU and memory per delivered copy and per session, read from the server process.</p>
<ul>{{range .PeerReading}}<li>{{.}}</li>
{{end}}</ul>
<table>
<tr>{{range $i, $h := .PeerHead}}<th{{if lt $i 4}} class="l"{{end}}>{{$h}}</th>{{end}}</tr>
{{range .PeerRows}}<tr>{{range $i, $c := .}}<td{{if lt $i 4}} class="l"{{end}}>{{$c}}</td>{{end}}</tr>
{{end}}</table>
{{end}}
{{if .StackRows}}<h2 id="stacks">gVisor against Linux</h2>
<p>Each transport and link condition on both TCP/IP stacks, behind the same emulated link: every cell is gVisor / Linux. Stall rate: stalled copies per delivered copy; collateral share: head-of-line stalls per stall; bytes and server CPU per delivered copy. The last two columns are gVisor's share of late copies divided by Linux's.</p>
<table>
<tr>{{range $i, $h := .StackHead}}<th{{if lt $i 2}} class="l"{{end}}>{{$h}}</th>{{end}}</tr>
{{range .StackRows}}<tr>{{range $i, $c := .}}<td{{if lt $i 2}} class="l"{{end}}>{{$c}}</td>{{end}}</tr>
{{end}}</table>
<ul>{{range .StackReading}}<li>{{.}}</li>
{{end}}</ul>
{{range .StackFigures}}<figure id="{{.Name}}"><img alt="{{.Title}}" src="data:image/png;base64,{{b64 .PNG}}"><figcaption><b>{{.Title}}.</b> {{.Caption}}</figcaption></figure>
{{end}}{{end}}
<h2>Plots</h2>
{{range .Figures}}<figure id="{{.Name}}"><img alt="{{.Title}}" src="data:image/png;base64,{{b64 .PNG}}"><figcaption><b>{{.Title}}.</b> {{.Caption}}</figcaption></figure>
{{end}}
<h2>Scenario, machine, versions</h2>
<dl>{{range .Facts}}<dt>{{index . 0}}</dt><dd>{{index . 1}}</dd>
{{end}}</dl>
{{with .F.ScenarioText}}<h3>Scenario file as run</h3><pre>{{.}}</pre>{{end}}
</body></html>
`))

var mdReport = texttemplate.Must(texttemplate.New("report.md").Funcs(funcs).Parse(`# {{.Title}}

**{{.Stack}}.** {{with .Started}}Started {{.}}. {{end}}{{len .F.Runs}} runs, {{len .Rows}} transport × condition points.
{{if .Warnings}}
> **⚠ {{.Warned}} warning(s): some figures may be late because of the lab, not the transport**
>
{{range .Warnings}}> - {{mdcell .}}
{{end}}{{end}}
## Reading

{{range .Reading}}- {{.}}
{{end}}
## Summary

{{if .CI}}p50 and p99: every copy of all repeats pooled, with the 95% confidence interval in brackets (a bootstrap over sessions and blocks of messages: docs/METRICS.md); stall rate likewise{{else}}Medians over repeats for latency (no intervals: the file has no summary){{end}}; sums over repeats for counts; means for bytes and CPU (– where not measured). Later than 200 / 400 ms: the share of every delivered copy (all repeats) that arrived later than that, end to end. Stalls: copies later than the transport's no-loss p99 plus one RTT; collateral ones (head-of-line) lost none of their own packets and waited behind another's loss{{if .System}}; system ones lost none of their own packets either but were late together with many senders' messages across many sessions: the machine (a server or lab short of CPU) delayed them, not the network{{end}}.

| transport | condition | repeats | p50 ms | p99 ms |{{if .CI}} stall rate (95% CI) |{{end}} later than 200 ms | later than 400 ms | lost | dup | stalls | collateral |{{if .System}} system |{{end}} bytes/msg | server µs/msg |{{if .RSS}} server KB/session |{{end}} lab CPU | warnings |
| --- | --- | ---: | ---: | ---: |{{if .CI}} ---: |{{end}} ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |{{if .System}} ---: |{{end}}{{if .RSS}} ---: |{{end}} ---: | --- |
{{range .Rows}}| {{.Transport}} | {{cond .Cond}} | {{.Repeats}} | {{num .P50}}{{ci .P50CI .CI}} | {{num .P99}}{{ci .P99CI .CI}} |{{if $.CI}} {{if .CI}}{{late .PooledStallRate}} ({{cipct .StallRateCI95}}){{end}} |{{end}} **{{late .Late200}}** | {{late .Late400}} | {{int .Lost}} | {{int .Duplicates}} | {{int .Stalls}} | {{int .Collateral}}{{holpct .}} |{{if $.System}} {{int .System}}{{syspct .}} |{{end}} {{measured .BytesPerMsg}} | {{measured .CPUUSPerMsg}} |{{if $.RSS}} {{kb .RSSPerSess}} |{{end}} {{share .LabCPUShare}} | {{range .Warnings}}⚠ {{mdcell .}} {{end}}|
{{end}}
{{if .Cluster}}## Cluster

Latency of copies whose sender was on another node than the recipient (cross-node) and on the same node; the Redis server's CPU in the measured window. Server figures above add up every node.

| transport | loss | repeat | nodes | cross-node p50 ms | p99 ms | same-node p50 ms | p99 ms | cross-node copies | Redis CPU s | Redis µs/copy |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{{range .Cluster}}| {{.Transport}} | {{pct .Loss}} | {{.Repeat}} | {{.Cluster.Nodes}} | {{num .Cluster.CrossNode.P50}} | {{num .Cluster.CrossNode.P99}} | {{num .Cluster.SameNode.P50}} | {{num .Cluster.SameNode.P99}} | {{int .Cluster.CrossCopies}} | {{num .Cluster.RedisCPUS}} | {{num .Cluster.RedisCPUUSPerMsg}} |
{{end}}
{{end}}{{if .PeerRows}}## Peer servers

Each peer server's transport (PEER/TRANSPORT: its own server, configured as a chat application would, behind the same link and audited the same way) beside wirelab's transport of the same kind at the same condition: every two-figure cell is peer / wirelab. Ratios are the peer's figure over wirelab's with a 95% interval from the bootstrap over sessions; "no clear difference" where the interval holds 1. A stall is a copy later than its own transport's no-loss p99 plus one RTT, so each server is measured against its own 0% run (a server slower without loss gets a higher bar); "later than 200 ms" is the same bar for both: the share of delivered copies later than 200 ms end to end. Lost: copies never delivered, summed over repeats. Out of order is not measured for the peers: wirelab counts it against each session's seq, and their messages carry none. Bytes: everything on the wire both ways per delivered copy; server CPU and memory per delivered copy and per session, read from the server process.

{{range .PeerReading}}- {{.}}
{{end}}
|{{range .PeerHead}} {{.}} |{{end}}
|{{range $i, $h := .PeerHead}}{{if lt $i 4}} --- |{{else}} ---: |{{end}}{{end}}
{{range .PeerRows}}|{{range .}} {{mdcell .}} |{{end}}
{{end}}
{{end}}{{if .StackRows}}## gVisor against Linux

Each transport and link condition on both TCP/IP stacks, behind the same emulated link: every cell is gVisor / Linux. Stall rate: stalled copies per delivered copy; collateral share: head-of-line stalls per stall; bytes and server CPU per delivered copy. The last two columns are gVisor's share of late copies divided by Linux's.

|{{range .StackHead}} {{.}} |{{end}}
|{{range $i, $h := .StackHead}}{{if lt $i 2}} --- |{{else}} ---: |{{end}}{{end}}
{{range .StackRows}}|{{range .}} {{mdcell .}} |{{end}}
{{end}}
{{range .StackReading}}- {{.}}
{{end}}{{range .StackFigures}}
![{{.Title}}]({{.Name}}.png)

{{.Caption}} ([SVG]({{.Name}}.svg))
{{end}}
{{end}}## Plots
{{range .Figures}}
### {{.Title}}

![{{.Title}}]({{.Name}}.png)

{{.Caption}} ([SVG]({{.Name}}.svg))
{{end}}
## Scenario, machine, versions

{{range .Facts}}- **{{index . 0}}**: {{index . 1}}
{{end}}{{with .F.ScenarioText}}
### Scenario file as run

~~~yaml
{{.}}
~~~
{{end}}`))

// commonWarnings are the warning texts every run carries.
func commonWarnings(f *File) map[string]bool {
	n := map[string]int{}
	for _, r := range f.Runs {
		seen := map[string]bool{}
		for _, w := range r.Warnings {
			if !seen[w] {
				seen[w] = true
				n[w]++
			}
		}
	}
	out := map[string]bool{}
	for w, k := range n {
		if k == len(f.Runs) && k > 1 {
			out[w] = true
		}
	}
	return out
}

// WriteReportHTML writes report.html: self-contained (plots inline as base64 PNG, styles
// inline, no scripts, fonts or links to fetch), so it opens from disk offline.
func WriteReportHTML(w io.Writer, f *File, figs []Figure) error {
	return htmlReport.Execute(w, newReportData(f, figs))
}

// WriteReportMD writes report.md; it refers to the plots as NAME.png and NAME.svg next to it.
func WriteReportMD(w io.Writer, f *File, figs []Figure) error {
	return mdReport.Execute(w, newReportData(f, figs))
}
