package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// Transport names, as scenario files spell them (issue 14: PEER/TRANSPORT).
const (
	LongPoll  = "socketio/longpoll"
	WebSocket = "socketio/websocket"
)

// Path is where the peer serves Socket.IO.
const Path = "/socket.io/"

// Reconnection delays: socket.io-client's defaults (reconnectionDelay 1 s, doubling up to
// reconnectionDelayMax 5 s), without its ±50% randomization so that runs repeat.
const (
	reconnectDelay    = time.Second
	reconnectDelayMax = 5 * time.Second
	// upgradeTimeout bounds the upgrade probe (the server's own upgradeTimeout is 10 s).
	upgradeTimeout = 10 * time.Second
	// maxBody bounds one polling answer read from the server.
	maxBody = 16 << 20
)

// Client is a Socket.IO client (Socket.IO v5 on Engine.IO v4) that speaks the peer's chat events
// (server.js) and offers them as a transports.Client. See the package comment.
type Client struct {
	name    string
	upgrade bool // start on polling and upgrade to WebSocket, as the browser client does
	opt     transports.Options
	htr     *http.Transport
	httpc   *http.Client
	wsd     *websocket.Dialer

	msgs   chan transports.Delivery
	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the reconnect loop (which owns every connection's goroutines)
	ackN   atomic.Int64   // the next ack id (socket.io-client counts per socket from 0)

	mu         sync.Mutex
	sid        string // the Socket.IO socket id: Session
	pid        string // the recovery session id from the server's CONNECT
	offset     string // the last broadcast's offset received
	conn       *engineConn
	ready      chan struct{} // closed while conn is connected; replaced when it breaks
	gone       error         // the session ended for good
	started    bool          // the reconnect loop runs (it closes msgs)
	closed     bool
	reconnects int
	recoveries int
	replayed   int             // msg events a recovery brought
	recovered  bool            // the last CONNECT was a recovery
	rooms      map[string]bool // joined with Send, for rejoin
	lost       chan struct{}   // closed when conn breaks; replaced (tests wait on it)
}

var _ transports.Client = (*Client)(nil)

func newClient(name string, upgrade bool, opt transports.Options) *Client {
	opt = opt.WithDefaults()
	htr := &http.Transport{
		DialContext:         opt.Dial,
		TLSClientConfig:     opt.TLS,
		MaxIdleConnsPerHost: 2, // the browser's pair: the held GET and the POSTs
		DisableCompression:  true,
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{
		name: name, upgrade: upgrade, opt: opt,
		htr: htr, httpc: &http.Client{Transport: htr},
		wsd: &websocket.Dialer{
			NetDialContext:   opt.Dial,
			TLSClientConfig:  opt.TLS,
			HandshakeTimeout: upgradeTimeout,
			ReadBufferSize:   4096,
			WriteBufferSize:  4096,
		},
		msgs: make(chan transports.Delivery, opt.Buffer),
		ctx:  ctx, cancel: cancel, ready: make(chan struct{}), lost: make(chan struct{}),
		rooms: map[string]bool{},
	}
}

// Name is the transport's name (socketio/longpoll or socketio/websocket).
func (c *Client) Name() string { return c.name }

// User is the client's user.
func (c *Client) User() string { return c.opt.User }

// Session is the Socket.IO socket id (empty before Connect). A recovered connection keeps it;
// one that was not recovered gets a new one.
func (c *Client) Session() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sid
}

// Messages delivers the msg events (room messages and DMs).
func (c *Client) Messages() <-chan transports.Delivery { return c.msgs }

// Reconnects is how many times the client has connected again after a broken connection.
func (c *Client) Reconnects() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reconnects
}

// Recoveries is how many of those reconnections the server recovered (socket.recovered: the
// same pid came back and the missed broadcasts with it).
func (c *Client) Recoveries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recoveries
}

// Replayed is how many msg events recoveries brought: the broadcasts the server kept for the
// socket while it was away, sent ahead of its CONNECT.
func (c *Client) Replayed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replayed
}

// Transport is the Engine.IO transport the connection uses now: "polling", "websocket", or ""
// while there is none.
func (c *Client) Transport() string {
	c.mu.Lock()
	e := c.conn
	c.mu.Unlock()
	if e == nil {
		return ""
	}
	return e.transport()
}

