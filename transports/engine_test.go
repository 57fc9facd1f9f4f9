package transports

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wirelab/wirelab/chat"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeConn is an in-memory Conn: the test pushes what the server sends on down; answer decides
// what Send returns (request-reply upstream) or pushes downstream itself.
type fakeConn struct {
	down   chan []chat.Envelope
	closed chan struct{}
	once   sync.Once
	answer func(env chat.Envelope) ([]chat.Envelope, error)

	mu     sync.Mutex
	sent   []chat.Envelope
	sentCh chan struct{} // a token per Send
}

func newFakeConn(answer func(chat.Envelope) ([]chat.Envelope, error)) *fakeConn {
	return &fakeConn{down: make(chan []chat.Envelope, 16), closed: make(chan struct{}), answer: answer, sentCh: make(chan struct{}, 64)}
}

func (c *fakeConn) Recv(ctx context.Context, after uint64) ([]chat.Envelope, error) {
	select {
	case envs := <-c.down:
		return envs, nil
	case <-c.closed:
		return nil, io.ErrClosedPipe
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *fakeConn) Send(ctx context.Context, env chat.Envelope) ([]chat.Envelope, error) {
	c.mu.Lock()
	c.sent = append(c.sent, env)
	c.mu.Unlock()
	select {
	case c.sentCh <- struct{}{}:
	default:
	}
	if c.answer == nil {
		return nil, nil
	}
	return c.answer(env)
}

func (c *fakeConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// fakeDialer hands out conns from a channel and records the after of every dial.
type fakeDialer struct {
	conns  chan *fakeConn
	dialed chan struct{} // a token per Dial
	mu     sync.Mutex
	dials  []uint64
	err    error // returned when set, instead of a conn
}

func (d *fakeDialer) Dial(ctx context.Context, session string, after uint64) (Conn, chat.Envelope, error) {
	d.mu.Lock()
	d.dials = append(d.dials, after)
	err := d.err
	d.mu.Unlock()
	select {
	case d.dialed <- struct{}{}:
	default:
	}
	if err != nil {
		return nil, chat.Envelope{}, err
	}
	select {
	case c := <-d.conns:
		var w chat.Envelope
		if session == "" {
			w = chat.Envelope{Type: chat.TypeWelcome, Session: "s1", User: "u"}
		}
		return c, w, nil
	case <-ctx.Done():
		return nil, chat.Envelope{}, ctx.Err()
	}
}

func (d *fakeDialer) lastAfter() []uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]uint64(nil), d.dials...)
}

func startEngine(t *testing.T, opt Options, c *fakeConn) (*Engine, *fakeDialer) {
	t.Helper()
	d := &fakeDialer{conns: make(chan *fakeConn, 4), dialed: make(chan struct{}, 64)}
	d.conns <- c
	opt.User = "u"
	if opt.RetryInterval == 0 {
		opt.RetryInterval = time.Hour // a test that needs a retry says so
	}
	e := NewEngine("fake", d, opt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e, d
}

func next(t *testing.T, e *Engine) chat.Envelope {
	t.Helper()
	select {
	case d, ok := <-e.Messages():
		if !ok {
			t.Fatal("Messages closed")
		}
		return d.Env
	case <-time.After(5 * time.Second):
		t.Fatal("nothing on Messages")
	}
	return chat.Envelope{}
}

// ok answers like the server: one ok per cid, remembered, with a seq from the session.
type okServer struct {
	mu   sync.Mutex
	seq  uint64
	seen map[chat.CID]chat.Envelope
}

func (s *okServer) answer(env chat.Envelope) chat.Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[chat.CID]chat.Envelope{}
	}
	if r, ok := s.seen[env.CID]; ok {
		return r
	}
	s.seq++
	r := chat.Envelope{Type: chat.TypeOK, CID: env.CID, ID: "id-" + string(env.CID), Seq: s.seq}
	s.seen[env.CID] = r
	return r
}

