package centrifugo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// EmuClient is a chat client over Centrifugo's bidirectional emulation: a long response
// carries the server's messages down (SSE: GET /connection/sse?cf_connect=..., or HTTP
// streaming: POST /connection/http_stream, one JSON reply per line) and every command goes up
// as its own POST /emulation naming the session and node the connect reply gave. This is what
// centrifuge-js does in a browser without WebSocket; Centrifugo has no Go client for it.
//
// A broken connection is reconnected with backoff (200 ms doubling to 20 s, jittered, as the
// official clients do) and every channel is subscribed again with recover, epoch and offset:
// Centrifugo's own recovery. Publications it cannot recover are reported as a gap error on
// Messages, not fetched some other way.
//
// Goroutines: one runs the connection (dial, read, reconnect) from Connect to Close; one more
// per command being posted that no Send waits for (a pong, a resubscribe). Close waits for all.
type EmuClient struct {
	opt    transports.Options
	sse    bool // SSE, else HTTP streaming
	out    *outbox
	tr     *http.Transport
	hc     *http.Client
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	nextID uint32

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	cur     *emuConn      // the live connection, nil between connections
	live    chan struct{} // closed while cur is live
	subs    map[string]*emuSub
	started bool
	closed  bool
}

var _ transports.Client = (*EmuClient)(nil)

// emuSub is a channel the client wants, with its position in the channel's stream.
type emuSub struct {
	ready       chan struct{} // closed at the first answer to subscribe
	err         error         // why the first subscribe failed
	once        sync.Once
	on          *emuConn // the connection it is subscribed on
	recoverable bool
	epoch       string
	offset      uint64
}

func (s *emuSub) settle(err error) {
	s.once.Do(func() { s.err = err; close(s.ready) })
}

// emuConn is one connection: the stream down and the identity POSTs up name.
type emuConn struct {
	client, session, node string
	pong                  bool
	cancel                context.CancelFunc
	mu                    sync.Mutex
	pending               map[uint32]func(reply, error) // run on the read loop, in order
	dead                  bool
}

// errConnLost is what a command waiting on a connection that broke gets.
var errConnLost = errors.New("centrifugo: the connection broke before the answer")

// NewSSE returns a client for Centrifugo's SSE transport with emulation upstream.
func NewSSE(opt transports.Options) *EmuClient { return newEmu(opt, true) }

// NewStream returns a client for Centrifugo's HTTP streaming transport with emulation upstream.
func NewStream(opt transports.Options) *EmuClient { return newEmu(opt, false) }

func newEmu(opt transports.Options, sse bool) *EmuClient {
	opt = opt.WithDefaults()
	c := &EmuClient{opt: opt, sse: sse, out: newOutbox(opt.Buffer),
		conns: map[net.Conn]struct{}{}, subs: map[string]*emuSub{}, live: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.tr = &http.Transport{DialContext: c.dial, DisableCompression: true, MaxIdleConnsPerHost: 8}
	c.hc = &http.Client{Transport: c.tr}
	return c
}

func (c *EmuClient) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	nc, err := c.opt.Dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: nc}
	tc.onClose = func() {
		c.mu.Lock()
		delete(c.conns, tc)
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.conns[tc] = struct{}{}
	c.mu.Unlock()
	return tc, nil
}

// Connect opens the first connection, subscribes to the lobby and the user's dm channel, and
// returns once both subscriptions are live. From then on the client reconnects by itself.
func (c *EmuClient) Connect(ctx context.Context) error {
	if c.opt.Token == "" {
		return ErrNoToken
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return transports.ErrClosed
	}
	if c.started {
		c.mu.Unlock()
		return errors.New("centrifugo: Connect called twice")
	}
	c.started = true
	c.mu.Unlock()
	first := make(chan error, 1)
	c.spawn(func() { c.run(first) })
	select {
	case err := <-first:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return fmt.Errorf("centrifugo: connect: %w", ctx.Err())
	}
	for _, ch := range []string{DMChannel(c.opt.User), RoomChannel(Lobby)} {
		if err := c.subscribe(ctx, ch); err != nil {
			return err
		}
	}
	return nil
}

