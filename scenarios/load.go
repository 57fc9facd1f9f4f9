package scenarios

import (
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wirelab/wirelab/netem"
	"github.com/wirelab/wirelab/transports"
)

// Error is a mistake in a scenario file: where it is, which field, and what is accepted.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Field == "" {
		return loc + ": " + e.Msg
	}
	return loc + ": " + e.Field + ": " + e.Msg
}

// Default returns the scenario every omitted field defaults to (docs/SCENARIOS.md lists them).
func Default() Scenario {
	return Scenario{
		Name:         "",
		Seed:         1,
		Duration:     20 * time.Second,
		Warmup:       2 * time.Second,
		Transports:   []string{transports.ShortPoll, transports.LongPoll, transports.Stream, transports.SSE, transports.WebSocket, transports.WTStream, transports.WTUni, transports.WTDatagram},
		Users:        50,
		Tabs:         2,
		Rooms:        5,
		Workload:     Workload{Rate: 100, Size: 200, RoomP: 0.8, DMP: 0.2, Sender: "all"},
		PollInterval: time.Second,
		Link:         Link{Delays: []time.Duration{20 * time.Millisecond}, Losses: []Loss{{}}, LossModel: "bernoulli"},
		Repeat:       1,
		Nodes:        1,
		Stacks:       []string{StackGVisor},
	}
}

// Load reads and validates a scenario file.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	return Parse(path, b)
}

