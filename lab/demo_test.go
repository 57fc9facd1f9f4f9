package lab

import (
	"context"
	"github.com/wirelab/wirelab/transports/websocket"
	"strings"
	"testing"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/all"
)

// TestDemoAssembly starts the demo's assembly — server on an emulated host, relay on loopback —
// and sends a chat message between two Go clients through the relay and the link: the link
// counts the packets both ways, the server its requests; SetLink moves both directions and a
// profile netem refuses leaves the link as it was; Close stops everything (TestMain checks no
// goroutine is left) and a second Close answers the same.
func TestDemoAssembly(t *testing.T) {
	d, err := StartDemo(DemoConfig{Listen: "127.0.0.1:0", RTT: 20 * time.Millisecond, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := d.Close(); err != nil {
			t.Errorf("a second Close: %v", err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	connect := func(user string) transports.Client {
		t.Helper()
		c, err := all.NewClient(websocket.Name, transports.Options{URL: "http://" + d.Addr(), User: user, RetryInterval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("%s connecting through the relay: %v", user, err)
		}
		return c
	}
	alice, bob := connect("alice"), connect("bob")
	if _, err := alice.Send(ctx, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: "through the link"}); err != nil {
		t.Fatalf("alice's say: %v", err)
	}
	for got := false; !got; {
		select {
		case m, ok := <-bob.Messages():
			if !ok {
				t.Fatal("bob's client closed before the message came")
			}
			got = m.Env.Type == chat.TypeMsg && m.Env.From == "alice" && m.Env.Text == "through the link"
		case <-ctx.Done():
			t.Fatal("bob did not get alice's message through the demo's link within 20 s")
		}
	}
	st := d.LinkState()
	if st.RTTms != 20 || st.LossPct != 0 {
		t.Errorf("link state %v ms, %v%%, want 20 ms and 0%%", st.RTTms, st.LossPct)
	}
	if st.Up.Packets == 0 || st.Down.Packets == 0 || st.Up.Bytes == 0 || st.Down.Bytes == 0 {
		t.Errorf("the link counted up %+v, down %+v: both directions carried the chat", st.Up, st.Down)
	}
	if st.ServerRequests < 2 {
		t.Errorf("the server counted %d requests, want at least the two WebSocket connections", st.ServerRequests)
	}

	if err := d.SetLink(300*time.Millisecond, 0.1); err != nil {
		t.Fatalf("SetLink(300ms, 10%%): %v", err)
	}
	if st := d.LinkState(); st.RTTms != 300 || st.LossPct != 10 {
		t.Errorf("after SetLink(300ms, 10%%) the link is %v ms, %v%%", st.RTTms, st.LossPct)
	}
	if err := d.SetLink(300*time.Millisecond, 1.5); err == nil {
		t.Error("SetLink with a loss of 150% succeeded")
	}
	if st := d.LinkState(); st.RTTms != 300 || st.LossPct != 10 {
		t.Errorf("a refused SetLink left the link at %v ms, %v%%, want 300 ms, 10%%", st.RTTms, st.LossPct)
	}
}

// TestDemoRTTOutOfRange: a round trip beyond the page's slider is refused before anything starts.
func TestDemoRTTOutOfRange(t *testing.T) {
	d, err := StartDemo(DemoConfig{Listen: "127.0.0.1:0", RTT: 3 * time.Second})
	if err == nil {
		_ = d.Close()
		t.Fatal("StartDemo with a 3 s round trip succeeded")
	}
	if !strings.Contains(err.Error(), "out of range") {
		t.Errorf("error %q does not say the round trip is out of range", err)
	}
}
