package transports

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/wirelab/wirelab/chat"
)

// Framing reads a streaming answer item by item: NDJSON lines (stream) or events (sse).
type Framing interface {
	// Next returns the next item's envelope JSON. ok=false means the item is not an envelope
	// (an SSE event of another type) and is skipped. An error wrapping ErrItemTooLong is not
	// fatal: the item is skipped and reading goes on.
	Next() (data []byte, ok bool, err error)
	// Buffered reports whether another item may be read without blocking.
	Buffered() bool
}

// ErrItemTooLong marks a Framing error for an item over the size limit: skipped, not fatal.
var ErrItemTooLong = errors.New("item over the size limit")

// StreamIdleTimeout is how long a streaming client waits for anything (a ping at least) before
// it takes the connection for dead and resumes on a new one. The server pings every
// chat.Config.Heartbeat (25 s by default).
const StreamIdleTimeout = 70 * time.Second

// StreamFraming is what one streaming HTTP transport (stream, sse) adds to the shared client:
// its endpoint, how a request says where to resume, and how the answer is framed.
type StreamFraming struct {
	Name string // for logs: "stream", "sse"
	Path string // the GET endpoint
	// Prepare sets the request's resume point (a query parameter or Last-Event-ID) and headers.
	Prepare func(h http.Header, q url.Values, after uint64)
	// NewFraming reads the answer body.
	NewFraming func(body io.Reader) Framing
}

// StreamDialer is the client side the streaming HTTP transports share: it opens the session
// (POST /api/session), then one long GET whose answer it reads with the transport's Framing;
// commands go by POST /api/send.
type StreamDialer struct {
	StreamFraming
	H   *HTTPClient
	Log *slog.Logger
	// IdleTimeout: with nothing read for this long (not even a ping) the connection is taken
	// for dead and the engine resumes on a new one.
	IdleTimeout time.Duration
}

// NewStreamDialer returns the dialer of a streaming transport framed by f, with an HTTP client
// on opt's dial function and StreamIdleTimeout.
func NewStreamDialer(opt Options, f StreamFraming) *StreamDialer {
	opt = opt.WithDefaults()
	return &StreamDialer{StreamFraming: f, H: NewHTTPClient(opt), Log: opt.Logger, IdleTimeout: StreamIdleTimeout}
}

// maxRecv is the most envelopes one streaming Recv returns.
const maxRecv = 256

// Close drops idle keep-alive connections.
func (d *StreamDialer) Close() error {
	d.H.CloseIdle()
	return nil
}

// Dial opens a session if there is none and then the stream.
func (d *StreamDialer) Dial(ctx context.Context, session string, after uint64) (Conn, chat.Envelope, error) {
	var welcome chat.Envelope
	if session == "" {
		w, err := d.H.OpenSession(ctx)
		if err != nil {
			return nil, chat.Envelope{}, err
		}
		welcome, session = w, w.Session
	}
	// The stream lives on its own context: ctx bounds only the dial.
	sctx, cancel := context.WithCancel(context.Background())
	unhook := context.AfterFunc(ctx, cancel)
	q, hdr := url.Values{"session": {session}}, http.Header{}
	d.Prepare(hdr, q, after)
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, d.H.URL(d.Path, q), nil)
	if err == nil {
		for k, v := range hdr {
			req.Header[k] = v
		}
	}
	if err != nil {
		unhook()
		cancel()
		return nil, chat.Envelope{}, err
	}
	resp, err := d.H.Do(req)
	if !unhook() && err == nil {
		err = ctx.Err()
		resp.Body.Close()
	}
	if err != nil {
		cancel()
		return nil, chat.Envelope{}, err
	}
	c := &streamConn{d: d, session: session, body: resp.Body, cancel: cancel, items: d.NewFraming(resp.Body)}
	c.idle = time.AfterFunc(d.IdleTimeout, cancel)
	return c, welcome, nil
}

type streamConn struct {
	d       *StreamDialer
	session string
	body    io.ReadCloser
	cancel  context.CancelFunc
	idle    *time.Timer
	items   Framing // used by Recv only (one goroutine)
	once    sync.Once
}

// Recv reads the items that are there: it blocks for one, then takes what else is buffered.
func (c *streamConn) Recv(ctx context.Context, after uint64) ([]chat.Envelope, error) {
	stop := context.AfterFunc(ctx, c.cancel)
	defer stop()
	var envs []chat.Envelope
	for len(envs) == 0 || (len(envs) < maxRecv && c.items.Buffered()) {
		data, ok, err := c.items.Next()
		if err != nil {
			if errors.Is(err, ErrItemTooLong) {
				c.d.Log.Warn(c.d.Name+": skipped an item over the limit", "err", err)
				continue
			}
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return envs, err
		}
		c.idle.Reset(c.d.IdleTimeout)
		if !ok {
			continue
		}
		env, err := DecodeItem(data)
		if err != nil {
			c.d.Log.Warn(c.d.Name+": skipped a malformed item", "err", err)
			continue
		}
		envs = append(envs, env)
	}
	return envs, nil
}

// DecodeItem decodes one streamed item (an NDJSON line, an SSE event's data) as an envelope.
func DecodeItem(data []byte) (chat.Envelope, error) {
	var env chat.Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return env, chat.Errorf(chat.CodeBadJSON, "item is not a JSON envelope: %v", err)
	}
	if env.Type == "" {
		return env, chat.Errorf(chat.CodeMissingField, "item has no type")
	}
	return env, nil
}

func (c *streamConn) Send(ctx context.Context, env chat.Envelope) ([]chat.Envelope, error) {
	return c.d.H.PostSend(ctx, c.session, env)
}

// SendRaw posts bytes unchecked (RawConn).
func (c *streamConn) SendRaw(ctx context.Context, b []byte) ([]chat.Envelope, error) {
	return c.d.H.PostRaw(ctx, c.session, b)
}

func (c *streamConn) Close() error {
	c.once.Do(func() {
		c.idle.Stop()
		c.cancel()
		_ = c.body.Close()
	})
	return nil
}