// Parse validates a scenario file's bytes; file names it in errors.
func Parse(file string, data []byte) (*Scenario, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line := 0
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		return nil, &Error{File: file, Line: line, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 {
		return nil, &Error{File: file, Msg: "the file is empty; a scenario needs at least a name (see docs/SCENARIOS.md)"}
	}
	p := parser{file: file}
	s := Default()
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, p.errAt(root, "", "a scenario is a mapping of fields (name: ..., transports: [...]); see docs/SCENARIOS.md")
	}
	p.mapping(root, "", map[string]func(*yaml.Node){
		"name":          func(n *yaml.Node) { s.Name = p.str(n, "name") },
		"seed":          func(n *yaml.Node) { s.Seed = uint64(p.intIn(n, "seed", 0, math.MaxInt64)) },
		"duration":      func(n *yaml.Node) { s.Duration = p.duration(n, "duration", true, maxDuration) },
		"warmup":        func(n *yaml.Node) { s.Warmup = p.duration(n, "warmup", false, maxWarmup) },
		"transports":    func(n *yaml.Node) { s.Transports = p.transports(n) },
		"users":         func(n *yaml.Node) { s.Users = p.intIn(n, "users", 1, 100000) },
		"tabs":          func(n *yaml.Node) { s.Tabs = p.intIn(n, "tabs", 1, 16) },
		"rooms":         func(n *yaml.Node) { s.Rooms = p.intIn(n, "rooms", 0, 10000) },
		"poll_interval": func(n *yaml.Node) { s.PollInterval = p.duration(n, "poll_interval", true, maxPollInterval) },
		"repeat":        func(n *yaml.Node) { s.Repeat = p.intIn(n, "repeat", 1, 100) },
		"nodes":         func(n *yaml.Node) { s.Nodes = p.intIn(n, "nodes", 1, 16) },
		"stack":         func(n *yaml.Node) { s.Stacks = p.stacks(n) },
		"workload": func(n *yaml.Node) {
			p.mapping(n, "workload", map[string]func(*yaml.Node){
				"rate":   func(n *yaml.Node) { s.Workload.Rate = p.msgRate(n, "workload.rate") },
				"size":   func(n *yaml.Node) { s.Workload.Size = p.intIn(n, "workload.size", 1, 60000) },
				"sender": func(n *yaml.Node) { s.Workload.Sender = p.oneOf(n, "workload.sender", "all", "one", "turns") },
				"mix": func(n *yaml.Node) {
					s.Workload.RoomP, s.Workload.DMP = 0, 0
					p.mapping(n, "workload.mix", map[string]func(*yaml.Node){
						"room": func(n *yaml.Node) { s.Workload.RoomP = p.share(n, "workload.mix.room") },
						"dm":   func(n *yaml.Node) { s.Workload.DMP = p.share(n, "workload.mix.dm") },
					})
					if sum := s.Workload.RoomP + s.Workload.DMP; p.err == nil && math.Abs(sum-1) > 1e-9 {
						p.fail(n, "workload.mix", fmt.Sprintf("room and dm add up to %g; they must add up to 1 (e.g. {room: 0.8, dm: 0.2})", sum))
					}
				},
			})
		},
		"link": func(n *yaml.Node) {
			p.mapping(n, "link", map[string]func(*yaml.Node){
				"delay":      func(n *yaml.Node) { s.Link.Delays = p.durations(n, "link.delay") },
				"jitter":     func(n *yaml.Node) { s.Link.Template.Jitter = p.netemDuration(n, "link.jitter") },
				"reorder":    func(n *yaml.Node) { s.Link.Template.Reorder = p.boolean(n, "link.reorder") },
				"rate":       func(n *yaml.Node) { s.Link.Template.Rate = p.bitRate(n, "link.rate") },
				"queue":      func(n *yaml.Node) { s.Link.Template.Queue = p.intIn(n, "link.queue", 1, 1<<20) },
				"loss":       func(n *yaml.Node) { s.Link.Losses = p.losses(n, "link.loss") },
				"loss_model": func(n *yaml.Node) { s.Link.LossModel = p.oneOf(n, "link.loss_model", "bernoulli", "gilbert-elliott") },
				"burst":      func(n *yaml.Node) { s.Link.Burst = p.burst(n, "link.burst") },
				"blackhole":  func(n *yaml.Node) { s.Link.Template.Blackhole = p.blackhole(n, "link.blackhole") },
				"block":      func(n *yaml.Node) { s.Link.Template.BlockUDP, s.Link.Template.BlockPorts = p.block(n, "link.block") },
			})
		},
	})
	if p.err != nil {
		return nil, p.err
	}
	if s.Name == "" {
		return nil, &Error{File: file, Line: 1, Field: "name", Msg: "is missing; give the scenario a name (name: loss-sweep)"}
	}
	if s.Link.Burst > 0 && s.Link.LossModel != "gilbert-elliott" {
		return nil, &Error{File: file, Field: "link.burst", Msg: "is set but loss_model is bernoulli; set loss_model: gilbert-elliott (burst is its mean burst length)"}
	}
	if s.Link.LossModel == "gilbert-elliott" && s.Link.Burst == 0 {
		return nil, &Error{File: file, Field: "link.loss_model", Msg: "gilbert-elliott needs burst: N, the mean number of packets lost in a row (e.g. burst: 3)"}
	}
	if s.Workload.DMP > 0 && s.Users < 2 {
		return nil, &Error{File: file, Field: "workload.mix.dm", Msg: "direct messages need at least 2 users"}
	}
	s.normalize()
	// Every sweep point must make a valid netem profile.
	for _, pt := range s.linkPoints() {
		if _, err := s.Profile(pt); err != nil {
			var fe *netem.FieldError
			if errors.As(err, &fe) {
				return nil, &Error{File: file, Field: "link." + fe.Field, Msg: fmt.Sprintf("%q %s (%s)", fe.Value, fe.Problem, fe.Hint)}
			}
			return nil, &Error{File: file, Field: "link", Msg: err.Error()}
		}
	}
	return &s, nil
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// The longest durations a scenario takes: past them a value is a slip (100h for 100ms), and a
// run would hold the machine for a day.
const (
	maxDuration     = 24 * time.Hour
	maxWarmup       = time.Hour
	maxPollInterval = 10 * time.Minute
)

// parser walks the YAML tree and keeps the first error.
type parser struct {
	file string
	err  error
}

func (p *parser) errAt(n *yaml.Node, field, msg string) *Error {
	return &Error{File: p.file, Line: n.Line, Field: field, Msg: msg}
}

func (p *parser) fail(n *yaml.Node, field, msg string) {
	if p.err == nil {
		p.err = p.errAt(n, field, msg)
	}
}

func (p *parser) mapping(n *yaml.Node, prefix string, fields map[string]func(*yaml.Node)) {
	if p.err != nil {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.fail(n, prefix, "must be a mapping of fields ("+strings.Join(keys(fields), ", ")+")")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content) && p.err == nil; i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := join(prefix, k.Value)
		f, ok := fields[k.Value]
		if !ok {
			msg := "unknown field"
			if s := closest(k.Value, keys(fields)); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			msg += "; the fields here are " + strings.Join(keys(fields), ", ")
			p.fail(k, name, msg)
			return
		}
		if seen[k.Value] {
			p.fail(k, name, "appears twice")
			return
		}
		seen[k.Value] = true
		f(v)
	}
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

func keys(m map[string]func(*yaml.Node)) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (p *parser) scalar(n *yaml.Node, field string) (string, bool) {
	if p.err != nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		p.fail(n, field, "must be a single value, not a list or mapping")
		return "", false
	}
	return strings.TrimSpace(n.Value), true
}