// Connect opens the Engine.IO session and connects the Socket.IO socket; it returns once the
// server's CONNECT has arrived.
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return transports.ErrClosed
	}
	if c.started {
		c.mu.Unlock()
		return errors.New("socket.io: Connect called twice")
	}
	c.mu.Unlock()
	e, err := c.open(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		e.close(transports.ErrClosed)
		e.wait()
		return transports.ErrClosed
	}
	c.conn = e
	close(c.ready)
	c.started = true
	c.mu.Unlock()
	c.wg.Add(1)
	go c.run(e)
	return nil
}

// Drop ends the current connection so that the server sees its transport end at once and
// keeps the socket's state for recovery: the WebSocket is closed; on polling the engine sends
// Engine.IO's close packet first (see engineConn.drop for why not a cut alone). The client
// reconnects after socket.io-client's delay. A failure the server does not see is a cut of the
// network (TestSilentCut).
func (c *Client) Drop() {
	c.mu.Lock()
	e := c.conn
	c.mu.Unlock()
	if e != nil {
		e.drop()
		c.htr.CloseIdleConnections()
	}
}

var errDropped = errors.New("socket.io: connection dropped (Drop)")

// Close ends the client abruptly (as a closed tab) and waits for its goroutines; Messages is
// closed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	e, started := c.conn, c.started
	c.mu.Unlock()
	c.cancel()
	if e != nil {
		e.close(transports.ErrClosed)
	}
	c.wg.Wait()
	if !started { // else the reconnect loop closed it
		close(c.msgs)
	}
	c.htr.CloseIdleConnections()
	return nil
}

