package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/netem"
	"github.com/wirelab/wirelab/scenarios"
)

// badValue is a flag or argument given a value the command does not take: lab prints the
// message, which names the flag, the value and what is accepted, and exits with status 2.
type badValue struct{ msg string }

func (e *badValue) Error() string { return e.msg }

// badFlag is a badValue with a formatted message.
func badFlag(format string, a ...any) error { return &badValue{fmt.Sprintf(format, a...)} }

// parseFlags parses args into fs. A flag the flag package cannot parse (an unknown flag, a
// value of the wrong form) has been reported on stderr with the usage: the error is then
// errUsage, so that the command exits with status 2 like every other bad value.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// durationIn refuses a duration flag's value outside [lo, hi].
func durationIn(name string, d, lo, hi time.Duration) error {
	if d < lo || d > hi {
		return badFlag("--%s %s is out of range (%s to %s)", name, scenarios.ShortDuration(d), scenarios.ShortDuration(lo), scenarios.ShortDuration(hi))
	}
	return nil
}

// intIn refuses an integer flag's value outside [lo, hi].
func intIn(name string, v, lo, hi int) error {
	if v < lo || v > hi {
		return badFlag("--%s %d is out of range (%d to %d)", name, v, lo, hi)
	}
	return nil
}

// checkOrigin refuses an --allow-origin value that is not "*" or an origin as browsers send
// it: http or https, a host, an optional port, nothing else (a trailing "/" is tolerated).
func checkOrigin(v string) error {
	if v == "*" {
		return nil
	}
	bad := func(why string) error {
		return badFlag("--allow-origin %q %s: give an origin, scheme://host[:port] (e.g. https://chat.example:8443), or * for any", chat.Clip(v), why)
	}
	u, err := url.Parse(v)
	switch {
	case err != nil || u.Opaque != "":
		return bad("is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("does not begin with http:// or https://")
	case u.Hostname() == "":
		return bad("has no host")
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return bad("has more than a scheme, a host and a port")
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("has no port number (1-65535) after the colon")
		}
	}
	return nil
}

// linkFlag turns netem's error for a link setting into a badValue naming the flag.
func linkFlag(err error) error {
	var fe *netem.FieldError
	if errors.As(err, &fe) {
		return badFlag("--%s %q %s (%s)", fe.Field, fe.Value, fe.Problem, fe.Hint)
	}
	return err
}

// fraction refuses a flag's fraction outside (0, hi] (NaN too).
func fraction(name string, v, hi float64, example string) error {
	if !(v > 0 && v <= hi) {
		return badFlag("--%s %g is out of range (above 0, at most %g; e.g. %s)", name, v, hi, example)
	}
	return nil
}
