package scenarios

import (
	"errors"
	"github.com/wirelab/wirelab/peers"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wirelab/wirelab/netem"
)

const designExample = `name: loss-sweep
seed: 1
duration: 20s            # measured time, after warmup
warmup: 2s
transports: [shortpoll, longpoll, stream, sse, websocket, wt-stream, wt-uni, wt-datagram]
users: 50                # simulated users
tabs: 2                  # sessions per user
rooms: 5                 # each user joins one room besides lobby
workload: {rate: 100/s, size: 200, mix: {room: 0.8, dm: 0.2}}   # open loop, seeded
poll_interval: 1s        # shortpoll only
link:                    # one-way delay each way; loss applies per direction
  delay: 20ms
  jitter: 0ms
  rate: 0                # bits/s, 0 = unlimited
  loss: [0%, 1%, 2%, 5%] # a list makes a sweep
  loss_model: bernoulli  # or gilbert-elliott with burst: N
repeat: 3
`

func TestDesignExample(t *testing.T) {
	s, err := Parse("example.yaml", []byte(designExample))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "loss-sweep" || s.Seed != 1 || s.Duration != 20*time.Second || s.Warmup != 2*time.Second {
		t.Errorf("header fields: %+v", s)
	}
	if len(s.Transports) != 8 || s.Users != 50 || s.Tabs != 2 || s.Rooms != 5 || s.Repeat != 3 {
		t.Errorf("sizes: %+v", s)
	}
	if s.Workload.Rate != 100 || s.Workload.Size != 200 || s.Workload.RoomP != 0.8 || s.Workload.DMP != 0.2 {
		t.Errorf("workload: %+v", s.Workload)
	}
	if want := []float64{0, 0.01, 0.02, 0.05}; !equal(rates(s.Link.Losses), want) {
		t.Errorf("losses %v, want %v", s.Link.Losses, want)
	}
	if got := len(s.Points()); got != 8*4*3 {
		t.Errorf("%d points, want 96", got)
	}
	if s.Sessions() != 100 {
		t.Errorf("sessions %d", s.Sessions())
	}
	p, err := s.Profile(Point{Delay: 20 * time.Millisecond, Loss: 0.02})
	if err != nil || p.Delay != 20*time.Millisecond || p.Loss.Rate != 0.02 {
		t.Errorf("profile %+v, %v", p, err)
	}
}

