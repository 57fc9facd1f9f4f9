package server

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wirelab/wirelab/chat"
)

// HoldEnv names the TEST-ONLY hold: WIRELAB_TEST_HOLD=20:100ms makes the server hold every 20th
// chat message it publishes for 100 ms before it delivers any copy of it. It exists to give the
// CI gate (`lab compare`, make bench-quick) a regression of known size to catch: a user never
// sets it. The lab's server process inherits it from `lab run`, and an in-process server (lab
// run --in-process, tests) reads it too; every run of a lab with it set carries a warning.
const HoldEnv = "WIRELAB_TEST_HOLD"

// Hold is the TEST-ONLY delay of HoldEnv: every Every-th chat message (counted by message, not
// by copy: a room message is one however many sessions it reaches, a direct message one for
// both its topics) is delivered Delay late, to every session, by the server. Other messages are
// not held up behind it: the held one is queued in each session's outbox when its delay is
// over, so it gets a later seq than messages published after it (they overtake it).
type Hold struct {
	Every int
	Delay time.Duration
}

func (h Hold) String() string { return fmt.Sprintf("%d:%v", h.Every, h.Delay) }

// Describe says what the hold does, for warnings: "the server held every 20th message 100ms".
func (h Hold) Describe() string {
	return fmt.Sprintf("test-only: the server held every %s message %v before delivering it (%s=%s)", ordinal(h.Every), h.Delay, HoldEnv, h)
}

func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return strconv.Itoa(n) + suffix
}

// ParseHold reads a hold as HoldEnv gives it: "EVERY:DELAY", e.g. "20:100ms".
func ParseHold(s string) (Hold, error) {
	bad := func(why string) (Hold, error) {
		return Hold{}, fmt.Errorf("%s=%q: %s; want EVERY:DELAY, e.g. 20:100ms (hold every 20th message 100 ms; test-only)", HoldEnv, s, why)
	}
	every, delay, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return bad("no colon")
	}
	n, err := strconv.Atoi(every)
	if err != nil || n < 1 {
		return bad(fmt.Sprintf("%q is not a whole number of messages, 1 or more", every))
	}
	d, err := time.ParseDuration(delay)
	if err != nil || d <= 0 || d > time.Minute {
		return bad(fmt.Sprintf("%q is not a duration between 0 and 1m (such as 100ms)", delay))
	}
	return Hold{Every: n, Delay: d}, nil
}

// HoldFromEnv is the hold HoldEnv asks for: nil when it is unset or empty, an error when it is
// malformed.
func HoldFromEnv() (*Hold, error) {
	v := os.Getenv(HoldEnv)
	if v == "" {
		return nil, nil
	}
	h, err := ParseHold(v)
	if err != nil {
		return nil, err
	}
	return &h, nil
}

// wrap puts the hold between the hub and its broker: the hub's delivery callback (every
// published envelope to the local sessions of a topic) passes through it. A shared store
// (a cluster on Redis) delivers another way and is refused.
func (h Hold) wrap(b chat.Broker) (chat.Broker, error) {
	if b == nil {
		b = chat.NewMemoryBroker()
	}
	if _, ok := b.(chat.SharedStore); ok {
		return nil, fmt.Errorf("%s: the test-only hold works on a single server node, not on a cluster's shared store", HoldEnv)
	}
	return &holdBroker{Broker: b, hold: h, decided: map[string]bool{}}, nil
}

// holdBroker is a Broker whose deliveries of every Every-th message are postponed.
type holdBroker struct {
	chat.Broker
	hold Hold

	mu      sync.Mutex
	n       int             // messages seen
	decided map[string]bool // message id -> held, for the other topics of the same message
	order   []string        // ids in decided, oldest first
}

func (b *holdBroker) Start(deliver func(topic string, data []byte)) error {
	return b.Broker.Start(func(topic string, data []byte) {
		if !b.held(data) {
			deliver(topic, data)
			return
		}
		time.AfterFunc(b.hold.Delay, func() { deliver(topic, data) })
	})
}

// held says whether the envelope in data is a chat message to hold: the Every-th distinct
// message id, counted from the first.
func (b *holdBroker) held(data []byte) bool {
	if chat.PayloadFromBytes(data).Type() != chat.TypeMsg {
		return false
	}
	var env struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(data, &env) != nil || env.ID == "" {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if h, ok := b.decided[env.ID]; ok {
		return h
	}
	b.n++
	h := b.n%b.hold.Every == 0
	b.decided[env.ID] = h
	b.order = append(b.order, env.ID)
	if len(b.order) > 4096 { // a message's topics are published one right after the other
		delete(b.decided, b.order[0])
		b.order = b.order[1:]
	}
	return h
}
