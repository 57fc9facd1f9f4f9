package results

import (
	"math"
	"slices"
)

// SummarizePoints fills f.Summary and f.Findings from the evidence of every point (ev: one Evidence
// per transport × condition, its sessions of all repeats). Points whose Bootstrap has not run
// yet are bootstrapped here with the file's seed. The reading states exactly the findings.
func SummarizePoints(f *File, ev map[Key]*Evidence) {
	keys := make([]Key, 0, len(ev))
	for k, e := range ev {
		if !e.Done() {
			if e.Sessions() == 0 {
				continue
			}
			e.Bootstrap(k, BootstrapSeed(f.Seed, k), 0)
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, f.lineup().compareKeys)
	f.Summary = make([]PointSummary, 0, len(keys))
	for _, k := range keys {
		f.Summary = append(f.Summary, ev[k].Summary())
	}
	f.Findings = Findings(f, ev)
}

// Findings are the comparisons the reading states, with their intervals:
//   - at every condition, each transport's p50 and p99 against the transport with the lowest
//     one there, and the p99 of the push transport over TCP with the lowest against that of
//     the push transport over QUIC with the lowest (head of line: TCP against QUIC, chosen by
//     each run's carrier and delivery) when neither is the lowest of all;
//   - at every lossy condition, each transport's stall rate against the lowest positive one
//     (a transport that never stalled is said so, not compared);
//   - at every condition, each peer server's transport (PEER/TRANSPORT) against wirelab's
//     transport of the same kind (PeerMatch): p50, p99 and, under loss, the stall rate;
//   - at the lowest loss of each delay and stack, bytes on the wire and server CPU per
//     delivered copy of each transport against the cheapest, where both have two runs or more
//     (RunRatio: the run is the unit there).
//
// The latency and stall figures come from ev (bootstrapped); bytes and CPU from f's runs.
func Findings(f *File, ev map[Key]*Evidence) []Finding {
	out := []Finding{}
	for _, c := range Conds(f) {
		var here []Key
		for _, t := range Transports(f) {
			k := Key{t, c}
			if e := ev[k]; e != nil && e.Done() && e.Summary().Copies > 0 {
				here = append(here, k)
			}
		}
		if len(here) < 2 {
			continue
		}
		add := func(metric string, m int, a, b Key) {
			r, ci, ok := bootstrapRatio(ev[a], ev[b], m)
			if !ok {
				return
			}
			out = append(out, newFinding(metric, c, a.Transport, b.Transport, r, ci))
		}
		for _, q := range []struct {
			name string
			m    int
		}{{"p50", repP50}, {"p99", repP99}} {
			best := lowest(here, func(k Key) float64 { return ev[k].figure(q.m) })
			for _, k := range here {
				if k != best {
					add(q.name, q.m, k, best)
				}
			}
			if q.m != repP99 {
				continue
			}
			// Head of line: the best TCP push transport against the best QUIC one, when
			// neither is the lowest (then the pair is among the findings above).
			tcp := slices.DeleteFunc(slices.Clone(here), func(k Key) bool { return !f.PushTCP(k.Transport) })
			quic := slices.DeleteFunc(slices.Clone(here), func(k Key) bool { return !f.PushQUIC(k.Transport) })
			if len(tcp) > 0 && len(quic) > 0 {
				of := func(k Key) float64 { return ev[k].figure(q.m) }
				if t, u := lowest(tcp, of), lowest(quic, of); best != t && best != u {
					add(q.name, q.m, t, u)
				}
			}
		}
		if c.Loss > 0 {
			var stalled []Key
			for _, k := range here {
				if ev[k].Summary().StallRate > 0 {
					stalled = append(stalled, k)
				}
			}
			if len(stalled) >= 2 {
				best := lowest(stalled, func(k Key) float64 { return ev[k].Summary().StallRate })
				for _, k := range stalled {
					if k != best {
						add("stall_rate", repStall, k, best)
					}
				}
			}
		}
		// Each peer server's transport against wirelab's of the same kind (results/peers.go),
		// unless that comparison is among the findings above already.
		peerFindings(here, ev, func(metric string, m int, a, b Key) {
			if !slices.ContainsFunc(out, func(fd Finding) bool {
				return fd.Metric == metric && fd.A == a.Transport && fd.B == b.Transport && fd.Cond() == c
			}) {
				add(metric, m, a, b)
			}
		})
	}
	for _, c := range barConds(f) {
		for _, name := range []string{"bytes_per_msg", "cpu_us_per_msg"} {
			m, _ := MetricByName(name)
			vals := map[string][]float64{}
			var ts []string
			for _, g := range groupsAt(f, c) {
				var xs []float64
				for _, r := range g.Runs {
					if v := m.Of(r); v > 0 {
						xs = append(xs, v)
					}
				}
				if len(xs) >= 2 {
					vals[g.Transport] = xs
					ts = append(ts, g.Transport)
				}
			}
			if len(ts) < 2 {
				continue
			}
			best := ts[0]
			for _, t := range ts[1:] {
				if Summarize(vals[t]).Mean < Summarize(vals[best]).Mean {
					best = t
				}
			}
			for _, t := range ts {
				if t == best {
					continue
				}
				if r, ci, ok := RunRatio(vals[t], vals[best]); ok {
					out = append(out, newFinding(name, c, t, best, r, ci))
				}
			}
		}
	}
	l := f.lineup()
	slices.SortStableFunc(out, func(a, b Finding) int { return compareFindings(l, a, b) })
	return out
}

func newFinding(metric string, c Cond, a, b string, r float64, ci [2]float64) Finding {
	return Finding{Metric: metric, Loss: c.Loss, Burst: c.Burst, DelayMS: c.DelayMS, Stack: StackName(c.Stack),
		A: a, B: b, Ratio: r, RatioCI95: ci}
}

// lowest is the key with the lowest figure (the first in order on ties).
func lowest(keys []Key, of func(Key) float64) Key {
	best := keys[0]
	for _, k := range keys[1:] {
		if of(k) < of(best) {
			best = k
		}
	}
	return best
}

// RunRatio compares a figure measured once per run (bytes or server CPU per delivered copy:
// no per-session split exists for them) between two points, the run being the unit: the
// ratio of the geometric means of a's and b's runs, and a 95% Welch t interval on the
// difference of the mean logarithms (run-to-run noise taken as roughly log-normal). It needs
// at least two runs on each side (ok false otherwise: one run says nothing of the spread
// between runs, and the reading then gives the figures without a comparison).
func RunRatio(a, b []float64) (ratio float64, ci [2]float64, ok bool) {
	if len(a) < 2 || len(b) < 2 {
		return 0, ci, false
	}
	ma, va, okA := logMoments(a)
	mb, vb, okB := logMoments(b)
	if !okA || !okB {
		return 0, ci, false
	}
	na, nb := float64(len(a)), float64(len(b))
	d := ma - mb
	ratio = math.Exp(d)
	se2 := va/na + vb/nb
	if se2 == 0 {
		return ratio, [2]float64{ratio, ratio}, true
	}
	// Welch-Satterthwaite degrees of freedom, rounded down (a wider interval).
	df := se2 * se2 / ((va/na)*(va/na)/(na-1) + (vb/nb)*(vb/nb)/(nb-1))
	h := tQuantile975(int(math.Max(1, math.Floor(df)))) * math.Sqrt(se2)
	return ratio, [2]float64{math.Exp(d - h), math.Exp(d + h)}, true
}

// logMoments are the mean and sample variance of log(xs); false if any x is not positive.
func logMoments(xs []float64) (mean, variance float64, ok bool) {
	for _, x := range xs {
		if !(x > 0) {
			return 0, 0, false
		}
		mean += math.Log(x)
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		d := math.Log(x) - mean
		variance += d * d
	}
	return mean, variance / float64(len(xs)-1), true
}

// t975 is Student's t 97.5% quantile for 1..30 degrees of freedom.
var t975 = []float64{12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
	2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
	2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}

// tQuantile975 is Student's t 97.5% quantile for df degrees of freedom (df ≥ 1): the table up
// to 30, then interpolated in 1/df towards the normal's 1.960 (within 0.1%).
func tQuantile975(df int) float64 {
	if df <= len(t975) {
		return t975[max(df, 1)-1]
	}
	return 1.960 + (2.042-1.960)*30/float64(df)
}
