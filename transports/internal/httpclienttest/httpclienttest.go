// Package httpclienttest holds the tests and helpers the HTTP push transports (longpoll, stream,
// sse) share: serving a server on loopback, their clients' delivery cases, and raw HTTP helpers
// that speak to the server as curl would.
//
// It imports chat and transports; never server (the test files build the server and pass it
// in, as transporttest's callers do), lab, results or netem.
package httpclienttest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// NewClient makes a client of the transport under test.
type NewClient func(transports.Options) transports.Client

// Start starts a server with every transport and the default configuration (until t's
// cleanup) and returns its base URL. The test files pass one: this package imports no server
// (nothing under transports/ does, internal/archtest holds it).
type Start func(t *testing.T) string

// Server is what Serve runs: server.Server has this shape.
type Server interface {
	Serve(ln net.Listener, pc net.PacketConn) error
	Shutdown(ctx context.Context) error
}

// Serve serves srv's HTTP side on a loopback port until t's cleanup, which shuts it down and
// waits for Serve to return, and returns its base URL. These transports need no WebTransport,
// so no UDP socket is served.
func Serve(t *testing.T, srv Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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
	})
	return "http://" + ln.Addr().String()
}

func connect(t *testing.T, newClient NewClient, url, user string, opt transports.Options) transports.Client {
	t.Helper()
	opt.URL, opt.User = url, user
	if opt.RetryInterval == 0 {
		opt.RetryInterval = 500 * time.Millisecond
	}
	c := newClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		c.Close()
		t.Fatalf("connect %s: %v", user, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func Send(t *testing.T, c transports.Client, env chat.Envelope) chat.Envelope {
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

// Msgs reads msg envelopes from c until stop says so or the deadline passes.
func Msgs(t *testing.T, c transports.Client, timeout time.Duration, stop func([]chat.Envelope) bool) []chat.Envelope {
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

// UntilText stops once a message with text arrives.
func UntilText(text string) func([]chat.Envelope) bool {
	return func(g []chat.Envelope) bool { return len(g) > 0 && g[len(g)-1].Text == text }
}

func Count(envs []chat.Envelope, text string) int {
	n := 0
	for _, e := range envs {
		if e.Text == text {
			n++
		}
	}
	return n
}

// TwoUsersThreeTabsOnce: a room message and a DM reach each of three tabs (two users) once.
func TwoUsersThreeTabsOnce(t *testing.T, newClient NewClient, start Start) {
	url := start(t)
	a1 := connect(t, newClient, url, "alice", transports.Options{})
	a2 := connect(t, newClient, url, "alice", transports.Options{})
	b1 := connect(t, newClient, url, "bob", transports.Options{})
	tabs := []transports.Client{a1, a2, b1}

	Send(t, a1, chat.Envelope{Type: chat.TypeJoin, Room: "r1"})
	Send(t, b1, chat.Envelope{Type: chat.TypeJoin, Room: "r1"})
	Send(t, a1, chat.Envelope{Type: chat.TypeSay, Room: "r1", Text: "hello room"})
	Send(t, b1, chat.Envelope{Type: chat.TypeDM, To: "alice", Text: "hello alice"})
	// A marker after both: anything doubled would arrive before it (a tab's stream is ordered).
	Send(t, b1, chat.Envelope{Type: chat.TypeSay, Room: "lobby", Text: "end"})

	for _, c := range tabs {
		got := Msgs(t, c, 10*time.Second, UntilText("end"))
		if n := Count(got, "hello room"); n != 1 && c != a2 {
			t.Errorf("%s got the room message %d times, want 1", c.User(), n)
		}
		if n := Count(got, "hello room"); n != 0 && c == a2 {
			t.Errorf("alice's second tab is not in r1 but got its message %d times", n)
		}
		if n := Count(got, "hello alice"); n != 1 {
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

// ResumeAfterDropNothingLostOrDoubled: a burst of 300 with a dropped connection every 50 arrives
// whole, in order, once.
func ResumeAfterDropNothingLostOrDoubled(t *testing.T, newClient NewClient, start Start) {
	url := start(t)
	alice := connect(t, newClient, url, "alice", transports.Options{})
	bob := connect(t, newClient, url, "bob", transports.Options{})
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
	Send(t, bob, chat.Envelope{Type: chat.TypeSay, Room: "lobby", Text: "end"})
	for _, e := range Msgs(t, alice, 10*time.Second, UntilText("end")) {
		if e.Text != "end" {
			t.Errorf("extra copy of %q after resume", e.Text)
		}
	}
}

// Post does a plain HTTP POST and decodes the answer envelope.
func Post(t *testing.T, url string, body string) chat.Envelope {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var env chat.Envelope
	if len(b) > 0 {
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatalf("POST %s: answer %q: %v", url, b, err)
		}
	}
	return env
}

func OpenSession(t *testing.T, base, user string) string {
	t.Helper()
	w := Post(t, base+"/api/session?user="+user, "")
	if w.Type != chat.TypeWelcome || w.Session == "" {
		t.Fatalf("welcome %+v", w)
	}
	return w.Session
}

// RawGet sends a GET as curl would, on its own TCP connection, and returns the parsed response
// head with the raw connection's reader; the caller reads the body.
func RawGet(t *testing.T, base, path string, header ...string) (*http.Response, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: " + strings.TrimPrefix(base, "http://") + "\r\nUser-Agent: curl/8\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp, c
}

func WantHeader(t *testing.T, resp *http.Response, key, want string) {
	t.Helper()
	if got := resp.Header.Get(key); got != want {
		t.Errorf("%s: %q, want %q", key, got, want)
	}
}
