package results

import (
	"fmt"
	"strings"
)

// The reading's comparisons (issue 11): every ratio between transports the reading states is a
// finding of the file, stated with its 95% interval, and where the interval holds 1 the reading
// says "no clear difference" instead of a direction. A file without findings (written before
// issue 11) gets no ratio between transports at all: only the figures, and a sentence that says
// why.

// noIntervalsLine is what the reading says of a file without a summary.
const noIntervalsLine = "This file has no intervals (it was written before results carried a summary): each figure below is one measurement, so the reading states figures and claims no difference between transports."

// metricWords says a finding's metric in the reading's words.
func metricWords(metric string) string {
	switch metric {
	case "stall_rate":
		return "stall rate"
	case "bytes_per_msg":
		return "bytes on the wire per delivered copy"
	case "cpu_us_per_msg":
		return "server CPU per delivered copy"
	}
	return metric
}

// ratioNum writes a ratio for the reading: "12", "2.3", "1.04"; digits enough that an interval
// which excludes 1 does not read as "1.00-1.01" only when it is that close.
func ratioNum(x float64) string {
	switch {
	case x >= 1e6:
		return "∞"
	case x >= 10:
		return fmt.Sprintf("%.0f", x)
	case x >= 2:
		return fmt.Sprintf("%.1f", x)
	case x >= 0.1:
		return fmt.Sprintf("%.2f", x)
	}
	return trimZeros(fmt.Sprintf("%.2g", x))
}

// ciText is "95% CI 1.6-3.4" for a ratio's interval.
func ciText(ci [2]float64) string {
	lo, hi := ratioNum(ci[0]), ratioNum(ci[1])
	if lo == hi && ci[0] != ci[1] { // too close for two digits: three
		lo, hi = trimZeros(fmt.Sprintf("%.3f", ci[0])), trimZeros(fmt.Sprintf("%.3f", ci[1]))
	}
	return fmt.Sprintf("95%% CI %s-%s", lo, hi)
}

// FindingPhrase states one finding against the figure it is compared with: "2.3× (95% CI
// 1.6-3.4)", or "no clear difference (1.1×, 95% CI 0.9-1.3)" when the interval holds 1.
func FindingPhrase(fd Finding) string {
	if !fd.Clear() {
		return fmt.Sprintf("no clear difference (%s×, %s)", ratioNum(fd.Ratio), ciText(fd.RatioCI95))
	}
	return fmt.Sprintf("%s× (%s)", ratioNum(fd.Ratio), ciText(fd.RatioCI95))
}

// figureText is b's own figure for a finding's sentence: "120.8 ms (95% CI 120.3-146.3)", "1.22%
// of copies (95% CI 0.52%-1.94%)", "312 B (mean of 3 runs)".
func figureText(f *File, fd Finding) string {
	k := Key{fd.B, fd.Cond()}
	if s, ok := SummaryOf(f, k); ok {
		switch fd.Metric {
		case "p50":
			return fmt.Sprintf("%s ms (95%% CI %s-%s)", num(s.P50), num(s.P50CI95[0]), num(s.P50CI95[1]))
		case "p99":
			return fmt.Sprintf("%s ms (95%% CI %s-%s)", num(s.P99), num(s.P99CI95[0]), num(s.P99CI95[1]))
		case "stall_rate":
			return fmt.Sprintf("%s of copies (95%% CI %s-%s)", sharePct(s.StallRate), sharePct(s.StallRateCI95[0]), sharePct(s.StallRateCI95[1]))
		}
	}
	if m, err := MetricByName(fd.Metric); err == nil {
		for _, g := range groupsAt(f, fd.Cond()) {
			if g.Transport == fd.B {
				return fmt.Sprintf("%s %s (mean of %d runs)", num(Summarize(g.Values(m)).Mean), m.Unit, len(g.Runs))
			}
		}
	}
	return "–"
}

// findingLines states every finding at c, metric by metric: each transport against the one with
// the lowest figure there, then pairs named apart (the head-of-line pair: the best TCP push
// transport against the best QUIC one).
func findingLines(f *File, c Cond, where string) []string {
	var out []string
	for _, metric := range FindingMetrics {
		var fs []Finding
		for _, fd := range f.Findings {
			if fd.Metric == metric && fd.Cond() == c {
				fs = append(fs, fd)
			}
		}
		if len(fs) == 0 {
			continue
		}
		// The reference most findings share is the lowest; the others are named pairs.
		refs := map[string]int{}
		for _, fd := range fs {
			refs[fd.B]++
		}
		best := fs[0].B
		for b, n := range refs {
			if n > refs[best] || (n == refs[best] && f.lineup().compare(b, best) < 0) {
				best = b
			}
		}
		var parts []string
		var pairs []string
		for _, fd := range fs {
			if fd.B != best {
				pairs = append(pairs, pairSentence(fd, where))
				continue
			}
			parts = append(parts, fd.A+" "+FindingPhrase(fd))
		}
		if len(parts) > 0 {
			out = append(out, fmt.Sprintf("At %s the lowest %s was %s's, %s; against it: %s.",
				where, metricWords(metric), best, figureText(f, Finding{Metric: metric, Loss: c.Loss, Burst: c.Burst, DelayMS: c.DelayMS, Stack: StackName(c.Stack), B: best}),
				strings.Join(parts, "; ")))
		}
		out = append(out, pairs...)
	}
	return out
}

// pairSentence states a finding on its own: "At 2% loss websocket's p99 was 2.3× wt-uni's
// (95% CI 1.6-3.4)." or "... websocket's and wt-uni's p99: no clear difference (...)".
func pairSentence(fd Finding, where string) string {
	if !fd.Clear() {
		return fmt.Sprintf("At %s %s's and %s's %s: %s.", where, fd.A, fd.B, metricWords(fd.Metric), FindingPhrase(fd))
	}
	return fmt.Sprintf("At %s %s's %s was %s× %s's (%s).", where, fd.A, metricWords(fd.Metric), ratioNum(fd.Ratio), fd.B, ciText(fd.RatioCI95))
}

// ciCell writes an interval for the report's table: "41.5–41.7"; "" without one.
func ciCell(ci [2]float64, ok bool) string {
	if !ok {
		return ""
	}
	return num(ci[0]) + "–" + num(ci[1])
}

// pushLowestP50 is the push transport with the lowest summary p50 at c; false without a summary.
func pushLowestP50(f *File, c Cond) (PointSummary, bool) {
	var best PointSummary
	found := false
	for _, s := range f.Summary {
		if s.Key().Cond != c || f.Polls(s.Transport) || s.Copies == 0 {
			continue
		}
		if !found || s.P50 < best.P50 || (s.P50 == best.P50 && f.lineup().compare(s.Transport, best.Transport) < 0) {
			best, found = s, true
		}
	}
	return best, found
}
