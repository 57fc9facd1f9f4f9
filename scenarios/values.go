package scenarios

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wirelab/wirelab/netem"
	"github.com/wirelab/wirelab/peers"
	"github.com/wirelab/wirelab/transports/all"
)

// The value types of a scenario file. Each reads one YAML node (UnmarshalYAML) and refuses a
// bad value with an *Error at the node's line; the field's name is added by the mapping that
// holds it (decodeFields). The values are read as written: a YAML tag or type does not change
// how "5" or "yes" is understood.

// text is a single value, such as the scenario's name.
type text string

func (t *text) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalar(n)
	*t = text(v)
	return err
}

// wholeNumber is an integer within its field's accept tag, "LO..HI" (1_000 is 1000).
type wholeNumber int

func (w *wholeNumber) unmarshalWithin(n *yaml.Node, accept string) error {
	var lo, hi int64
	if _, err := fmt.Sscanf(accept, "%d..%d", &lo, &hi); err != nil {
		panic("scenarios: bad accept tag for a whole number: " + accept)
	}
	v, err := scalar(n)
	if err != nil {
		return err
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(v, "_", ""), 10, 64)
	if err != nil {
		return errAt(n, fmt.Sprintf("%q is not a whole number (e.g. %d)", v, max(lo, 1)))
	}
	if i < lo || i > hi {
		return errAt(n, fmt.Sprintf("%d is out of range (%d to %d)", i, lo, hi))
	}
	*w = wholeNumber(i)
	return nil
}

// duration is a Go duration within its field's accept tag: "0..HI", or ">0..HI" for more than
// zero.
type duration time.Duration

func (d *duration) unmarshalWithin(n *yaml.Node, accept string) error {
	l, h, _ := strings.Cut(accept, "..")
	hi, err := time.ParseDuration(h)
	if (l != "0" && l != ">0") || err != nil {
		panic("scenarios: bad accept tag for a duration: " + accept)
	}
	positive := l == ">0"
	v, err := scalar(n)
	if err != nil {
		return err
	}
	t, err := time.ParseDuration(v)
	if err != nil {
		hint := "e.g. 20s or 500ms"
		if _, nerr := strconv.ParseFloat(v, 64); nerr == nil {
			hint = "it needs a unit: " + v + "s or " + v + "ms"
		}
		return errAt(n, fmt.Sprintf("%q is not a duration (%s)", v, hint))
	}
	if t < 0 || (positive && t == 0) {
		return errAt(n, fmt.Sprintf("%q must be more than zero", v))
	}
	if t > hi {
		lo := "0"
		if positive {
			lo = "more than 0"
		}
		return errAt(n, fmt.Sprintf("%q is out of range (%s up to %s)", v, lo, ShortDuration(hi)))
	}
	*d = duration(t)
	return nil
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

// choice is one of its field's accept tag, "a, b, c", in any case.
type choice string

func (c *choice) unmarshalWithin(n *yaml.Node, accept string) error {
	v, err := scalar(n)
	if err != nil {
		return err
	}
	for _, ch := range strings.Split(accept, ", ") {
		if strings.EqualFold(v, ch) {
			*c = choice(ch)
			return nil
		}
	}
	return errAt(n, fmt.Sprintf("%q is not one of %s", v, accept))
}

// boolean is true, yes, on, false, no or off, in any case.
type boolean bool

func (b *boolean) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalar(n)
	if err != nil {
		return err
	}
	switch strings.ToLower(v) {
	case "true", "yes", "on":
		*b = true
		return nil
	case "false", "no", "off":
		*b = false
		return nil
	}
	return errAt(n, fmt.Sprintf("%q is not true or false", v))
}

// share is a fraction from 0 to 1, written 0.8 or 80%.
type share float64

func (s *share) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalar(n)
	if err != nil {
		return err
	}
	var f float64
	if strings.HasSuffix(v, "%") {
		f, err = strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
		f /= 100
	} else {
		f, err = strconv.ParseFloat(v, 64)
	}
	if err != nil || f < 0 || f > 1 || math.IsNaN(f) {
		return errAt(n, fmt.Sprintf("%q is not a share between 0 and 1 (e.g. 0.8 or 80%%)", v))
	}
	*s = share(f)
	return nil
}

