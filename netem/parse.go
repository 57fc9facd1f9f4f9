package netem

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// FieldError is the error for a bad link setting. Its message names the
// field, quotes the value and says what is accepted, for example
//
//	netem: loss "12" is not a percentage (try 12%)
type FieldError struct {
	Field   string // "loss", "delay", "rate", ...
	Value   string // the value as given
	Problem string // what is wrong with it
	Hint    string // the accepted form
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("netem: %s %s (%s)", e.Field, e.Problem, e.Hint)
	}
	return fmt.Sprintf("netem: %s %q %s (%s)", e.Field, e.Value, e.Problem, e.Hint)
}

func fieldErr(field, value, problem, hint string) error {
	return &FieldError{Field: field, Value: value, Problem: problem, Hint: hint}
}

// ParseDuration parses a non-negative duration such as "20ms", "1.5s" or
// "0" for the named field.
func ParseDuration(field, s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		if _, nerr := strconv.ParseFloat(t, 64); nerr == nil {
			return 0, fieldErr(field, s, "has no unit", "try "+t+"ms")
		}
		return 0, fieldErr(field, s, "is not a duration", "try 20ms")
	}
	if d < 0 {
		return 0, fieldErr(field, s, "is negative", "try "+strings.TrimPrefix(t, "-"))
	}
	return d, nil
}

// ParsePercent parses a percentage such as "2%", "0.5%" or "0" into a
// fraction in [0, 1) (100% is refused: a link that loses everything is a
// blackhole).
func ParsePercent(field, s string) (float64, error) {
	t := strings.TrimSpace(s)
	if t == "0" {
		return 0, nil
	}
	num, ok := strings.CutSuffix(t, "%")
	if !ok {
		if _, err := strconv.ParseFloat(t, 64); err == nil {
			return 0, fieldErr(field, s, "is not a percentage", "try "+t+"%")
		}
		return 0, fieldErr(field, s, "is not a percentage", "try 2%")
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fieldErr(field, s, "is not a percentage", "try 2%")
	}
	if v < 0 || v >= 100 {
		return 0, fieldErr(field, s, "is out of range", "use 0% up to below 100%, e.g. 2%")
	}
	return v / 100, nil
}

// probability parses a percentage in [0%, 100%] (used by gemodel, where 100%
// is meaningful).
func parseProbability(field, s string) (float64, error) {
	t := strings.TrimSpace(s)
	if t == "100%" {
		return 1, nil
	}
	return ParsePercent(field, t)
}

var rateUnits = []struct {
	suffix string
	mult   float64
}{
	{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1},
}

// ParseRate parses a bit rate in tc's notation: "10mbit", "512kbit",
// "1gbit", "8000bit"; "0" means unlimited. "10mbps" is refused as
// ambiguous: tc reads it as bytes per second, most people as bits.
func ParseRate(field, s string) (uint64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "0" {
		return 0, nil
	}
	t = strings.TrimSuffix(t, "/s")
	if num, ok := strings.CutSuffix(t, "bps"); ok {
		if v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimRight(num, "kmg")), 64); err == nil && v >= 0 {
			unit := strings.TrimLeft(num, "0123456789.+-eE ")
			return 0, fieldErr(field, s, "is ambiguous (tc reads bps as bytes per second)", fmt.Sprintf("write %g%sbit for bits per second", v, unit))
		}
	}
	for _, u := range rateUnits {
		num, ok := strings.CutSuffix(t, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			break
		}
		if v < 0 {
			return 0, fieldErr(field, s, "is negative", "try 10mbit, or 0 for unlimited")
		}
		bits := v * u.mult
		if bits > 0 && bits < 8000 {
			return 0, fieldErr(field, s, "is below 8kbit, too slow for a single MTU packet per second", "try 64kbit or more")
		}
		if bits > 1e12 {
			return 0, fieldErr(field, s, "is above 1000gbit", "try 10gbit, or 0 for unlimited")
		}
		return uint64(bits), nil
	}
	if _, err := strconv.ParseFloat(t, 64); err == nil {
		return 0, fieldErr(field, s, "has no unit", "try "+t+"mbit (bits/s: bit, kbit, mbit, gbit)")
	}
	return 0, fieldErr(field, s, "is not a rate", "try 10mbit (bits/s: bit, kbit, mbit, gbit)")
}

