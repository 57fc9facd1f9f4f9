package netem

import (
	"fmt"
	"slices"
	"time"
)

// LinkProfile describes one direction of a link: what happens to a packet
// between the moment the sending host's stack hands it to its NIC and the
// moment the receiving host's stack sees it. The zero value is a perfect,
// infinitely fast link that delivers every packet at once and in order.
//
// The stages run in this order, as on a real path: blocking (firewall),
// blackhole periods, deterministic drop rules, the random loss model, the
// rate limiter with its drop-tail queue, and finally propagation delay plus
// jitter.
type LinkProfile struct {
	// Delay is the one-way propagation delay added to every packet.
	// Zero means none; at most MaxDelay.
	Delay time.Duration

	// Jitter spreads the delay uniformly over [Delay-Jitter, Delay+Jitter]
	// (never below zero). Zero means none; at most MaxDelay.
	Jitter time.Duration

	// Reorder lets a packet with a short jittered delay overtake an earlier
	// one with a long delay. When false (the default) packets leave in the
	// order they entered: a packet that draws a short delay waits behind the
	// one before it, so jitter shows up as delay variation without
	// reordering.
	Reorder bool

	// Rate is the link's bit rate in bits per second, counted over whole IP
	// packets (headers included). Zero means unlimited (no serialization
	// delay and no queue).
	Rate uint64

	// Queue is the drop-tail queue in front of the rate limiter, in packets
	// (a packet being serialized counts). Zero means 1000 packets, the
	// default of tc netem. It has no effect when Rate is zero.
	Queue int

	// Loss is the random loss model. The zero value loses nothing.
	Loss Loss

	// Drops are deterministic drop rules ("drop data packets 5 and 6 of
	// this flow"), for tests and teaching.
	Drops []DropRule

	// Blackhole, when its Every is set, drops every packet during a window
	// of Down at the end of every period of Every, counted from when the
	// profile was applied (so "down 2s every 10s" is up for 8 s, then down
	// for 2 s, and so on).
	Blackhole Blackhole

	// BlockUDP drops every UDP packet (to test a fallback from QUIC).
	BlockUDP bool

	// BlockPorts drops every TCP or UDP packet whose source or destination
	// port is in the list.
	BlockPorts []uint16
}

// LossModel names a random loss process.
type LossModel string

// The loss models. The zero value of LossModel is LossBernoulli unless Burst
// or any Gilbert-Elliott parameter is set.
const (
	LossBernoulli      LossModel = "bernoulli"
	LossGilbertElliott LossModel = "gilbert-elliott"
)

// Loss is a random loss process applied independently to every packet that
// reaches it. Every random draw comes from the link direction's own PCG
// generator, seeded from Config.Seed and the two host addresses.
type Loss struct {
	// Model selects the process. Empty means Bernoulli, or Gilbert-Elliott
	// when Burst or GE is set.
	Model LossModel

	// Rate is the long-run fraction of packets lost, in [0, 1). For
	// Bernoulli it is the per-packet loss probability; for Gilbert-Elliott
	// it is the short form together with Burst.
	Rate float64

	// Burst is the mean length of a loss burst in packets (>= 1), the short
	// form of Gilbert-Elliott: the bad state loses every packet, the good
	// state none, and the transition probabilities are chosen so the
	// stationary loss is Rate and bad periods last Burst packets on average.
	// Zero means no bursts (Bernoulli).
	Burst float64

	// GE holds the four parameters of tc netem's "loss gemodel p r 1-h 1-k".
	// When any of them is set, Rate and Burst must be zero.
	GE GEParams
}

// GEParams are the four Gilbert-Elliott parameters, named as in tc netem
// ("loss gemodel p r 1-h 1-k"); each is a probability in [0, 1].
type GEParams struct {
	P        float64 // good -> bad transition probability per packet
	R        float64 // bad -> good transition probability per packet
	BadLoss  float64 // 1-h: loss probability in the bad state
	GoodLoss float64 // 1-k: loss probability in the good state
}

func (g GEParams) isZero() bool { return g == GEParams{} }

