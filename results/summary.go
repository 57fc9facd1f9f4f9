package results

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Row is one line of the report's summary table: a transport at a condition, over its repeats.
type Row struct {
	Key
	Repeats     int
	P50, P99    float64 // median over repeats, ms
	Mean        float64 // median over repeats, ms
	Lost        int64   // sum over repeats
	Duplicates  int64
	OutOfOrder  int64
	Delivered   int64
	Stalls      int64
	Collateral  int64   // head-of-line stalls: no loss of their own, behind another's
	System      int64   // system stalls: no loss of their own, the machine delayed them
	BytesPerMsg float64 // mean over repeats
	CPUUSPerMsg float64 // mean over repeats
	RSSPerSess  float64 // bytes, mean over repeats; 0 = not measured
	LabCPUShare float64 // highest over repeats
	Warnings    []string
	// Late200 and the others are the shares of every delivered copy of all repeats together
	// later than 100, 200, 400 and 1,000 ms; NaN when no repeat measured them.
	Late100, Late200, Late400, Late1000 float64
	// CI is set when the file has the point's summary (issue 11): P50 and P99 are then the
	// pooled figures of every copy of all repeats, with their 95% intervals from the bootstrap
	// over sessions, and so is the stall rate.
	CI                          bool
	P50CI, P99CI, StallRateCI95 [2]float64
	PooledStallRate             float64
}

// StallRate is stalled copies per delivered copy; NaN when nothing was delivered.
func (r Row) StallRate() float64 {
	if r.Delivered <= 0 {
		return math.NaN()
	}
	return float64(r.Stalls) / float64(r.Delivered)
}

// CollateralShare is the share of stalls that were collateral (head-of-line); NaN without
// stalls.
func (r Row) CollateralShare() float64 {
	if r.Stalls <= 0 {
		return math.NaN()
	}
	return float64(r.Collateral) / float64(r.Stalls)
}

// Stack is the row's stack ("gvisor" or "kernel").
func (r Row) Stack() string { return StackName(r.Cond.Stack) }

// pooledLate is the share of all delivered copies of runs later than ms: each run's share
// weighted by its delivered copies (all runs weigh the same when none counts its copies);
// NaN when no run measured it.
func pooledLate(runs []*Run, ms float64) float64 {
	var late, n float64
	for _, r := range runs {
		if r.Late == nil {
			continue
		}
		w := float64(r.Delivered)
		if w <= 0 {
			w = 1
		}
		late += w * r.Late.Share(ms)
		n += w
	}
	if n == 0 {
		return math.NaN()
	}
	return late / n
}

// Summary is the report's table: a row per transport and condition, in Key order.
func SummaryRows(f *File) []Row {
	var out []Row
	for _, g := range Groups(f) {
		r := Row{Key: g.Key, Repeats: len(g.Runs)}
		var p50, p99, mean, bytes, cpu, rss []float64
		for _, run := range g.Runs {
			p50 = append(p50, run.Latency.P50)
			p99 = append(p99, run.Latency.P99)
			mean = append(mean, run.Latency.Mean)
			bytes = append(bytes, run.Server.BytesPerMsg)
			cpu = append(cpu, run.Server.CPUUSPerMsg)
			rss = append(rss, run.Server.RSSPerSession)
			r.Lost += run.Lost
			r.Duplicates += run.Duplicates
			r.OutOfOrder += run.OutOfOrder
			r.Delivered += run.Delivered
			r.Stalls += run.Stalls.Count
			r.Collateral += run.Stalls.Collateral
			r.System += run.Stalls.System
			r.LabCPUShare = math.Max(r.LabCPUShare, run.Lab.CPUShare)
			for _, w := range run.Warnings {
				msg := w
				if len(g.Runs) > 1 {
					msg = fmt.Sprintf("repeat %d: %s", run.Repeat, w)
				}
				r.Warnings = append(r.Warnings, msg)
			}
		}
		r.P50, r.P99, r.Mean = Summarize(p50).Median, Summarize(p99).Median, Summarize(mean).Median
		r.BytesPerMsg, r.CPUUSPerMsg, r.RSSPerSess = Summarize(bytes).Mean, Summarize(cpu).Mean, Summarize(rss).Mean
		r.Late100, r.Late200, r.Late400, r.Late1000 = pooledLate(g.Runs, 100), pooledLate(g.Runs, 200), pooledLate(g.Runs, 400), pooledLate(g.Runs, 1000)
		if s, ok := SummaryOf(f, g.Key); ok && s.Copies > 0 {
			r.CI = true
			r.P50, r.P99, r.P50CI, r.P99CI = s.P50, s.P99, s.P50CI95, s.P99CI95
			r.PooledStallRate, r.StallRateCI95 = s.StallRate, s.StallRateCI95
		}
		out = append(out, r)
	}
	return out
}