func (p *parser) str(n *yaml.Node, field string) string {
	v, _ := p.scalar(n, field)
	return v
}

func (p *parser) intIn(n *yaml.Node, field string, lo, hi int64) int {
	v, ok := p.scalar(n, field)
	if !ok {
		return 0
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(v, "_", ""), 10, 64)
	if err != nil {
		p.fail(n, field, fmt.Sprintf("%q is not a whole number (e.g. %d)", v, max(lo, 1)))
		return 0
	}
	if i < lo || i > hi {
		p.fail(n, field, fmt.Sprintf("%d is out of range (%d to %d)", i, lo, hi))
		return 0
	}
	return int(i)
}

func (p *parser) boolean(n *yaml.Node, field string) bool {
	v, ok := p.scalar(n, field)
	if !ok {
		return false
	}
	switch strings.ToLower(v) {
	case "true", "yes", "on":
		return true
	case "false", "no", "off":
		return false
	}
	p.fail(n, field, fmt.Sprintf("%q is not true or false", v))
	return false
}

func (p *parser) oneOf(n *yaml.Node, field string, choices ...string) string {
	v, ok := p.scalar(n, field)
	if !ok {
		return ""
	}
	for _, c := range choices {
		if strings.EqualFold(v, c) {
			return c
		}
	}
	p.fail(n, field, fmt.Sprintf("%q is not one of %s", v, strings.Join(choices, ", ")))
	return ""
}

// duration reads a duration up to hi, above zero when positive.
func (p *parser) duration(n *yaml.Node, field string, positive bool, hi time.Duration) time.Duration {
	v, ok := p.scalar(n, field)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		hint := "e.g. 20s or 500ms"
		if _, nerr := strconv.ParseFloat(v, 64); nerr == nil {
			hint = "it needs a unit: " + v + "s or " + v + "ms"
		}
		p.fail(n, field, fmt.Sprintf("%q is not a duration (%s)", v, hint))
		return 0
	}
	if d < 0 || (positive && d == 0) {
		p.fail(n, field, fmt.Sprintf("%q must be more than zero", v))
		return 0
	}
	if d > hi {
		lo := "0"
		if positive {
			lo = "more than 0"
		}
		p.fail(n, field, fmt.Sprintf("%q is out of range (%s up to %s)", v, lo, ShortDuration(hi)))
		return 0
	}
	return d
}

