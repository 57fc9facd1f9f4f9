package scenarios

import (
	"errors"
	"fmt"
	"github.com/wirelab/wirelab/peers"
	"math"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wirelab/wirelab/netem"
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
	f := defaultFile()
	return f.scenario()
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
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: root.Line, Msg: "a scenario is a mapping of fields (name: ..., transports: [...]); see docs/SCENARIOS.md"}
	}
	f := defaultFile()
	if err := decodeFields(root, &f); err != nil {
		e := err.(*Error)
		e.File = file
		return nil, e
	}
	s := f.scenario()
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

// scenarioFile is the file's shape (docs/SCENARIOS.md). Decoding starts from defaultFile: a
// field the file leaves out keeps its default. The accept tags are the ranges and choices a
// value must be in; the longest durations are where a value is a slip (100h for 100ms) that
// would hold the machine for a day.
type scenarioFile struct {
	Name         text          `yaml:"name"`
	Seed         wholeNumber   `yaml:"seed" accept:"0..9223372036854775807"`
	Duration     duration      `yaml:"duration" accept:">0..24h"`
	Warmup       duration      `yaml:"warmup" accept:"0..1h"`
	Transports   transportList `yaml:"transports"`
	Users        wholeNumber   `yaml:"users" accept:"1..100000"`
	Tabs         wholeNumber   `yaml:"tabs" accept:"1..16"`
	Rooms        wholeNumber   `yaml:"rooms" accept:"0..10000"`
	PollInterval duration      `yaml:"poll_interval" accept:">0..10m"`
	Repeat       wholeNumber   `yaml:"repeat" accept:"1..100"`
	Nodes        wholeNumber   `yaml:"nodes" accept:"1..16"`
	Stack        stackList     `yaml:"stack"`
	Workload     workloadFile  `yaml:"workload"`
	Link         linkFile      `yaml:"link"`
}

type workloadFile struct {
	Rate   msgRate     `yaml:"rate"`
	Size   wholeNumber `yaml:"size" accept:"1..60000"`
	Sender choice      `yaml:"sender" accept:"all, one, turns"`
	Mix    mixFile     `yaml:"mix"`
}

func (w *workloadFile) UnmarshalYAML(n *yaml.Node) error { return decodeFields(n, w) }

// mixFile is workload.mix: given, it replaces both default shares (a share left out is 0).
type mixFile struct {
	Room share `yaml:"room"`
	DM   share `yaml:"dm"`
}

func (m *mixFile) UnmarshalYAML(n *yaml.Node) error {
	*m = mixFile{}
	if err := decodeFields(n, m); err != nil {
		return err
	}
	if sum := float64(m.Room + m.DM); math.Abs(sum-1) > 1e-9 {
		return errAt(n, fmt.Sprintf("room and dm add up to %g; they must add up to 1 (e.g. {room: 0.8, dm: 0.2})", sum))
	}
	return nil
}

type linkFile struct {
	Delay     delayList    `yaml:"delay"`
	Jitter    linkDuration `yaml:"jitter"`
	Reorder   boolean      `yaml:"reorder"`
	Rate      bitRate      `yaml:"rate"`
	Queue     wholeNumber  `yaml:"queue" accept:"1..1048576"`
	Loss      lossList     `yaml:"loss"`
	LossModel choice       `yaml:"loss_model" accept:"bernoulli, gilbert-elliott"`
	Burst     burstLength  `yaml:"burst"`
	Blackhole blackhole    `yaml:"blackhole"`
	Block     block        `yaml:"block"`
}

func (l *linkFile) UnmarshalYAML(n *yaml.Node) error { return decodeFields(n, l) }

// defaultFile is a file that gives every field its default.
func defaultFile() scenarioFile {
	return scenarioFile{
		Seed:         1,
		Duration:     duration(20 * time.Second),
		Warmup:       duration(2 * time.Second),
		Transports:   defaultTransports(),
		Users:        50,
		Tabs:         2,
		Rooms:        5,
		PollInterval: duration(time.Second),
		Repeat:       1,
		Nodes:        1,
		Stack:        nil, // gvisor, or kernel for a file that names a peer's transport (defaultStack)
		Workload:     workloadFile{Rate: 100, Size: 200, Sender: "all", Mix: mixFile{Room: 0.8, DM: 0.2}},
		Link:         linkFile{Delay: delayList{20 * time.Millisecond}, Loss: lossList{{}}, LossModel: "bernoulli"},
	}
}