// run connects, reads, and reconnects until Close (or, with NoReconnect, until the first
// connection ends). The first connection's outcome goes to first.
func (c *EmuClient) run(first chan<- error) {
	defer c.out.close()
	backoff := 200 * time.Millisecond
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithCancel(c.ctx)
		wasLive, err := c.connection(ctx, cancel, func() {
			if first != nil {
				first <- nil
				first = nil
			}
		})
		cancel()
		if first != nil { // the first connection never went live
			first <- err
			return
		}
		if c.ctx.Err() != nil {
			return
		}
		c.opt.Logger.Debug("centrifugo: connection ended", "err", err)
		if c.opt.NoReconnect {
			return
		}
		if wasLive {
			backoff = 200 * time.Millisecond
		}
		wait := backoff/2 + rand.N(backoff/2+1) // jittered, as centrifuge-go's backoff
		backoff = min(2*backoff, 20*time.Second)
		t := time.NewTimer(wait)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// connection runs one connection: connect, resubscribe, read until it ends.
// onLive runs once the connect answer is in, on the read loop.
func (c *EmuClient) connection(ctx context.Context, cancel context.CancelFunc, onLive func()) (wasLive bool, err error) {
	id := c.id()
	cmd, _ := json.Marshal(cmdOut{ID: id, Connect: &connectRq{Token: c.opt.Token, Name: "wirelab"}})
	var req *http.Request
	if c.sse {
		u, err := endpoint(c.opt.URL, "/connection/sse", false)
		if err != nil {
			return false, err
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u+"?cf_connect="+url.QueryEscape(string(cmd)), nil)
		if err != nil {
			return false, err
		}
		req.Header.Set("Accept", "text/event-stream")
	} else {
		u, err := endpoint(c.opt.URL, "/connection/http_stream", false)
		if err != nil {
			return false, err
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(cmd))
		if err != nil {
			return false, err
		}
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("centrifugo: %s: %w", req.URL.Path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return false, fmt.Errorf("centrifugo: %s answered %s: %q", req.URL.Path, resp.Status, b)
	}
	var frames frameReader = newLineReader(resp.Body)
	if c.sse {
		frames = newSSEReader(resp.Body)
	}
	// The watchdog: a connection that brings nothing for longer than the server's ping
	// interval plus 10 s (centrifuge-go's MaxServerPingDelay) is dead.
	quiet := 35 * time.Second
	watchdog := time.AfterFunc(quiet, cancel)
	defer watchdog.Stop()

	conn := &emuConn{cancel: cancel, pending: map[uint32]func(reply, error){}}
	defer c.lost(conn)
	for {
		frame, err := frames.Next()
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("centrifugo: connection closed (%w)", ctx.Err())
			}
			return wasLive, err
		}
		watchdog.Reset(quiet)
		at := time.Now()
		replies, err := parseReplies(frame)
		if err != nil {
			return wasLive, err
		}
		for _, r := range replies {
			if !wasLive {
				if r.ID != id {
					continue
				}
				if r.Error != nil {
					return false, serverError(r.Error.Code, r.Error.Message, "connect")
				}
				if r.Connect == nil {
					return false, errors.New("centrifugo: the connect answer has no connect result")
				}
				conn.client, conn.session, conn.node, conn.pong = r.Connect.Client, r.Connect.Session, r.Connect.Node, r.Connect.Pong
				if r.Connect.Ping > 0 {
					quiet = time.Duration(r.Connect.Ping)*time.Second + 10*time.Second
				}
				wasLive = true
				c.goLive(conn)
				onLive()
				continue
			}
			if err := c.handle(conn, r, at); err != nil {
				return true, err
			}
		}
	}
}

// goLive makes conn the client's connection and subscribes it to every channel wanted.
func (c *EmuClient) goLive(conn *emuConn) {
	c.mu.Lock()
	c.cur = conn
	close(c.live)
	chans := make([]string, 0, len(c.subs))
	for ch := range c.subs {
		chans = append(chans, ch)
	}
	c.mu.Unlock()
	for _, ch := range chans {
		c.sendSubscribe(conn, ch)
	}
}

// lost ends conn: commands waiting on it fail, and the client waits for the next one.
func (c *EmuClient) lost(conn *emuConn) {
	c.mu.Lock()
	if c.cur == conn {
		c.cur = nil
		c.live = make(chan struct{})
	}
	c.mu.Unlock()
	conn.mu.Lock()
	conn.dead = true
	pending := conn.pending
	conn.pending = nil
	conn.mu.Unlock()
	for _, f := range pending {
		f(reply{}, errConnLost)
	}
}

