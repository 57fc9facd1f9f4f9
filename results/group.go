package results

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// The carriers a run can have (Run.Carrier), as the lab's table of transports (transports/all)
// spells them. On TCP a lost segment holds back every later byte (head of line) and gVisor's
// minimum RTO is 200 ms; on QUIC only the lost packet's stream waits.
const (
	CarrierTCP  = "tcp"
	CarrierQUIC = "quic"
)

// CarrierName is the run's carrier: Carrier, or for a run from a file written before runs said
// it, legacyCarrier's. WriteJSON writes it into every run.
func (r *Run) CarrierName() string {
	if r.Carrier != "" {
		return r.Carrier
	}
	return legacyCarrier(r.Transport)
}

// IsTCP says whether the run's transport ran over TCP.
func (r *Run) IsTCP() bool { return r.CarrierName() == CarrierTCP }

// legacyCarrier is the carrier of a run from a file written before runs said it (Legacy's).
func legacyCarrier(transport string) string {
	if Legacy == nil {
		return ""
	}
	c, _, _ := Legacy(transport)
	return c
}

// Legacy says what a transport's name implied in a file written before runs carried their
// carrier and delivery: its carrier ("tcp", "quic"), its delivery ("push", "poll") and whether it
// polled at the file's poll_interval_ms. results knows no transport names: the lab, which has
// the table of transports, sets it (lab.init); nil leaves such runs' carrier and delivery unknown
// (""). A run the lab writes now always has both.
var Legacy func(transport string) (carrier, delivery string, interval bool)

// The deliveries a run can have (Run.Delivery), as the lab's table of transports spells them:
// pushed to the client over a connection it holds, or polled for.
const (
	DeliveryPush = "push"
	DeliveryPoll = "poll"
)

// DeliveryName is the run's delivery: Delivery, or for a run from a file written before runs
// said it, legacyDelivery's. WriteJSON writes it into every run.
func (r *Run) DeliveryName() string {
	if r.Delivery != "" {
		return r.Delivery
	}
	d, _ := legacyDelivery(r.Transport)
	return d
}

// Polls says whether the run's clients polled for their messages.
func (r *Run) Polls() bool { return r.DeliveryName() == DeliveryPoll }

// pollEvery says whether the run's clients polled at an interval, and which (ms; 0: not in
// the file). A run from a file written before runs said their delivery takes f's interval if
// legacyDelivery says it polled at one.
func (f *File) pollEvery(r *Run) (ms float64, ok bool) {
	if r.PollIntervalMS > 0 {
		return r.PollIntervalMS, true
	}
	if r.Delivery == "" {
		if _, interval := legacyDelivery(r.Transport); interval {
			return f.PollIntervalMS, true
		}
	}
	return 0, false
}

// legacyDelivery is the delivery of a run from a file written before runs said it, and whether
// it polled at an interval (Legacy's).
func legacyDelivery(transport string) (delivery string, interval bool) {
	if Legacy == nil {
		return "", false
	}
	_, d, interval := Legacy(transport)
	return d, interval
}

// TCP says whether transport ran over TCP in f: its first run's carrier. False when f has no
// run of it.
func (f *File) TCP(transport string) bool {
	for i := range f.Runs {
		if f.Runs[i].Transport == transport {
			return f.Runs[i].IsTCP()
		}
	}
	return false
}

// Polls says whether transport's clients polled for their messages in f: its first run's
// delivery. False when f has no run of it.
func (f *File) Polls(transport string) bool {
	r := f.firstRun(transport)
	return r != nil && r.Polls()
}

// PushTCP and PushQUIC say whether transport was pushed its messages over TCP, or over QUIC,
// in f (its first run): the two sides of the head-of-line comparison.
func (f *File) PushTCP(transport string) bool {
	r := f.firstRun(transport)
	return r != nil && !r.Polls() && r.IsTCP()
}

func (f *File) PushQUIC(transport string) bool {
	r := f.firstRun(transport)
	return r != nil && !r.Polls() && r.CarrierName() == CarrierQUIC
}