// The link's fixed settings reach every point's profile as typed values, the swept ones per point.
func TestLinkTemplate(t *testing.T) {
	s, err := Parse("link.yaml", []byte("name: x\nlink:\n  delay: 20ms\n  jitter: 5ms\n  reorder: true\n  rate: 10mbit\n  queue: 50\n"+
		"  loss: [{loss: 2%, burst: 3}]\n  blackhole: 2s/10s\n  block: udp,443\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pt   Point
		want string
	}{
		{Point{Delay: 20 * time.Millisecond}, "delay=20ms jitter=5ms reorder rate=10mbit queue=50 loss_model=bernoulli blackhole=2s/10s block=udp block=443"},
		{Point{Delay: 20 * time.Millisecond, Loss: 0.02, Burst: 3}, "delay=20ms jitter=5ms reorder rate=10mbit queue=50 loss=2% burst=3 blackhole=2s/10s block=udp block=443"},
	} {
		p, err := s.Profile(tc.pt)
		if err != nil {
			t.Fatal(err)
		}
		want, err := netem.ParseProfile(tc.want)
		if err != nil {
			t.Fatal(err)
		}
		if p.String() != want.String() || p.Loss != want.Loss || p.Blackhole != want.Blackhole || !slices.Equal(p.BlockPorts, want.BlockPorts) {
			t.Errorf("profile at %+v:\n%+v, want\n%+v", tc.pt, p, want)
		}
	}
}

func TestZeroLossAlwaysRuns(t *testing.T) {
	s, err := Parse("x.yaml", []byte("name: x\nlink: {loss: [5%, 2%]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{0, 0.02, 0.05}; !equal(rates(s.Link.Losses), want) {
		t.Fatalf("losses %v, want %v (0%% added, sorted)", s.Link.Losses, want)
	}
	if s.Points()[0].Loss != 0 {
		t.Fatalf("the 0%% point must come first")
	}
}

func TestDefaults(t *testing.T) {
	s, err := Parse("x.yaml", []byte("name: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if s.Users != d.Users || s.Duration != d.Duration || len(s.Transports) != 8 || s.Link.Delays[0] != 20*time.Millisecond {
		t.Fatalf("defaults not applied: %+v", s)
	}
	// The default is the table's transports but auto, in the table's order (docs/SCENARIOS.md).
	if want := []string{"shortpoll", "longpoll", "stream", "sse", "websocket", "wt-stream", "wt-uni", "wt-datagram"}; !slices.Equal(s.Transports, want) {
		t.Fatalf("default transports %v, want %v", s.Transports, want)
	}
}

// TestKnownTransports: every name KnownTransports gives is accepted, in one list, and a name
// outside it is refused with the list.
func TestKnownTransports(t *testing.T) {
	known := KnownTransports()
	if !slices.Contains(known, "auto") || !slices.Contains(known, "socketio/websocket") || len(known) != 9+len(peers.Names()) {
		t.Fatalf("KnownTransports %v: want the table's nine and the peers'", known)
	}
	s, err := Parse("x.yaml", []byte("name: x\ntransports: ["+strings.Join(known, ", ")+"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Transports, known) {
		t.Fatalf("transports %v, want %v", s.Transports, known)
	}
	_, err = Parse("x.yaml", []byte("name: x\ntransports: [carrier-pigeon]\n"))
	if err == nil || !strings.Contains(err.Error(), "the transports are "+strings.Join(known, ", ")) {
		t.Fatalf("an unknown name: %v", err)
	}
}

func TestGilbertElliott(t *testing.T) {
	s, err := Parse("x.yaml", []byte("name: x\nlink: {loss: 2%, loss_model: gilbert-elliott, burst: 3}\n"))
	if err != nil {
		t.Fatal(err)
	}
	pts := s.Points()
	if len(pts) != 8*2 || pts[1].Burst != 3 {
		t.Fatalf("points %+v", pts[:2])
	}
	p, err := s.Profile(pts[1])
	if err != nil || p.Loss.Burst != 3 {
		t.Fatalf("profile %+v, %v", p.Loss, err)
	}
}

// A sweep can mix independent losses and a bursty case.
func TestMixedLossEntries(t *testing.T) {
	s, err := Parse("x.yaml", []byte("name: x\ntransports: [websocket]\nlink:\n  loss: [1%, 2%, {loss: 2%, burst: 3}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Loss{{0, 0}, {0.01, 0}, {0.02, 0}, {0.02, 3}}
	if len(s.Link.Losses) != len(want) {
		t.Fatalf("losses %+v", s.Link.Losses)
	}
	for i := range want {
		if s.Link.Losses[i] != want[i] {
			t.Fatalf("losses %+v, want %+v", s.Link.Losses, want)
		}
	}
	p, err := s.Profile(s.Points()[3])
	if err != nil || p.Loss.Burst != 3 || p.Loss.Rate != 0.02 {
		t.Fatalf("bursty point profile %+v %v", p.Loss, err)
	}
	p, err = s.Profile(s.Points()[2])
	if err != nil || p.Loss.Burst != 0 {
		t.Fatalf("plain point profile %+v %v", p.Loss, err)
	}
	if _, err := Parse("x.yaml", []byte("name: x\nlink:\n  loss: [{loss: 2%}]\n")); err == nil || !strings.Contains(err.Error(), "burst") {
		t.Fatalf("a mapping entry without burst: %v", err)
	}
}

// Every mistake names the line, the field and the accepted form.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		line       int
		want       []string
	}{
		{"typo in field", "name: x\ntrasnports: [websocket]\n", 2, []string{"trasnports", "unknown field", `did you mean "transports"`}},
		{"typo in nested field", "name: x\nlink:\n  delya: 20ms\n", 3, []string{"link.delya", `did you mean "delay"`}},
		{"unknown transport", "name: x\ntransports: [websocket, websockets]\n", 2, []string{`"websockets" is not a transport`, `did you mean "websocket"`}},
		{"loss without percent", "name: x\nlink: {loss: 12}\n", 2, []string{"link.loss", `"12"`, "try 12%"}},
		{"loss over 100", "name: x\nlink:\n  loss: [0%, 120%]\n", 3, []string{"link.loss", "120%", "out of range"}},
		{"negative delay", "name: x\nlink:\n  delay: -20ms\n", 3, []string{"link.delay", "negative"}},
		{"delay 100h", "name: x\nlink:\n  delay: 100h\n", 3, []string{"link.delay", `"100h" is out of range (0 to 10s one way`}},
		{"delay 100h in a sweep", "name: x\nlink:\n  delay: [20ms,\n    100h]\n", 4, []string{"link.delay", `"100h" is out of range`}},
		{"jitter 11s", "name: x\nlink: {jitter: 11s}\n", 2, []string{"link.jitter", `"11s" is out of range (0 to 10s`}},
		{"duration 100h", "name: x\nduration: 100h\n", 2, []string{"duration", `"100h" is out of range (more than 0 up to 24h)`}},
		{"duration 0", "name: x\nduration: 0s\n", 2, []string{"duration", "more than zero"}},
		{"warmup 2h", "name: x\nwarmup: 2h\n", 2, []string{"warmup", `"2h" is out of range (0 up to 1h)`}},
		{"poll_interval 1h", "name: x\npoll_interval: 1h\n", 2, []string{"poll_interval", `"1h" is out of range (more than 0 up to 10m)`}},
		{"rate fast", "name: x\nlink:\n  rate: fast\n", 3, []string{"link.rate", `"fast"`, "10mbit"}},
		{"burst without GE", "name: x\nlink: {loss: 2%, burst: 3}\n", 0, []string{"link.burst", "gilbert-elliott"}},
		{"GE without burst", "name: x\nlink: {loss: 2%, loss_model: gilbert-elliott}\n", 0, []string{"burst"}},
		{"duration without unit", "name: x\nduration: 20\n", 2, []string{"duration", "20s"}},
		{"bad rate unit", "name: x\nworkload: {rate: 100/h}\n", 2, []string{"workload.rate", "100/s"}},
		{"mix not summing to 1", "name: x\nworkload: {mix: {room: 0.8, dm: 0.3}}\n", 2, []string{"workload.mix", "add up to 1"}},
		{"users zero", "name: x\nusers: 0\n", 2, []string{"users", "out of range"}},
		{"missing name", "users: 3\n", 1, []string{"name", "missing"}},
		{"not yaml", "name: [x\n", 0, []string{"not valid YAML"}},
		{"list as scalar", "name: [a, b]\n", 1, []string{"name", "single value"}},
		{"duplicate", "name: x\nname: y\n", 2, []string{"appears twice"}},
		{"empty", "", 0, []string{"empty"}},
		{"duplicate transport", "name: x\ntransports: [sse, sse]\n", 2, []string{"listed twice"}},
		{"stack typo", "name: x\nstack: kernal\n", 2, []string{"stack", `"kernal" is not a stack`, `did you mean "kernel"`, "gvisor", "auto"}},
		{"stack typo in list", "name: x\nstack:\n  - gvisor\n  - kernl\n", 4, []string{"stack", `"kernl"`, `did you mean "kernel"`}},
		{"stack listed twice", "name: x\nstack: [kernel, kernel]\n", 2, []string{"stack", `"kernel" is listed twice`}},
		{"stack auto in list", "name: x\nstack: [gvisor, auto]\n", 2, []string{"stack", "auto cannot be in a list"}},
		{"stack empty list", "name: x\nstack: []\n", 2, []string{"stack", "empty list"}},
		{"stack mapping", "name: x\nstack: {kernel: 1}\n", 2, []string{"stack"}},
		{"blackhole without period", "name: x\nlink:\n  blackhole: 2s\n", 3, []string{"link.blackhole", `"2s" is not DOWN/EVERY`, "2s/10s"}},
		{"blackhole longer than period", "name: x\nlink: {blackhole: 12s/10s}\n", 0, []string{"link.blackhole", "down longer than its period"}},
		{"block tcp", "name: x\nlink:\n  block: udp,tcp\n", 3, []string{"link.block", `"tcp" is not udp or a port number`}},
		// Every range and choice a field's accept tag gives, at the value's line.
		{"seed negative", "name: x\nseed: -1\n", 2, []string{"seed: -1 is out of range (0 to 9223372036854775807)"}},
		{"tabs 17", "name: x\ntabs: 17\n", 2, []string{"tabs: 17 is out of range (1 to 16)"}},
		{"rooms negative", "name: x\nrooms: -1\n", 2, []string{"rooms: -1 is out of range (0 to 10000)"}},
		{"repeat 0", "name: x\nrepeat: 0\n", 2, []string{"repeat: 0 is out of range (1 to 100)"}},
		{"nodes 17", "name: x\nnodes: 17\n", 2, []string{"nodes: 17 is out of range (1 to 16)"}},
		{"users not a number", "name: x\nusers: many\n", 2, []string{`users: "many" is not a whole number (e.g. 1)`}},
		{"size 0", "name: x\nworkload:\n  size: 0\n", 3, []string{"workload.size: 0 is out of range (1 to 60000)"}},
		{"queue 0", "name: x\nlink:\n  queue: 0\n", 3, []string{"link.queue: 0 is out of range (1 to 1048576)"}},
		{"sender", "name: x\nworkload: {sender: two}\n", 2, []string{`workload.sender: "two" is not one of all, one, turns`}},
		{"loss_model", "name: x\nlink:\n  loss_model: gilbert\n", 3, []string{`link.loss_model: "gilbert" is not one of bernoulli, gilbert-elliott`}},
		{"warmup 0 is fine, negative is not", "name: x\nwarmup: -1s\n", 2, []string{`warmup: "-1s" must be more than zero`}},
		{"poll_interval 0", "name: x\npoll_interval: 0s\n", 2, []string{`poll_interval: "0s" must be more than zero`}},
		// An empty value is a mistake, not the default.
		{"empty value", "name: x\nduration:\n", 2, []string{`duration: "" is not a duration`}},
		{"empty mapping value", "name: x\nlink:\n", 2, []string{"link: must be a mapping of fields (blackhole, block, burst, delay, jitter, loss, loss_model, queue, rate, reorder)"}},
		// The first mistake in the file's order is the one reported.
		{"first mistake first", "users: 0\ntrasnports: [x]\n", 1, []string{"users: 0 is out of range"}},
		{"nested before later key", "name: x\nlink: {loss: 12}\ntrasnports: [x]\n", 2, []string{"link.loss"}},
		// The field path reaches into mappings inside lists.
		{"loss entry typo", "name: x\nlink:\n  loss: [1%, {loss: 2%, brust: 3}]\n", 3, []string{`link.loss.brust: unknown field (did you mean "burst"?); the fields here are burst, loss`}},
		{"loss entry value", "name: x\nlink:\n  loss:\n    - {loss: 2, burst: 3}\n", 4, []string{"link.loss.loss", "try 2%"}},
		{"loss entry without loss", "name: x\nlink:\n  loss:\n    - {burst: 3}\n", 4, []string{"link.loss: a bursty case needs a loss above 0%"}},
		{"mix typo", "name: x\nworkload:\n  mix: {room: 1, dn: 0}\n", 3, []string{`workload.mix.dn: unknown field (did you mean "dm"?)`}},
		{"mix share", "name: x\nworkload:\n  mix: {room: 2}\n", 3, []string{`workload.mix.room: "2" is not a share between 0 and 1`}},
		{"duplicate nested", "name: x\nlink:\n  delay: 1ms\n  delay: 2ms\n", 4, []string{"link.delay: appears twice"}},
		{"transport list item not a value", "name: x\ntransports: [[sse]]\n", 2, []string{"transports: must be a single value, not a list or mapping"}},
		{"delay mapping", "name: x\nlink: {delay: {a: 1}}\n", 2, []string{"link.delay: must be a value or a list of values"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("accepted %q", tc.yaml)
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v is not a *scenarios.Error", err, err)
			}
			if tc.line > 0 && se.Line != tc.line {
				t.Errorf("line %d, want %d (%v)", se.Line, tc.line, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err.Error(), w)
				}
			}
			if !strings.HasPrefix(err.Error(), "bad.yaml") {
				t.Errorf("%q does not name the file", err.Error())
			}
		})
	}
}

// The shipped scenario files all load.
func TestShippedScenarios(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			if _, err := Load(f); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := os.Stat("nonexistent.yaml"); err == nil {
		t.Fatal("unexpected file")
	}
	if _, err := Load("nonexistent.yaml"); err == nil || !strings.Contains(err.Error(), "reading scenario") {
		t.Fatalf("missing file error: %v", err)
	}
}

// stack: one stack, a list (a sweep dimension), auto (resolved by the lab).
func TestStack(t *testing.T) {
	parse := func(y string) *Scenario {
		t.Helper()
		s, err := Parse("x.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := "name: x\ntransports: [websocket, wt-uni]\nlink: {loss: [2%, {loss: 2%, burst: 3}]}\nrepeat: 2\n"

	// Absent: gvisor, and the points are today's, in today's order.
	s := parse(base)
	if !slices.Equal(s.Stacks, []string{StackGVisor}) {
		t.Fatalf("default stacks %v", s.Stacks)
	}
	pts := s.Points()
	if len(pts) != 2*3*2 {
		t.Fatalf("%d points, want 12", len(pts))
	}
	for i, p := range pts {
		if p.Stack != StackGVisor || p.Pair != i {
			t.Fatalf("point %d: %+v", i, p)
		}
	}
	if pts[0].Transport != "websocket" || pts[1].Repeat != 1 || pts[2].Loss != 0.02 || pts[6].Transport != "wt-uni" {
		t.Fatalf("order changed: %+v", pts[:7])
	}

	// One stack named.
	for _, y := range []string{"stack: kernel\n", "stack: KERNEL\n", "stack: [kernel]\n"} {
		s := parse(base + y)
		if !slices.Equal(s.Stacks, []string{StackKernel}) || !s.NeedsKernel() {
			t.Fatalf("%q: stacks %v", y, s.Stacks)
		}
		for _, p := range s.Points() {
			if p.Stack != StackKernel {
				t.Fatalf("%q: point %+v", y, p)
			}
		}
	}

	// A list: every point twice, the two stacks of one transport, condition and repeat next to
	// each other, sharing Pair; the 0% points come first for both stacks.
	s = parse(base + "stack: [gvisor, kernel]\n")
	pts = s.Points()
	if len(pts) != 2*2*3*2 {
		t.Fatalf("%d points, want 24", len(pts))
	}
	if s.Estimate() != time.Duration(len(pts))*(s.Duration+s.Warmup) {
		t.Fatalf("estimate %v does not count %d points", s.Estimate(), len(pts))
	}
	for i := 0; i < len(pts); i += 2 {
		a, b := pts[i], pts[i+1]
		if a.Stack != StackGVisor || b.Stack != StackKernel {
			t.Fatalf("points %d, %d: stacks %q, %q", i, i+1, a.Stack, b.Stack)
		}
		a.Stack, b.Stack = "", ""
		if a != b || a.Pair != i/2 {
			t.Fatalf("points %d and %d differ beyond the stack: %+v %+v", i, i+1, a, b)
		}
	}
	if pts[0].Loss != 0 || pts[1].Loss != 0 || pts[2].Loss != 0 || pts[3].Loss != 0 || pts[4].Loss == 0 {
		t.Fatalf("the 0%% points of both stacks must come first: %+v", pts[:5])
	}
	one := parse(base)
	if 2*one.Estimate() != s.Estimate() {
		t.Fatalf("two stacks estimate %v, one %v", s.Estimate(), one.Estimate())
	}

	// auto stays auto until the lab resolves it.
	for _, tc := range []struct {
		ok   bool
		want string
	}{{true, StackKernel}, {false, StackGVisor}} {
		s := parse(base + "stack: auto\n")
		if !slices.Equal(s.Stacks, []string{StackAuto}) || s.Points()[0].Stack != StackAuto || s.NeedsKernel() {
			t.Fatalf("auto before resolving: %v %+v", s.Stacks, s.Points()[0])
		}
		if got := s.ResolveStack(tc.ok); got != tc.want || !slices.Equal(s.Stacks, []string{tc.want}) || s.Points()[0].Stack != tc.want {
			t.Fatalf("ResolveStack(%v) = %q, stacks %v", tc.ok, got, s.Stacks)
		}
	}
	s = parse(base + "stack: [gvisor, kernel]\n")
	if got := s.ResolveStack(false); got != "" || !slices.Equal(s.Stacks, []string{StackGVisor, StackKernel}) {
		t.Fatalf("ResolveStack without auto changed %v (%q)", s.Stacks, got)
	}
	// A Scenario built in code without Stacks runs on gvisor.
	d := Default()
	d.Stacks = nil
	if p := d.Points(); p[0].Stack != StackGVisor {
		t.Fatalf("no stacks: %+v", p[0])
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(designExample))
	f.Add([]byte(designExample + "stack: gvisor\n"))
	f.Add([]byte("name: x\nstack: [gvisor, kernel]\nlink: {loss: [2%, {loss: 2%, burst: 3}]}\n"))
	f.Add([]byte("name: x\nstack: auto\n"))
	f.Add([]byte("name: x\nstack: kernal\n"))
	f.Add([]byte("name: x\nstack: [kernel, auto]\n"))
	f.Add([]byte("name: x\nlink: {loss: [1%, 2%], loss_model: gilbert-elliott, burst: 2}\n"))
	f.Add([]byte("name: x\nworkload: {rate: 6000/min}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse("fuzz.yaml", b)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not a *scenarios.Error: %v", err, err)
			}
			return
		}
		if s.Name == "" || s.Users < 1 || s.Tabs < 1 || s.Repeat < 1 || len(s.Transports) == 0 {
			t.Fatalf("accepted an invalid scenario: %+v", s)
		}
		if len(s.Stacks) == 0 || (len(s.Stacks) > 1 && slices.Contains(s.Stacks, StackAuto)) {
			t.Fatalf("accepted bad stacks: %v", s.Stacks)
		}
		seen := map[string]bool{}
		for _, st := range s.Stacks {
			if !slices.Contains(StackNames, st) || seen[st] {
				t.Fatalf("accepted bad stacks: %v", s.Stacks)
			}
			seen[st] = true
		}
		if len(s.Points()) != len(s.Transports)*len(s.Stacks)*len(s.Link.Delays)*len(s.Link.Losses)*s.Repeat {
			t.Fatalf("%d points for %+v", len(s.Points()), s)
		}
		if s.Link.Losses[0] != (Loss{}) {
			t.Fatalf("0%% loss missing: %v", s.Link.Losses)
		}
		for _, p := range s.linkPoints() {
			if _, err := s.Profile(p); err != nil {
				t.Fatalf("accepted scenario has a bad profile: %v", err)
			}
		}
	})
}

func rates(ls []Loss) []float64 {
	var out []float64
	for _, l := range ls {
		out = append(out, l.Rate)
	}
	return out
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPeerDefaultStack: a file that names a peer server's transport and no stack runs on the
// kernel stack (the peers run nowhere else); one that says its stack keeps it; one without peers
// keeps gvisor.
func TestPeerDefaultStack(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"name: x\ntransports: [websocket, socketio/websocket]\n", []string{StackKernel}},
		{"name: x\ntransports: [centrifugo/sse]\nstack: auto\n", []string{StackAuto}},
		{"name: x\ntransports: [websocket]\n", []string{StackGVisor}},
	} {
		s, err := Parse("x.yaml", []byte(tc.text))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.Stacks, tc.want) {
			t.Errorf("%q: stacks %v, want %v", tc.text, s.Stacks, tc.want)
		}
	}
}

// TestUnavailablePeer: a peer transport the pinned peer cannot carry is refused with the reason,
// not as a typo.
func TestUnavailablePeer(t *testing.T) {
	_, err := Parse("x.yaml", []byte("name: x\ntransports: [websocket, centrifugo/webtransport]\n"))
	if err == nil || !strings.Contains(err.Error(), `x.yaml:2: `) || !strings.Contains(err.Error(), `"centrifugo/webtransport" is not available: Centrifugo 6.9.1's WebTransport`) {
		t.Fatalf("centrifugo/webtransport: %v", err)
	}
}
