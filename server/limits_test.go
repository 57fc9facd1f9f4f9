package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirelab/wirelab/chat"
)

// limitServer is a server on loopback whose test sees every connection it closes and every
// large write it starts.
type limitServer struct {
	*Server
	addr   string
	writes chan int // size of every write of 32 KiB or more, as it starts

	mu       sync.Mutex
	closedAt map[string]time.Time // remote address -> when the server closed the connection
	closed   chan struct{}        // a value after each close
}

func startLimitServer(t *testing.T, cfg Config) *limitServer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ls := &limitServer{Server: srv, addr: ln.Addr().String(), writes: make(chan int, 1000),
		closedAt: map[string]time.Time{}, closed: make(chan struct{}, 1)}
	srv.http.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			ls.mu.Lock()
			ls.closedAt[c.RemoteAddr().String()] = time.Now()
			ls.mu.Unlock()
			select {
			case ls.closed <- struct{}{}:
			default:
			}
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(&smallSendListener{Listener: ln, writes: ls.writes}, nil) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-errc; err != nil {
			t.Error(err)
		}
	})
	return ls
}

// smallSendListener gives every connection a small send buffer, so that an answer the client
// does not read blocks the server's write at once (loopback's buffers would take megabytes).
type smallSendListener struct {
	net.Listener
	writes chan int
}

func (l *smallSendListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	_ = c.(*net.TCPConn).SetWriteBuffer(4096)
	return &watchedConn{Conn: c, writes: l.writes}, nil
}

type watchedConn struct {
	net.Conn
	writes chan int
}

func (c *watchedConn) Write(b []byte) (int, error) {
	if len(b) >= 32<<10 {
		c.writes <- len(b)
	}
	return c.Conn.Write(b)
}

// waitClosed returns how long after start the server closed the connection from local, failing
// the test if it does not within limit.
func (ls *limitServer) waitClosed(t *testing.T, local net.Addr, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	timer := time.NewTimer(time.Until(start.Add(limit)))
	defer timer.Stop()
	for {
		ls.mu.Lock()
		at, ok := ls.closedAt[local.String()]
		ls.mu.Unlock()
		if ok {
			return at.Sub(start)
		}
		select {
		case <-ls.closed:
		case <-timer.C:
			t.Fatalf("the server has not closed the connection from %s within %v", local, limit)
		}
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A keep-alive connection without a new request is closed after IdleTimeout; one that never
// sends a request after HeaderTimeout.
func TestIdleConnectionClosed(t *testing.T) {
	const idle, header = 300 * time.Millisecond, 400 * time.Millisecond
	ls := startLimitServer(t, Config{HTTP: HTTPLimits{IdleTimeout: idle, HeaderTimeout: header}})

	c := dial(t, ls.addr)
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: wirelab\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	start := time.Now()
	took := ls.waitClosed(t, c.LocalAddr(), start, idle+3*time.Second)
	if took < idle*8/10 {
		t.Errorf("an idle keep-alive connection was closed after %v, before IdleTimeout %v", took, idle)
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("the client reads %v on a connection the server closed, want EOF", err)
	}

	start = time.Now()
	silent := dial(t, ls.addr)
	tookSilent := ls.waitClosed(t, silent.LocalAddr(), start, header+3*time.Second)
	if tookSilent < header*8/10 {
		t.Errorf("a connection that sent nothing was closed after %v, before HeaderTimeout %v", tookSilent, header)
	}
	t.Logf("idle keep-alive closed after %v (IdleTimeout %v); silent connection after %v (HeaderTimeout %v)", took, idle, tookSilent, header)
}

// A body that trickles in is cut off BodyTimeout after the headers, and the connection closed.
func TestTricklingBodyClosed(t *testing.T) {
	const body = 400 * time.Millisecond
	ls := startLimitServer(t, Config{HTTP: HTTPLimits{BodyTimeout: body, IdleTimeout: time.Minute}})
	sess, err := ls.Hub.Open(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, ls.addr)
	start := time.Now()
	if _, err := fmt.Fprintf(c, "POST /api/send?session=%s HTTP/1.1\r\nHost: wirelab\r\nContent-Length: 1000\r\n\r\n", sess.ID()); err != nil {
		t.Fatal(err)
	}
	// One byte every 50 ms until the server gives up (or the test ends).
	stop := make(chan struct{})
	var trickler sync.WaitGroup
	trickler.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte{' '}); err != nil {
					return
				}
			}
		}
	})
	defer func() { close(stop); trickler.Wait() }()

	took := ls.waitClosed(t, c.LocalAddr(), start, body+3*time.Second)
	if took < body*8/10 {
		t.Errorf("a trickling body was cut off after %v, before BodyTimeout %v", took, body)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to the cut-off request: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !resp.Close || !strings.Contains(string(b), "timeout") {
		t.Errorf("the cut-off request got %s (close %v): %s", resp.Status, resp.Close, b)
	}
	t.Logf("trickling body cut off after %v (BodyTimeout %v)", took, body)
}