// ShortDuration writes d without zero minutes and seconds: 24h, not 24h0m0s (the scenario loader's
// and the lab command's range errors).
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// netemDuration reads a link's delay or jitter: netem's form, 0 to netem.MaxDelay.
func (p *parser) netemDuration(n *yaml.Node, field string) time.Duration {
	v, ok := p.scalar(n, field)
	if !ok {
		return 0
	}
	d, err := netem.ParseDuration(field, v)
	if err != nil {
		p.fail(n, field, netemMsg(err))
	} else if d > netem.MaxDelay {
		p.fail(n, field, fmt.Sprintf("%q is out of range (0 to %s one way, e.g. 20ms)", v, netem.MaxDelay))
	}
	return d
}

// list calls f for a scalar or for every item of a list.
func (p *parser) list(n *yaml.Node, field string, f func(*yaml.Node)) {
	if p.err != nil {
		return
	}
	switch n.Kind {
	case yaml.ScalarNode:
		f(n)
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			p.fail(n, field, "is an empty list")
		}
		for _, c := range n.Content {
			f(c)
		}
	default:
		p.fail(n, field, "must be a value or a list of values")
	}
}

func (p *parser) durations(n *yaml.Node, field string) []time.Duration {
	var out []time.Duration
	p.list(n, field, func(c *yaml.Node) { out = append(out, p.netemDuration(c, field)) })
	return out
}

// losses reads loss entries: a percentage (the link's model) or {loss: 2%, burst: 3} (bursty).
func (p *parser) losses(n *yaml.Node, field string) []Loss {
	var out []Loss
	p.list(n, field, func(c *yaml.Node) {
		if p.err != nil {
			return
		}
		if c.Kind == yaml.MappingNode {
			l := Loss{}
			p.mapping(c, field, map[string]func(*yaml.Node){
				"loss":  func(n *yaml.Node) { l.Rate = p.percent(n, field+".loss") },
				"burst": func(n *yaml.Node) { l.Burst = p.burst(n, field+".burst") },
			})
			if p.err == nil && l.Burst == 0 {
				p.fail(c, field, "an entry written as a mapping is a bursty case and needs burst: N (e.g. {loss: 2%, burst: 3})")
			}
			if p.err == nil && l.Rate == 0 {
				p.fail(c, field, "a bursty case needs a loss above 0% (e.g. {loss: 2%, burst: 3})")
			}
			out = append(out, l)
			return
		}
		out = append(out, Loss{Rate: p.percent(c, field), Burst: -1})
	})
	return out
}

func (p *parser) percent(n *yaml.Node, field string) float64 {
	v, ok := p.scalar(n, field)
	if !ok {
		return 0
	}
	f, err := netem.ParsePercent(field, v)
	if err != nil {
		p.fail(n, field, netemMsg(err))
	}
	return f
}

func (p *parser) bitRate(n *yaml.Node, field string) uint64 {
	v, ok := p.scalar(n, field)
	if !ok {
		return 0
	}
	r, err := netem.ParseRate(field, v)
	if err != nil {
		p.fail(n, field, netemMsg(err))
	}
	return r
}

func (p *parser) burst(n *yaml.Node, field string) float64 {
	v, ok := p.scalar(n, field)
	if !ok {
		return 0
	}
	b, err := netem.ParseBurst(field, v)
	if err != nil {
		p.fail(n, field, netemMsg(err))
	}
	return b
}

// blackhole reads a periodic outage, DOWN/EVERY (2s/10s).
func (p *parser) blackhole(n *yaml.Node, field string) netem.Blackhole {
	v, ok := p.scalar(n, field)
	if !ok {
		return netem.Blackhole{}
	}
	b, err := netem.ParseBlackhole(v)
	if err != nil {
		p.fail(n, field, netemMsg(err))
	}
	return b
}

