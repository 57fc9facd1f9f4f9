// Package results holds what a lab run produces and everything read from it afterwards: the
// results schema (results.json, one object per run; schema.go), JSON and CSV writing and
// reading, the plots (PNG and SVG), the report (report.html, self-contained, and report.md),
// the comparison of two result files (Compare, behind `lab compare`) and a metric across many
// files (History, behind `lab history`). It is the only importer of gonum.org/v1/plot.
//
// # Overview
//
// The runner builds a File and calls WriteDir, which writes into one directory:
//
//	results.json                    WriteJSON: indented, runs in a stable order, validated
//	results.csv                     WriteCSV: a row per run, every column named with its unit
//	report.html                     self-contained: plots inline, no scripts, fonts or links
//	report.md                       the same, plots referred to as the files beside it
//	cdf-COND.png/.svg               (a) latency CDF per transport, one per condition
//	latency-vs-loss-SWEEP.png/.svg  (b) p50 and p99 against loss, a panel per transport, 95% CIs
//	stalls-vs-loss-SWEEP.png/.svg   (c) stalls, collateral (head-of-line) and system stalls
//	bytes-per-msg-COND.png/.svg     (d) bytes on the wire per delivered copy
//	server-cpu-COND.png/.svg        (e) server CPU per 1,000 delivered copies
//	timeline-T-COND-rN.png/.svg     (f) one run's copies over time, drops and stalls marked
//	stacks-late-COND.png/.svg       (g) copies later than 200 and 400 ms, gVisor against Linux
//	stacks-tail-COND.png/.svg       (h) share of copies later than x, gVisor against Linux
//
// COND is a condition's Slug ("20ms-loss2pct", "20ms-loss2pct-kernel" on the kernel stack); SWEEP
// is a delay (and burst, and stack) with two or more loss rates. (g) and (h) are drawn only for a
// file with runs on both stacks, one per lossy link condition. Figures without data are left out
// rather than drawn empty. Theory is drawn as grey dashed lines where it exists: the push floor
// (two one-way delays), short polling's mean (interval/2 plus two one-way delays, for the
// runs that poll at an interval: Run.PollIntervalMS) and TCP's retransmission floor (gVisor's 200 ms minimum RTO above the
// no-loss latency).
//
// Intervals (issue 11, bootstrap.go, findings.go): the lab hands every session of every run to
// an Evidence per point; Bootstrap resamples sessions (the independent unit: one retransmission
// timeout delays every copy queued behind it on a connection), crossed with messages (a room
// message's copies share its sender's upstream losses), and gives the point's summary
// entry (p50, p99, stall rate, each with a 95% interval), and Findings compares transports
// (ratios with intervals; bytes and CPU with the run as the unit, RunRatio). The reading
// states every finding and no other ratio between transports; "no clear difference" where an
// interval holds 1. A file without a summary reads, compares and renders as before, and its
// reading claims no difference.
//
// Reading reports in plain words what the numbers say; every sentence is computed from the
// File, and a sentence whose numbers are missing or zero is left out rather than guessed.
// Run.Warnings are shown at the top of both reports and on their rows.
//
// Every run says its TCP/IP stack (Run.Stack: "gvisor" or "kernel"; a run from before stacks is
// gVisor) and its late shares (Run.Late: the share of every delivered copy later than 100,
// 200, 400 and 1,000 ms; LateShares computes it). The report's header says the stack; its
// table shows copies later than 200 and 400 ms; a file with both stacks gets a "gVisor against
// Linux" section (StackPairs, StackTable, StackReading) that puts each transport and condition
// side by side and says plainly where gVisor's TCP tail is more than 2× Linux's.
//
// Runs are grouped by Key: transport and Cond (one-way delay, loss, burst, stack). Runs on
// different stacks are never one condition. Repeats of one Key
// are the samples Compare's statistics work on: a Mann-Whitney U test on the repeat values, as
// benchstat does; with too few repeats, a seeded bootstrap over the per-copy latency samples
// (noise within runs only). A change is a regression only when it is beyond noise and beyond
// the threshold; lost or duplicated copies rising from zero always are.
//
// Each transport has one colour in every plot of a report (File.TransportColor: the palette's
// colour at its place in the file's order, not a colour per name) and a marker shape; dashes tell
// apart series of one transport (p50 solid, p99 dashed; stalls solid, collateral dashed, system
// dotted, drawn only when a run had system stalls) and
// theory lines are grey, each kind with its own dashes.
//
// Package resultstest makes seeded synthetic files for tests of everything here.
//
// # Concurrency
//
// Nothing here starts goroutines; functions are safe to call concurrently on distinct values.
// A File is read, never changed, by plots, reports and comparisons.
package results