func TestEngineSameCIDAgain(t *testing.T) {
	for _, mode := range []string{"reply", "downstream"} {
		t.Run(mode, func(t *testing.T) {
			var srv okServer
			var c *fakeConn
			c = newFakeConn(func(env chat.Envelope) ([]chat.Envelope, error) {
				r := srv.answer(env)
				if mode == "reply" {
					return []chat.Envelope{r}, nil
				}
				c.down <- []chat.Envelope{r}
				return nil, nil
			})
			e, _ := startEngine(t, Options{}, c)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			say := chat.Envelope{Type: chat.TypeSay, Room: "r", Text: "x", CID: chat.StringCID("same")}
			first, err := e.Send(ctx, say)
			if err != nil {
				t.Fatal(err)
			}
			// The server answers the same ok, with a seq the engine has seen: Send must still
			// return it.
			again, err := e.Send(ctx, say)
			if err != nil {
				t.Fatalf("the same cid sent again: %v", err)
			}
			if again.ID != first.ID || again.Seq != first.Seq {
				t.Errorf("got %+v then %+v", first, again)
			}
			// And at once, from several goroutines.
			var wg sync.WaitGroup
			say.CID = chat.StringCID("concurrent")
			for range 5 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if r, err := e.Send(ctx, say); err != nil || r.ID != `id-"concurrent"` {
						t.Errorf("concurrent Send: %+v, %v", r, err)
					}
				}()
			}
			wg.Wait()
		})
	}
}

func TestEngineDeliversUnmatched(t *testing.T) {
	c := newFakeConn(nil)
	e, _ := startEngine(t, Options{}, c)
	c.down <- []chat.Envelope{
		{Type: chat.TypeError, Code: chat.CodeReplaced}, // ends a connection: not news
		{Type: chat.TypeError, Code: chat.CodeBadJSON, Error: "not json"},
		{Type: chat.TypeOK, CID: `"raw"`, ID: "m1", Seq: 1},
		{Type: chat.TypeError, CID: `"raw2"`, Code: chat.CodeUnknownType},
		{Type: chat.TypeMsg, ID: "m2", Seq: 2},
		{Type: chat.TypeMsg, ID: "m2", Seq: 2}, // a duplicate
		{Type: chat.TypeMsg, ID: "m3", Seq: 3},
	}
	want := []string{"error bad_json", "ok m1", "error unknown_type", "msg m2", "msg m3"}
	for _, w := range want {
		env := next(t, e)
		got := env.Type + " " + env.Code + env.ID
		if got != w {
			t.Errorf("got %q, want %q", got, w)
		}
	}
	if e.LastSeq() != 3 {
		t.Errorf("LastSeq = %d", e.LastSeq())
	}
}

func TestEngineResumeDedupes(t *testing.T) {
	c1 := newFakeConn(nil)
	e, d := startEngine(t, Options{}, c1)
	c1.down <- []chat.Envelope{{Type: chat.TypeMsg, ID: "a", Seq: 1}, {Type: chat.TypeMsg, ID: "c", Seq: 3}}
	next(t, e)
	next(t, e)
	c2 := newFakeConn(nil)
	d.conns <- c2
	e.Drop()
	// The new connection starts after 1 (3 is held above a hole) and resends 2 and 3.
	c2.down <- []chat.Envelope{{Type: chat.TypeMsg, ID: "b", Seq: 2}, {Type: chat.TypeMsg, ID: "c", Seq: 3}, {Type: chat.TypeMsg, ID: "d", Seq: 4}}
	for _, want := range []string{"b", "d"} {
		if env := next(t, e); env.ID != want {
			t.Errorf("got %s, want %s", env.ID, want)
		}
	}
	if a := d.lastAfter(); len(a) != 2 || a[1] != 1 {
		t.Errorf("dials with after %v, want [0 1]", a)
	}
	// A gap moves the mark past what is gone.
	c2.down <- []chat.Envelope{{Type: chat.TypeError, Code: chat.CodeGap, First: 10}, {Type: chat.TypeMsg, ID: "j", Seq: 10}}
	if env := next(t, e); env.Code != chat.CodeGap {
		t.Errorf("the gap was not delivered: %+v", env)
	}
	next(t, e)
	if e.LastSeq() != 10 {
		t.Errorf("LastSeq after the gap = %d, want 10", e.LastSeq())
	}
}

// TestEngineCloseWhileReconnecting: Close while the receive loop waits to reconnect closes
// Messages once (it used to close it twice and panic).
func TestEngineCloseWhileReconnecting(t *testing.T) {
	c := newFakeConn(nil)
	e, d := startEngine(t, Options{}, c)
	d.mu.Lock()
	d.err = chat.Errorf(chat.CodeUnavailable, "down")
	d.mu.Unlock()
	<-d.dialed // the first dial
	e.Drop()
	select { // the engine tries to reconnect
	case <-d.dialed:
	case <-time.After(5 * time.Second):
		t.Fatal("no reconnect")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-e.Messages(); ok {
		t.Error("Messages is open after Close")
	}
}

func TestEngineCloseWithoutConnect(t *testing.T) {
	e := NewEngine("fake", &fakeDialer{dialed: make(chan struct{}, 1)}, Options{})
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-e.Messages(); ok {
		t.Error("Messages is open")
	}
	if _, err := e.Send(context.Background(), chat.Envelope{Type: chat.TypeSay}); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close: %v", err)
	}
}