// msgRate is messages per second, written 100/s, 6000/min or a bare number (per second).
type msgRate float64

func (r *msgRate) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalar(n)
	if err != nil {
		return err
	}
	num, per := v, time.Second
	if i := strings.IndexByte(v, '/'); i >= 0 {
		num = strings.TrimSpace(v[:i])
		switch strings.TrimSpace(v[i+1:]) {
		case "s", "sec":
		case "min", "m":
			per = time.Minute
		default:
			return errAt(n, fmt.Sprintf("%q has an unknown unit; write messages per second as 100/s (or 6000/min)", v))
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return errAt(n, fmt.Sprintf("%q is not a message rate; write it as 100/s", v))
	}
	*r = msgRate(f / per.Seconds())
	return nil
}

// The link's values are netem's forms, parsed by netem.

// linkDuration is a one-way delay or jitter, 0 to netem.MaxDelay.
type linkDuration time.Duration

func (d *linkDuration) UnmarshalYAML(n *yaml.Node) error {
	t, err := netemValue(n, func(v string) (time.Duration, error) { return netem.ParseDuration("", v) })
	if err == nil && t > netem.MaxDelay {
		err = errAt(n, fmt.Sprintf("%q is out of range (0 to %s one way, e.g. 20ms)", strings.TrimSpace(n.Value), netem.MaxDelay))
	}
	*d = linkDuration(t)
	return err
}

// percent is a loss rate, 0% up to below 100%.
type percent float64

func (p *percent) UnmarshalYAML(n *yaml.Node) error {
	f, err := netemValue(n, func(v string) (float64, error) { return netem.ParsePercent("", v) })
	*p = percent(f)
	return err
}

// bitRate is bits per second, written 10mbit; 0 is unlimited.
type bitRate uint64

func (r *bitRate) UnmarshalYAML(n *yaml.Node) error {
	b, err := netemValue(n, func(v string) (uint64, error) { return netem.ParseRate("", v) })
	*r = bitRate(b)
	return err
}

// burstLength is Gilbert-Elliott's mean number of packets lost in a row.
type burstLength float64

func (b *burstLength) UnmarshalYAML(n *yaml.Node) error {
	f, err := netemValue(n, func(v string) (float64, error) { return netem.ParseBurst("", v) })
	*b = burstLength(f)
	return err
}

// blackhole is a periodic outage, DOWN/EVERY (2s/10s).
type blackhole netem.Blackhole

func (b *blackhole) UnmarshalYAML(n *yaml.Node) error {
	v, err := netemValue(n, netem.ParseBlackhole)
	*b = blackhole(v)
	return err
}

// block is what the link blocks: udp and port numbers, comma-separated (udp,443).
type block struct {
	udp   bool
	ports []uint16
}

func (b *block) UnmarshalYAML(n *yaml.Node) error {
	v, err := netemValue(n, func(v string) (block, error) {
		udp, ports, err := netem.ParseBlock(v)
		return block{udp, ports}, err
	})
	*b = v
	return err
}

// netemValue parses scalar n with parse, turning a *netem.FieldError into the loader's words.
func netemValue[T any](n *yaml.Node, parse func(string) (T, error)) (T, error) {
	v, err := scalar(n)
	if err != nil {
		var zero T
		return zero, err
	}
	t, err := parse(v)
	if err != nil {
		var fe *netem.FieldError
		if errors.As(err, &fe) {
			return t, errAt(n, fmt.Sprintf("%q %s (%s)", fe.Value, fe.Problem, fe.Hint))
		}
		return t, errAt(n, err.Error())
	}
	return t, nil
}

// The lists: a single value or a list of them (a list makes a sweep).

// delayList is link.delay.
type delayList []time.Duration

func (l *delayList) UnmarshalYAML(n *yaml.Node) error {
	*l = nil
	return eachItem(n, func(c *yaml.Node) error {
		var d linkDuration
		err := d.UnmarshalYAML(c)
		*l = append(*l, time.Duration(d))
		return err
	})
}

// lossList is link.loss: percentages (the link's loss model) and bursty cases {loss: 2%, burst: 3}.
type lossList []Loss

