package websocket

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// Client is a WebSocket client.
type Client struct {
	*transports.Engine
}

var _ transports.Client = (*Client)(nil)

// NewClient returns a client; Connect opens the session.
func NewClient(opt transports.Options) *Client {
	return &Client{Engine: transports.NewEngine(Name, NewDialer(opt), opt)}
}

// NewDialer returns the transport's dialer (the auto transport switches between dialers).
func NewDialer(opt transports.Options) transports.Dialer {
	opt = opt.WithDefaults()
	return &dialer{opt: opt, ws: &websocket.Dialer{
		NetDialContext:   opt.Dial,
		TLSClientConfig:  opt.TLS, // for a wss:// (https://) server URL
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
	}}
}

type dialer struct {
	opt transports.Options
	ws  *websocket.Dialer
}

// WSURL turns the server's base URL (http://host:port) into the /ws address with a query.
func WSURL(base string, q url.Values) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", errors.New("websocket: server URL " + strconv.Quote(base) + " is not http://host:port")
	}
	u.Path = Path
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func (d *dialer) Dial(ctx context.Context, session string, after uint64) (transports.Conn, chat.Envelope, error) {
	q := url.Values{"user": {d.opt.User}}
	if session != "" {
		q.Set("session", session)
		q.Set("after", strconv.FormatUint(after, 10))
	}
	addr, err := WSURL(d.opt.URL, q)
	if err != nil {
		return nil, chat.Envelope{}, err
	}
	var h http.Header
	if d.opt.Token != "" {
		h = http.Header{"Authorization": {"Bearer " + d.opt.Token}}
	}
	ws, resp, err := d.ws.DialContext(ctx, addr, h)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, chat.Envelope{}, transports.DecodeError(resp)
		}
		return nil, chat.Envelope{}, chat.Errorf(chat.CodeUnavailable, "websocket dial %s: %v", d.opt.URL, err)
	}
	c := &conn{ws: ws}
	envs, err := c.Recv(ctx, after)
	if err != nil {
		_ = ws.Close()
		return nil, chat.Envelope{}, err
	}
	if len(envs) != 1 || envs[0].Type != chat.TypeWelcome {
		_ = ws.Close()
		if len(envs) == 1 {
			if err := envs[0].AsError(); err != nil {
				return nil, chat.Envelope{}, err
			}
		}
		return nil, chat.Envelope{}, chat.Errorf(chat.CodeUnavailable, "websocket: the server's first frame was not a welcome")
	}
	return c, envs[0], nil
}

type conn struct {
	ws  *websocket.Conn
	wmu sync.Mutex // gorilla allows one writer at a time
}

// Recv reads one frame: one envelope.
func (c *conn) Recv(ctx context.Context, _ uint64) ([]chat.Envelope, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.ws.NetConn().SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	_, msg, err := c.ws.ReadMessage()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	var env chat.Envelope
	if err := json.Unmarshal(msg, &env); err != nil {
		return nil, chat.Errorf(chat.CodeBadJSON, "websocket: the server sent a frame that is not an envelope: %v", err)
	}
	return []chat.Envelope{env}, nil
}

var _ transports.RawConn = (*conn)(nil)

// Send writes one envelope in one text frame; the answer comes downstream.
func (c *conn) Send(ctx context.Context, env chat.Envelope) ([]chat.Envelope, error) {
	return nil, c.writeFrame(ctx, chat.Marshal(&env))
}

// SendRaw writes b as one text frame, unchecked (tests send malformed envelopes with it).
func (c *conn) SendRaw(ctx context.Context, b []byte) ([]chat.Envelope, error) {
	return nil, c.writeFrame(ctx, b)
}

func (c *conn) writeFrame(ctx context.Context, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	dl := time.Now().Add(WriteTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = c.ws.SetWriteDeadline(dl)
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return chat.Errorf(chat.CodeUnavailable, "websocket write: %v", err)
	}
	return nil
}

func (c *conn) Close() error { return c.ws.Close() }