// Stationary returns the long-run loss rate of the four-parameter model.
func (g GEParams) Stationary() float64 {
	if g.P+g.R == 0 {
		return g.GoodLoss
	}
	pb := g.P / (g.P + g.R)
	return pb*g.BadLoss + (1-pb)*g.GoodLoss
}

// Blackhole is a periodic outage: the link drops everything for Down at the
// end of each period of Every. The zero value never drops.
type Blackhole struct {
	Down  time.Duration
	Every time.Duration
}

// Protocol is an IP transport protocol number.
type Protocol uint8

// Transport protocols netem understands.
const (
	TCP Protocol = 6
	UDP Protocol = 17
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprintf("proto-%d", uint8(p))
}

// DropRule deterministically drops chosen data packets of every matching
// flow in this direction. A data packet is a TCP segment with payload or any
// UDP datagram; packets are counted from 1 per flow as they reach the link,
// so a retransmission of a dropped packet has a new, higher number.
type DropRule struct {
	// Proto limits the rule to TCP or UDP; zero means both.
	Proto Protocol
	// Port limits the rule to flows with this source or destination port;
	// zero means any.
	Port uint16
	// Packets are the 1-based indices of the data packets to drop.
	Packets []int
}

// geState holds the compiled transition and loss probabilities.
type compiledLoss struct {
	bernoulli float64
	ge        bool
	p         GEParams
}

// compile validates the loss model and reduces it to probabilities.
func (l Loss) compile() (compiledLoss, error) {
	model := l.Model
	if model == "" {
		model = LossBernoulli
		if l.Burst != 0 || !l.GE.isZero() {
			model = LossGilbertElliott
		}
	}
	if l.Rate < 0 || l.Rate >= 1 || l.Rate != l.Rate {
		return compiledLoss{}, fieldErr("loss", fmt.Sprintf("%g%%", l.Rate*100), "is not a loss rate in [0%, 100%)", "try 2%")
	}
	switch model {
	case LossBernoulli:
		if l.Burst != 0 {
			return compiledLoss{}, fieldErr("burst", fmt.Sprint(l.Burst), "needs the gilbert-elliott loss model", "drop burst or set loss_model: gilbert-elliott")
		}
		if !l.GE.isZero() {
			return compiledLoss{}, fieldErr("gemodel", "", "needs the gilbert-elliott loss model", "drop gemodel or set loss_model: gilbert-elliott")
		}
		return compiledLoss{bernoulli: l.Rate}, nil
	case LossGilbertElliott:
		if !l.GE.isZero() {
			if l.Rate != 0 || l.Burst != 0 {
				return compiledLoss{}, fieldErr("gemodel", "", "cannot be combined with loss and burst", "use either gemodel p,r,1-h,1-k or loss with burst")
			}
			for _, v := range []struct {
				name string
				v    float64
			}{{"p", l.GE.P}, {"r", l.GE.R}, {"1-h", l.GE.BadLoss}, {"1-k", l.GE.GoodLoss}} {
				if v.v < 0 || v.v > 1 || v.v != v.v {
					return compiledLoss{}, fieldErr("gemodel "+v.name, fmt.Sprintf("%g%%", v.v*100), "is not a probability", "try a value between 0% and 100%")
				}
			}
			return compiledLoss{ge: true, p: l.GE}, nil
		}
		if l.Burst == 0 {
			if l.Rate == 0 {
				return compiledLoss{}, nil
			}
			return compiledLoss{}, fieldErr("burst", "0", "is required by the gilbert-elliott loss model", "try burst: 3")
		}
		if l.Burst < 1 || l.Burst != l.Burst {
			return compiledLoss{}, fieldErr("burst", fmt.Sprint(l.Burst), "is not a mean burst length of at least 1 packet", "try burst: 3")
		}
		if l.Rate == 0 {
			return compiledLoss{}, fieldErr("burst", fmt.Sprint(l.Burst), "is set without a loss rate", "set loss too, e.g. loss: 2%")
		}
		r := 1 / l.Burst
		p := l.Rate * r / (1 - l.Rate)
		if p > 1 {
			return compiledLoss{}, fieldErr("burst", fmt.Sprint(l.Burst), fmt.Sprintf("is too short for loss %g%%", l.Rate*100), "raise burst or lower loss")
		}
		return compiledLoss{ge: true, p: GEParams{P: p, R: r, BadLoss: 1, GoodLoss: 0}}, nil
	default:
		return compiledLoss{}, fieldErr("loss_model", string(l.Model), "is not a loss model", "try bernoulli or gilbert-elliott")
	}
}