// warningLines are the report's warnings: a warning that several runs share is one line
// naming them ("... (every run)" or "... (websocket 2% loss 20ms #0, sse ...)"); others are
// "run: text".
func warningLines(f *File) []string {
	var texts []string
	runs := map[string][]string{}
	for _, r := range SortedRuns(f) {
		for _, w := range r.Warnings {
			if _, ok := runs[w]; !ok {
				texts = append(texts, w)
			}
			runs[w] = append(runs[w], r.Ident())
		}
	}
	var out []string
	for _, w := range texts {
		switch rs := runs[w]; {
		case len(rs) == 1:
			out = append(out, rs[0]+": "+w)
		case len(rs) == len(f.Runs):
			out = append(out, fmt.Sprintf("%s (every run, %d)", w, len(rs)))
		default:
			out = append(out, fmt.Sprintf("%s (%d runs: %s)", w, len(rs), strings.Join(rs, ", ")))
		}
	}
	return out
}

// warnedRuns lists every run with warnings, as "websocket 2% loss 20ms #0: text".
func warnedRuns(f *File) []string {
	var out []string
	for _, r := range SortedRuns(f) {
		for _, w := range r.Warnings {
			out = append(out, r.Ident()+": "+w)
		}
	}
	return out
}

// Reading is the report's reading in plain words: every sentence is computed from f's
// numbers, and a sentence whose numbers are missing is left out rather than guessed.
func Reading(f *File) []string {
	rows := SummaryRows(f)
	if len(rows) == 0 {
		return []string{"The file has no runs: nothing to read."}
	}
	at := func(t string, c Cond) (Row, bool) {
		i := slices.IndexFunc(rows, func(r Row) bool { return r.Transport == t && r.Cond == c })
		if i < 0 {
			return Row{}, false
		}
		return rows[i], true
	}
	var out []string
	withCI := len(f.Summary) > 0
	if !withCI {
		out = append(out, noIntervalsLine)
	}
	conds := Conds(f)
	delays := map[float64]bool{}
	for _, c := range conds {
		delays[c.DelayMS] = true
	}
	// With both stacks in the file, every sentence says which one it is about.
	mixed := len(Stacks(f)) > 1
	on := func(c Cond) string {
		if !mixed {
			return ""
		}
		return " on " + StackTitle(c.Stack)
	}
	// With one delay in the file, "at 2% loss" says it all; with several, name the delay too.
	lossPhrase := func(c Cond) string {
		if len(delays) > 1 {
			return lossPhrase(c) + fmt.Sprintf(" and %s ms one way", num(c.DelayMS)) + on(c)
		}
		return lossPhrase(c) + on(c)
	}

	// No loss: against theory.
	for _, c := range conds {
		if c.Loss != 0 {
			continue
		}
		var push []Row
		for _, r := range rows {
			if r.Cond == c && !f.Polls(r.Transport) && r.P50 > 0 {
				push = append(push, r)
			}
		}
		floor := 2 * c.DelayMS
		if s, ok := pushLowestP50(f, c); ok {
			// With intervals: the lowest p50 and its interval against the floor; how the others
			// compare with it is a finding (below).
			line := fmt.Sprintf("At 0%% loss and %s ms one way%s, the lowest p50 of the push transports was %s's, %s ms (95%% CI %s-%s)",
				num(c.DelayMS), on(c), s.Transport, num(s.P50), num(s.P50CI95[0]), num(s.P50CI95[1]))
			if floor > 0 {
				line += fmt.Sprintf(", against a floor of %s ms (two one-way delays): %s", num(floor), aboveBelow(s.P50/floor-1, "it"))
			}
			out = append(out, line+".")
		} else if len(push) > 0 {
			lo, hi := extremes(push, func(r Row) float64 { return r.P50 })
			s := fmt.Sprintf("At 0%% loss and %s ms one way%s, the push transports' p50 ", num(c.DelayMS), on(c))
			if lo.Transport == hi.Transport {
				s += fmt.Sprintf("was %s ms (%s)", num(lo.P50), lo.Transport)
			} else {
				s += fmt.Sprintf("ranged from %s ms (%s) to %s ms (%s%s)", num(lo.P50), lo.Transport, num(hi.P50), hi.Transport, warnNote(hi))
			}
			if floor > 0 {
				s += fmt.Sprintf(", against a floor of %s ms (two one-way delays): %s", num(floor), aboveBelow(hi.P50/floor-1, "it"))
			}
			out = append(out, s+".")
		}
		// The polling transports against their own theory: an interval poller's mean against
		// interval/2 + 2 one-way delays, a long poller's p50 against the push floor.
		for _, t := range Transports(f) {
			r, ok := at(t, c)
			if !ok || !f.Polls(t) {
				continue
			}
			every, interval := f.pollEvery(f.firstRun(t))
			switch {
			case interval && r.Mean > 0 && every > 0:
				th := f.pollTheoryMS(t, c.DelayMS)
				out = append(out, fmt.Sprintf("The mean latency of %s%s, which polls every %s ms, was %s ms, %s (%s ms: %s ms / 2 + 2 × %s ms).",
					t, on(c), num(every), num(r.Mean), aboveBelow(r.Mean/th-1, "the theory"), num(th), num(every), num(c.DelayMS)))
			case interval && r.Mean > 0:
				out = append(out, fmt.Sprintf("The mean latency of %s%s, which polls at an interval, was %s ms (the poll interval is not in the file, so no theory to hold it against).", t, on(c), num(r.Mean)))
			case !interval && r.P50 > 0 && floor > 0:
				out = append(out, fmt.Sprintf("The p50 of %s%s, which holds each poll open until a message comes, was %s ms, %.2f× the push floor (a message that arrives while no poll is waiting waits for the next one).", t, on(c), num(r.P50), r.P50/floor))
			}
		}
	}

	// Under loss: tails and stalls.
	for _, c := range conds {
		if c.Loss == 0 {
			continue
		}
		var here []Row
		for _, r := range rows {
			if r.Cond == c && r.P99 > 0 {
				here = append(here, r)
			}
		}
		if len(here) == 0 {
			continue
		}
		lo, hi := extremes(here, func(r Row) float64 { return r.P99 })
		cs := lossPhrase(c)
		// With intervals, the p99s are compared in the findings (below); without, only the
		// figures are given.
		if lo.Transport != hi.Transport && !withCI {
			out = append(out, fmt.Sprintf("At %s the p99 ranged from %s ms (%s) to %s ms (%s%s).", cs, num(lo.P99), lo.Transport, num(hi.P99), hi.Transport, warnNote(hi)))
		}
		var late []string
		for _, r := range here {
			if !math.IsNaN(r.Late200) {
				late = append(late, fmt.Sprintf("%s %s (%s later than 400 ms)", r.Transport, sharePct(r.Late200), sharePct(r.Late400)))
			}
		}
		if len(late) > 0 {
			out = append(out, fmt.Sprintf("Copies later than 200 ms at %s: %s.", cs, strings.Join(late, "; ")))
		}
		var stalled, clean []string
		for _, r := range rows {
			if r.Cond != c {
				continue
			}
			if r.Stalls == 0 {
				clean = append(clean, r.Transport)
				continue
			}
			sys := ""
			if r.System > 0 {
				sys = fmt.Sprintf(", %.0f%% system: the machine, not the network", 100*float64(r.System)/float64(r.Stalls))
			}
			stalled = append(stalled, fmt.Sprintf("%s %s (%s of %s delivered, %.0f%% head-of-line%s)",
				r.Transport, group3(r.Stalls), shareOf(r.Stalls, r.Delivered), group3(r.Delivered), 100*float64(r.Collateral)/float64(r.Stalls), sys))
		}
		s := ""
		if len(stalled) > 0 {
			s = fmt.Sprintf("Stalls at %s: %s", cs, strings.Join(stalled, "; "))
			if len(clean) > 0 {
				s += "; none for " + strings.Join(clean, ", ")
			}
		} else if len(clean) > 0 {
			s = fmt.Sprintf("No transport stalled at %s", cs)
		}
		if s != "" {
			out = append(out, s+".")
		}
	}

	// System stalls, at any loss: the machine delayed them, so the figures of their runs carry
	// a delay that is not the transport's.
	var sys []string
	for _, r := range rows {
		if r.System > 0 {
			sys = append(sys, fmt.Sprintf("%s at %s %s of %s delivered", r.Transport, lossPhrase(r.Cond), group3(r.System), group3(r.Delivered)))
		}
	}
	if len(sys) > 0 {
		out = append(out, "Copies late together across many sessions with no loss of their own (system stalls: the machine, not the network, delayed them; see the warnings): "+strings.Join(sys, "; ")+". Those runs' latency and stall figures include a delay that is not the transport's.")
	}

	// Cost: bytes and CPU at the lowest loss of each delay.
	for _, c := range barConds(f) {
		var here []Row
		for _, r := range rows {
			if r.Cond == c {
				here = append(here, r)
			}
		}
		// The figures' range; a ratio between transports is stated only as a finding (with
		// its interval, from two runs or more each), below.
		if measured := filterRows(here, func(r Row) bool { return r.BytesPerMsg > 0 }); len(measured) > 1 {
			lo, hi := extremes(measured, func(r Row) float64 { return r.BytesPerMsg })
			out = append(out, fmt.Sprintf("Bytes on the wire per delivered copy at %s ranged from %s B (%s) to %s B (%s)%s.", lossPhrase(c), num(lo.BytesPerMsg), lo.Transport, num(hi.BytesPerMsg), hi.Transport, runsNote(f, c, "bytes_per_msg", lo.Repeats, hi.Repeats)))
		}
		if measured := filterRows(here, func(r Row) bool { return r.CPUUSPerMsg > 0 }); len(measured) > 1 {
			lo, hi := extremes(measured, func(r Row) float64 { return r.CPUUSPerMsg })
			out = append(out, fmt.Sprintf("The server's CPU per delivered copy%s ranged from %s µs (%s) to %s µs (%s); per 1,000 copies that is %s ms against %s ms%s.",
				on(c), num(lo.CPUUSPerMsg), lo.Transport, num(hi.CPUUSPerMsg), hi.Transport, num(lo.CPUUSPerMsg), num(hi.CPUUSPerMsg), runsNote(f, c, "cpu_us_per_msg", lo.Repeats, hi.Repeats)))
		}
	}

	// Every comparison between transports, with its interval (the file's findings).
	for _, c := range conds {
		out = append(out, findingLines(f, c, lossPhrase(c))...)
	}

	// Server memory per session (scale scenarios).
	for _, c := range conds {
		var here []Row
		for _, r := range rows {
			if r.Cond == c && r.RSSPerSess > 0 {
				here = append(here, r)
			}
		}
		if len(here) == 0 || (c.Loss > 0 && len(conds) > 1) {
			continue
		}
		lo, hi := extremes(here, func(r Row) float64 { return r.RSSPerSess })
		s := fmt.Sprintf("At %s each session cost the server %s KB of memory (%s)", lossPhrase(c), num(lo.RSSPerSess/1e3), lo.Transport)
		if lo.Transport != hi.Transport {
			s = fmt.Sprintf("At %s each session cost the server from %s KB (%s) to %s KB (%s) of memory", lossPhrase(c), num(lo.RSSPerSess/1e3), lo.Transport, num(hi.RSSPerSess/1e3), hi.Transport)
		}
		out = append(out, s+" (peak RSS above the idle server, per session).")
		break
	}

	// Delivery audit.
	var lost, dup, ooo []string
	for _, r := range rows {
		when := fmt.Sprintf("%s at %s", r.Transport, lossPhrase(r.Cond))
		if r.Lost > 0 {
			lost = append(lost, fmt.Sprintf("%s %s (%s of %s expected)", when, group3(r.Lost), shareOf(r.Lost, r.Lost+r.Delivered), group3(r.Lost+r.Delivered)))
		}
		if r.Duplicates > 0 {
			dup = append(dup, fmt.Sprintf("%s %s", when, group3(r.Duplicates)))
		}
		if r.OutOfOrder > 0 {
			ooo = append(ooo, fmt.Sprintf("%s %s", when, group3(r.OutOfOrder)))
		}
	}
	runs := len(f.Runs)
	switch {
	case len(lost) == 0 && len(dup) == 0:
		out = append(out, fmt.Sprintf("No transport lost or duplicated a copy, at any loss rate (%d runs).", runs))
	default:
		if len(lost) > 0 {
			out = append(out, "Lost copies (all repeats together): "+strings.Join(lost, "; ")+".")
		} else {
			out = append(out, "No transport lost a copy.")
		}
		if len(dup) > 0 {
			out = append(out, "Duplicated copies (all repeats together): "+strings.Join(dup, "; ")+".")
		} else {
			out = append(out, "No transport duplicated a copy.")
		}
	}
	if len(ooo) > 0 {
		out = append(out, "Copies delivered out of order: "+strings.Join(ooo, "; ")+".")
	}

	// The emulated link: measured loss against configured.
	var lossy, inside int
	var outside []string
	for _, r := range SortedRuns(f) {
		if r.Loss == 0 || r.Burst > 0 || r.Link.Packets == 0 {
			continue
		}
		lossy++
		n := float64(r.Link.Packets)
		half := 2.576 * math.Sqrt(r.Loss*(1-r.Loss)/n)
		if math.Abs(r.Link.LossMeasured-r.Loss) <= half {
			inside++
		} else if len(outside) < 5 {
			outside = append(outside, fmt.Sprintf("%s measured %s over %s packets", r.Ident(), pct(r.Link.LossMeasured), group3(r.Link.Packets)))
		}
	}
	if lossy > 0 {
		s := fmt.Sprintf("The emulated link's measured loss was inside the 99%% interval of the configured rate in %d of %d lossy runs", inside, lossy)
		if len(outside) > 0 {
			s += "; outside: " + strings.Join(outside, "; ")
		}
		out = append(out, s+".")
	}

	// The harness.
	if l := labPeak(f); l.CPUSeconds > 0 || l.CPUShare > 0 {
		s := fmt.Sprintf("The lab itself used %s CPU-seconds, %.0f%% of the machine's cores over the whole file", num(l.CPUSeconds), 100*l.CPUShare)
		var more []string
		if l.SendLagP99 > 0 {
			more = append(more, fmt.Sprintf("its senders were at most %s ms late (p99 of the worst run)", num(l.SendLagP99)))
		}
		if l.SchedulerMS > 0 {
			more = append(more, fmt.Sprintf("the Go scheduler woke it at most %s ms late (p99)", num(l.SchedulerMS)))
		}
		if l.QueuePeak > 0 {
			more = append(more, fmt.Sprintf("the emulated link queued at most %s packets", group3(l.QueuePeak)))
		}
		if len(more) > 0 {
			s += "; " + strings.Join(more, ", ")
		}
		out = append(out, s+".")
	}
	if mixed {
		out = append(out, stackVerdict(StackPairs(f)))
	}
	if p := Problems(f); len(p) > 0 {
		out = append(out, fmt.Sprintf("%d implausible figure(s) in the file (listed at the top): the lab's own accounting may be wrong there.", len(p)))
	}
	if w := warnedRuns(f); len(w) > 0 {
		out = append(out, fmt.Sprintf("%d warning(s) on %d run(s): their figures may be late because of the lab, not the transport (listed at the top).", len(w), countWarned(f)))
	}
	return out
}

