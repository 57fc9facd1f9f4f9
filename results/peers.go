package results

import (
	"fmt"
	"strings"
)

// Peer servers (issue 14): a run whose transport is named PEER/TRANSPORT ran a peer's own server
// (its run's server name and version say which), and it is compared with wirelab's transport of
// the same name, TRANSPORT, at the same condition: socketio/websocket with websocket,
// socketio/longpoll with longpoll, centrifugo/sse with sse.

// PeerMatch is the wirelab transport a peer transport is compared with (ok false: t is not a
// peer's).
func PeerMatch(t string) (match string, ok bool) {
	i := strings.LastIndexByte(t, '/')
	if i < 0 || i == len(t)-1 {
		return "", false
	}
	return t[i+1:], true
}

// peerFindings are the comparisons of every peer point at condition c with its wirelab match:
// p50, p99 and, under loss, the stall rate (when both stalled), from the session bootstrap.
func peerFindings(here []Key, ev map[Key]*Evidence, add func(metric string, m int, a, b Key)) {
	for _, k := range here {
		match, ok := PeerMatch(k.Transport)
		if !ok {
			continue
		}
		w := Key{match, k.Cond}
		if ev[w] == nil || !ev[w].Done() || ev[w].Summary().Copies == 0 {
			continue
		}
		add("p50", repP50, k, w)
		add("p99", repP99, k, w)
		if k.Loss > 0 && ev[k].Summary().StallRate > 0 && ev[w].Summary().StallRate > 0 {
			add("stall_rate", repStall, k, w)
		}
	}
}

// PeerRow is one peer point beside its wirelab match, for the report's peer section.
type PeerRow struct {
	Cond
	Peer, Match     string
	Server, Version string
	// The peer's and the match's rows of the summary table (the same figures: pooled p50, p99
	// and stall rate with intervals, lost summed, bytes, CPU and memory per copy or session
	// averaged over repeats); MatchFig is zero when Match is "".
	PeerFig, MatchFig Row
	// Ratios of the peer's figure to the match's: p50, p99, stall_rate (absent when not found).
	Ratios map[string]Finding
}

// PeerRows are the file's peer points, in the file's order, each with wirelab's matching
// transport at its condition when the file has one (Match "" when it has not).
func PeerRows(f *File) []PeerRow {
	rows := SummaryRows(f)
	byKey := make(map[Key]Row, len(rows))
	for _, r := range rows {
		byKey[r.Key] = r
	}
	var out []PeerRow
	for _, g := range Groups(f) {
		match, ok := PeerMatch(g.Transport)
		if !ok {
			continue
		}
		r := PeerRow{Cond: g.Cond, Peer: g.Transport, PeerFig: byKey[g.Key], Ratios: map[string]Finding{}}
		if len(g.Runs) > 0 {
			r.Server, r.Version = g.Runs[0].Server.Name, g.Runs[0].Server.Version
		}
		// Without a wirelab run of that kind here: the peer's own figures, nothing compared.
		if m, ok := byKey[Key{match, g.Cond}]; ok {
			r.Match, r.MatchFig = match, m
			for _, fd := range f.Findings {
				if fd.A == g.Transport && fd.B == match && fd.Cond() == g.Cond {
					r.Ratios[fd.Metric] = fd
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// RatioText is a finding's ratio with its interval, or "no clear difference" when the interval
// holds 1; "-" when there is none.
func (r PeerRow) RatioText(metric string) string {
	fd, ok := r.Ratios[metric]
	if !ok {
		return "-"
	}
	if fd.RatioCI95[0] <= 1 && fd.RatioCI95[1] >= 1 {
		return fmt.Sprintf("no clear difference (%.2f× [%.2f-%.2f])", fd.Ratio, fd.RatioCI95[0], fd.RatioCI95[1])
	}
	return fmt.Sprintf("%.2f× [%.2f-%.2f]", fd.Ratio, fd.RatioCI95[0], fd.RatioCI95[1])
}

// PeerReading is the peer section's sentences: per peer transport, how its p99 and stall rate
// compare with wirelab's matching transport under loss, and what it lost.
func PeerReading(rows []PeerRow) []string {
	var out []string
	for _, r := range rows {
		name := r.Server
		if r.Version != "" {
			name += " " + r.Version
		}
		if r.Match == "" {
			kind, _ := PeerMatch(r.Peer)
			out = append(out, fmt.Sprintf("%s (%s) at %s: p50 %.1f ms, p99 %.1f ms, lost %d; no wirelab %s run at this condition to compare it with (add %s to the scenario's transports).",
				r.Peer, name, r.Cond.String(), r.PeerFig.P50, r.PeerFig.P99, r.PeerFig.Lost, kind, kind))
			continue
		}
		s := fmt.Sprintf("%s (%s) against wirelab's %s at %s: p99 %s", r.Peer, name, r.Match, r.Cond.String(), r.RatioText("p99"))
		if r.Loss > 0 {
			s += ", stall rate " + r.RatioText("stall_rate")
		}
		if r.PeerFig.Lost > 0 || r.MatchFig.Lost > 0 {
			s += fmt.Sprintf("; lost copies %d against %d", r.PeerFig.Lost, r.MatchFig.Lost)
		}
		out = append(out, s+".")
	}
	return out
}

// peerTable is the report's peer section as cells: every cell that has two figures is
// peer / wirelab.
func peerTable(rows []PeerRow) (head []string, cells [][]string) {
	head = []string{"peer transport", "against", "server", "condition", "p50 ms", "p99 ms", "p99 ratio (95% CI)",
		"stall rate", "stall-rate ratio (95% CI)", "later than 200 ms", "lost", "bytes/copy", "server µs/copy", "server KB/session"}
	pair := func(a, b float64, f func(float64) string) string { return f(a) + " / " + f(b) }
	ms := func(x float64) string { return fmt.Sprintf("%.1f", x) }
	pctf := func(x float64) string { return fmt.Sprintf("%.2f%%", 100*x) }
	kbf := func(x float64) string {
		if x <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f", x/1024)
	}
	for _, r := range rows {
		if r.Match == "" {
			pair = func(a, _ float64, f func(float64) string) string { return f(a) + " / –" }
		} else {
			pair = func(a, b float64, f func(float64) string) string { return f(a) + " / " + f(b) }
		}
		server := r.Server
		if r.Version != "" {
			server += " " + r.Version
		}
		stall := "–"
		if r.Loss > 0 {
			stall = pair(r.PeerFig.PooledStallRate, r.MatchFig.PooledStallRate, pctf)
		}
		match := r.Match
		if match == "" {
			match = "–"
		}
		cells = append(cells, []string{r.Peer, match, server, r.Cond.String(),
			pair(r.PeerFig.P50, r.MatchFig.P50, ms), pair(r.PeerFig.P99, r.MatchFig.P99, ms), r.RatioText("p99"),
			stall, r.RatioText("stall_rate"), pair(r.PeerFig.Late200, r.MatchFig.Late200, sharePct),
			pair(float64(r.PeerFig.Lost), float64(r.MatchFig.Lost), func(x float64) string { return fmt.Sprintf("%d", int64(x)) }),
			pair(r.PeerFig.BytesPerMsg, r.MatchFig.BytesPerMsg, func(x float64) string { return fmt.Sprintf("%.0f", x) }),
			pair(r.PeerFig.CPUUSPerMsg, r.MatchFig.CPUUSPerMsg, ms), pair(r.PeerFig.RSSPerSess, r.MatchFig.RSSPerSess, kbf)})
	}
	return head, cells
}
