package transports

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/wirelab/wirelab/chat"
)

// PollDialer is the client side the polling transports share: it opens the session (POST
// /api/session) and gives Conns whose Recv asks GET Path?session=S&after=N for what follows;
// commands go by POST /api/send. Interval 0 polls again at once (long polling: the server holds
// the request); otherwise each poll after the first waits Interval (short polling).
type PollDialer struct {
	H        *HTTPClient
	Path     string
	Interval time.Duration
	// Timeout bounds one poll request (0: none); long polling's must exceed the server's hold.
	Timeout time.Duration
	// UntilNews makes Recv poll again while answers are empty (long polling).
	UntilNews bool
}

// Close drops idle keep-alive connections.
func (d *PollDialer) Close() error {
	d.H.CloseIdle()
	return nil
}

// Dial opens a session if there is none; polling needs no connection of its own.
func (d *PollDialer) Dial(ctx context.Context, session string, after uint64) (Conn, chat.Envelope, error) {
	var welcome chat.Envelope
	if session == "" {
		w, err := d.H.OpenSession(ctx)
		if err != nil {
			return nil, chat.Envelope{}, err
		}
		welcome, session = w, w.Session
	}
	cctx, cancel := context.WithCancel(context.Background())
	return &pollConn{d: d, session: session, ctx: cctx, cancel: cancel}, welcome, nil
}

type pollConn struct {
	d       *PollDialer
	session string
	ctx     context.Context // ends at Close
	cancel  context.CancelFunc
	mu      sync.Mutex
	polled  bool
}

func (c *pollConn) Recv(ctx context.Context, after uint64) ([]chat.Envelope, error) {
	for {
		envs, err := c.poll(ctx, after)
		if err != nil || len(envs) > 0 || !c.d.UntilNews {
			return envs, err
		}
	}
}

// poll waits the interval (not before the first poll) and asks once.
func (c *pollConn) poll(ctx context.Context, after uint64) ([]chat.Envelope, error) {
	c.mu.Lock()
	first := !c.polled
	c.polled = true
	c.mu.Unlock()
	if !first && c.d.Interval > 0 {
		t := time.NewTimer(c.d.Interval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-c.ctx.Done():
			t.Stop()
			return nil, io.ErrClosedPipe
		}
	}
	rctx, stop := MergeCancel(ctx, c.ctx)
	defer stop()
	if c.d.Timeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(rctx, c.d.Timeout)
		defer cancel()
	}
	q := url.Values{"session": {c.session}, "after": {strconv.FormatUint(after, 10)}}
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, c.d.H.URL(c.d.Path, q), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.d.H.Do(req)
	if err != nil {
		if c.ctx.Err() != nil {
			return nil, io.ErrClosedPipe
		}
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	return DecodeArray(b)
}

func (c *pollConn) Send(ctx context.Context, env chat.Envelope) ([]chat.Envelope, error) {
	return c.d.H.PostSend(ctx, c.session, env)
}

// SendRaw posts bytes unchecked (RawConn).
func (c *pollConn) SendRaw(ctx context.Context, b []byte) ([]chat.Envelope, error) {
	return c.d.H.PostRaw(ctx, c.session, b)
}

func (c *pollConn) Close() error {
	c.cancel()
	return nil
}
