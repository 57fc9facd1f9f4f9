package centrifugo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/internal/needtest"
	"github.com/wirelab/wirelab/internal/testio"
	"github.com/wirelab/wirelab/transports"
)

// TestMain fails the run when a goroutine outlives the tests. centrifuge-go keeps one goroutine
// per command until its ReadTimeout (5 s) passes, answered or not, so those get that long to end.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(8 * time.Second)
		for {
			err := goleak.Find() // retries by itself for a while
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
				code = 1
				break
			}
		}
	}
	os.Exit(code)
}

// install returns the pinned Centrifugo from the shared cache, building it on first use
// (about two minutes; skipped in -short mode when it is not there yet).
func install(t *testing.T) Install {
	t.Helper()
	dir, err := DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if in, ok := Lookup(dir); ok {
		return in
	}
	if testing.Short() {
		t.Skipf("skipping in -short mode: Centrifugo v%s is not in %s yet (a first install builds it for about 2 minutes)", Version, dir)
	}
	_, err = exec.LookPath("go")
	needtest.Need(t, "go", err, "install Go 1.26: https://go.dev/dl/")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	in, err := Ensure(ctx, dir, testio.LogWriter(t))
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// server starts Centrifugo on a free loopback port; the test's cleanup kills it.
type server struct {
	cfg *Config
	url string
	cmd *exec.Cmd
}

func startServer(t *testing.T) *server {
	t.Helper()
	in := install(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd, cfg, err := in.Command("127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "centrifugo.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("centrifugo's log:\n%s", tailLines(string(b), 30))
		}
		if err := cfg.Remove(); err != nil {
			t.Error(err)
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := WaitReady(ctx, addr, (&net.Dialer{}).DialContext); err != nil {
		t.Fatal(err)
	}
	return &server{cfg: cfg, url: "http://" + addr, cmd: cmd}
}

func tailLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// inbox keeps what one client received.
type inbox struct {
	mu      sync.Mutex
	got     []chat.Envelope
	changed chan struct{}
}

// client connects a client of transport for user; the test's cleanup closes it and waits
// for its Messages to close.
func (s *server) client(t *testing.T, transport, user string, opt transports.Options) (transports.Client, *inbox) {
	t.Helper()
	opt.URL, opt.User, opt.Token = s.url, user, s.cfg.Token(user)
	c, err := NewClient(transport, opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ib := &inbox{changed: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for d := range c.Messages() {
			ib.mu.Lock()
			ib.got = append(ib.got, d.Env)
			ib.mu.Unlock()
			select {
			case ib.changed <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		<-done
	})
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("%s connect: %v", user, err)
	}
	return c, ib
}

// waitFor waits until ok holds for what the inbox has, or fails the test after d.
func (ib *inbox) waitFor(t *testing.T, what string, d time.Duration, ok func([]chat.Envelope) bool) []chat.Envelope {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		ib.mu.Lock()
		got := append([]chat.Envelope(nil), ib.got...)
		ib.mu.Unlock()
		if ok(got) {
			return got
		}
		select {
		case <-ib.changed:
		case <-deadline.C:
			t.Fatalf("waited %v for %s; have %d envelopes: %v", d, what, len(got), summary(got))
		}
	}
}

func summary(envs []chat.Envelope) string {
	var b strings.Builder
	for i, e := range envs {
		if i == 20 {
			fmt.Fprintf(&b, " ...")
			break
		}
		fmt.Fprintf(&b, " %s(%s%s<-%s %q %s)", e.Type, e.Room, e.To, e.From, e.Text, e.Code)
	}
	return b.String()
}

func count(envs []chat.Envelope, text string) int {
	n := 0
	for _, e := range envs {
		if e.Type == chat.TypeMsg && e.Text == text {
			n++
		}
	}
	return n
}

func has(text string) func([]chat.Envelope) bool {
	return func(envs []chat.Envelope) bool { return count(envs, text) > 0 }
}

func send(t *testing.T, c transports.Client, env chat.Envelope) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.Send(ctx, env)
	if err != nil {
		t.Fatalf("%s %s: %v", c.User(), env.Type, err)
	}
	if r.Type != chat.TypeOK || r.CID != env.CID {
		t.Fatalf("%s %s: answer %+v, want ok with cid %q", c.User(), env.Type, r, env.CID)
	}
}

// TestChat: two users with two tabs each in a room; a say reaches every tab once with its
// exact text, a dm every tab of the recipient and of the sender; who is unsupported; a say
// into a room not joined is not_member.
func TestChat(t *testing.T) {
	s := startServer(t)
	for _, tr := range Transports {
		t.Run(strings.TrimPrefix(tr, "centrifugo/"), func(t *testing.T) {
			type tab struct {
				c  transports.Client
				ib *inbox
			}
			var tabs []tab
			for _, u := range []string{"alice", "bob"} {
				for range 2 {
					c, ib := s.client(t, tr, u, transports.Options{})
					if c.Session() == "" {
						t.Fatalf("%s: no session after Connect", u)
					}
					send(t, c, chat.Envelope{Type: chat.TypeJoin, Room: "r1", CID: chat.StringCID("j")})
					tabs = append(tabs, tab{c, ib})
				}
			}
			say := "m1. say over " + tr + " \"quoted\" ünïcode"
			send(t, tabs[0].c, chat.Envelope{Type: chat.TypeSay, Room: "r1", Text: say, CID: chat.StringCID("s1")})
			dm := "m2. dm from bob's second tab"
			send(t, tabs[3].c, chat.Envelope{Type: chat.TypeDM, To: "alice", Text: dm, CID: chat.StringCID("d1")})
			end := "m3. the end"
			send(t, tabs[1].c, chat.Envelope{Type: chat.TypeSay, Room: "r1", Text: end, CID: chat.StringCID("s2")})
			for i, tb := range tabs {
				got := tb.ib.waitFor(t, fmt.Sprintf("tab %d: the say, the dm and the end", i), 10*time.Second, func(e []chat.Envelope) bool {
					return count(e, say) > 0 && count(e, dm) > 0 && count(e, end) > 0
				})
				for _, e := range got {
					if e.Type != chat.TypeMsg {
						t.Errorf("tab %d: unexpected %+v", i, e)
						continue
					}
					switch e.Text {
					case say:
						if e.Room != "r1" || e.From != "alice" {
							t.Errorf("tab %d: say arrived as %+v", i, e)
						}
					case dm:
						if e.To != "alice" || e.From != "bob" || e.Room != "" {
							t.Errorf("tab %d: dm arrived as %+v", i, e)
						}
					}
				}
				for _, text := range []string{say, dm, end} {
					if n := count(got, text); n != 1 {
						t.Errorf("tab %d got %q %d times, want once", i, text, n)
					}
				}
			}

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var ce *chat.Error
			if _, err := tabs[0].c.Send(ctx, chat.Envelope{Type: chat.TypeWho, Room: "r1"}); !errors.As(err, &ce) || ce.Code != "unsupported" {
				t.Errorf("who: %v, want a chat error with code unsupported", err)
			}
			if _, err := tabs[0].c.Send(ctx, chat.Envelope{Type: chat.TypeSay, Room: "elsewhere", Text: "x", CID: chat.StringCID("x")}); !errors.As(err, &ce) || ce.Code != chat.CodeNotMember {
				t.Errorf("say into a room not joined: %v, want a chat error with code %s", err, chat.CodeNotMember)
			}
			// Leave, then a say into the room no longer reaches the tab that left.
			send(t, tabs[2].c, chat.Envelope{Type: chat.TypeLeave, Room: "r1", CID: chat.StringCID("l")})
			after := "m4. after bob's first tab left"
			send(t, tabs[0].c, chat.Envelope{Type: chat.TypeSay, Room: "r1", Text: after, CID: chat.StringCID("s3")})
			tabs[3].ib.waitFor(t, "the say after the leave, on bob's other tab", 10*time.Second, has(after))
			// The lobby: every session is in it without a join.
			lobby := "m5. in the lobby"
			send(t, tabs[2].c, chat.Envelope{Type: chat.TypeSay, Room: Lobby, Text: lobby, CID: chat.StringCID("s4")})
			for i, tb := range tabs {
				tb.ib.waitFor(t, fmt.Sprintf("tab %d: the lobby say", i), 10*time.Second, has(lobby))
			}
			if n := count(tabs[2].ib.got, after); n != 0 {
				t.Errorf("bob's first tab left r1 but got the say after it %d times", n)
			}
		})
	}
}

// TestDropRecovers: a receiver's connection is cut during a burst of says; Centrifugo's
// recovery brings back every publication it missed, each once, in order.
func TestDropRecovers(t *testing.T) {
	s := startServer(t)
	for _, tr := range Transports {
		t.Run(strings.TrimPrefix(tr, "centrifugo/"), func(t *testing.T) {
			rx, ib := s.client(t, tr, "carol", transports.Options{})
			tx, _ := s.client(t, tr, "dave", transports.Options{})
			send(t, rx, chat.Envelope{Type: chat.TypeJoin, Room: "burst", CID: chat.StringCID("j")})
			send(t, tx, chat.Envelope{Type: chat.TypeJoin, Room: "burst", CID: chat.StringCID("j")})
			before := rx.Session()
			const n = 300
			texts := make([]string, n)
			for i := range n {
				texts[i] = fmt.Sprintf("m%d. burst", i)
				send(t, tx, chat.Envelope{Type: chat.TypeSay, Room: "burst", Text: texts[i], CID: chat.StringCID(strconv.Itoa(i))})
				if i == n/3 {
					rx.Drop()
				}
			}
			got := ib.waitFor(t, "every say of the burst", 30*time.Second, has(texts[n-1]))
			var msgs []string
			for _, e := range got {
				if e.Type == chat.TypeError {
					t.Errorf("an error envelope: %+v", e)
				}
				if e.Type == chat.TypeMsg && e.Room == "burst" {
					msgs = append(msgs, e.Text)
				}
			}
			if len(msgs) != n {
				t.Fatalf("got %d says, want %d (each once)", len(msgs), n)
			}
			for i, m := range msgs {
				if m != texts[i] {
					t.Fatalf("say %d is %q, want %q (in order)", i, m, texts[i])
				}
			}
			if rx.Session() == before {
				t.Errorf("the session is still %q after Drop: the connection was not cut", before)
			}
		})
	}
}

// TestNoReconnect: with NoReconnect a broken connection ends the client: Messages closes.
func TestNoReconnect(t *testing.T) {
	s := startServer(t)
	for _, tr := range Transports {
		t.Run(strings.TrimPrefix(tr, "centrifugo/"), func(t *testing.T) {
			opt := transports.Options{URL: s.url, User: "erin", Token: s.cfg.Token("erin"), NoReconnect: true}
			c, err := NewClient(tr, opt)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			c.Drop()
			for {
				select {
				case _, ok := <-c.Messages():
					if !ok {
						return
					}
				case <-ctx.Done():
					t.Fatal("Messages still open 10 s after Drop with NoReconnect")
				}
			}
		})
	}
}

// TestBadToken: a token signed with another secret is refused at Connect.
func TestBadToken(t *testing.T) {
	s := startServer(t)
	for _, tr := range Transports {
		t.Run(strings.TrimPrefix(tr, "centrifugo/"), func(t *testing.T) {
			c, err := NewClient(tr, transports.Options{URL: s.url, User: "mallory", Token: signHS256([]byte("not the secret"), "mallory"), NoReconnect: true})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.Connect(ctx); err == nil {
				t.Fatal("Connect with a bad token succeeded")
			}
			c2, _ := NewClient(tr, transports.Options{URL: s.url, User: "x"})
			defer c2.Close()
			if err := c2.Connect(ctx); !errors.Is(err, ErrNoToken) {
				t.Errorf("Connect without a token: %v, want ErrNoToken", err)
			}
		})
	}
}

// TestEnsure: a second Ensure is instant and the binary is the pinned version; the token the
// config signs is one Centrifugo accepts.
func TestEnsure(t *testing.T) {
	in := install(t)
	dir, _ := DefaultCacheDir()
	start := time.Now()
	again, err := Ensure(context.Background(), dir, testio.LogWriter(t))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a second Ensure took %v", d)
	}
	if again != in || in.Version != Version || in.Name != "centrifugo" {
		t.Errorf("Ensure: %+v, then %+v", in, again)
	}
	v, err := binaryVersion(context.Background(), in.Binary)
	if err != nil || v != Version {
		t.Errorf("the binary says v%s (%v), want v%s", v, err, Version)
	}
	cfg, err := WriteConfig("127.0.0.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Remove()
	out, err := exec.Command(in.Binary, "checkconfig", "--config", cfg.File()).CombinedOutput()
	if err != nil {
		t.Errorf("centrifugo checkconfig: %v: %s", err, out)
	}
	out, err = exec.Command(in.Binary, "checktoken", "--config", cfg.File(), cfg.Token("u7")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "valid token for user u7") {
		t.Errorf("centrifugo checktoken: %v: %s", err, out)
	}
}

// TestEnsureNoGo: without a go command and without an install, Ensure says what is missing.
func TestEnsureNoGo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Ensure(context.Background(), t.TempDir(), nil)
	if !errors.Is(err, ErrNoGo) || !strings.Contains(err.Error(), "go.dev/dl") {
		t.Fatalf("Ensure without go: %v", err)
	}
}

// TestWaitReadyTimesOut: nothing listening, WaitReady gives up with ctx and says so.
func TestWaitReadyTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = WaitReady(ctx, addr, (&net.Dialer{}).DialContext)
	if err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("WaitReady on a closed port: %v", err)
	}
}
