package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wirelab/wirelab/chat"
)

func TestParseHold(t *testing.T) {
	h, err := ParseHold("20:100ms")
	if err != nil || h != (Hold{Every: 20, Delay: 100 * time.Millisecond}) {
		t.Fatalf("20:100ms: %+v, %v", h, err)
	}
	if d := h.Describe(); !strings.Contains(d, "every 20th message 100ms") || !strings.Contains(d, "test-only") {
		t.Errorf("describe: %q", d)
	}
	for _, bad := range []struct{ in, why string }{
		{"20", "no colon"},
		{"x:100ms", `"x" is not a whole number`},
		{"0:100ms", `"0" is not a whole number`},
		{"20:100", `"100" is not a duration`},
		{"20:-5ms", `"-5ms" is not a duration`},
		{":", `"" is not a whole number`},
	} {
		_, err := ParseHold(bad.in)
		if err == nil || !strings.Contains(err.Error(), bad.why) || !strings.Contains(err.Error(), "WIRELAB_TEST_HOLD=") || !strings.Contains(err.Error(), "want EVERY:DELAY, e.g. 20:100ms") {
			t.Errorf("%q: %v", bad.in, err)
		}
	}
}

// A malformed WIRELAB_TEST_HOLD stops the server from starting, with the reason.
func TestHoldEnvMalformed(t *testing.T) {
	t.Setenv(HoldEnv, "every20th")
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), `WIRELAB_TEST_HOLD="every20th": no colon`) {
		t.Fatalf("New with a malformed hold: %v", err)
	}
	t.Setenv(HoldEnv, "")
	if h, err := HoldFromEnv(); h != nil || err != nil {
		t.Fatalf("empty: %v, %v", h, err)
	}
}

type delivery struct {
	topic, id string
	at        time.Time
}

// Every third message (counted by message: a direct message's two topics are one) is
// delivered the hold's delay late, to each of its topics; the rest at once, on the
// publisher's goroutine; presence and other envelopes are never held.
func TestHoldBroker(t *testing.T) {
	const delay = 30 * time.Millisecond
	b, err := Hold{Every: 3, Delay: delay}.wrap(nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan delivery, 64)
	if err := b.Start(func(topic string, data []byte) {
		p := chat.PayloadFromBytes(data)
		got <- delivery{topic, p.Envelope(0).ID, time.Now()}
	}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	publish := func(id string, topics ...string) time.Time {
		at := time.Now()
		for _, tp := range topics {
			if err := b.Publish(ctx, tp, chat.NewPayload(chat.Envelope{Type: chat.TypeMsg, ID: id, Room: "lobby", Text: "hi"}).Bytes()); err != nil {
				t.Fatal(err)
			}
		}
		return at
	}
	presence := chat.NewPayload(chat.Envelope{Type: chat.TypePresence, Room: "lobby"}).Bytes()
	sent := map[string]time.Time{}
	sent["m1"] = publish("m1", "room:lobby")
	sent["m2"] = publish("m2", "user:bob", "user:alice") // a DM: one message, two topics
	for range 5 {
		if err := b.Publish(ctx, "room:lobby", presence); err != nil { // never counted or held
			t.Fatal(err)
		}
	}
	sent["m3"] = publish("m3", "room:lobby") // the 3rd message: held
	sent["m4"] = publish("m4", "room:lobby")
	sent["m5"] = publish("m5", "room:a")
	sent["m6"] = publish("m6", "user:carol", "user:dave") // the 6th: held, both topics

	// Everything not held was delivered before Publish returned.
	var now []delivery
	for len(got) > 0 {
		now = append(now, <-got)
	}
	var ids []string
	presences := 0
	for _, d := range now {
		if d.id == "" {
			presences++
			continue
		}
		ids = append(ids, d.id)
	}
	if want := "m1 m2 m2 m4 m5"; strings.Join(ids, " ") != want || presences != 5 {
		t.Fatalf("delivered at once: %q and %d presence, want %q and 5", strings.Join(ids, " "), presences, want)
	}
	// The held ones come later, each topic once, no sooner than the delay.
	late := map[string]int{}
	for range 3 {
		select {
		case d := <-got:
			late[d.id+" "+d.topic]++
			if wait := d.at.Sub(sent[d.id]); wait < delay {
				t.Errorf("%s on %s delivered after %v, before the %v hold", d.id, d.topic, wait, delay)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("held messages not delivered: %v", late)
		}
	}
	if late["m3 room:lobby"] != 1 || late["m6 user:carol"] != 1 || late["m6 user:dave"] != 1 {
		t.Fatalf("held deliveries: %v", late)
	}
}

// A cluster's shared store delivers another way: the hold refuses it rather than do nothing.
func TestHoldRefusesSharedStore(t *testing.T) {
	if _, err := (Hold{Every: 20, Delay: time.Millisecond}).wrap(sharedStub{}); err == nil || !strings.Contains(err.Error(), "not on a cluster") {
		t.Fatalf("shared store: %v", err)
	}
}

type sharedStub struct{ chat.SharedStore }
