package stream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// IdleTimeout is how long a client waits for anything (a ping at least) before it takes the
// connection for dead and resumes on a new one. The server pings every chat.Config.Heartbeat
// (25 s by default).
const IdleTimeout = 70 * time.Second

// maxRecv is the most envelopes one Recv returns.
const maxRecv = 256

// Client is a streaming client.
type Client struct {
	*transports.Engine
	d *dialer
}

var _ transports.Client = (*Client)(nil)

// NewClient returns a client; Connect opens the session.
func NewClient(opt transports.Options) *Client {
	d := newDialer(opt)
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
func NewDialer(opt transports.Options) transports.Dialer { return newDialer(opt) }

func newDialer(opt transports.Options) *dialer {
	opt = opt.WithDefaults()
	return &dialer{h: transports.NewHTTPClient(opt), log: opt.Logger}
}

type dialer struct {
	h   *transports.HTTPClient
	log *slog.Logger
}

func (d *dialer) Close() error {
	d.h.CloseIdle()
	return nil
}

// Dial opens a session if there is none (POST /api/session) and then the stream.
func (d *dialer) Dial(ctx context.Context, session string, after uint64) (transports.Conn, chat.Envelope, error) {
	var welcome chat.Envelope
	if session == "" {
		w, err := d.h.OpenSession(ctx)
		if err != nil {
			return nil, chat.Envelope{}, err
		}
		welcome, session = w, w.Session
	}
	// The stream lives on its own context: ctx bounds only the dial.
	sctx, cancel := context.WithCancel(context.Background())
	unhook := context.AfterFunc(ctx, cancel)
	q := url.Values{"session": {session}, "after": {strconv.FormatUint(after, 10)}}
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, d.h.URL(Path, q), nil)
	if err != nil {
		unhook()
		cancel()
		return nil, chat.Envelope{}, err
	}
	req.Header.Set("Accept", ContentType)
	resp, err := d.h.Do(req)
	if !unhook() && err == nil {
		err = ctx.Err()
		resp.Body.Close()
	}
	if err != nil {
		cancel()
		return nil, chat.Envelope{}, err
	}
	c := &conn{h: d.h, log: d.log, session: session, body: resp.Body, cancel: cancel,
		lines: NewLineReader(resp.Body, MaxLine)}
	c.idle = time.AfterFunc(IdleTimeout, cancel)
	return c, welcome, nil
}

type conn struct {
	h       *transports.HTTPClient
	log     *slog.Logger
	session string
	body    io.ReadCloser
	cancel  context.CancelFunc
	idle    *time.Timer
	lines   *LineReader // used by Recv only (one goroutine)
	once    sync.Once
}

// Recv reads the lines that are there: it blocks for one, then takes what else is buffered.
func (c *conn) Recv(ctx context.Context, after uint64) ([]chat.Envelope, error) {
	stop := context.AfterFunc(ctx, c.cancel)
	defer stop()
	var envs []chat.Envelope
	for len(envs) == 0 || (len(envs) < maxRecv && c.lines.Buffered()) {
		line, err := c.lines.Next()
		if err != nil {
			if errors.Is(err, ErrLineTooLong) {
				c.log.Warn("stream: skipped a line over the limit", "limit", MaxLine)
				continue
			}
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return envs, err
		}
		c.idle.Reset(IdleTimeout)
		env, err := Decode(line)
		if err != nil {
			c.log.Warn("stream: skipped a malformed line", "err", err)
			continue
		}
		envs = append(envs, env)
	}
	return envs, nil
}

// Decode decodes one NDJSON line as an envelope.
func Decode(line []byte) (chat.Envelope, error) {
	var env chat.Envelope
	if err := json.Unmarshal(line, &env); err != nil {
		return env, chat.Errorf(chat.CodeBadJSON, "line is not a JSON envelope: %v", err)
	}
	if env.Type == "" {
		return env, chat.Errorf(chat.CodeMissingField, "line has no type")
	}
	return env, nil
}

func (c *conn) Send(ctx context.Context, env chat.Envelope) ([]chat.Envelope, error) {
	return c.h.PostSend(ctx, c.session, env)
}

// SendRaw posts bytes unchecked (transports.RawConn).
func (c *conn) SendRaw(ctx context.Context, b []byte) ([]chat.Envelope, error) {
	return c.h.PostRaw(ctx, c.session, b)
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.idle.Stop()
		c.cancel()
		_ = c.body.Close()
	})
	return nil
}
