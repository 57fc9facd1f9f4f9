package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// tally is what every subscriber reports to: arrivals by count, so the publisher can stay a
// window ahead of the slowest subscriber, and completion of a target.
type tally struct {
	nsubs  int32
	ring   [ringSize]atomic.Int32 // ring[k%ringSize]: subscribers that have k msgs or more
	notify chan struct{}          // a count became complete

	target atomic.Int64 // msgs every subscriber should reach
	left   atomic.Int32 // subscribers still short of target
	done   chan struct{}
}

const ringSize = 1024

func newTally(n int) *tally {
	return &tally{nsubs: int32(n), notify: make(chan struct{}, 1), done: make(chan struct{}, 1)}
}

// arrived is called by a subscriber whose msg count has become k.
func (t *tally) arrived(k int64) {
	if t.ring[k%ringSize].Add(1) == t.nsubs {
		select {
		case t.notify <- struct{}{}:
		default:
		}
	}
	if k == t.target.Load() && t.left.Add(-1) == 0 {
		select {
		case t.done <- struct{}{}:
		default:
		}
	}
}

var debugSubs func() string

func (t *tally) full(k int64) bool { return t.ring[k%ringSize].Load() == t.nsubs }

// sub is one subscriber's counts. Only its own goroutine writes them until it returns.
type sub struct {
	t        *tally
	session  string
	last     uint64 // newest seq seen
	msgs     int64  // msg envelopes seen
	dups     int64  // envelopes with a seq not above last
	skipped  int64  // seqs jumped over (lost or announced by a gap)
	gaps     int64  // gap errors
	kicks    int64  // connections the server ended (slow_consumer etc.)
	resumes  int64
	lastCode string
	ready    atomic.Bool   // an outbox entry has arrived: the connection is up
	pauseAt  int64         // stop reading once, at this many msgs
	pause    time.Duration // for this long
}

// envelope handles one server envelope (bytes of its JSON object).
func (s *sub) envelope(p []byte) {
	typ, rest := envType(p)
	seq, ok := seqAfterType(rest)
	if ok {
		switch {
		case seq <= s.last:
			s.dups++
			return
		case seq > s.last+1:
			atomic.AddInt64(&s.skipped, int64(seq-s.last-1))
		}
		s.last = seq
		if !s.ready.Load() {
			s.ready.Store(true)
		}
	}
	switch typ {
	case "msg":
		atomic.AddInt64(&s.msgs, 1)
		s.t.arrived(s.msgs)
		if s.msgs == s.pauseAt {
			time.Sleep(s.pause) // a slow subscriber, on purpose
		}
	case "welcome":
		if s.session == "" {
			var w struct{ Session string }
			_ = json.NewDecoder(bytes.NewReader(p)).Decode(&w) // p may run on into the next envelope
			s.session = w.Session
		}
	case "error":
		var e struct{ Code string }
		_ = json.NewDecoder(bytes.NewReader(p)).Decode(&e)
		s.lastCode = e.Code
		if e.Code == "gap" {
			s.gaps++
		} else {
			s.kicks++
		}
	}
}

var typePrefix = []byte(`{"type":"`)

// envType returns the envelope's type and what follows the type's closing quote.
func envType(p []byte) (string, []byte) {
	if !bytes.HasPrefix(p, typePrefix) {
		return "", nil
	}
	p = p[len(typePrefix):]
	i := bytes.IndexByte(p, '"')
	if i < 0 {
		return "", nil
	}
	t := p[:i]
	switch string(t) { // no allocation for a switch on a conversion
	case "msg":
		return "msg", p[i+1:]
	case "ping":
		return "ping", p[i+1:]
	}
	return string(t), p[i+1:]
}

var seqKey = []byte(`,"seq":`)

// seqAfterType parses the seq the server puts right after the type of outbox entries.
func seqAfterType(rest []byte) (uint64, bool) {
	if !bytes.HasPrefix(rest, seqKey) {
		return 0, false
	}
	var n uint64
	i := len(seqKey)
	for ; i < len(rest) && rest[i] >= '0' && rest[i] <= '9'; i++ {
		n = n*10 + uint64(rest[i]-'0')
	}
	return n, i > len(seqKey)
}

// scan hands every envelope in b (a JSON array, NDJSON or SSE data lines) to s.
func (s *sub) scan(b []byte) (pings int) {
	for {
		i := bytes.Index(b, typePrefix)
		if i < 0 {
			return pings
		}
		b = b[i:]
		end := bytes.Index(b[1:], typePrefix) // envelopes hold no nested objects starting so
		p := b
		if end >= 0 {
			p = b[:end+1]
		}
		if bytes.HasPrefix(p, []byte(`{"type":"ping"}`)) {
			pings++
		} else {
			s.envelope(p)
		}
		if end < 0 {
			return pings
		}
		b = b[end+1:]
	}
}

// subscriber is a lean client of one transport.
type subscriber interface {
	// connect opens the session (its welcome is read).
	connect(ctx context.Context) error
	// run reads until ctx ends, resuming after the server ends a connection.
	run(ctx context.Context) error
	counts() *sub
}

type env struct {
	base   string // http://host:port
	host   string // host:port
	http   *http.Client
	user   string
	resume bool // resume after the server ends a connection (flood); otherwise that is an error
}

var errEnded = errors.New("the server ended the connection")

// ---- WebSocket ----

type wsSub struct {
	sub
	e  *env
	c  net.Conn
	br *bufio.Reader
}

func (w *wsSub) counts() *sub { return &w.sub }

