package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/wirelab/wirelab/netem"
	"github.com/wirelab/wirelab/scenarios"
)

func init() {
	commands["probe"] = command{summary: "check the emulated link: delay, loss, bursts, reordering, throughput", run: runProbe}
}

// The most UDP probes and the longest bulk transfer lab probe takes.
const (
	maxProbePackets = 1_000_000
	maxProbeTCP     = time.Minute
)

// runProbe parses the flags into a netem profile and prints netem.Probe's result.
func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var spec netem.ProfileSpec
	fs.StringVar(&spec.Jitter, "jitter", "0", "delay spread (uniform ± jitter)")
	fs.BoolVar(&spec.Reorder, "reorder", false, "let jitter reorder packets")
	fs.StringVar(&spec.Loss, "loss", "2%", "loss rate, each direction")
	fs.StringVar(&spec.Burst, "burst", "", "mean loss burst in packets (Gilbert-Elliott); empty: independent losses")
	fs.StringVar(&spec.Rate, "rate", "0", "link rate, e.g. 10mbit (0: unlimited)")
	fs.StringVar(&spec.Queue, "queue", "", "drop-tail queue in packets when --rate is set (default 1000)")
	fs.StringVar(&spec.Delay, "delay", "20ms", "one-way delay, each direction (0 to 10s)")
	packets := fs.Int("packets", 10000, "number of UDP probes (1 to 1000000)")
	size := fs.Int("size", 100, "UDP probe payload in bytes (16 to 1400)")
	seed := fs.Uint64("seed", 1, "seed of the loss and jitter draws")
	tcpDur := fs.Duration("tcp", 2*time.Second, "bulk TCP transfer duration (up to 1m; 0 or negative: skip it)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	stack := fs.String("stack", "gvisor", "the TCP/IP stacks at both ends: gvisor (userspace) or kernel (Linux, in network namespaces; needs root and /dev/net/tun)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lab probe: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	if err := intIn("packets", *packets, 1, maxProbePackets); err != nil {
		return err
	}
	if err := intIn("size", *size, 16, 1400); err != nil {
		return err
	}
	if *tcpDur > maxProbeTCP {
		return badFlag("--tcp %s is out of range (up to %s; 0 or negative skips the transfer)", scenarios.ShortDuration(*tcpDur), scenarios.ShortDuration(maxProbeTCP))
	}
	if *stack != "gvisor" && *stack != "kernel" {
		return badFlag("--stack %q is not a stack: use gvisor or kernel", *stack)
	}
	if *tcpDur == 0 {
		*tcpDur = -1 // netem.ProbeConfig: 0 is its default, negative skips
	}
	prof, err := spec.Profile()
	if err != nil {
		return linkFlag(err)
	}
	res, err := netem.Probe(ctx, netem.ProbeConfig{Profile: prof, Seed: *seed, Packets: *packets, Size: *size, TCPDuration: *tcpDur, Stack: *stack})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(res)
	}
	w := func(k, v string) { fmt.Fprintf(stdout, "%-16s %s\n", k, v) }
	w("stack", res.Stack)
	w("link", res.Profile)
	w("seed", strconv.FormatUint(res.Seed, 10))
	w("probes", fmt.Sprintf("%d sent, %d received", res.Sent, res.Received))
	w("delay one-way", fmt.Sprintf("p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  (min %.2f, max %.2f)", res.DelayMS.P50, res.DelayMS.P90, res.DelayMS.P99, res.DelayMS.Min, res.DelayMS.Max))
	w("loss measured", fmt.Sprintf("%.3f%% in %d bursts, mean burst %.2f packets", res.LossMeasured*100, res.Bursts, res.BurstMean))
	w("reorders", strconv.Itoa(res.Reorders))
	w("probe rate", fmt.Sprintf("%.0f probes/s", res.ProbePacketsPerS))
	w("bulk TCP", fmt.Sprintf("%.2f Mbit/s, %.0f packets/s (%d bytes)", res.TCPMbitS, res.PacketsPerS, res.TCPBytes))
	return nil
}