// ParseBurst parses a mean loss-burst length in packets (a number >= 1).
func ParseBurst(field, s string) (float64, error) {
	t := strings.TrimSpace(s)
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fieldErr(field, s, "is not a number of packets", "try 3")
	}
	if v < 1 {
		return 0, fieldErr(field, s, "is below 1 packet", "try 3, the mean number of packets lost in a row")
	}
	return v, nil
}

// ParseBlackhole parses a periodic outage written DOWN/EVERY, for example
// "2s/10s" (down 2s every 10s). Whether down fits in its period is left to
// LinkProfile.Validate.
func ParseBlackhole(s string) (Blackhole, error) {
	var b Blackhole
	down, every, ok := strings.Cut(s, "/")
	if !ok {
		return b, fieldErr("blackhole", s, "is not DOWN/EVERY", "try 2s/10s (down 2s every 10s)")
	}
	var err error
	if b.Down, err = ParseDuration("blackhole down", down); err != nil {
		return b, err
	}
	if b.Every, err = ParseDuration("blackhole period", every); err != nil {
		return b, err
	}
	return b, nil
}

// ParseBlock parses a comma-separated list of what a link blocks: "udp"
// and port numbers, for example "udp,443".
func ParseBlock(s string) (udp bool, ports []uint16, err error) {
	for _, b := range strings.Split(s, ",") {
		b = strings.ToLower(strings.TrimSpace(b))
		if b == "udp" {
			udp = true
			continue
		}
		port, perr := strconv.ParseUint(b, 10, 16)
		if perr != nil || port == 0 {
			return false, nil, fieldErr("block", b, "is not udp or a port number", "try block=udp or block=443")
		}
		ports = append(ports, uint16(port))
	}
	return udp, ports, nil
}

// ProfileSpec is a link direction written as text, the way a command line
// gives it (lab probe's flags). Empty fields take their zero value. Scenario
// files do not go through it: they build a LinkProfile from the parsed
// values, using the field parsers above.
type ProfileSpec struct {
	Delay     string // "20ms"
	Jitter    string // "5ms"
	Reorder   bool
	Rate      string // "10mbit"
	Queue     string // "1000" (packets)
	Loss      string // "2%"
	LossModel string // "bernoulli" or "gilbert-elliott"
	Burst     string // "3" (packets)
	GEModel   string // "1%,30%,100%,0%": tc's gemodel p r 1-h 1-k
	Blackhole string // "2s/10s": down 2s every 10s
	Block     string // "udp", "443", "udp,443"
}