func (w *wsSub) connect(ctx context.Context) error {
	q := url.Values{"user": {w.e.user}}
	if w.session != "" {
		q.Set("session", w.session)
		q.Set("after", strconv.FormatUint(w.last, 10))
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", w.e.host)
	if err != nil {
		return err
	}
	req := "GET /ws?" + q.Encode() + " HTTP/1.1\r\nHost: " + w.e.host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return err
	}
	if w.br == nil {
		w.br = bufio.NewReaderSize(c, 32<<10)
	} else {
		w.br.Reset(c)
	}
	status, err := w.br.ReadString('\n')
	if err != nil {
		c.Close()
		return err
	}
	for {
		l, err := w.br.ReadSlice('\n')
		if err != nil {
			c.Close()
			return err
		}
		if len(bytes.TrimSpace(l)) == 0 {
			break
		}
	}
	if len(status) < 12 || status[9:12] != "101" {
		c.Close()
		return fmt.Errorf("websocket handshake: %q", status)
	}
	w.c = c
	// The welcome.
	op, p, err := w.frame()
	if err != nil || op != 1 {
		c.Close()
		return fmt.Errorf("websocket: no welcome (%v)", err)
	}
	w.envelope(p)
	return nil
}

// frame reads one frame; p is valid until the next call.
func (w *wsSub) frame() (byte, []byte, error) {
	h, err := w.br.Peek(2)
	if err != nil {
		return 0, nil, err
	}
	op, n, hl := h[0]&0x0f, int(h[1]&0x7f), 2
	switch n {
	case 126:
		if h, err = w.br.Peek(4); err != nil {
			return 0, nil, err
		}
		n, hl = int(h[2])<<8|int(h[3]), 4
	case 127:
		if h, err = w.br.Peek(10); err != nil {
			return 0, nil, err
		}
		n, hl = int(h[6])<<24|int(h[7])<<16|int(h[8])<<8|int(h[9]), 10
	}
	_, _ = w.br.Discard(hl)
	if n <= w.br.Size() {
		p, err := w.br.Peek(n)
		if err != nil {
			return 0, nil, err
		}
		_, _ = w.br.Discard(n)
		return op, p, nil
	}
	p := make([]byte, n)
	_, err = io.ReadFull(w.br, p)
	return op, p, err
}

var pongFrame = func() []byte {
	payload := []byte(`{"type":"pong"}`)
	f := []byte{0x81, 0x80 | byte(len(payload)), 0, 0, 0, 0} // zero mask key: payload unchanged
	return append(f, payload...)
}()

func (w *wsSub) run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = w.c.SetReadDeadline(time.Unix(1, 0)) })
	defer func() { stop(); w.c.Close() }()
	for {
		op, p, err := w.frame()
		if err == nil && op == 8 {
			err = errEnded
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !w.e.resume {
				return fmt.Errorf("subscriber: %w (last error envelope: %q)", err, w.lastCode)
			}
			w.c.Close()
			atomic.AddInt64(&w.resumes, 1)
			if err := w.connect(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("resume: %w", err)
			}
			stop()
			stop = context.AfterFunc(ctx, func() { _ = w.c.SetReadDeadline(time.Unix(1, 0)) })
			continue
		}
		if op != 1 {
			continue
		}
		if bytes.Equal(p, []byte(`{"type":"ping"}`)) {
			if _, err := w.c.Write(pongFrame); err != nil {
				return err
			}
			continue
		}
		w.envelope(p)
	}
}

// ---- HTTP transports ----

type httpSub struct {
	sub
	e    *env
	path string // /api/poll, /api/longpoll, /api/stream, /api/sse
	poll time.Duration
	wg   sync.WaitGroup // pongs
}

func (h *httpSub) counts() *sub { return &h.sub }

func (h *httpSub) connect(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.e.base+"/api/session?user="+h.e.user, nil)
	resp, err := h.e.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /api/session: %s %s", resp.Status, b)
	}
	h.envelope(bytes.TrimSpace(b))
	if h.session == "" {
		return fmt.Errorf("POST /api/session: no session in %s", b)
	}
	return nil
}

func (h *httpSub) get(ctx context.Context) (*http.Response, error) {
	q := url.Values{"session": {h.session}, "after": {strconv.FormatUint(h.last, 10)}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.e.base+h.path+"?"+q.Encode(), nil)
	resp, err := h.e.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s %s", h.path, resp.Status, b)
	}
	return resp, nil
}

func (h *httpSub) pong(ctx context.Context) {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.e.base+"/api/send?session="+h.session, bytes.NewReader([]byte(`{"type":"pong"}`)))
		if resp, err := h.e.http.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
}

func (h *httpSub) run(ctx context.Context) error {
	defer h.wg.Wait()
	streaming := h.path == "/api/stream" || h.path == "/api/sse"
	buf := make([]byte, 0, 64<<10)
	for {
		resp, err := h.get(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if !streaming {
			buf = buf[:0]
			for {
				if len(buf) == cap(buf) {
					buf = append(buf, 0)[:len(buf)]
				}
				n, err := resp.Body.Read(buf[len(buf):cap(buf)])
				buf = buf[:len(buf)+n]
				if err != nil {
					break
				}
			}
			resp.Body.Close()
			h.scan(buf)
			if ctx.Err() != nil {
				return nil
			}
			if h.poll > 0 {
				select {
				case <-time.After(h.poll):
				case <-ctx.Done():
					return nil
				}
			}
			continue
		}
		br := bufio.NewReaderSize(resp.Body, 64<<10)
		for {
			line, err := br.ReadSlice('\n')
			if len(line) > 0 {
				if h.scan(line) > 0 {
					h.pong(ctx)
				}
			}
			if err != nil {
				break
			}
		}
		resp.Body.Close()
		if ctx.Err() != nil {
			return nil
		}
		if !h.e.resume {
			return fmt.Errorf("subscriber: the stream ended (last error envelope: %q)", h.lastCode)
		}
		atomic.AddInt64(&h.resumes, 1)
	}
}
