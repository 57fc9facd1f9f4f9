package auto_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/wirelab/wirelab/transports/webtransport"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/auto"
	"github.com/wirelab/wirelab/transports/longpoll"
	"github.com/wirelab/wirelab/transports/stream"
	"github.com/wirelab/wirelab/transports/websocket"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startServer(t *testing.T) string {
	t.Helper()
	srv, err := server.New(server.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ln, pc, err := server.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln, pc) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// gate holds a dialer's Dial until the test opens it.
type gate struct {
	transports.Dialer
	open chan struct{}
}

func (g *gate) Dial(ctx context.Context, s string, after uint64) (transports.Conn, chat.Envelope, error) {
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, chat.Envelope{}, ctx.Err()
	}
	return g.Dialer.Dial(ctx, s, after)
}

func (g *gate) Close() error {
	if c, ok := g.Dialer.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

// refuse is a transport the network blocks.
type refuse struct{}

func (refuse) Dial(context.Context, string, uint64) (transports.Conn, chat.Envelope, error) {
	return nil, chat.Envelope{}, errors.New("blocked by the test")
}

func collect(t *testing.T, c transports.Client, want int, from string) map[string]int {
	t.Helper()
	got := map[string]int{}
	n := 0
	deadline := time.After(30 * time.Second)
	for n < want {
		select {
		case d, ok := <-c.Messages():
			if !ok {
				t.Fatalf("messages closed after %d of %d", n, want)
			}
			if d.Env.Type == chat.TypeMsg && d.Env.From == from {
				got[d.Env.Text]++
				n++
			}
		case <-deadline:
			t.Fatalf("got %d of %d messages", n, want)
		}
	}
	return got
}

// The session starts on long polling, moves to WebSocket in the middle of a burst, and every
// message arrives exactly once.
func TestUpgradeMidBurstLosesNothing(t *testing.T) {
	base := startServer(t)
	ctx := context.Background()
	opt := transports.Options{URL: base, User: "alice"}
	g := &gate{Dialer: websocket.NewDialer(opt), open: make(chan struct{})}
	a := auto.NewClientWith(opt, []auto.Candidate{{websocket.Name, g}, {longpoll.Name, longpoll.NewDialer(opt)}})
	defer a.Close()
	if err := a.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.Using(); got != longpoll.Name {
		t.Fatalf("started on %s, want longpoll", got)
	}
	b := websocket.NewClient(transports.Options{URL: base, User: "bob"})
	defer b.Close()
	if err := b.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 300
	sent := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if i == n/3 {
				close(g.open) // the upgrade happens while messages flow
			}
			if _, err := b.Send(ctx, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: fmt.Sprint(i)}); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	got := collect(t, a, n, "bob")
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if got[fmt.Sprint(i)] != 1 {
			t.Errorf("message %d arrived %d times", i, got[fmt.Sprint(i)])
		}
	}
	<-a.Upgraded()
	if got := a.Using(); got != websocket.Name {
		t.Fatalf("after the upgrade on %s, want websocket", got)
	}
	// And it still works after the move, both ways.
	if _, err := a.Send(ctx, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: "after"}); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, b, 1, "alice"); got["after"] != 1 {
		t.Fatalf("bob got %v", got)
	}
}

// With WebSocket blocked, auto falls back to streaming; with everything but long polling
// blocked, it stays on long polling and still works.
func TestFallback(t *testing.T) {
	base := startServer(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		cands func(transports.Options) []auto.Candidate
		want  string
	}{
		{"websocket blocked", func(o transports.Options) []auto.Candidate {
			return []auto.Candidate{{websocket.Name, refuse{}}, {stream.Name, stream.NewDialer(o)}, {longpoll.Name, longpoll.NewDialer(o)}}
		}, stream.Name},
		{"only long polling", func(o transports.Options) []auto.Candidate {
			return []auto.Candidate{{websocket.Name, refuse{}}, {stream.Name, refuse{}}, {longpoll.Name, longpoll.NewDialer(o)}}
		}, longpoll.Name},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := transports.Options{URL: base, User: "carol"}
			c := auto.NewClientWith(opt, tc.cands(opt))
			defer c.Close()
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			<-c.Upgraded()
			if got := c.Using(); got != tc.want {
				t.Fatalf("using %s, want %s", got, tc.want)
			}
			if _, err := c.Send(ctx, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: "hello"}); err != nil {
				t.Fatal(err)
			}
			if got := collect(t, c, 1, "carol"); got["hello"] != 1 {
				t.Fatalf("got %v", got)
			}
		})
	}
}

// A dropped connection resumes on the best transport.
func TestResumeOnBest(t *testing.T) {
	base := startServer(t)
	ctx := context.Background()
	a := auto.NewClient(transports.Options{URL: base, User: "dave"})
	defer a.Close()
	if err := a.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	<-a.Upgraded()
	if got := a.Using(); got != webtransport.UniName {
		t.Fatalf("upgraded to %s, want wt-uni (the best, and the server serves WebTransport)", got)
	}
	a.Drop()
	if _, err := a.Send(ctx, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: "x"}); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, a, 1, "dave"); got["x"] != 1 {
		t.Fatalf("got %v", got)
	}
	if got := a.Using(); got != webtransport.UniName {
		t.Fatalf("resumed on %s though wt-uni works", got)
	}
}
