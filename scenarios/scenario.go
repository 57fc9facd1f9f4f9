// Package scenarios loads and validates scenario files: what the lab runs, over which transports,
// behind which emulated link. The format is documented field by field in docs/SCENARIOS.md; a
// mistake in a file is reported with its line and the accepted form, never guessed around.
package scenarios

import (
	"fmt"
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
}

// Workload is the open-loop message schedule.
type Workload struct {
	Rate   float64 // messages per second, all users together
	Size   int     // text bytes per message
	RoomP  float64 // share of room messages
	DMP    float64 // share of direct messages
	Sender string  // who sends: "all" (every user) or "one" (one publisher, for fan-out)
}

// Link is the emulated link of every client, one-way, each direction. Delays and losses are
// lists: each combination is one point of the sweep.
type Link struct {
	Delays    []time.Duration
	Jitter    time.Duration
	Reorder   bool
	Rate      uint64 // bits/s, 0 = unlimited
	Queue     int    // packets, 0 = the netem default
	Losses    []float64
	LossModel string  // "bernoulli" or "gilbert-elliott"
	Burst     float64 // mean burst length in packets (gilbert-elliott)
	Blackhole string  // "2s/10s"
	Block     string  // "udp" or ports
}

// Point is one run of the sweep.
type Point struct {
	Transport string
	Delay     time.Duration
	Loss      float64
	Repeat    int
}

// Profile is the netem profile of one direction of a client's link at p.
func (s *Scenario) Profile(p Point) (netem.LinkProfile, error) {
	spec := netem.ProfileSpec{
		Delay:     p.Delay.String(),
		Jitter:    s.Link.Jitter.String(),
		Reorder:   s.Link.Reorder,
		Rate:      fmt.Sprintf("%dbit", s.Link.Rate),
		Loss:      fmt.Sprintf("%g%%", p.Loss*100),
		LossModel: s.Link.LossModel,
		Blackhole: s.Link.Blackhole,
		Block:     s.Link.Block,
	}
	if s.Link.Rate == 0 {
		spec.Rate = "0"
	}
	if s.Link.Queue > 0 {
		spec.Queue = fmt.Sprint(s.Link.Queue)
	}
	if s.Link.Burst > 0 && p.Loss > 0 {
		spec.Burst = fmt.Sprintf("%g", s.Link.Burst)
	}
	return spec.Profile()
}

// Points lists the sweep in run order: for each transport, each delay and each loss rate (0%
// always included, first, because stall detection needs it), each repeat.
func (s *Scenario) Points() []Point {
	var out []Point
	for _, t := range s.Transports {
		for _, d := range s.Link.Delays {
			for _, l := range s.Link.Losses {
				for r := 0; r < s.Repeat; r++ {
					out = append(out, Point{Transport: t, Delay: d, Loss: l, Repeat: r})
				}
			}
		}
	}
	return out
}

// linkPoints is every distinct link of the sweep.
func (s *Scenario) linkPoints() []Point {
	var out []Point
	for _, d := range s.Link.Delays {
		for _, l := range s.Link.Losses {
			out = append(out, Point{Delay: d, Loss: l})
		}
	}
	return out
}

// Sessions is how many sessions the scenario opens.
func (s *Scenario) Sessions() int { return s.Users * s.Tabs }

// Estimate is how long the whole sweep takes, warmup included, setup not.
func (s *Scenario) Estimate() time.Duration {
	return time.Duration(len(s.Points())) * (s.Duration + s.Warmup)
}

// normalize sorts the sweep lists and puts 0% loss in.
func (s *Scenario) normalize() {
	has0 := false
	for _, l := range s.Link.Losses {
		if l == 0 {
			has0 = true
		}
	}
	if !has0 {
		s.Link.Losses = append(s.Link.Losses, 0)
	}
	sort.Float64s(s.Link.Losses)
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