// Profile parses the spec; the error is a *FieldError naming the field.
func (s ProfileSpec) Profile() (LinkProfile, error) {
	var p LinkProfile
	var err error
	if s.Delay != "" {
		if p.Delay, err = ParseDuration("delay", s.Delay); err != nil {
			return p, err
		}
		if err := checkDelay("delay", s.Delay, p.Delay); err != nil {
			return p, err
		}
	}
	if s.Jitter != "" {
		if p.Jitter, err = ParseDuration("jitter", s.Jitter); err != nil {
			return p, err
		}
		if err := checkDelay("jitter", s.Jitter, p.Jitter); err != nil {
			return p, err
		}
	}
	p.Reorder = s.Reorder
	if s.Rate != "" {
		if p.Rate, err = ParseRate("rate", s.Rate); err != nil {
			return p, err
		}
	}
	if s.Queue != "" {
		q, err := strconv.Atoi(strings.TrimSpace(s.Queue))
		if err != nil || q < 0 {
			return p, fieldErr("queue", s.Queue, "is not a number of packets", "try 1000")
		}
		p.Queue = q
	}
	if s.Loss != "" {
		if p.Loss.Rate, err = ParsePercent("loss", s.Loss); err != nil {
			return p, err
		}
	}
	switch m := strings.ToLower(strings.TrimSpace(s.LossModel)); m {
	case "":
	case "bernoulli", "random":
		p.Loss.Model = LossBernoulli
	case "gilbert-elliott", "gilbert_elliott", "ge", "gemodel":
		p.Loss.Model = LossGilbertElliott
	default:
		return p, fieldErr("loss_model", s.LossModel, "is not a loss model", "try bernoulli or gilbert-elliott")
	}
	if s.Burst != "" {
		if p.Loss.Burst, err = ParseBurst("burst", s.Burst); err != nil {
			return p, err
		}
		if p.Loss.Rate == 0 && s.GEModel == "" {
			return p, fieldErr("burst", s.Burst, "is set without a loss rate", "set loss too, e.g. loss=2% burst=3")
		}
		if p.Loss.Model == "" {
			p.Loss.Model = LossGilbertElliott
		}
	}
	if s.GEModel != "" {
		parts := strings.FieldsFunc(s.GEModel, func(r rune) bool { return r == ',' || r == ' ' })
		if len(parts) == 0 || len(parts) > 4 {
			return p, fieldErr("gemodel", s.GEModel, "is not p,r,1-h,1-k", "try 1%,30%,100%,0%")
		}
		// tc defaults: r = 1-p, 1-h = 100%, 1-k = 0%.
		vals := []float64{0, -1, 1, 0}
		names := []string{"gemodel p", "gemodel r", "gemodel 1-h", "gemodel 1-k"}
		for i, part := range parts {
			if vals[i], err = parseProbability(names[i], part); err != nil {
				return p, err
			}
		}
		if vals[1] < 0 {
			vals[1] = 1 - vals[0]
		}
		p.Loss.GE = GEParams{P: vals[0], R: vals[1], BadLoss: vals[2], GoodLoss: vals[3]}
		p.Loss.Model = LossGilbertElliott
	}
	if s.Blackhole != "" {
		if p.Blackhole, err = ParseBlackhole(s.Blackhole); err != nil {
			return p, err
		}
	}
	if s.Block != "" {
		if p.BlockUDP, p.BlockPorts, err = ParseBlock(s.Block); err != nil {
			return p, err
		}
	}
	return p, p.Validate()
}

// ParseProfile parses a link direction written as space-separated key=value
// pairs, for example
//
//	delay=20ms jitter=5ms loss=2% burst=3 rate=10mbit queue=100 reorder
//	gemodel=1%,30%,100%,0% blackhole=2s/10s block=udp,443
//
// An empty string is a perfect link. Errors are *FieldError values naming
// the field and the accepted form.
func ParseProfile(s string) (LinkProfile, error) {
	var spec ProfileSpec
	for _, f := range strings.Fields(s) {
		k, v, hasValue := strings.Cut(f, "=")
		k = strings.ToLower(k)
		if k == "" {
			return LinkProfile{}, fieldErr("setting", f, "has no name", "write KEY=VALUE, e.g. delay=20ms loss=2%")
		}
		if !hasValue && k != "reorder" {
			return LinkProfile{}, fieldErr(k, "", "has no value", "write "+k+"=VALUE, e.g. delay=20ms loss=2%")
		}
		switch k {
		case "delay":
			spec.Delay = v
		case "jitter":
			spec.Jitter = v
		case "reorder":
			spec.Reorder = true
		case "rate":
			spec.Rate = v
		case "queue", "limit":
			spec.Queue = v
		case "loss":
			spec.Loss = v
		case "loss_model", "model":
			spec.LossModel = v
		case "burst":
			spec.Burst = v
		case "gemodel":
			spec.GEModel = v
		case "blackhole":
			spec.Blackhole = v
		case "block":
			if spec.Block != "" {
				spec.Block += ","
			}
			spec.Block += v
		default:
			return LinkProfile{}, fieldErr(k, v, "is not a link setting", "use delay, jitter, reorder, rate, queue, loss, loss_model, burst, gemodel, blackhole or block")
		}
	}
	return spec.Profile()
}