// pollTheoryMS is the mean latency theory of transport in f when its clients poll at an
// interval (interval/2 + 2 one-way delays); 0 when they do not, or the interval is not in the
// file.
func (f *File) pollTheoryMS(transport string, delayMS float64) float64 {
	r := f.firstRun(transport)
	if r == nil {
		return 0
	}
	if ms, ok := f.pollEvery(r); ok && ms > 0 {
		return ms/2 + 2*delayMS
	}
	return 0
}

// pollTheory is the short-polling theory line for a figure of transports ts at delayMS: the
// theory of the first of them that polls at a known interval, and which of them it is for
// (those with the same theory). 0 and nil when none polls at one.
func (f *File) pollTheory(ts []string, delayMS float64) (ms float64, of func(string) bool) {
	for _, t := range ts {
		if th := f.pollTheoryMS(t, delayMS); th > 0 {
			return th, func(s string) bool { return f.pollTheoryMS(s, delayMS) == th }
		}
	}
	return 0, func(string) bool { return false }
}

func (f *File) firstRun(transport string) *Run {
	for i := range f.Runs {
		if f.Runs[i].Transport == transport {
			return &f.Runs[i]
		}
	}
	return nil
}

// lineup is the order a file's transports are shown in (tables, legends, the runs in
// results.json), as a rank per name; results holds no list of names. With File.Order (the lab's
// table of transports) it is that order, other transports after it alphabetically; without
// (a file read back) it is the order of the transports' first runs, which is the order
// WriteJSON wrote them in.
type lineup map[string]int

func (f *File) lineup() lineup {
	l := lineup{}
	for _, t := range f.Order {
		l.add(t)
	}
	if len(f.Order) == 0 {
		for i := range f.Runs {
			l.add(f.Runs[i].Transport)
		}
	}
	return l
}

func (l lineup) add(t string) {
	if _, ok := l[t]; !ok {
		l[t] = len(l)
	}
}

