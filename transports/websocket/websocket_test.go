package websocket_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gws "github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/websocket"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 10 * time.Second

type lab struct {
	srv  *server.Server
	base string // http://host:port
}

func start(t *testing.T, cfg server.Config) *lab {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = discard()
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, pc, err := server.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc.Close()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln, nil) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &lab{srv: srv, base: "http://" + ln.Addr().String()}
}

func (l *lab) client(t *testing.T, user string, mod ...func(*transports.Options)) *websocket.Client {
	t.Helper()
	opt := transports.Options{URL: l.base, User: user, RetryInterval: 500 * time.Millisecond}
	for _, f := range mod {
		f(&opt)
	}
	c := websocket.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c transports.Client, env chat.Envelope) chat.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	r, err := c.Send(ctx, env)
	if err != nil {
		t.Fatalf("%s sends %s: %v", c.User(), env.Type, err)
	}
	return r
}

// until reads c's messages until one satisfies stop, and returns the msg envelopes read.
func until(t *testing.T, c transports.Client, stop func(chat.Envelope) bool) []chat.Envelope {
	t.Helper()
	var got []chat.Envelope
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case d, ok := <-c.Messages():
			if !ok {
				t.Fatalf("%s: messages closed", c.User())
			}
			if d.Env.Type == chat.TypeMsg {
				got = append(got, d.Env)
			}
			if stop(d.Env) {
				return got
			}
		case <-timer.C:
			t.Fatalf("%s: timed out; got %d msgs", c.User(), len(got))
		}
	}
}

func text(s string) func(chat.Envelope) bool {
	return func(e chat.Envelope) bool { return e.Type == chat.TypeMsg && e.Text == s }
}

func count(envs []chat.Envelope, s string) int {
	n := 0
	for _, e := range envs {
		if e.Text == s {
			n++
		}
	}
	return n
}

func TestRoomsAndDMsExactlyOnce(t *testing.T) {
	l := start(t, server.Config{})
	a1, a2, a3 := l.client(t, "alice"), l.client(t, "alice"), l.client(t, "alice")
	b1, b2 := l.client(t, "bob"), l.client(t, "bob")
	for _, c := range []transports.Client{a1, a2, b1} {
		send(t, c, chat.Envelope{Type: chat.TypeJoin, Room: "r1"})
	}
	send(t, a1, chat.Envelope{Type: chat.TypeSay, Room: "r1", Text: "in r1"})
	send(t, b2, chat.Envelope{Type: chat.TypeDM, To: "alice", Text: "dm to alice"})
	send(t, a1, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: "end"})

	for _, tc := range []struct {
		c          transports.Client
		inR1, inDM int
	}{{a1, 1, 1}, {a2, 1, 1}, {a3, 0, 1}, {b1, 1, 1}, {b2, 0, 1}} {
		got := until(t, tc.c, text("end"))
		if n := count(got, "in r1"); n != tc.inR1 {
			t.Errorf("%s/%s: room message %d times, want %d", tc.c.User(), tc.c.Session()[:4], n, tc.inR1)
		}
		if n := count(got, "dm to alice"); n != tc.inDM {
			t.Errorf("%s: dm %d times, want %d", tc.c.User(), n, tc.inDM)
		}
	}
}