// A request whose headers are over MaxHeaderBytes gets 431.
func TestHeaderTooLarge(t *testing.T) {
	ls := startLimitServer(t, Config{HTTP: HTTPLimits{MaxHeaderBytes: 1 << 10}})
	c := dial(t, ls.addr)
	huge := strings.Repeat("a", 16<<10)
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: wirelab\r\nX-Big: %s\r\n\r\n", huge); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("16 KiB of headers with MaxHeaderBytes 1 KiB: %s, want 431", resp.Status)
	}
}

// Polls that are never read hold at most one capped answer each, and only until WriteTimeout:
// then their connections are closed and the memory goes back. (The probe: 20 unread
// polls of a full outbox took 570 MB and kept it.)
func TestUnreadPollsBounded(t *testing.T) {
	const (
		polls   = 20
		timeout = 2 * time.Second
		// One answer: at most chat.MaxBatchBytes and one envelope (61 KB here), in a buffer
		// grown by append (up to 1.25 times that), and net/http's buffers.
		perPoll = 512 << 10
	)
	ls := startLimitServer(t, Config{HTTP: HTTPLimits{WriteTimeout: timeout}})
	sess, err := ls.Hub.Open(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Repeat("x", 60<<10)
	for i := range 16 { // 1 MB, the outbox's budget
		if _, err := sess.Handle(context.Background(), chat.Envelope{Type: chat.TypeDM, To: "alice", Text: text, CID: chat.StringCID(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc

	conns := make([]net.Conn, polls)
	starts := make([]time.Time, polls)
	for i := range conns {
		c := dial(t, ls.addr)
		_ = c.(*net.TCPConn).SetReadBuffer(4096)
		starts[i] = time.Now()
		if _, err := fmt.Fprintf(c, "GET /api/poll?session=%s&after=0 HTTP/1.1\r\nHost: wirelab\r\n\r\n", sess.ID()); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	// Every poll's answer is being written (and blocks: nobody reads).
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for i := range polls {
		select {
		case n := <-ls.writes:
			if n > chat.MaxBatchBytes+(62<<10)+1024 {
				t.Errorf("a poll answer of %d bytes: over chat.MaxBatchBytes (%d) and one envelope", n, chat.MaxBatchBytes)
			}
		case <-deadline.C:
			t.Fatalf("only %d of %d poll answers started", i, polls)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	held := int64(ms.HeapAlloc) - int64(before)
	t.Logf("%d unread polls hold %d KiB of heap (%d KiB each)", polls, held>>10, held/polls>>10)
	if held > polls*perPoll {
		t.Errorf("%d unread polls hold %d KiB of heap; each may hold at most %d KiB", polls, held>>10, perPoll>>10)
	}
	for i, c := range conns {
		took := ls.waitClosed(t, c.LocalAddr(), starts[i], timeout+5*time.Second)
		if took < timeout*8/10 {
			t.Errorf("poll %d was cut off after %v, before WriteTimeout %v", i, took, timeout)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if after := int64(ms.HeapAlloc) - int64(before); after > polls*perPoll/8 {
		t.Errorf("after the unread polls were closed %d KiB of heap are still held", after>>10)
	}
}

// The session caps answer with their codes and statuses on the HTTP endpoints.
func TestSessionCapsHTTP(t *testing.T) {
	ls := startLimitServer(t, Config{Hub: chat.Config{MaxSessionsPerUser: 2, MaxSessions: 3}})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	open := func(user string) (int, chat.Envelope) {
		t.Helper()
		resp, err := client.Post("http://"+ls.addr+"/api/session?user="+user, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env chat.Envelope
		if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, env
	}
	open("a")
	open("a")
	if st, env := open("a"); st != http.StatusTooManyRequests || env.Code != chat.CodeTooManySessions {
		t.Errorf("a third session of a: %d %+v, want 429 too_many_sessions", st, env)
	}
	open("b")
	if st, env := open("c"); st != http.StatusServiceUnavailable || env.Code != chat.CodeServerFull {
		t.Errorf("a fourth session: %d %+v, want 503 server_full", st, env)
	}
	var ce *chat.Error
	if _, err := ls.Hub.Open(context.Background(), "d"); !errors.As(err, &ce) || ce.Code != chat.CodeServerFull {
		t.Errorf("Open on a full hub: %v", err)
	}
}
