// Command lab is wirelab's command line: the chat server (serve), the teaching demo (demo), the
// scenario runner (run, compare, history), the link checker (probe) and token minting (token).
//
// It holds the flags, their checks and what is printed; the work is in the packages (lab,
// server, results, netem, scenarios, web). Nothing imports it (internal/archtest holds this):
// what another package needs from here moves into a package.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"syscall"

	"github.com/wirelab/wirelab/chat/redisbroker"
	"github.com/wirelab/wirelab/scenarios"
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is filled by each command's file in its init.
var commands = map[string]command{}

// errUsage means the command printed its own usage; exit 2 without more words. (A bad value
// that the command reports itself is a badValue, also exit 2.)
var errUsage = errors.New("usage")

func main() {
	// go-redis logs every failed dial; the Redis broker reports a Redis that went away once,
	// in its own words. The logger is the process's: the command, not the library, decides.
	redisbroker.QuietLogger()
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "lab: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if prefix := os.Getenv("WIRELAB_CPUPROFILE"); prefix != "" {
		// For developers: where a command's CPU goes (the lab and its server child each write
		// PREFIX.COMMAND.PID.pprof when they end normally).
		if f, err := os.Create(fmt.Sprintf("%s.%s.%d.pprof", prefix, args[0], os.Getpid())); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
		}
	}
	if err := cmd.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
			return 2
		}
		var ec exitCode
		if errors.As(err, &ec) {
			return int(ec)
		}
		fmt.Fprintf(stderr, "lab %s: %v\n", args[0], err)
		var bv *badValue
		var se *scenarios.Error
		if errors.As(err, &bv) || errors.As(err, &se) {
			return 2 // bad input: a flag's value, a scenario file's field
		}
		return 1
	}
	return 0
}

// exitCode is an error that only sets the exit status (the command has said why).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: lab COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if commands[n].summary != "" {
			fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
		}
	}
	fmt.Fprintln(w, "\nlab COMMAND -h shows a command's flags.")
}

// newFlags returns a FlagSet that prints its usage to stderr and returns errors.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("lab "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: lab %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}