// runsNote says why a cost figure has no comparison: one run per point says nothing of the
// spread between runs (the run is the unit for bytes and CPU: RunRatio).
func runsNote(f *File, c Cond, metric string, repeats ...int) string {
	for _, fd := range f.Findings {
		if fd.Metric == metric && fd.Cond() == c {
			return ""
		}
	}
	if slices.Min(repeats) < 2 {
		return " (one run per point: no interval, so no ratio is claimed)"
	}
	return ""
}

// labPeak is the file's lab load with each figure the file does not give taken as the worst
// run's.
func labPeak(f *File) LabLoad {
	l := f.Lab
	for i := range f.Runs {
		r := f.Runs[i].Lab
		if f.Lab.SendLagP99 == 0 {
			l.SendLagP99 = math.Max(l.SendLagP99, r.SendLagP99)
		}
		if f.Lab.SchedulerMS == 0 {
			l.SchedulerMS = math.Max(l.SchedulerMS, r.SchedulerMS)
		}
		if f.Lab.QueuePeak == 0 {
			l.QueuePeak = max(l.QueuePeak, r.QueuePeak)
		}
		if f.Lab.CPUSeconds == 0 {
			l.CPUSeconds += r.CPUSeconds
		}
	}
	return l
}

// warnNote marks a figure whose run carried warnings.
func warnNote(r Row) string {
	if len(r.Warnings) == 0 {
		return ""
	}
	return ", a run with warnings"
}