// compare orders two transports: ranked ones by rank, then the others alphabetically.
func (l lineup) compare(a, b string) int {
	ra, oka := l[a]
	rb, okb := l[b]
	switch {
	case oka && okb:
		return cmp.Compare(ra, rb)
	case oka != okb:
		if oka {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// compareKeys orders keys by transport, then condition.
func (l lineup) compareKeys(a, b Key) int {
	return cmp.Or(l.compare(a.Transport, b.Transport), a.Cond.Compare(b.Cond))
}

// The TCP/IP stacks a run can use (Run.Stack).
const (
	StackGVisor = "gvisor" // gVisor's netstack, userspace, in the lab's process
	StackKernel = "kernel" // Linux kernel stacks in network namespaces
)

// StackName is the stack a run or condition ran on: "" (a file from before stacks, or a
// condition built without one) is gVisor.
func StackName(s string) string {
	if s == "" {
		return StackGVisor
	}
	return s
}

// condStack is a stack as a Cond holds it: gVisor is "", so Cond's zero value (and every run
// of a file written before stacks) is a gVisor condition.
func condStack(s string) string {
	if s == StackGVisor {
		return ""
	}
	return s
}

// StackTitle says a stack in words for headers and legends: "gVisor", "Linux".
func StackTitle(s string) string {
	switch StackName(s) {
	case StackGVisor:
		return "gVisor"
	case StackKernel:
		return "Linux"
	}
	return s
}

func stackRank(s string) int {
	switch StackName(s) {
	case StackGVisor:
		return 0
	case StackKernel:
		return 1
	}
	return 2
}

func compareStacks(a, b string) int {
	return cmp.Or(cmp.Compare(stackRank(a), stackRank(b)), strings.Compare(StackName(a), StackName(b)))
}

// Cond is a link condition: one point of a scenario's sweep, on one TCP/IP stack. Runs on
// different stacks are never the same condition: they are not averaged or compared together.
type Cond struct {
	DelayMS float64 // one-way delay
	Loss    float64 // per direction, a fraction
	Burst   float64 // mean loss-burst length (Gilbert-Elliott); 0 = Bernoulli
	Stack   string  // "" = gVisor (StackName says it); "kernel" = Linux kernel stacks
}

// Compare orders conditions by delay, burst, loss, then stack (gVisor first): the stacks of
// one link condition sit next to each other.
func (c Cond) Compare(d Cond) int {
	return cmp.Or(cmp.Compare(c.DelayMS, d.DelayMS), cmp.Compare(c.Burst, d.Burst), cmp.Compare(c.Loss, d.Loss), compareStacks(c.Stack, d.Stack))
}

// String says the condition in words: "2% loss, 20 ms one way" (", bursts of 4" when bursty;
// ", Linux kernel stack" on the kernel stack: gVisor, the default, is not named).
func (c Cond) String() string {
	s := fmt.Sprintf("%s loss, %s ms one way", pct(c.Loss), num(c.DelayMS))
	if c.Burst > 0 {
		s += fmt.Sprintf(", bursts of %s", num(c.Burst))
	}
	return s + stackSuffix(c.Stack)
}

// stackSuffix names a stack other than gVisor after a condition.
func stackSuffix(stack string) string {
	switch StackName(stack) {
	case StackGVisor:
		return ""
	case StackKernel:
		return ", Linux kernel stack"
	}
	return ", " + stack + " stack"
}

// Link is the condition without its stack: what the two stacks of a side-by-side share.
func (c Cond) Link() Cond { c.Stack = ""; return c }

// Slug is the condition for a file name: "20ms-loss2pct", "20ms-loss2pct-burst4",
// "20ms-loss2pct-kernel".
func (c Cond) Slug() string {
	s := fmt.Sprintf("%sms-loss%spct", slugNum(c.DelayMS), slugNum(c.Loss*100))
	if c.Burst > 0 {
		s += "-burst" + slugNum(c.Burst)
	}
	if c.Stack != "" {
		s += "-" + c.Stack
	}
	return s
}

// sweep is the part of a condition a loss sweep holds fixed.
type sweep struct {
	DelayMS, Burst float64
	Stack          string
}

func (c Cond) sweep() sweep { return sweep{c.DelayMS, c.Burst, c.Stack} }

func (s sweep) String() string {
	str := fmt.Sprintf("%s ms one way", num(s.DelayMS))
	if s.Burst > 0 {
		str += fmt.Sprintf(", bursts of %s", num(s.Burst))
	}
	return str + stackSuffix(s.Stack)
}

// Key is what repeats share: a transport at a condition.
type Key struct {
	Transport string
	Cond
}

func (k Key) String() string { return k.Transport + " at " + k.Cond.String() }

// Key is the run's transport and condition (its stack included).
func (r *Run) Key() Key {
	return Key{r.Transport, Cond{DelayMS: r.DelayMS, Loss: r.Loss, Burst: r.Burst, Stack: condStack(r.Stack)}}
}

// StackName is the stack the run used; a run without one (a file from before stacks) ran on
// gVisor.
func (r *Run) StackName() string { return StackName(r.Stack) }

// Cond is the run's link condition.
func (r *Run) Cond() Cond { return r.Key().Cond }

// Ident names a run in messages: "websocket 2% loss 20ms #0".
func (r *Run) Ident() string {
	s := fmt.Sprintf("%s %s loss %sms", r.Transport, pct(r.Loss), num(r.DelayMS))
	if r.Burst > 0 {
		s += " burst " + num(r.Burst)
	}
	if st := r.StackName(); st != StackGVisor {
		s += " " + st
	}
	return fmt.Sprintf("%s #%d", s, r.Repeat)
}

// Group is the repeats of one Key, in repeat order.
type Group struct {
	Key
	Runs []*Run
}

// Groups groups f's runs by Key: by transport in the order they are shown (Transports), then
// by condition.
func Groups(f *File) []Group {
	idx := map[Key]int{}
	var out []Group
	for i := range f.Runs {
		r := &f.Runs[i]
		k := r.Key()
		j, ok := idx[k]
		if !ok {
			j = len(out)
			idx[k] = j
			out = append(out, Group{Key: k})
		}
		out[j].Runs = append(out[j].Runs, r)
	}
	l := f.lineup()
	slices.SortFunc(out, func(a, b Group) int { return l.compareKeys(a.Key, b.Key) })
	for _, g := range out {
		slices.SortStableFunc(g.Runs, func(a, b *Run) int { return a.Repeat - b.Repeat })
	}
	return out
}

// Values is the metric of every repeat.
func (g Group) Values(m Metric) []float64 {
	out := make([]float64, len(g.Runs))
	for i, r := range g.Runs {
		out[i] = m.Of(r)
	}
	return out
}

// Transports lists the transports in f, in the order they are shown (File.Order, else the
// order of their first runs).
func Transports(f *File) []string {
	var out []string
	for i := range f.Runs {
		if !slices.Contains(out, f.Runs[i].Transport) {
			out = append(out, f.Runs[i].Transport)
		}
	}
	slices.SortFunc(out, f.lineup().compare)
	return out
}

// Stacks lists the stacks f's runs used, gVisor first ("gvisor" for a file from before
// stacks).
func Stacks(f *File) []string {
	var out []string
	for i := range f.Runs {
		if s := f.Runs[i].StackName(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, compareStacks)
	return out
}

// FileStack is File.Stack for f's runs: the one stack, or the stacks joined by commas
// ("gvisor,kernel"); "" for a file without runs.
func FileStack(f *File) string { return JoinStacks(Stacks(f)) }

// JoinStacks is File.Stack for a list of stacks (a scenario's): distinct, gVisor first,
// joined by commas.
func JoinStacks(stacks []string) string {
	var out []string
	for _, s := range stacks {
		if s = StackName(s); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, compareStacks)
	return strings.Join(out, ",")
}

// Conds lists the conditions in f, ordered.
func Conds(f *File) []Cond {
	var out []Cond
	for i := range f.Runs {
		if c := f.Runs[i].Cond(); !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, Cond.Compare)
	return out
}

// Metric is one figure of a run, for tables, comparison and history.
type Metric struct {
	Name  string // as on the command line: p99, bytes_per_msg
	Label string // for axes and tables: "p99 latency"
	Unit  string // "ms", "B", "µs", "copies"
	Of    func(*Run) float64
	// Count metrics (lost, duplicates) are integers where any rise from zero matters.
	Count bool
	// Summary reads the metric from a point's summary (results.json's "summary", issue 11):
	// the figure of every copy of all repeats pooled and its 95% interval, in Unit. Nil for
	// the metrics the summary does not carry (all but p50, p99 and stall_rate).
	Summary func(PointSummary) (figure float64, ci95 [2]float64)
}

// Metrics are the figures `lab compare` and `lab history` know, by name.
var Metrics = []Metric{
	{Name: "p50", Label: "p50 latency", Unit: "ms", Of: func(r *Run) float64 { return r.Latency.P50 },
		Summary: func(s PointSummary) (float64, [2]float64) { return s.P50, s.P50CI95 }},
	{Name: "p90", Label: "p90 latency", Unit: "ms", Of: func(r *Run) float64 { return r.Latency.P90 }},
	{Name: "p99", Label: "p99 latency", Unit: "ms", Of: func(r *Run) float64 { return r.Latency.P99 },
		Summary: func(s PointSummary) (float64, [2]float64) { return s.P99, s.P99CI95 }},
	{Name: "p999", Label: "p99.9 latency", Unit: "ms", Of: func(r *Run) float64 { return r.Latency.P999 }},
	{Name: "max", Label: "max latency", Unit: "ms", Of: func(r *Run) float64 { return r.Latency.Max }},
	{Name: "mean", Label: "mean latency", Unit: "ms", Of: func(r *Run) float64 { return r.Latency.Mean }},
	{Name: "bytes_per_msg", Label: "bytes on the wire per delivered copy", Unit: "B", Of: func(r *Run) float64 { return r.Server.BytesPerMsg }},
	{Name: "cpu_us_per_msg", Label: "server CPU per delivered copy", Unit: "µs", Of: func(r *Run) float64 { return r.Server.CPUUSPerMsg }},
	{Name: "rss_peak", Label: "server peak RSS", Unit: "MB", Of: func(r *Run) float64 { return float64(r.Server.RSSPeakBytes) / 1e6 }},
	{Name: "rss_per_session", Label: "server memory per session", Unit: "KB", Of: func(r *Run) float64 { return r.Server.RSSPerSession / 1e3 }},
	{Name: "requests", Label: "server requests", Unit: "requests", Of: func(r *Run) float64 { return float64(r.Server.Requests) }},
	{Name: "late200", Label: "copies later than 200 ms", Unit: "%", Of: func(r *Run) float64 { return 100 * r.Late.Share(200) }},
	{Name: "late400", Label: "copies later than 400 ms", Unit: "%", Of: func(r *Run) float64 { return 100 * r.Late.Share(400) }},
	{Name: "stalls", Label: "stalled copies", Unit: "copies", Of: func(r *Run) float64 { return float64(r.Stalls.Count) }},
	{Name: "stall_rate", Label: "stall rate (stalled / delivered copies)", Unit: "%", Of: func(r *Run) float64 { return 100 * stallRate(r.Stalls.Count, r.Delivered) },
		Summary: func(s PointSummary) (float64, [2]float64) {
			return 100 * s.StallRate, [2]float64{100 * s.StallRateCI95[0], 100 * s.StallRateCI95[1]}
		}},
	{Name: "collateral", Label: "head-of-line (collateral) stalls", Unit: "copies", Of: func(r *Run) float64 { return float64(r.Stalls.Collateral) }},
	{Name: "lost", Label: "lost copies", Unit: "copies", Of: func(r *Run) float64 { return float64(r.Lost) }, Count: true},
	{Name: "duplicates", Label: "duplicate copies", Unit: "copies", Of: func(r *Run) float64 { return float64(r.Duplicates) }, Count: true},
	{Name: "out_of_order", Label: "out-of-order copies", Unit: "copies", Of: func(r *Run) float64 { return float64(r.OutOfOrder) }},
}

// stallRate is stalled copies over delivered copies; 0 when nothing was delivered.
func stallRate(stalls, delivered int64) float64 {
	if delivered <= 0 {
		return 0
	}
	return float64(stalls) / float64(delivered)
}

// MetricByName finds a metric; the error lists the known names.
func MetricByName(name string) (Metric, error) {
	for _, m := range Metrics {
		if m.Name == name {
			return m, nil
		}
	}
	names := make([]string, len(Metrics))
	for i, m := range Metrics {
		names[i] = m.Name
	}
	return Metric{}, fmt.Errorf("unknown metric %q (known: %s)", name, strings.Join(names, ", "))
}

// Summary of a metric over repeats.
type Summary struct {
	N                      int
	Mean, Median, Min, Max float64
}

// Summarize summarizes xs; N == 0 means no values (the rest are NaN).
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		nan := math.NaN()
		return Summary{Mean: nan, Median: nan, Min: nan, Max: nan}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Summary{N: len(s), Mean: sum / float64(len(s)), Median: med, Min: s[0], Max: s[len(s)-1]}
}

// pct formats a fraction as a percentage: 0.02 -> "2%", 0.005 -> "0.5%".
func pct(f float64) string { return num(f*100) + "%" }

// num formats a number without trailing zeros, at most 3 significant decimals.
func num(x float64) string {
	switch {
	case math.IsNaN(x):
		return "–"
	case math.IsInf(x, 1):
		return "∞"
	case math.Abs(x) >= 1000 && math.Abs(x) < 1e15:
		return group3(int64(math.Round(x)))
	case x == math.Trunc(x) && math.Abs(x) < 1e15:
		return fmt.Sprintf("%.0f", x)
	case math.Abs(x) >= 100:
		return fmt.Sprintf("%.0f", x)
	case math.Abs(x) >= 10:
		return trimZeros(fmt.Sprintf("%.1f", x))
	default:
		return trimZeros(fmt.Sprintf("%.3g", x))
	}
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") && !strings.ContainsAny(s, "eE") {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	return s
}

func slugNum(x float64) string {
	return strings.ReplaceAll(trimZeros(fmt.Sprintf("%.3f", x)), ".", "_")
}
