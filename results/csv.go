package results

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
)

// csvColumns are results.csv's columns: the name says the unit (_ms, _pct, _bytes, _s, _us);
// counts of messages say what they count (_msgs, _copies, _packets, _requests).
var csvColumns = []struct {
	name string
	of   func(*Run) string
}{
	{"transport", func(r *Run) string { return r.Transport }},
	{"loss_pct", func(r *Run) string { return f64(r.Loss * 100) }},
	{"delay_ms", func(r *Run) string { return f64(r.DelayMS) }},
	{"burst_packets", func(r *Run) string { return f64(r.Burst) }},
	{"stack", func(r *Run) string { return r.StackName() }},
	{"repeat", func(r *Run) string { return strconv.Itoa(r.Repeat) }},
	{"sessions_count", func(r *Run) string { return strconv.Itoa(r.Sessions) }},
	{"sent_msgs", func(r *Run) string { return i64(r.Sent) }},
	{"expected_copies", func(r *Run) string { return i64(r.Expected) }},
	{"delivered_copies", func(r *Run) string { return i64(r.Delivered) }},
	{"lost_copies", func(r *Run) string { return i64(r.Lost) }},
	{"duplicate_copies", func(r *Run) string { return i64(r.Duplicates) }},
	{"out_of_order_copies", func(r *Run) string { return i64(r.OutOfOrder) }},
	{"latency_p50_ms", func(r *Run) string { return f64(r.Latency.P50) }},
	{"latency_p90_ms", func(r *Run) string { return f64(r.Latency.P90) }},
	{"latency_p99_ms", func(r *Run) string { return f64(r.Latency.P99) }},
	{"latency_p999_ms", func(r *Run) string { return f64(r.Latency.P999) }},
	{"latency_max_ms", func(r *Run) string { return f64(r.Latency.Max) }},
	{"latency_mean_ms", func(r *Run) string { return f64(r.Latency.Mean) }},
	{"late_100ms_pct", func(r *Run) string { return latePct(r, 100) }},
	{"late_200ms_pct", func(r *Run) string { return latePct(r, 200) }},
	{"late_400ms_pct", func(r *Run) string { return latePct(r, 400) }},
	{"late_1000ms_pct", func(r *Run) string { return latePct(r, 1000) }},
	{"stalls_copies", func(r *Run) string { return i64(r.Stalls.Count) }},
	{"stalls_collateral_copies", func(r *Run) string { return i64(r.Stalls.Collateral) }},
	{"stalls_system_copies", func(r *Run) string { return i64(r.Stalls.System) }},
	{"stalls_total_ms", func(r *Run) string { return f64(r.Stalls.TotalMS) }},
	{"link_packets", func(r *Run) string { return i64(r.Link.Packets) }},
	{"link_bytes", func(r *Run) string { return i64(r.Link.Bytes) }},
	{"link_dropped_packets", func(r *Run) string { return i64(r.Link.Dropped) }},
	{"link_loss_measured_pct", func(r *Run) string { return f64(r.Link.LossMeasured * 100) }},
	{"server_cpu_s", func(r *Run) string { return f64(r.Server.CPUSeconds) }},
	{"server_cpu_us_per_msg", func(r *Run) string { return f64(r.Server.CPUUSPerMsg) }},
	{"server_rss_peak_bytes", func(r *Run) string { return i64(r.Server.RSSPeakBytes) }},
	{"server_requests", func(r *Run) string { return i64(r.Server.Requests) }},
	{"server_bytes_per_msg", func(r *Run) string { return f64(r.Server.BytesPerMsg) }},
	{"server_goroutines_peak", func(r *Run) string { return i64(r.Server.GoroutinesPeak) }},
	{"server_rss_per_session_bytes", func(r *Run) string { return f64(r.Server.RSSPerSession) }},
	{"lab_cpu_s", func(r *Run) string { return f64(r.Lab.CPUSeconds) }},
	{"lab_cpu_share_pct", func(r *Run) string { return f64(r.Lab.CPUShare * 100) }},
	{"lab_send_lag_p99_ms", func(r *Run) string { return f64(r.Lab.SendLagP99) }},
	{"lab_link_queue_peak_packets", func(r *Run) string { return i64(r.Lab.QueuePeak) }},
	{"lab_sched_delay_p99_ms", func(r *Run) string { return f64(r.Lab.SchedulerMS) }},
	{"warnings", func(r *Run) string { return strings.Join(r.Warnings, "; ") }},
}

// CSVHeader is results.csv's header row.
func CSVHeader() []string {
	out := make([]string, len(csvColumns))
	for i, c := range csvColumns {
		out[i] = c.name
	}
	return out
}

// WriteCSV writes results.csv: a header naming every column with its unit, then one row per
// run in the stable order of WriteJSON. Per-copy samples and drop times are not in the CSV
// (results.json has them).
func WriteCSV(w io.Writer, f *File) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader()); err != nil {
		return err
	}
	row := make([]string, len(csvColumns))
	for _, r := range SortedRuns(f) {
		for i, c := range csvColumns {
			row[i] = c.of(&r)
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// latePct is the share of copies later than ms, in percent; empty when not measured.
func latePct(r *Run, ms float64) string {
	if r.Late == nil {
		return ""
	}
	return f64(100 * r.Late.Share(ms))
}

func f64(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
func i64(x int64) string   { return strconv.FormatInt(x, 10) }