func (l *lossList) UnmarshalYAML(n *yaml.Node) error {
	*l = nil
	return eachItem(n, func(c *yaml.Node) error {
		if c.Kind != yaml.MappingNode {
			var p percent
			err := p.UnmarshalYAML(c)
			*l = append(*l, Loss{Rate: float64(p), Burst: -1}) // Burst -1: normalize gives it the link's model
			return err
		}
		var e struct {
			Loss  percent     `yaml:"loss"`
			Burst burstLength `yaml:"burst"`
		}
		if err := decodeFields(c, &e); err != nil {
			return err
		}
		if e.Burst == 0 {
			return errAt(c, "an entry written as a mapping is a bursty case and needs burst: N (e.g. {loss: 2%, burst: 3})")
		}
		if e.Loss == 0 {
			return errAt(c, "a bursty case needs a loss above 0% (e.g. {loss: 2%, burst: 3})")
		}
		*l = append(*l, Loss{Rate: float64(e.Loss), Burst: float64(e.Burst)})
		return nil
	})
}

// KnownTransports lists every name a scenario's `transports` may hold, in the order the lab shows
// them: the names of the table of transports (transports/all), then the peer servers'
// transports (PEER/TRANSPORT: peers). It is the one place scenarios learns which transports exist.
func KnownTransports() []string { return append(all.Names(), peers.Names()...) }

// defaultTransports is `transports` when a file leaves it out: every transport of the table
// with a carrier of its own (auto, which picks one per session, runs when a file names it).
func defaultTransports() transportList {
	var out transportList
	for _, t := range all.Table {
		if !t.Fallback {
			out = append(out, t.Name)
		}
	}
	return out
}

// transportList is `transports`: names from KnownTransports, each once.
type transportList []string

func (l *transportList) UnmarshalYAML(n *yaml.Node) error {
	*l = nil
	known := KnownTransports()
	return eachItem(n, func(c *yaml.Node) error {
		v, err := scalar(c)
		switch {
		case err != nil:
			return err
		case peers.Unavailable[v] != "":
			return errAt(c, fmt.Sprintf("%q is not available: %s", v, peers.Unavailable[v]))
		case !slices.Contains(known, v):
			return errAt(c, fmt.Sprintf("%q is not a transport%s; the transports are %s", v, didYouMean(v, known), strings.Join(known, ", ")))
		case slices.Contains(*l, v):
			return errAt(c, fmt.Sprintf("%q is listed twice", v))
		}
		*l = append(*l, v)
		return nil
	})
}

// stackList is `stack`: one of StackNames, or a list of distinct stacks without auto (a sweep
// over stacks must say which).
type stackList []string

func (l *stackList) UnmarshalYAML(n *yaml.Node) error {
	*l = nil
	return eachItem(n, func(c *yaml.Node) error {
		v, err := scalar(c)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(StackNames, func(s string) bool { return strings.EqualFold(v, s) })
		switch {
		case i < 0:
			return errAt(c, fmt.Sprintf("%q is not a stack%s; the stacks are gvisor (userspace, the default), kernel (Linux in network namespaces: needs root and /dev/net/tun), auto (kernel where possible, else gvisor), or a list [gvisor, kernel]", v, didYouMean(v, StackNames)))
		case n.Kind == yaml.SequenceNode && StackNames[i] == StackAuto:
			return errAt(c, "auto cannot be in a list: a sweep over stacks names them ([gvisor, kernel])")
		case slices.Contains(*l, StackNames[i]):
			return errAt(c, fmt.Sprintf("%q is listed twice", StackNames[i]))
		}
		*l = append(*l, StackNames[i])
		return nil
	})
}

// eachItem calls f for a single value or for every item of a list, and stops at the first error.
func eachItem(n *yaml.Node, f func(*yaml.Node) error) error {
	switch n.Kind {
	case yaml.ScalarNode:
		return f(n)
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			return errAt(n, "is an empty list")
		}
		for _, c := range n.Content {
			if err := f(c); err != nil {
				return err
			}
		}
		return nil
	}
	return errAt(n, "must be a value or a list of values")
}

// scalar is n's value, trimmed, or an error when n is a list or a mapping.
func scalar(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", errAt(n, "must be a single value, not a list or mapping")
	}
	return strings.TrimSpace(n.Value), nil
}

// errAt is a mistake at n; the mapping that holds n names the field.
func errAt(n *yaml.Node, msg string) error {
	return &Error{Line: n.Line, Msg: msg}
}