// handle acts on one message from the server, on the read loop.
func (c *EmuClient) handle(conn *emuConn, r reply, at time.Time) error {
	switch {
	case r.ID != 0:
		conn.mu.Lock()
		f := conn.pending[r.ID]
		delete(conn.pending, r.ID)
		conn.mu.Unlock()
		if f != nil {
			f(r, nil)
		}
	case r.Push != nil:
		p := r.Push
		switch {
		case p.Pub != nil:
			c.mu.Lock()
			s := c.subs[p.Channel]
			if s != nil && s.on == conn && p.Pub.Offset > 0 {
				s.offset = p.Pub.Offset
			}
			c.mu.Unlock()
			if s != nil {
				c.deliverPub(p.Channel, p.Pub, at)
			}
		case p.Disconnect != nil:
			if !p.Disconnect.Reconnect && p.Disconnect.Code >= 3500 {
				c.opt.Logger.Warn("centrifugo: disconnected for good", "code", p.Disconnect.Code, "reason", p.Disconnect.Reason)
			}
			return fmt.Errorf("centrifugo: disconnect %d %s", p.Disconnect.Code, p.Disconnect.Reason)
		case p.Unsubscribe != nil:
			c.opt.Logger.Debug("centrifugo: unsubscribed by the server", "channel", p.Channel, "code", p.Unsubscribe.Code)
			c.sendSubscribe(conn, p.Channel)
		}
	case r.isPing():
		if conn.pong {
			c.spawn(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = c.post(ctx, conn, []byte("{}"))
			})
		}
	}
	return nil
}

func (c *EmuClient) deliverPub(channel string, p *publication, at time.Time) {
	from := ""
	if p.Info != nil {
		from = p.Info.User
	}
	if env, ok := envelopeFor(channel, p.Data, from, p.Time); ok {
		c.out.deliver(env, at)
	}
}

// sendSubscribe subscribes conn to ch, recovering from the stream position the client has.
// The answer is handled on the read loop: recovered publications are delivered before any
// later push.
func (c *EmuClient) sendSubscribe(conn *emuConn, ch string) {
	c.mu.Lock()
	s := c.subs[ch]
	if s == nil {
		c.mu.Unlock()
		return
	}
	rq := &subRq{Channel: ch}
	if s.recoverable {
		rq.Recover, rq.Epoch, rq.Offset = true, s.epoch, s.offset
	}
	c.mu.Unlock()
	id := c.id()
	ok := conn.expect(id, func(r reply, err error) {
		if err != nil {
			return // the next connection subscribes again
		}
		if r.Error != nil {
			if s, _ := c.dropSub(ch); s != nil {
				s.settle(serverError(r.Error.Code, r.Error.Message, "subscribe"))
			}
			return
		}
		res := r.Subscribe
		if res == nil {
			res = &subscribed{}
		}
		c.mu.Lock()
		if c.subs[ch] != s {
			c.mu.Unlock()
			return // left meanwhile
		}
		s.on = conn
		s.recoverable = res.Recoverable
		s.epoch = res.Epoch
		s.offset = res.Offset
		c.mu.Unlock()
		if res.WasRecovering && !res.Recovered {
			c.out.deliver(gapEnvelope(ch), time.Now())
		}
		now := time.Now()
		for i := range res.Publications {
			c.deliverPub(ch, &res.Publications[i], now)
		}
		s.settle(nil)
	})
	if !ok {
		return
	}
	b, _ := json.Marshal(cmdOut{ID: id, Subscribe: rq})
	c.spawn(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.post(ctx, conn, b); err != nil {
			c.opt.Logger.Debug("centrifugo: subscribe post", "channel", ch, "err", err)
			conn.cancel() // the next connection subscribes again
		}
	})
}

// dropSub stops wanting ch; it returns the subscription and whether it was live on a
// connection.
func (c *EmuClient) dropSub(ch string) (*emuSub, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.subs[ch]
	delete(c.subs, ch)
	return s, s != nil && s.on != nil
}

// spawn runs f on a goroutine Close waits for; false (f not run) once closed.
func (c *EmuClient) spawn(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Go(f)
	return true
}

// expect registers f for the answer to command id; false if conn is over.
func (e *emuConn) expect(id uint32, f func(reply, error)) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dead {
		return false
	}
	e.pending[id] = f
	return true
}

func (c *EmuClient) id() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	return c.nextID
}

// post sends one command up: POST /emulation {"node":N,"session":S,"data":"<command>"}.
func (c *EmuClient) post(ctx context.Context, conn *emuConn, cmd []byte) error {
	body, _ := json.Marshal(struct {
		Node    string `json:"node"`
		Session string `json:"session"`
		Data    string `json:"data"`
	}{conn.node, conn.session, string(cmd)})
	u, err := endpoint(c.opt.URL, "/emulation", false)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("centrifugo: POST /emulation: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("centrifugo: POST /emulation answered %s", resp.Status)
	}
	return nil
}