func TestResumeAfterDrop(t *testing.T) {
	l := start(t, server.Config{})
	pub, sub := l.client(t, "pub"), l.client(t, "sub")
	const n = 200
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		for i := 0; i < n; i++ {
			if _, err := pub.Send(ctx, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: fmt.Sprint(i)}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var got []chat.Envelope
	drops := 0
	for len(got) < n {
		env := until(t, sub, func(chat.Envelope) bool { return true })
		for _, e := range env {
			if e.From == "pub" {
				got = append(got, e)
			}
		}
		if len(got)%40 == 20 && drops < 5 {
			sub.Drop()
			drops++
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i, e := range got {
		if e.Text != fmt.Sprint(i) {
			t.Fatalf("message %d is %q: lost, doubled or out of order", i, e.Text)
		}
	}
	if drops == 0 {
		t.Fatal("no drop happened")
	}
}

// raw is a bare WebSocket client for protocol-level tests.
type raw struct {
	t  *testing.T
	ws *gws.Conn
}

func (l *lab) raw(t *testing.T, q url.Values, h http.Header) (*raw, *http.Response, error) {
	addr, _ := websocket.WSURL(l.base, q)
	d := gws.Dialer{HandshakeTimeout: wait}
	ws, resp, err := d.Dial(addr, h)
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { ws.Close() })
	return &raw{t: t, ws: ws}, resp, nil
}

func (r *raw) write(s string) {
	r.t.Helper()
	if err := r.ws.WriteMessage(gws.TextMessage, []byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

// next reads envelopes until one of type typ (skipping presence and msgs).
func (r *raw) next(typ string) (chat.Envelope, error) {
	_ = r.ws.SetReadDeadline(time.Now().Add(wait))
	for {
		_, b, err := r.ws.ReadMessage()
		if err != nil {
			return chat.Envelope{}, err
		}
		var e chat.Envelope
		if err := json.Unmarshal(b, &e); err != nil {
			r.t.Fatalf("frame %q is not an envelope: %v", b, err)
		}
		if e.Type == typ {
			return e, nil
		}
	}
}

func (r *raw) must(typ string) chat.Envelope {
	r.t.Helper()
	e, err := r.next(typ)
	if err != nil {
		r.t.Fatalf("waiting for %s: %v", typ, err)
	}
	return e
}

func TestWelcomeFirstAndResume(t *testing.T) {
	l := start(t, server.Config{})
	r, _, err := l.raw(t, url.Values{"user": {"ann"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := r.ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var w chat.Envelope
	_ = json.Unmarshal(b, &w)
	if w.Type != chat.TypeWelcome || w.User != "ann" || len(w.Session) != 32 {
		t.Fatalf("first frame %s, want a welcome", b)
	}
	r.write(`{"type":"say","room":"lobby","text":"one","cid":1}`)
	ok := r.must(chat.TypeOK)
	r.ws.Close()

	r2, _, err := l.raw(t, url.Values{"user": {"ann"}, "session": {w.Session}, "after": {"0"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w2 := r2.must(chat.TypeWelcome); w2.Session != w.Session {
		t.Fatalf("resume welcome names session %q", w2.Session)
	}
	if m := r2.must(chat.TypeMsg); m.Text != "one" {
		t.Fatalf("resumed msg %+v", m)
	}
	if ok2 := r2.must(chat.TypeOK); ok2.Seq != ok.Seq {
		t.Fatalf("resumed ok seq %d, first time %d", ok2.Seq, ok.Seq)
	}
	// Another user cannot resume ann's session.
	_, resp, err := l.raw(t, url.Values{"user": {"eve"}, "session": {w.Session}}, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("eve resuming ann's session: %v %v", err, resp)
	}
}

func TestMalformedFramesKeepConnection(t *testing.T) {
	l := start(t, server.Config{})
	r, _, err := l.raw(t, url.Values{"user": {"mal"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.must(chat.TypeWelcome)
	for _, tc := range []struct{ frame, code, cid string }{
		{`not json`, chat.CodeBadJSON, ``},
		{`{"type":"bogus","cid":"x"}`, chat.CodeUnknownType, `"x"`},
		{`{"type":"say","room":"lobby","cid":7}`, chat.CodeMissingField, `7`},
		{`{"type":"say","room":"no such room!","text":"t","cid":"y"}`, chat.CodeBadRoom, `"y"`},
		{`{"type":"say","room":"elsewhere","text":"t","cid":"z"}`, chat.CodeNotMember, `"z"`},
	} {
		r.write(tc.frame)
		e := r.must(chat.TypeError)
		if e.Code != tc.code || string(e.CID) != tc.cid {
			t.Errorf("%s: got code %s cid %s, want %s %s", tc.frame, e.Code, e.CID, tc.code, tc.cid)
		}
	}
	r.write(`{"type":"join","room":"r2","cid":"j"}`)
	ok := r.must(chat.TypeOK)
	if ok.CID != `"j"` {
		t.Fatalf("ok %+v", ok)
	}
	// The same cid again: its ok comes again, and nothing is done twice (no second member
	// list for r2 comes before it).
	r.write(`{"type":"join","room":"r2","cid":"j"}`)
	_ = r.ws.SetReadDeadline(time.Now().Add(wait))
	for {
		_, b, err := r.ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var e chat.Envelope
		_ = json.Unmarshal(b, &e)
		if e.Type == chat.TypePresence && e.Room == "r2" {
			t.Fatalf("the retried join was done again: %s", b)
		}
		if e.Type == chat.TypeOK {
			if e.CID != ok.CID || e.Room != "r2" {
				t.Fatalf("retried join answered %s", b)
			}
			break
		}
	}
}

func TestOversize(t *testing.T) {
	lim := chat.Limits{MaxEnvelope: 1024}
	l := start(t, server.Config{Hub: chat.Config{Limits: lim}})
	r, _, err := l.raw(t, url.Values{"user": {"big"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.must(chat.TypeWelcome)
	env := func(n int) string {
		head := `{"type":"say","room":"lobby","cid":"c","text":"`
		return head + strings.Repeat("a", n-len(head)-2) + `"}`
	}
	r.write(env(lim.MaxEnvelope))
	if ok := r.must(chat.TypeOK); ok.CID != `"c"` {
		t.Fatalf("at the limit: %+v", ok)
	}
	r.write(strings.Replace(env(lim.MaxEnvelope+1), `"c"`, `"d"`, 1))
	if e := r.must(chat.TypeError); e.Code != chat.CodeTooLarge || e.CID != `"d"` {
		t.Fatalf("one over: %+v", e)
	}
	r.write(`{"type":"join","room":"still","cid":"e"}`)
	r.must(chat.TypeOK)
	r.write(strings.Repeat("x", lim.FrameLimit()+1))
	_, err = r.next(chat.TypeOK)
	var ce *gws.CloseError
	if !errors.As(err, &ce) || ce.Code != gws.CloseMessageTooBig {
		t.Fatalf("a frame over the frame limit: %v, want close 1009", err)
	}
}

func TestOrigin(t *testing.T) {
	l := start(t, server.Config{Transport: transports.ServerOptions{AllowOrigins: []string{"https://ok.example"}}})
	host := strings.TrimPrefix(l.base, "http://")
	_, port, _ := net.SplitHostPort(host)
	for _, tc := range []struct {
		origin string
		host   string // the Host header, if not the server's address
		ok     bool
	}{
		{"", "", true}, {"http://" + host, "", true}, {"http://localhost:" + port, "localhost:" + port, true},
		{"https://ok.example", "", true}, {"https://evil.example", "", false},
		// DNS rebinding: evil.example resolves to 127.0.0.1, so the page and its request both
		// name it; the server does not take Host's word for its own name.
		{"http://evil.example:" + port, "evil.example:" + port, false},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		if tc.host != "" {
			h.Set("Host", tc.host)
		}
		r, resp, err := l.raw(t, url.Values{"user": {"o"}}, h)
		if tc.ok {
			if err != nil {
				t.Errorf("origin %q refused: %v", tc.origin, err)
				continue
			}
			r.must(chat.TypeWelcome)
			continue
		}
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q: %v %v, want 403", tc.origin, err, resp)
			continue
		}
		if e := transports.DecodeError(resp); !strings.Contains(e.Error(), "--allow-origin") {
			t.Errorf("origin refusal says %q", e)
		}
	}
	// A refused origin is repeated clipped, however long it was.
	huge := "https://" + strings.Repeat("o", 32<<10) + ".example"
	_, resp, err := l.raw(t, url.Values{"user": {"o"}}, http.Header{"Origin": {huge}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a 32 KB origin: %v %v, want 403", err, resp)
	}
	if e := transports.DecodeError(resp); len(e.Error()) > 3*chat.ClipLen+200 || !strings.Contains(e.Error(), "...") {
		t.Errorf("a 32 KB origin is repeated as %d bytes: %.200q", len(e.Error()), e)
	}
}

func TestAuth(t *testing.T) {
	signer := chat.NewSigner("s3cret")
	l := start(t, server.Config{Transport: transports.ServerOptions{Signer: signer}})
	c := websocket.NewClient(transports.Options{URL: l.base, User: "al"})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var ce *chat.Error
	if err := c.Connect(ctx); !errors.As(err, &ce) || ce.Code != chat.CodeUnauthorized {
		t.Fatalf("without a token: %v", err)
	}
	tok := signer.Token("al", time.Hour, time.Now())
	l.client(t, "al", func(o *transports.Options) { o.Token = tok }) // Authorization: Bearer
	r, _, err := l.raw(t, url.Values{"user": {"al"}, "token": {tok}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.must(chat.TypeWelcome)
}

func TestHeartbeat(t *testing.T) {
	l := start(t, server.Config{Hub: chat.Config{Heartbeat: 40 * time.Millisecond, HeartbeatTimeout: 80 * time.Millisecond}})
	// A client that answers pings stays: it sees several pings on one connection.
	live := l.client(t, "live")
	// A client that does not is cut off with heartbeat_timeout.
	r, _, err := l.raw(t, url.Values{"user": {"mute"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.must(chat.TypePing)
	e := r.must(chat.TypeError)
	if e.Code != chat.CodeHeartbeat {
		t.Fatalf("got %+v, want heartbeat_timeout", e)
	}
	if _, err := r.next(chat.TypeMsg); !gws.IsCloseError(err, gws.CloseNormalClosure) {
		t.Fatalf("after heartbeat_timeout: %v, want a close frame", err)
	}
	// The Go client with NoPong is cut off too (and, without reconnect, ends).
	np := l.client(t, "nopong", func(o *transports.Options) { o.NoPong = true; o.NoReconnect = true })
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for open := true; open; {
		select {
		case _, open = <-np.Messages():
		case <-timer.C:
			t.Fatal("NoPong client was not cut off")
		}
	}
	// live still works on its first connection.
	send(t, live, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: "still here"})
}

func TestShutdownTellsClients(t *testing.T) {
	srv, err := server.New(server.Config{Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln, nil) }()
	l := &lab{srv: srv, base: "http://" + ln.Addr().String()}
	r, _, err := l.raw(t, url.Values{"user": {"sd"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.must(chat.TypeWelcome)
	go func() {
		// The client answers the server's close, as browsers do.
		for {
			if _, _, err := r.ws.NextReader(); err != nil {
				return
			}
		}
	}()
	_ = r
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	r2, _, err := l.raw(t, url.Values{"user": {"sd2"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r2.must(chat.TypeWelcome)
	got := make(chan chat.Envelope, 1)
	closed := make(chan error, 1)
	go func() {
		e, _ := r2.next(chat.TypeError)
		got <- e
		_, err := r2.next(chat.TypeMsg)
		closed <- err
	}()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if e := <-got; e.Code != chat.CodeShutdown {
		t.Fatalf("got %+v, want a shutdown error", e)
	}
	if err := <-closed; !gws.IsCloseError(err, gws.CloseGoingAway) {
		t.Fatalf("after shutdown: %v, want close 1001", err)
	}
}

// TestSlowConsumerResumes: a client that stops reading while big messages pile up is cut off
// (slow_consumer) once its socket buffers are full; the Go client resumes with after=N and
// gets every message once, in order.
func TestSlowConsumerResumes(t *testing.T) {
	// An outbox that holds every message (1,024 of 60 KB: 64 MiB), so the resume gets them all.
	l := start(t, server.Config{Hub: chat.Config{SendQueue: 16, Outbox: 1024, OutboxBytes: 64 << 20}})
	pub := l.client(t, "pub")
	var log logBuffer
	sub := l.client(t, "sub", func(o *transports.Options) {
		o.Buffer = 1
		o.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	// More than both sockets' buffers can hold: the sender's may grow to tcp_wmem's maximum;
	// the receiver's stays near tcp_rmem's default while the client reads nothing.
	text := strings.Repeat("z", 60000)
	n := max(300, 3*(tcpBuf("tcp_wmem", 2)+tcpBuf("tcp_rmem", 1))/2/len(text))
	for i := 0; i < n; i++ {
		send(t, pub, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: fmt.Sprint(i, text)})
	}
	got := 0
	var firstSeq uint64
	until(t, sub, func(e chat.Envelope) bool {
		if e.Type != chat.TypeMsg || e.From != "pub" {
			return false
		}
		if want := fmt.Sprint(got, text); e.Text != want {
			t.Fatalf("message %d is %.10q...: lost, doubled or out of order", got, e.Text)
		}
		if got == 0 {
			firstSeq = e.Seq
		}
		if e.Seq != firstSeq+uint64(got) {
			t.Fatalf("message %d has seq %d, want %d", got, e.Seq, firstSeq+uint64(got))
		}
		got++
		return got == n
	})
	if !strings.Contains(log.String(), "code=slow_consumer") {
		t.Fatalf("the server never cut the client off as a slow consumer; client log:\n%s", log.String())
	}
}

// tcpBuf is field i (0 min, 1 default, 2 max) of /proc/sys/net/ipv4/NAME (0 if unknown).
func tcpBuf(name string, i int) int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/" + name)
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return 0
	}
	v, _ := strconv.Atoi(f[i])
	return v
}

type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestPlainGETIsRefused(t *testing.T) {
	l := start(t, server.Config{})
	resp, err := http.Get(l.base + "/ws?user=plain")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ce *chat.Error
	if err := transports.DecodeError(resp); resp.StatusCode != http.StatusBadRequest || !errors.As(err, &ce) || ce.Code != chat.CodeMissingField {
		t.Fatalf("GET /ws without a handshake: %s, %v; want 400 missing_field", resp.Status, err)
	}
	if l.srv.Hub.Sessions() != 0 {
		t.Fatalf("a refused request opened a session")
	}
}
