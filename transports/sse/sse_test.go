package sse_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/sse"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startServer runs a real server on loopback and returns its base URL.
func startServer(t *testing.T, cfg server.Config) (string, *server.Server) {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, pc, err := server.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// HTTP only: these transports need no WebTransport, so the UDP socket is not served.
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln, nil) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = pc.Close()
	})
	return "http://" + ln.Addr().String(), srv
}

func connect(t *testing.T, url, user string, opt transports.Options) *sse.Client {
	t.Helper()
	opt.URL, opt.User = url, user
	if opt.RetryInterval == 0 {
		opt.RetryInterval = 500 * time.Millisecond
	}
	c := sse.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		c.Close()
		t.Fatalf("connect %s: %v", user, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func send(t *testing.T, c transports.Client, env chat.Envelope) chat.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ok, err := c.Send(ctx, env)
	if err != nil {
		t.Fatalf("%s sends %s: %v", c.User(), env.Type, err)
	}
	if ok.Type != chat.TypeOK {
		t.Fatalf("%s sends %s: answer %+v, want ok", c.User(), env.Type, ok)
	}
	return ok
}

// msgs reads msg envelopes from c until stop says so or the deadline passes.
func msgs(t *testing.T, c transports.Client, timeout time.Duration, stop func([]chat.Envelope) bool) []chat.Envelope {
	t.Helper()
	var got []chat.Envelope
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !stop(got) {
		select {
		case d, ok := <-c.Messages():
			if !ok {
				t.Fatalf("%s: messages closed after %d", c.User(), len(got))
			}
			if d.Env.Type == chat.TypeMsg {
				got = append(got, d.Env)
			}
		case <-deadline.C:
			t.Fatalf("%s: timed out after %d messages", c.User(), len(got))
		}
	}
	return got
}

// untilText stops once a message with text arrives.
func untilText(text string) func([]chat.Envelope) bool {
	return func(g []chat.Envelope) bool { return len(g) > 0 && g[len(g)-1].Text == text }
}

func count(envs []chat.Envelope, text string) int {
	n := 0
	for _, e := range envs {
		if e.Text == text {
			n++
		}
	}
	return n
}

func TestTwoUsersThreeTabsOnce(t *testing.T) {
	url, _ := startServer(t, server.Config{})
	a1 := connect(t, url, "alice", transports.Options{})
	a2 := connect(t, url, "alice", transports.Options{})
	b1 := connect(t, url, "bob", transports.Options{})
	tabs := []*sse.Client{a1, a2, b1}

	send(t, a1, chat.Envelope{Type: chat.TypeJoin, Room: "r1"})
	send(t, b1, chat.Envelope{Type: chat.TypeJoin, Room: "r1"})
	send(t, a1, chat.Envelope{Type: chat.TypeSay, Room: "r1", Text: "hello room"})
	send(t, b1, chat.Envelope{Type: chat.TypeDM, To: "alice", Text: "hello alice"})
	// A marker after both: anything doubled would arrive before it (a tab's stream is ordered).
	send(t, b1, chat.Envelope{Type: chat.TypeSay, Room: "lobby", Text: "end"})

	for _, c := range tabs {
		got := msgs(t, c, 10*time.Second, untilText("end"))
		if n := count(got, "hello room"); n != 1 && c != a2 {
			t.Errorf("%s got the room message %d times, want 1", c.User(), n)
		}
		if n := count(got, "hello room"); n != 0 && c == a2 {
			t.Errorf("alice's second tab is not in r1 but got its message %d times", n)
		}
		if n := count(got, "hello alice"); n != 1 {
			t.Errorf("%s (%s) got the DM %d times, want 1 (the sender's tab gets a copy too)", c.User(), c.Session()[:4], n)
		}
		var last uint64
		for _, e := range got {
			if e.Seq <= last {
				t.Errorf("%s: seq %d after %d", c.User(), e.Seq, last)
			}
			last = e.Seq
		}
	}
}

func TestResumeAfterDropNothingLostOrDoubled(t *testing.T) {
	url, _ := startServer(t, server.Config{})
	alice := connect(t, url, "alice", transports.Options{})
	bob := connect(t, url, "bob", transports.Options{})
	const n = 300
	var wg sync.WaitGroup
	wg.Add(1)
	errc := make(chan error, 1)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for i := 0; i < n; i++ {
			if _, err := bob.Send(ctx, chat.Envelope{Type: chat.TypeSay, Room: "lobby", Text: fmt.Sprint(i)}); err != nil {
				errc <- err
				return
			}
		}
	}()
	seen := map[string]int{}
	next := 0
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for next < n {
		select {
		case d := <-alice.Messages():
			if d.Env.Type != chat.TypeMsg {
				continue
			}
			seen[d.Env.Text]++
			if d.Env.Text != fmt.Sprint(next) {
				t.Fatalf("got %q, want %d (out of order or lost)", d.Env.Text, next)
			}
			next++
			if next%50 == 0 {
				alice.Drop() // a network failure mid-burst
			}
		case err := <-errc:
			t.Fatalf("bob: %v", err)
		case <-deadline.C:
			t.Fatalf("timed out at %d of %d", next, n)
		}
	}
	wg.Wait()
	// Nothing doubled after the last one either.
	send(t, bob, chat.Envelope{Type: chat.TypeSay, Room: "lobby", Text: "end"})
	for _, e := range msgs(t, alice, 10*time.Second, untilText("end")) {
		if e.Text != "end" {
			t.Errorf("extra copy of %q after resume", e.Text)
		}
	}
}