// waitLive returns the live connection, waiting for one.
func (c *EmuClient) waitLive(ctx context.Context) (*emuConn, error) {
	for {
		c.mu.Lock()
		cur, live, closed := c.cur, c.live, c.closed
		c.mu.Unlock()
		if closed {
			return nil, transports.ErrClosed
		}
		if cur != nil {
			return cur, nil
		}
		select {
		case <-live:
		case <-c.out.closing:
			return nil, transports.ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// call sends cmd on the live connection and waits for its answer.
func (c *EmuClient) call(ctx context.Context, cmd cmdOut) (reply, error) {
	conn, err := c.waitLive(ctx)
	if err != nil {
		return reply{}, err
	}
	cmd.ID = c.id()
	type answer struct {
		r   reply
		err error
	}
	done := make(chan answer, 1)
	if !conn.expect(cmd.ID, func(r reply, err error) { done <- answer{r, err} }) {
		return reply{}, errConnLost
	}
	b, _ := json.Marshal(cmd)
	if err := c.post(ctx, conn, b); err != nil {
		return reply{}, err
	}
	select {
	case a := <-done:
		return a.r, a.err
	case <-ctx.Done():
		return reply{}, ctx.Err()
	}
}

// subscribe wants ch and waits for the first answer to its subscribe.
func (c *EmuClient) subscribe(ctx context.Context, ch string) error {
	c.mu.Lock()
	s, ok := c.subs[ch]
	cur := c.cur
	if !ok {
		s = &emuSub{ready: make(chan struct{})}
		c.subs[ch] = s
	}
	c.mu.Unlock()
	if !ok && cur != nil {
		c.sendSubscribe(cur, ch)
	} // else: the next connection subscribes it
	select {
	case <-s.ready:
		return s.err
	case <-ctx.Done():
		return fmt.Errorf("centrifugo: subscribe %s: %w", ch, ctx.Err())
	case <-c.out.closing:
		return transports.ErrClosed
	}
}

// Session is the client id of the current connection (it changes on a reconnect).
func (c *EmuClient) Session() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return ""
	}
	return c.cur.client
}

// User is the client's user.
func (c *EmuClient) User() string { return c.opt.User }

// Send maps env onto Centrifugo as WSClient.Send does. A command whose connection breaks before
// its answer fails; it is not sent again.
func (c *EmuClient) Send(ctx context.Context, env chat.Envelope) (chat.Envelope, error) {
	c.mu.Lock()
	started, closed := c.started, c.closed
	c.mu.Unlock()
	if closed {
		return chat.Envelope{}, transports.ErrClosed
	}
	if !started {
		return chat.Envelope{}, ErrNotConnected
	}
	cmd, err := plan(env, c.opt.User)
	if err != nil {
		return chat.Envelope{}, err
	}
	switch cmd.op {
	case "subscribe":
		if err := c.subscribe(ctx, cmd.channels[0]); err != nil {
			return chat.Envelope{}, err
		}
	case "unsubscribe":
		ch := cmd.channels[0]
		if _, on := c.dropSub(ch); on {
			r, err := c.call(ctx, cmdOut{Unsubscribe: &chanRq{Channel: ch}})
			if err == nil && r.Error != nil {
				return chat.Envelope{}, serverError(r.Error.Code, r.Error.Message, "unsubscribe")
			}
			// A connection lost meanwhile took the subscription with it.
		}
	case "publish":
		err := publishAll(cmd.channels, func(ch string) error {
			r, err := c.call(ctx, cmdOut{Publish: &pubRq{Channel: ch, Data: cmd.data}})
			if err != nil {
				return fmt.Errorf("centrifugo: publish to %s: %w", ch, err)
			}
			if r.Error != nil {
				return serverError(r.Error.Code, r.Error.Message, "publish")
			}
			return nil
		})
		if err != nil {
			return chat.Envelope{}, err
		}
	}
	return chat.Envelope{Type: chat.TypeOK, CID: env.CID}, nil
}

// Messages delivers msg envelopes, and a gap error when a recovery failed.
func (c *EmuClient) Messages() <-chan transports.Delivery { return c.out.ch }

// Drop closes the client's TCP connections (the stream and any POST's) as a network failure
// would; the client reconnects and recovers.
func (c *EmuClient) Drop() {
	c.mu.Lock()
	conns := make([]net.Conn, 0, len(c.conns))
	for nc := range c.conns {
		conns = append(conns, nc)
	}
	c.mu.Unlock()
	for _, nc := range conns {
		_ = nc.Close()
	}
}

// Close ends the client: the connection is closed, Messages too, and Close returns once the
// client's goroutines have.
func (c *EmuClient) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.out.close()
	c.wg.Wait()
	c.tr.CloseIdleConnections()
	return nil
}
