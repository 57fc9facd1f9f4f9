// Package scenarios loads and validates scenario files: what the lab runs, over which transports,
// behind which emulated link. The format is documented field by field in docs/SCENARIOS.md; a
// mistake in a file is reported with its line and the accepted form, never guessed around.
//
// It imports netem (a link is parsed straight into a netem.LinkProfile) and transports/all (the
// table's names: KnownTransports); never server, lab, results or web: the lab reads a Scenario,
// a scenario knows no run (internal/archtest holds this).
//
// load.go holds the file's shape (scenarioFile, read key by key by decodeFields, which keeps each
// mistake's line and a "did you mean" hint for a misspelt key) and the checks across fields;
// values.go holds the value types, each reading its own YAML node.
package scenarios

import (
	"slices"
	"sort"
	"time"

	"github.com/wirelab/wirelab/netem"
)

// Scenario is one parsed scenario file with every default filled in.
type Scenario struct {
	Name         string
	Seed         uint64
	Duration     time.Duration // measured time, after warmup
	Warmup       time.Duration
	Transports   []string
	Users        int // simulated users
	Tabs         int // sessions per user
	Rooms        int // rooms besides lobby; each user joins one
	Workload     Workload
	PollInterval time.Duration // shortpoll only
	Link         Link
	Repeat       int
	Nodes        int // server nodes (more than one needs Redis)
	// Stacks are the TCP/IP stacks the sweep runs on: StackGVisor, StackKernel, or StackAuto
	// (the lab resolves it with ResolveStack before running). Two stacks make the stack a
	// sweep dimension, like loss.
	Stacks []string
}

// The TCP/IP stacks a scenario can name.
const (
	StackGVisor = "gvisor" // gVisor's netstack in the lab's process (the default)
	StackKernel = "kernel" // Linux kernel stacks in network namespaces (needs root and /dev/net/tun)
	StackAuto   = "auto"   // kernel where the machine allows it, else gvisor
)

// StackNames are the values `stack` accepts.
var StackNames = []string{StackGVisor, StackKernel, StackAuto}

// ResolveStack replaces StackAuto with StackKernel when kernelOK (root and /dev/net/tun),
// else StackGVisor. The lab calls it once before Points; a scenario without auto is unchanged.
// It returns the stack auto became ("" when the scenario has no auto).
func (s *Scenario) ResolveStack(kernelOK bool) string {
	to := StackGVisor
	if kernelOK {
		to = StackKernel
	}
	resolved := ""
	for i, st := range s.Stacks {
		if st == StackAuto {
			s.Stacks[i] = to
			resolved = to
		}
	}
	return resolved
}

// NeedsKernel says whether the sweep runs on the kernel stack (after ResolveStack; StackAuto
// does not count).
func (s *Scenario) NeedsKernel() bool {
	for _, st := range s.Stacks {
		if st == StackKernel {
			return true
		}
	}
	return false
}

// Workload is the open-loop message schedule.
type Workload struct {
	Rate   float64 // messages per second, all users together
	Size   int     // text bytes per message
	RoomP  float64 // share of room messages
	DMP    float64 // share of direct messages
	Sender string  // who sends: "all" (a random user each time), "one" (one publisher, for fan-out) or "turns" (every session in turn, evenly spaced)
}

// Link is the emulated link of every client, one-way, each direction. Delays and losses are
// lists: each combination is one point of the sweep; everything else is in Template.
type Link struct {
	// Template is the link without its swept fields: jitter, reorder, rate, queue, blackhole
	// and block as the file gives them. Its Delay and Loss are zero; Profile fills them in
	// for each point.
	Template  netem.LinkProfile
	Delays    []time.Duration
	Losses    []Loss
	LossModel string  // the model of plain loss entries: "bernoulli" or "gilbert-elliott"
	Burst     float64 // mean burst length in packets of plain entries (gilbert-elliott)
}

// Loss is one loss setting of the sweep: a rate per direction and, for bursty
// (Gilbert-Elliott) loss, the mean burst length; Burst 0 is independent (Bernoulli) loss.
type Loss struct {
	Rate  float64
	Burst float64
}

// Point is one run of the sweep.
type Point struct {
	Transport string
	Delay     time.Duration
	Loss      float64
	Burst     float64 // 0: Bernoulli
	Repeat    int
	Stack     string // StackGVisor, StackKernel (or StackAuto before ResolveStack)
	// Pair is the point's index with the stacks folded together: the points of one transport,
	// delay, loss and repeat on different stacks share it (in a single-stack sweep it is the
	// point's index). Seeding a run from Pair gives both stacks the same schedule and loss
	// process, a paired comparison.
	Pair int
}