// MaxDelay is the longest one-way delay (and jitter) a link takes. A
// geostationary satellite hop is about 270 ms one way; a link slower than
// this one holds every packet of a run in its queue and stalls every
// timeout built for the Internet (TCP's give up after minutes of it).
const MaxDelay = 10 * time.Second

// checkDelay refuses a delay or jitter (value as given) over MaxDelay.
func checkDelay(field, value string, d time.Duration) error {
	if d > MaxDelay {
		return fieldErr(field, value, "is out of range", "use 0 to "+MaxDelay.String()+" one way, e.g. 20ms")
	}
	return nil
}

// Validate reports the first problem with the profile, as a *FieldError.
func (p LinkProfile) Validate() error {
	_, err := p.compile()
	return err
}

type compiledProfile struct {
	LinkProfile
	loss      compiledLoss
	blockPort [65536 / 64]uint64 // bitmap; only built when BlockPorts is set
	anyBlock  bool
	queue     int
}

func (p LinkProfile) compile() (*compiledProfile, error) {
	if p.Delay < 0 {
		return nil, fieldErr("delay", p.Delay.String(), "is negative", "try 20ms")
	}
	if p.Jitter < 0 {
		return nil, fieldErr("jitter", p.Jitter.String(), "is negative", "try 5ms, or 0")
	}
	if err := checkDelay("delay", p.Delay.String(), p.Delay); err != nil {
		return nil, err
	}
	if err := checkDelay("jitter", p.Jitter.String(), p.Jitter); err != nil {
		return nil, err
	}
	if p.Queue < 0 {
		return nil, fieldErr("queue", fmt.Sprint(p.Queue), "is negative", "try 1000 (packets), or 0 for the default")
	}
	if p.Blackhole.Down < 0 || p.Blackhole.Every < 0 {
		return nil, fieldErr("blackhole", fmt.Sprintf("%s/%s", p.Blackhole.Down, p.Blackhole.Every), "has a negative duration", "try 2s/10s")
	}
	if p.Blackhole.Down > 0 && p.Blackhole.Every == 0 {
		return nil, fieldErr("blackhole", p.Blackhole.Down.String(), "has no period", "try 2s/10s (down 2s every 10s)")
	}
	if p.Blackhole.Every > 0 && p.Blackhole.Down > p.Blackhole.Every {
		return nil, fieldErr("blackhole", fmt.Sprintf("%s/%s", p.Blackhole.Down, p.Blackhole.Every), "is down longer than its period", "try 2s/10s")
	}
	for _, r := range p.Drops {
		for _, i := range r.Packets {
			if i < 1 {
				return nil, fieldErr("drop", fmt.Sprint(i), "is not a packet number (they count from 1)", "try drop=5,6")
			}
		}
		if r.Proto != 0 && r.Proto != TCP && r.Proto != UDP {
			return nil, fieldErr("drop proto", r.Proto.String(), "is not tcp or udp", "use netem.TCP, netem.UDP or 0")
		}
	}
	l, err := p.Loss.compile()
	if err != nil {
		return nil, err
	}
	c := &compiledProfile{LinkProfile: p, loss: l, queue: p.Queue}
	c.Drops = slices.Clone(p.Drops)
	for i := range c.Drops {
		c.Drops[i].Packets = slices.Clone(p.Drops[i].Packets)
		slices.Sort(c.Drops[i].Packets)
	}
	c.BlockPorts = slices.Clone(p.BlockPorts)
	for _, port := range p.BlockPorts {
		c.blockPort[port/64] |= 1 << (port % 64)
		c.anyBlock = true
	}
	if c.queue == 0 {
		c.queue = 1000
	}
	return c, nil
}

func (c *compiledProfile) portBlocked(port uint16) bool {
	return c.anyBlock && c.blockPort[port/64]&(1<<(port%64)) != 0
}