// scenario is the Scenario the file describes, before the checks across fields.
func (f *scenarioFile) scenario() Scenario {
	w, l := &f.Workload, &f.Link
	return Scenario{
		Name:         string(f.Name),
		Seed:         uint64(f.Seed),
		Duration:     time.Duration(f.Duration),
		Warmup:       time.Duration(f.Warmup),
		Transports:   f.Transports,
		Users:        int(f.Users),
		Tabs:         int(f.Tabs),
		Rooms:        int(f.Rooms),
		Workload:     Workload{Rate: float64(w.Rate), Size: int(w.Size), RoomP: float64(w.Mix.Room), DMP: float64(w.Mix.DM), Sender: string(w.Sender)},
		PollInterval: time.Duration(f.PollInterval),
		Link: Link{
			Template: netem.LinkProfile{Jitter: time.Duration(l.Jitter), Reorder: bool(l.Reorder), Rate: uint64(l.Rate), Queue: int(l.Queue),
				Blackhole: netem.Blackhole(l.Blackhole), BlockUDP: l.Block.udp, BlockPorts: l.Block.ports},
			Delays:    l.Delay,
			Losses:    l.Loss,
			LossModel: string(l.LossModel),
			Burst:     float64(l.Burst),
		},
		Repeat: int(f.Repeat),
		Nodes:  int(f.Nodes),
		Stacks: f.defaultStack(),
	}
}

// defaultStack is the file's stack, or when it gives none: gvisor, unless a transport is a peer
// server's (PEER/TRANSPORT), which runs on the kernel stack only; then the whole file runs on
// kernel, so that wirelab's transports are compared with the peers on the same stack.
func (f *scenarioFile) defaultStack() []string {
	if len(f.Stack) > 0 {
		return f.Stack
	}
	for _, t := range f.Transports {
		if _, ok := peers.Lookup(t); ok {
			return []string{StackKernel}
		}
	}
	return []string{StackGVisor}
}

// decodeFields reads mapping n into the struct out points to, key by key in the file's order:
// a key must be one of the struct's yaml tags, and appear once. A field's type reads its node,
// with UnmarshalYAML or, when it takes its range or choices from the field's accept tag, with
// unmarshalWithin. An error's Field is relative to n: the mapping that holds n puts its own key
// in front.
func decodeFields(n *yaml.Node, out any) error {
	v := reflect.ValueOf(out).Elem()
	fs := fieldsOf(v.Type())
	if n.Kind != yaml.MappingNode {
		return errAt(n, "must be a mapping of fields ("+strings.Join(fs.names, ", ")+")")
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		f, ok := fs.byName[k.Value]
		switch {
		case !ok:
			return &Error{Line: k.Line, Field: k.Value, Msg: "unknown field" + didYouMean(k.Value, fs.names) + "; the fields here are " + strings.Join(fs.names, ", ")}
		case seen[k.Value]:
			return &Error{Line: k.Line, Field: k.Value, Msg: "appears twice"}
		}
		seen[k.Value] = true
		p := v.Field(f.index).Addr()
		var err error
		if b, ok := p.Interface().(interface {
			unmarshalWithin(*yaml.Node, string) error
		}); ok {
			err = b.unmarshalWithin(val, f.accept)
		} else {
			err = p.Interface().(yaml.Unmarshaler).UnmarshalYAML(val)
		}
		if err != nil {
			e := err.(*Error)
			e.Field = join(k.Value, e.Field)
			return e
		}
	}
	return nil
}

// fieldTable is what decodeFields needs of a struct type: its keys, and for each its field's
// index and accept tag.
type fieldTable struct {
	names  []string // sorted
	byName map[string]fieldInfo
}

type fieldInfo struct {
	index  int
	accept string
}

var fieldTables sync.Map // reflect.Type -> *fieldTable

// fieldsOf is the keys of the struct type t, read from its tags once.
func fieldsOf(t reflect.Type) *fieldTable {
	if ft, ok := fieldTables.Load(t); ok {
		return ft.(*fieldTable)
	}
	ft := &fieldTable{byName: map[string]fieldInfo{}}
	for i := range t.NumField() {
		name := t.Field(i).Tag.Get("yaml")
		ft.names = append(ft.names, name)
		ft.byName[name] = fieldInfo{i, t.Field(i).Tag.Get("accept")}
	}
	sort.Strings(ft.names)
	fieldTables.Store(t, ft)
	return ft
}

func join(prefix, k string) string {
	if k == "" {
		return prefix
	}
	return prefix + "." + k
}

// didYouMean is " (did you mean "X"?)" for the candidate close to s, else "".
func didYouMean(s string, candidates []string) string {
	if c := closest(s, candidates); c != "" {
		return fmt.Sprintf(" (did you mean %q?)", c)
	}
	return ""
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