// block reads what the link blocks: udp and port numbers, comma-separated (udp,443).
func (p *parser) block(n *yaml.Node, field string) (udp bool, ports []uint16) {
	v, ok := p.scalar(n, field)
	if !ok {
		return false, nil
	}
	udp, ports, err := netem.ParseBlock(v)
	if err != nil {
		p.fail(n, field, netemMsg(err))
	}
	return udp, ports
}

func (p *parser) share(n *yaml.Node, field string) float64 {
	v, ok := p.scalar(n, field)
	if !ok {
		return 0
	}
	var f float64
	var err error
	if strings.HasSuffix(v, "%") {
		f, err = strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
		f /= 100
	} else {
		f, err = strconv.ParseFloat(v, 64)
	}
	if err != nil || f < 0 || f > 1 || math.IsNaN(f) {
		p.fail(n, field, fmt.Sprintf("%q is not a share between 0 and 1 (e.g. 0.8 or 80%%)", v))
	}
	return f
}

// msgRate parses "100/s", "6000/min" or a bare number of messages per second.
func (p *parser) msgRate(n *yaml.Node, field string) float64 {
	v, ok := p.scalar(n, field)
	if !ok {
		return 0
	}
	num, per := v, time.Second
	if i := strings.IndexByte(v, '/'); i >= 0 {
		num = strings.TrimSpace(v[:i])
		switch strings.TrimSpace(v[i+1:]) {
		case "s", "sec":
		case "min", "m":
			per = time.Minute
		default:
			p.fail(n, field, fmt.Sprintf("%q has an unknown unit; write messages per second as 100/s (or 6000/min)", v))
			return 0
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		p.fail(n, field, fmt.Sprintf("%q is not a message rate; write it as 100/s", v))
		return 0
	}
	return f / per.Seconds()
}

func (p *parser) transports(n *yaml.Node) []string {
	var out []string
	seen := map[string]bool{}
	p.list(n, "transports", func(c *yaml.Node) {
		v, ok := p.scalar(c, "transports")
		if !ok {
			return
		}
		known := false
		for _, t := range transports.All {
			if v == t {
				known = true
			}
		}
		if !known {
			msg := fmt.Sprintf("%q is not a transport", v)
			if s := closest(v, transports.All); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			p.fail(c, "transports", msg+"; the transports are "+strings.Join(transports.All, ", "))
			return
		}
		if seen[v] {
			p.fail(c, "transports", fmt.Sprintf("%q is listed twice", v))
			return
		}
		seen[v] = true
		out = append(out, v)
	})
	return out
}

// stacks reads `stack`: one of StackNames, or a list of distinct stacks without auto (a sweep
// over stacks must say which).
func (p *parser) stacks(n *yaml.Node) []string {
	var out []string
	list := n.Kind == yaml.SequenceNode
	p.list(n, "stack", func(c *yaml.Node) {
		v, ok := p.scalar(c, "stack")
		if !ok {
			return
		}
		st := ""
		for _, name := range StackNames {
			if strings.EqualFold(v, name) {
				st = name
			}
		}
		switch {
		case st == "":
			msg := fmt.Sprintf("%q is not a stack", v)
			if s := closest(v, StackNames); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			p.fail(c, "stack", msg+"; the stacks are gvisor (userspace, the default), kernel (Linux in network namespaces: needs root and /dev/net/tun), auto (kernel where possible, else gvisor), or a list [gvisor, kernel]")
		case list && st == StackAuto:
			p.fail(c, "stack", "auto cannot be in a list: a sweep over stacks names them ([gvisor, kernel])")
		case slices.Contains(out, st):
			p.fail(c, "stack", fmt.Sprintf("%q is listed twice", st))
		default:
			out = append(out, st)
		}
	})
	return out
}

func netemMsg(err error) string {
	var fe *netem.FieldError
	if errors.As(err, &fe) {
		return fmt.Sprintf("%q %s (%s)", fe.Value, fe.Problem, fe.Hint)
	}
	return err.Error()
}

// closest returns the candidate within edit distance 2 of s, if any.
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