// run waits for the connection to break and connects again, until Close or the end of the
// session. It owns every connection's goroutines and closes Messages when it returns.
func (c *Client) run(e *engineConn) {
	defer c.wg.Done()
	defer close(c.msgs)
	for {
		<-e.done
		e.wait()
		c.mu.Lock()
		c.conn = nil
		c.ready = make(chan struct{})
		close(c.lost)
		c.lost = make(chan struct{})
		gone := c.gone
		c.mu.Unlock()
		if c.ctx.Err() != nil || gone != nil {
			return
		}
		if c.opt.NoReconnect {
			c.setGone(fmt.Errorf("the connection ended and Options.NoReconnect is set: %w", e.err))
			return
		}
		c.opt.Logger.Debug("connection lost, reconnecting", "transport", c.name, "err", e.err)
		delay := reconnectDelay
		for {
			t := time.NewTimer(delay)
			select {
			case <-c.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			delay = min(2*delay, reconnectDelayMax)
			var err error
			e, err = c.open(c.ctx)
			if err == nil {
				break
			}
			if c.ctx.Err() != nil {
				return
			}
			var ce *connectError
			if errors.As(err, &ce) { // the server refused the socket: trying again will not help
				c.setGone(err)
				return
			}
			c.opt.Logger.Debug("reconnect failed", "transport", c.name, "err", err)
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			e.close(transports.ErrClosed)
			e.wait()
			return
		}
		c.conn = e
		close(c.ready)
		c.mu.Unlock()
	}
}

func (c *Client) setGone(err error) {
	c.mu.Lock()
	if c.gone == nil {
		c.gone = err
	}
	c.mu.Unlock()
}

// connectError is the server's CONNECT_ERROR (a middleware refused the socket).
type connectError struct{ msg string }

func (e *connectError) Error() string {
	return "socket.io: the server refused the connection: " + e.msg
}

// open starts an Engine.IO session and connects the socket on it, with the recovery auth when
// the client has a session to recover.
func (c *Client) open(ctx context.Context) (*engineConn, error) {
	e, err := c.dialEngine(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	auth := map[string]string{"user": c.opt.User}
	if c.pid != "" { // as socket.io-client: {pid, offset} merged into the auth
		auth["pid"] = c.pid
		if c.offset != "" {
			auth["offset"] = c.offset
		}
	}
	c.mu.Unlock()
	b, _ := json.Marshal(auth) // a map of strings always encodes
	if err := e.write(encodeSIO(sioConnect, noAck, b)); err != nil {
		e.close(err)
		e.wait()
		return nil, err
	}
	select {
	case err = <-e.connected:
	case <-e.done:
		err = e.err
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil {
		c.mu.Lock()
		again, recovered := c.started, c.recovered
		c.mu.Unlock()
		if again && !recovered {
			err = c.rejoin(ctx, e)
		}
	}
	if err != nil {
		e.close(err)
		e.wait()
		return nil, err
	}
	return e, nil
}

// onConnect handles the server's CONNECT {sid, pid}: it runs on e's reader, before the events
// that arrived ahead of it (a recovery sends the missed ones first) are delivered.
func (c *Client) onConnect(data json.RawMessage, early int) {
	var v struct {
		SID string `json:"sid"`
		PID string `json:"pid"`
	}
	_ = json.Unmarshal(data, &v) // checked by the parser: an object
	c.mu.Lock()
	again := c.started
	recovered := v.PID != "" && v.PID == c.pid
	c.sid, c.pid = v.SID, v.PID
	c.recovered = recovered
	if again {
		c.reconnects++
		if recovered {
			c.recoveries++
			c.replayed += early
		}
	}
	c.mu.Unlock()
	switch {
	case !again:
	case recovered:
		c.opt.Logger.Debug("socket.io recovered the connection state", "transport", c.name, "sid", v.SID, "missed", early)
	default:
		c.opt.Logger.Info("socket.io did not recover the connection state: broadcasts sent while disconnected are lost; joining the rooms again",
			"transport", c.name, "user", c.opt.User, "sid", v.SID)
	}
}

// deliver hands a msg event to Messages, after noting its offset (the last argument when
// recovery is on, as socket.io-client does).
func (c *Client) deliver(args []json.RawMessage, at time.Time) {
	if len(args) == 0 {
		return
	}
	c.mu.Lock()
	if c.pid != "" && len(args) > 1 {
		var off string
		if json.Unmarshal(args[len(args)-1], &off) == nil {
			c.offset = off
		}
	}
	c.mu.Unlock()
	var m struct {
		Room string `json:"room"`
		To   string `json:"to"`
		From string `json:"from"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(args[0], &m); err != nil {
		c.opt.Logger.Debug("a msg event that is not an object", "transport", c.name, "err", err)
		return
	}
	env := chat.Envelope{Type: chat.TypeMsg, Room: m.Room, To: m.To, From: m.From, Text: m.Text}
	select {
	case c.msgs <- transports.Delivery{Env: env, At: at}:
	case <-c.ctx.Done():
	}
}

// command is a chat command as the peer's event and payload.
func command(env chat.Envelope) (string, any, error) {
	switch env.Type {
	case chat.TypeJoin, chat.TypeLeave, chat.TypeWho:
		return env.Type, map[string]string{"room": env.Room}, nil
	case chat.TypeSay:
		return env.Type, map[string]string{"room": env.Room, "text": env.Text}, nil
	case chat.TypeDM:
		return env.Type, map[string]string{"to": env.To, "text": env.Text}, nil
	}
	return "", nil, chat.Errorf(chat.CodeUnknownType, "the socket.io peer has no command %q (join, leave, say, dm, who)", env.Type)
}

// Send emits the command as an event with an ack and waits for the ack. While the client is
// disconnected the event waits for the next connection (socket.io-client buffers it); an event
// already sent when the connection breaks is not sent again (socket.io-client's default,
// retries off): Send returns an error, and whether the peer did it is unknown.
func (c *Client) Send(ctx context.Context, env chat.Envelope) (chat.Envelope, error) {
	event, payload, err := command(env)
	if err != nil {
		return chat.Envelope{}, err
	}
	var e *engineConn
	for e == nil {
		c.mu.Lock()
		closed, gone, ready := c.closed, c.gone, c.ready
		e = c.conn
		c.mu.Unlock()
		switch {
		case closed:
			return chat.Envelope{}, transports.ErrClosed
		case gone != nil:
			return chat.Envelope{}, errors.Join(transports.ErrSessionGone, gone)
		case e != nil:
			continue
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return chat.Envelope{}, ctx.Err()
		case <-c.ctx.Done():
			return chat.Envelope{}, transports.ErrClosed
		}
	}
	p, err := c.emit(ctx, e, event, payload)
	if err != nil {
		return chat.Envelope{}, err
	}
	r, err := answer(env, p)
	if err == nil && (env.Type == chat.TypeJoin || env.Type == chat.TypeLeave) {
		c.mu.Lock()
		if env.Type == chat.TypeJoin {
			c.rooms[env.Room] = true
		} else {
			delete(c.rooms, env.Room)
		}
		c.mu.Unlock()
	}
	return r, err
}

// emit sends event with payload and an ack id on e and waits for the ack.
func (c *Client) emit(ctx context.Context, e *engineConn, event string, payload any) (sioPacket, error) {
	data, err := json.Marshal([]any{event, payload})
	if err != nil {
		return sioPacket{}, err
	}
	id := c.ackN.Add(1) - 1
	ch, err := e.expect(id)
	if err != nil {
		return sioPacket{}, fmt.Errorf("socket.io: %s not sent: %w", event, err)
	}
	if err := e.write(encodeSIO(sioEvent, id, data)); err != nil {
		e.forget(id)
		return sioPacket{}, fmt.Errorf("socket.io: %s not sent: %w", event, err)
	}
	select {
	case p := <-ch:
		return p, nil
	case <-e.done:
		select {
		case p := <-ch:
			return p, nil
		default:
		}
		return sioPacket{}, fmt.Errorf("socket.io: the connection broke before %s was acknowledged (not sent again; the peer may or may not have done it): %w", event, e.err)
	case <-ctx.Done():
		e.forget(id)
		return sioPacket{}, ctx.Err()
	case <-c.ctx.Done():
		e.forget(id)
		return sioPacket{}, transports.ErrClosed
	}
}

// rejoin joins again the rooms the client had joined, on a connection the server did not
// recover (a new socket is in lobby and its user's room only), as a Socket.IO chat app does
// when socket.recovered is false. What was sent to those rooms meanwhile stays lost.
func (c *Client) rejoin(ctx context.Context, e *engineConn) error {
	c.mu.Lock()
	rooms := slices.Sorted(maps.Keys(c.rooms))
	c.mu.Unlock()
	for _, room := range rooms {
		p, err := c.emit(ctx, e, chat.TypeJoin, map[string]string{"room": room})
		if err != nil {
			return err
		}
		if _, err := answer(chat.Envelope{Type: chat.TypeJoin, Room: room}, p); err != nil {
			c.opt.Logger.Warn("socket.io: joining a room again failed", "transport", c.name, "room", room, "err", err)
		}
	}
	return nil
}

// answer turns the peer's ack ({ok: true[, members]} or {error: {code, message}}) into the
// envelope Send returns.
func answer(env chat.Envelope, p sioPacket) (chat.Envelope, error) {
	var args []struct {
		OK      bool     `json:"ok"`
		Members []string `json:"members"`
		Error   *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(p.Data, &args); err != nil || len(args) == 0 {
		return chat.Envelope{}, fmt.Errorf("socket.io: the ack for %s is not [{ok} or {error}]: %s", env.Type, truncate(string(p.Data), 200))
	}
	a := args[0]
	switch {
	case a.Error != nil:
		return chat.Envelope{}, &chat.Error{Code: a.Error.Code, Text: a.Error.Message}
	case !a.OK:
		return chat.Envelope{}, fmt.Errorf("socket.io: the ack for %s is neither ok nor an error: %s", env.Type, truncate(string(p.Data), 200))
	case env.Type == chat.TypeWho:
		return chat.Envelope{Type: chat.TypePresence, CID: env.CID, Room: env.Room, Members: a.Members}, nil
	}
	return chat.Envelope{Type: chat.TypeOK, CID: env.CID, Room: env.Room}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// endpoint is the peer's Engine.IO URL with the query q, for scheme http or ws.
func (c *Client) endpoint(ws bool, q url.Values) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(c.opt.URL, "/"))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("socket.io: server URL %q is not http://host:port", c.opt.URL)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "http"
		if ws {
			u.Scheme = "ws"
		}
	case "https", "wss":
		u.Scheme = "https"
		if ws {
			u.Scheme = "wss"
		}
	default:
		return "", fmt.Errorf("socket.io: server URL %q is not http://host:port", c.opt.URL)
	}
	u.Path = Path
	q.Set("EIO", "4")
	u.RawQuery = q.Encode()
	return u.String(), nil
}