// Profile is the netem profile of one direction of a client's link at p: the link's template
// with p's delay and loss. Load has validated every point of the sweep; the error is a
// *netem.FieldError for a Scenario built by hand.
func (s *Scenario) Profile(p Point) (netem.LinkProfile, error) {
	prof := s.Link.Template
	prof.BlockPorts = slices.Clone(prof.BlockPorts)
	prof.Delay = p.Delay
	prof.Loss = netem.Loss{Model: netem.LossBernoulli, Rate: p.Loss}
	if p.Burst > 0 && p.Loss > 0 {
		prof.Loss.Model = netem.LossGilbertElliott
		prof.Loss.Burst = p.Burst
	}
	return prof, prof.Validate()
}

// Points lists the sweep in run order: for each transport, each delay and each loss rate (0%
// always included, first, because stall detection needs it), each repeat, each stack. The
// stacks of one transport, condition and repeat run one after the other, so a side-by-side
// compares runs made close in time.
func (s *Scenario) Points() []Point {
	var out []Point
	stacks := s.stacks()
	pair := 0
	for _, t := range s.Transports {
		for _, d := range s.Link.Delays {
			for _, l := range s.Link.Losses {
				for r := 0; r < s.Repeat; r++ {
					for _, st := range stacks {
						out = append(out, Point{Transport: t, Delay: d, Loss: l.Rate, Burst: l.Burst, Repeat: r, Stack: st, Pair: pair})
					}
					pair++
				}
			}
		}
	}
	return out
}

// stacks is s.Stacks, or the default when a Scenario was built without it.
func (s *Scenario) stacks() []string {
	if len(s.Stacks) == 0 {
		return []string{StackGVisor}
	}
	return s.Stacks
}

// linkPoints is every distinct link of the sweep.
func (s *Scenario) linkPoints() []Point {
	var out []Point
	for _, d := range s.Link.Delays {
		for _, l := range s.Link.Losses {
			out = append(out, Point{Delay: d, Loss: l.Rate, Burst: l.Burst})
		}
	}
	return out
}

// Sessions is how many sessions the scenario opens.
func (s *Scenario) Sessions() int { return s.Users * s.Tabs }

// Estimate is how long the whole sweep takes, warmup included, setup not: every point (each
// stack counts) times duration plus warmup.
func (s *Scenario) Estimate() time.Duration {
	return time.Duration(len(s.Points())) * (s.Duration + s.Warmup)
}

// normalize gives plain entries the link's model, sorts the sweep lists and puts 0% loss in.
func (s *Scenario) normalize() {
	has0 := false
	for i, l := range s.Link.Losses {
		if l.Burst < 0 { // a plain entry: the link-level model
			s.Link.Losses[i].Burst = 0
			if s.Link.LossModel == "gilbert-elliott" {
				s.Link.Losses[i].Burst = s.Link.Burst
			}
		}
		if l.Rate == 0 {
			s.Link.Losses[i].Burst = 0
			has0 = true
		}
	}
	if !has0 {
		s.Link.Losses = append(s.Link.Losses, Loss{})
	}
	sort.Slice(s.Link.Losses, func(i, j int) bool {
		a, b := s.Link.Losses[i], s.Link.Losses[j]
		return a.Rate < b.Rate || (a.Rate == b.Rate && a.Burst < b.Burst)
	})
	s.Link.Losses = dedupe(s.Link.Losses)
	sort.Slice(s.Link.Delays, func(i, j int) bool { return s.Link.Delays[i] < s.Link.Delays[j] })
	s.Link.Delays = dedupe(s.Link.Delays)
}

func dedupe[T comparable](xs []T) []T {
	out := xs[:0]
	for i, x := range xs {
		if i == 0 || x != out[len(out)-1] {
			out = append(out, x)
		}
	}
	return out
}

// Quick scales the scenario down for a smoke test: runs of at most 3 s after a 1 s warmup, one
// repeat, at most 20 users.
func (s *Scenario) Quick() {
	s.Duration = min(s.Duration, 3*time.Second)
	s.Warmup = min(s.Warmup, time.Second)
	s.Repeat = 1
	if s.Users > 20 {
		s.Users = 20
	}
}
