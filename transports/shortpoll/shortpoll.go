// Package shortpoll is the short-polling transport: the client asks GET /api/poll?session=S&after=N
// every interval and gets a JSON array of whatever is new (often nothing); commands go by
// POST /api/send. It is the simplest transport and the most expensive one on the wire.
package shortpoll

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// Name is the transport's name.
const Name = transports.ShortPoll

// MaxBatch is the most envelopes one poll answer carries.
const MaxBatch = 512

// Handler serves GET /api/poll.
func Handler(srv *transports.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.Requests.Add(1)
		sess, err := srv.SessionOf(r)
		if err != nil {
			transports.WriteError(w, "", err)
			return
		}
		after, err := transports.After(r, "")
		if err != nil {
			transports.WriteError(w, "", err)
			return
		}
		direct, entries, err := sess.Read(after, MaxBatch)
		if err != nil {
			transports.WriteError(w, "", err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(transports.AppendArray(make([]byte, 0, 512), direct, entries))
	})
}

// Client is a short-polling client.
type Client struct {
	*transports.Engine
	d *dialer
}

var _ transports.Client = (*Client)(nil)

// NewClient returns a client; Connect opens the session.
func NewClient(opt transports.Options) *Client {
	d := &dialer{h: transports.NewHTTPClient(opt)}
	return &Client{Engine: transports.NewEngine(Name, d, opt), d: d}
}

// Close ends the client and closes its idle HTTP connections.
func (c *Client) Close() error {
	err := c.Engine.Close()
	_ = c.d.Close()
	return err
}

// NewDialer returns the transport's dialer (the auto transport switches between dialers). It is
// an io.Closer: Close drops its idle keep-alive connections.
func NewDialer(opt transports.Options) transports.Dialer {
	return &dialer{h: transports.NewHTTPClient(opt)}
}

type dialer struct {
	h *transports.HTTPClient
}

func (d *dialer) Close() error {
	d.h.CloseIdle()
	return nil
}

func (d *dialer) Dial(ctx context.Context, session string, after uint64) (transports.Conn, chat.Envelope, error) {
	var welcome chat.Envelope
	if session == "" {
		w, err := d.h.OpenSession(ctx)
		if err != nil {
			return nil, chat.Envelope{}, err
		}
		welcome, session = w, w.Session
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &conn{h: d.h, session: session, ctx: ctx, cancel: cancel}, welcome, nil
}

type conn struct {
	h       *transports.HTTPClient
	session string
	ctx     context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex
	polled  bool
}

// Recv waits the poll interval (not before the first poll) and polls once.
func (c *conn) Recv(ctx context.Context, after uint64) ([]chat.Envelope, error) {
	c.mu.Lock()
	first := !c.polled
	c.polled = true
	c.mu.Unlock()
	if !first {
		t := time.NewTimer(c.h.Opt.PollInterval)
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
	rctx, stop := transports.MergeCancel(ctx, c.ctx)
	defer stop()
	q := url.Values{"session": {c.session}, "after": {strconv.FormatUint(after, 10)}}
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, c.h.URL("/api/poll", q), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.h.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return transports.DecodeArray(b)
}

func (c *conn) Send(ctx context.Context, env chat.Envelope) ([]chat.Envelope, error) {
	return c.h.PostSend(ctx, c.session, env)
}

// SendRaw posts bytes unchecked (transports.RawConn).
func (c *conn) SendRaw(ctx context.Context, b []byte) ([]chat.Envelope, error) {
	return c.h.PostRaw(ctx, c.session, b)
}

func (c *conn) Close() error {
	c.cancel()
	return nil
}
