// Package results holds what a lab run produces and everything read from it afterwards: the
// results schema (results.json, one object per run; schema.go), JSON and CSV writing and
// reading, the plots (PNG and SVG), the report (report.html, self-contained, and report.md),
// the comparison of two result files (Compare, behind `lab compare`) and a metric across many
// files (History, behind `lab history`). It is the only importer of gonum.org/v1/plot.
//
// # Overview
//
// The runner builds a File and calls WriteDir, which writes results.json, results.csv, every
// plot and both reports into one directory. Plots and reports only read the File; every
// sentence of the report's reading is computed from its numbers.
//
// Runs are grouped by Key: transport and Cond (one-way delay, loss, burst). Repeats of one Key
// are the samples the comparison's statistics work on (a Mann-Whitney U test on the repeat
// values, as benchstat does; a seeded bootstrap over the per-copy latency samples when there
// are too few repeats).
//
// Each transport has one colour in every plot (TransportColor); dashes tell apart series of
// one transport (p50 solid, p99 dashed; stalls solid, collateral dashed) and theory lines are
// grey and dashed.
//
// # Concurrency
//
// Nothing here starts goroutines; functions are safe to call concurrently on distinct values.
// A File is read, never changed, by plots, reports and comparisons.
package results
