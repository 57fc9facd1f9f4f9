package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/wirelab/wirelab/lab"
	"github.com/wirelab/wirelab/results"
	"github.com/wirelab/wirelab/scenarios"
)

func init() {
	commands["run"] = command{summary: "run a scenario file: results.json, results.csv, plots and a report", run: runRun}
}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if os.Getenv("GOGC") == "" {
		// The lab holds every client and records every copy: at the default GOGC its heap
		// grows through many collections a run, each taking CPU from the clients it emulates
		// at random times, and a no-loss run's p99 (every stall's threshold) moved with them.
		debug.SetGCPercent(400)
	}
	fs := newFlags("run", "FILE.yaml [--out DIR] [--seed N] [--quick]", stderr)
	out := fs.String("out", "", "directory for results.json, results.csv, report.html, report.md and the plots (default out/NAME-TIME)")
	quick := fs.Bool("quick", false, "scale the scenario down for a smoke test: 3 s runs, 1 s warmup, one repeat, at most 20 users")
	inProcess := fs.Bool("in-process", false, "run the server inside the lab process (its CPU and memory are then not measured apart)")
	verbose := fs.Bool("v", false, "log each phase of each run to stderr")
	seed := fs.String("seed", "", "use this seed instead of the scenario's (a non-negative integer): check a finding on another seed without editing the file; results.json records the seed used")
	// Flags may follow the file name.
	var file string
	for len(args) > 0 {
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		args = fs.Args()
		if len(args) > 0 {
			if file != "" {
				fs.Usage()
				return badFlag("one scenario file at a time (got %q and %q)", file, args[0])
			}
			file, args = args[0], args[1:]
		}
	}
	if file == "" {
		fs.Usage()
		return errUsage
	}
	text, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	sc, err := scenarios.Parse(file, text)
	if err != nil {
		return err
	}
	if *seed != "" {
		n, err := strconv.ParseUint(*seed, 10, 64)
		if err != nil {
			return badFlag("--seed %q is not a non-negative integer (try --seed 2)", *seed)
		}
		sc.Seed = n
	}
	if *quick {
		sc.Quick()
	}
	if *out == "" {
		*out = filepath.Join("out", sc.Name+"-"+time.Now().UTC().Format("20060102-150405"))
	}
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	bar := &lab.Bar{W: stderr, Terminal: tty}
	opts := lab.Options{Progress: bar, InProcess: *inProcess, ScenarioText: string(text), PeerInstall: stderr}
	opts.StackChosen = func(stack string, kernelErr error) {
		if kernelErr != nil {
			fmt.Fprintf(stderr, "stack: auto -> %s (%v)\n", stack, kernelErr)
			return
		}
		fmt.Fprintf(stderr, "stack: auto -> %s (Linux TCP/IP in network namespaces)\n", stack)
	}
	if !slices.Contains(sc.Stacks, scenarios.StackAuto) {
		fmt.Fprintf(stderr, "stack: %s\n", strings.Join(sc.Stacks, ", "))
	}
	if *verbose {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	f, err := lab.Run(ctx, sc, opts)
	if err != nil {
		if f != nil && len(f.Runs) > 0 {
			if _, werr := results.WriteDir(*out, f); werr == nil {
				fmt.Fprintf(stderr, "results so far (%d runs) in %s\n", len(f.Runs), *out)
			}
		}
		return err
	}
	if _, err := results.WriteDir(*out, f); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "report: %s\n", filepath.Join(*out, "report.html"))
	return nil
}