func countWarned(f *File) int {
	n := 0
	for i := range f.Runs {
		if len(f.Runs[i].Warnings) > 0 {
			n++
		}
	}
	return n
}

func filterRows(rows []Row, ok func(Row) bool) []Row {
	var out []Row
	for _, r := range rows {
		if ok(r) {
			out = append(out, r)
		}
	}
	return out
}

// extremes returns the rows with the lowest and the highest value (first in order on ties).
func extremes(rows []Row, v func(Row) float64) (lo, hi Row) {
	lo, hi = rows[0], rows[0]
	for _, r := range rows[1:] {
		if v(r) < v(lo) {
			lo = r
		}
		if v(r) > v(hi) {
			hi = r
		}
	}
	return lo, hi
}

func lossPhrase(c Cond) string {
	s := pct(c.Loss) + " loss"
	if c.Burst > 0 {
		s += fmt.Sprintf(" in bursts of %s", num(c.Burst))
	}
	return s
}

// ratio says a/b as "3.1×"; b must be positive.
func ratio(a, b float64) string {
	r := a / b
	if r >= 10 {
		return fmt.Sprintf("%.0f×", r)
	}
	return fmt.Sprintf("%.1f×", r)
}

// aboveBelow says a relative difference in words: "3.1% above it", "0.4% below the theory".
func aboveBelow(x float64, what string) string {
	switch {
	case math.Abs(x) < 0.0005:
		return "equal to " + what
	case x >= 1:
		return fmt.Sprintf("%s %s", ratio(1+x, 1), what)
	case x > 0:
		return fmt.Sprintf("%.1f%% above %s", 100*x, what)
	default:
		return fmt.Sprintf("%.1f%% below %s", -100*x, what)
	}
}

// sharePct writes a share of copies as a percentage readable at a glance: "2.17%", "0.37%",
// "0.004%", "0", "–" (not measured).
func sharePct(x float64) string {
	p := 100 * x
	switch {
	case math.IsNaN(x):
		return "–"
	case x == 0:
		return "0"
	case p >= 10:
		return fmt.Sprintf("%.1f%%", p)
	case p >= 1:
		return fmt.Sprintf("%.2f%%", p)
	case p < 0.001:
		return "<0.001%"
	}
	return trimZeros(fmt.Sprintf("%.2g", p)) + "%"
}

func shareOf(n, of int64) string {
	if of <= 0 {
		return "–"
	}
	p := 100 * float64(n) / float64(of)
	if p < 0.1 {
		return fmt.Sprintf("%.2g%%", p)
	}
	return fmt.Sprintf("%.1f%%", p)
}

// group3 writes an integer with thousands separators: 12,345.
func group3(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
