package netem

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseProfile(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want LinkProfile
	}{
		{"empty", "", LinkProfile{}},
		{"delay loss", "delay=20ms loss=2%", LinkProfile{Delay: 20 * time.Millisecond, Loss: Loss{Rate: 0.02}}},
		{"short ge", "loss=2% burst=3", LinkProfile{Loss: Loss{Model: LossGilbertElliott, Rate: 0.02, Burst: 3}}},
		{"gemodel", "gemodel=1%,30%,100%,0%", LinkProfile{Loss: Loss{Model: LossGilbertElliott, GE: GEParams{P: 0.01, R: 0.3, BadLoss: 1}}}},
		{"rate", "rate=10mbit queue=50", LinkProfile{Rate: 10_000_000, Queue: 50}},
		{"rate gbit", "rate=1.5gbit", LinkProfile{Rate: 1_500_000_000}},
		{"jitter reorder", "delay=10ms jitter=2ms reorder", LinkProfile{Delay: 10 * time.Millisecond, Jitter: 2 * time.Millisecond, Reorder: true}},
		{"blackhole block", "blackhole=2s/10s block=udp block=443", LinkProfile{Blackhole: Blackhole{Down: 2 * time.Second, Every: 10 * time.Second}, BlockUDP: true, BlockPorts: []uint16{443}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseProfile(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.Delay != tc.want.Delay || got.Jitter != tc.want.Jitter || got.Reorder != tc.want.Reorder ||
				got.Rate != tc.want.Rate || got.Queue != tc.want.Queue || got.Loss != tc.want.Loss ||
				got.Blackhole != tc.want.Blackhole || got.BlockUDP != tc.want.BlockUDP || len(got.BlockPorts) != len(tc.want.BlockPorts) {
				t.Fatalf("ParseProfile(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseErrorsNameFieldAndForm(t *testing.T) {
	cases := []struct {
		name, in string
		want     string // the whole message
	}{
		{"loss without percent", "loss=12", `netem: loss "12" is not a percentage (try 12%)`},
		{"loss above 100", "loss=120%", `netem: loss "120%" is out of range (use 0% up to below 100%, e.g. 2%)`},
		{"negative delay", "delay=-5ms", `netem: delay "-5ms" is negative (try 5ms)`},
		{"delay without unit", "delay=20", `netem: delay "20" has no unit (try 20ms)`},
		{"delay 100h", "delay=100h", `netem: delay "100h" is out of range (use 0 to 10s one way, e.g. 20ms)`},
		{"jitter 11s", "delay=20ms jitter=11s", `netem: jitter "11s" is out of range (use 0 to 10s one way, e.g. 20ms)`},
		{"rate fast", "rate=fast", `netem: rate "fast" is not a rate (try 10mbit (bits/s: bit, kbit, mbit, gbit))`},
		{"rate without unit", "rate=10", `netem: rate "10" has no unit (try 10mbit (bits/s: bit, kbit, mbit, gbit))`},
		{"rate mbps", "rate=10Mbps", `netem: rate "10Mbps" is ambiguous (tc reads bps as bytes per second) (write 10mbit for bits per second)`},
		{"burst without loss", "burst=3", `netem: burst "3" is set without a loss rate (set loss too, e.g. loss=2% burst=3)`},
		{"burst below one", "loss=2% burst=0.5", `netem: burst "0.5" is below 1 packet (try 3, the mean number of packets lost in a row)`},
		{"unknown model", "loss=2% model=pareto", `netem: loss_model "pareto" is not a loss model (try bernoulli or gilbert-elliott)`},
		{"unknown key", "speed=3", `netem: speed "3" is not a link setting (use delay, jitter, reorder, rate, queue, loss, loss_model, burst, gemodel, blackhole or block)`},
		{"blackhole form", "blackhole=2s", `netem: blackhole "2s" is not DOWN/EVERY (try 2s/10s (down 2s every 10s))`},
		{"block", "block=tcp", `netem: block "tcp" is not udp or a port number (try block=udp or block=443)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseProfile(tc.in)
			if err == nil {
				t.Fatalf("ParseProfile(%q) accepted it", tc.in)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FieldError", err)
			}
			if err.Error() != tc.want {
				t.Fatalf("ParseProfile(%q)\n got: %s\nwant: %s", tc.in, err, tc.want)
			}
		})
	}
}

func TestValidateStruct(t *testing.T) {
	cases := []struct {
		name  string
		p     LinkProfile
		field string
	}{
		{"negative delay", LinkProfile{Delay: -time.Millisecond}, "delay"},
		{"delay 100h", LinkProfile{Delay: 100 * time.Hour}, "delay"},
		{"jitter over MaxDelay", LinkProfile{Jitter: MaxDelay + 1}, "jitter"},
		{"loss 120%", LinkProfile{Loss: Loss{Rate: 1.2}}, "loss"},
		{"burst without loss", LinkProfile{Loss: Loss{Burst: 3}}, "burst"},
		{"burst with bernoulli", LinkProfile{Loss: Loss{Model: LossBernoulli, Rate: 0.02, Burst: 3}}, "burst"},
		{"ge without burst", LinkProfile{Loss: Loss{Model: LossGilbertElliott, Rate: 0.02}}, "burst"},
		{"gemodel and rate", LinkProfile{Loss: Loss{Rate: 0.02, GE: GEParams{P: 0.1}}}, "gemodel"},
		{"blackhole without period", LinkProfile{Blackhole: Blackhole{Down: time.Second}}, "blackhole"},
		{"drop 0", LinkProfile{Drops: []DropRule{{Packets: []int{0}}}}, "drop"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Validate() = %v, want a *FieldError for %q", err, tc.field)
			}
		})
	}
}

func FuzzParseProfile(f *testing.F) {
	for _, s := range []string{"delay=20ms loss=2%", "loss=2% burst=3", "rate=10mbit", "gemodel=1%,30%", "blackhole=2s/10s block=udp,443", "loss=120%", "rate=fast", "jitter=-1s reorder"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseProfile(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "netem: ") {
				t.Fatalf("error %q lacks the netem: prefix", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" || fe.Hint == "" {
				t.Fatalf("error %v names no field or form", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("ParseProfile(%q) returned a profile that does not validate: %v", s, err)
		}
		if p.Delay < 0 || p.Jitter < 0 || p.Loss.Rate < 0 || p.Loss.Rate >= 1 {
			t.Fatalf("ParseProfile(%q) = %+v out of range", s, p)
		}
	})
}

func FuzzParseFields(f *testing.F) {
	for _, s := range []string{"20ms", "2%", "10mbit", "3", "0", "-1", "1e309%", "NaN%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseDuration("delay", s); err == nil && d < 0 {
			t.Fatalf("ParseDuration(%q) = %v", s, d)
		}
		if v, err := ParsePercent("loss", s); err == nil && (v < 0 || v >= 1) {
			t.Fatalf("ParsePercent(%q) = %v", s, v)
		}
		if _, err := ParseRate("rate", s); err != nil && !strings.Contains(err.Error(), "rate") {
			t.Fatalf("ParseRate(%q) error %q does not name the field", s, err)
		}
		if v, err := ParseBurst("burst", s); err == nil && !(v >= 1) {
			t.Fatalf("ParseBurst(%q) = %v", s, v)
		}
	})
}