func TestEngineNoReconnect(t *testing.T) {
	c := newFakeConn(nil)
	e, _ := startEngine(t, Options{NoReconnect: true}, c)
	c.Close()
	select {
	case _, ok := <-e.Messages():
		if ok {
			t.Fatal("a message from a closed connection")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Messages not closed after the connection ended with NoReconnect")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.Send(ctx, chat.Envelope{Type: chat.TypeSay}); !errors.Is(err, ErrSessionGone) {
		t.Errorf("Send after the connection ended: %v, want ErrSessionGone", err)
	}
}

func TestEngineTerminal(t *testing.T) {
	c := newFakeConn(func(env chat.Envelope) ([]chat.Envelope, error) {
		return nil, chat.Errorf(chat.CodeUnknownSession, "gone")
	})
	e, _ := startEngine(t, Options{}, c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.Send(ctx, chat.Envelope{Type: chat.TypeSay}); !errors.Is(err, ErrSessionGone) {
		t.Errorf("Send on a forgotten session: %v, want ErrSessionGone", err)
	}
}

func TestEngineRetries(t *testing.T) {
	var srv okServer
	n := 0
	var mu sync.Mutex
	c := newFakeConn(func(env chat.Envelope) ([]chat.Envelope, error) {
		mu.Lock()
		defer mu.Unlock()
		if n++; n < 3 {
			return nil, nil // lost: no answer
		}
		return []chat.Envelope{srv.answer(env)}, nil
	})
	e, _ := startEngine(t, Options{RetryInterval: 5 * time.Millisecond}, c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := e.Send(ctx, chat.Envelope{Type: chat.TypeSay, Room: "r", Text: "x"})
	if err != nil || r.Type != chat.TypeOK {
		t.Fatalf("Send: %+v, %v", r, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sent) != 3 || c.sent[0].CID != c.sent[2].CID || c.sent[0].CID == "" {
		t.Errorf("sent %d times with cids %v; want 3 sends of one cid", len(c.sent), c.sent)
	}
}

func TestEngineSendRaw(t *testing.T) {
	c := newFakeConn(nil)
	e, _ := startEngine(t, Options{}, c)
	if err := e.SendRaw(context.Background(), []byte("x")); !errors.Is(err, ErrNoRaw) {
		t.Errorf("SendRaw on a Conn without RawConn: %v", err)
	}
}

func TestSeqSet(t *testing.T) {
	var s seqSet
	for _, tc := range []struct {
		add   uint64
		fresh bool
		mark  uint64
	}{
		{1, true, 1}, {1, false, 1}, {3, true, 1}, {3, false, 1}, {4, true, 1}, {2, true, 4}, {4, false, 4}, {5, true, 5},
	} {
		if got := s.add(tc.add); got != tc.fresh || s.mark != tc.mark {
			t.Fatalf("add(%d) = %v, mark %d; want %v, %d", tc.add, got, s.mark, tc.fresh, tc.mark)
		}
	}
	s.add(9)
	s.add(12)
	s.skipTo(10)
	if s.mark != 10 || len(s.above) != 1 {
		t.Errorf("skipTo(10): mark %d, above %v", s.mark, s.above)
	}
	s.add(11)
	if s.mark != 12 || len(s.above) != 0 {
		t.Errorf("after 11: mark %d, above %v", s.mark, s.above)
	}
	s.skipTo(3) // backwards: nothing
	if s.mark != 12 {
		t.Errorf("skipTo backwards moved the mark to %d", s.mark)
	}
}

// TestEngineResendsAfterReconnect: a command waiting for its answer is sent again on the new
// connection at once, not after RetryInterval.
func TestEngineResendsAfterReconnect(t *testing.T) {
	var srv okServer
	c1 := newFakeConn(nil) // swallows what it is sent
	e, d := startEngine(t, Options{}, c1)
	c2 := newFakeConn(func(env chat.Envelope) ([]chat.Envelope, error) { return []chat.Envelope{srv.answer(env)}, nil })
	d.conns <- c2
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		_, err := e.Send(ctx, chat.Envelope{Type: chat.TypeSay, Room: "r", Text: "x"})
		got <- err
	}()
	<-c1.sentCh // sent once, unanswered
	e.Drop()
	if err := <-got; err != nil {
		t.Fatalf("Send across a reconnect (RetryInterval is an hour): %v", err)
	}
}
