package centrifugo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	centrifuge "github.com/centrifugal/centrifuge-go"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// WSClient is a chat client over Centrifugo's WebSocket transport, speaking through
// centrifuge-go, the official Go client: its reconnects, its resubscribes, its recovery.
type WSClient struct {
	opt transports.Options
	out *outbox

	mu      sync.Mutex
	c       *centrifuge.Client
	session string
	conns   map[net.Conn]struct{} // open TCP connections, for Drop
	subs    map[string]*wsSub
	closed  bool
	ended   bool // the first connection broke with NoReconnect
	live    bool // connected once
}

var _ transports.Client = (*WSClient)(nil)

// wsSub is one channel subscription and whether its first subscribe has answered.
type wsSub struct {
	sub   *centrifuge.Subscription
	ready chan struct{} // closed at the first subscribed or unsubscribed
	err   error         // set before ready closes when the subscribe failed
	once  sync.Once
}

func (s *wsSub) settle(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.ready)
	})
}

// NewWebSocket returns a client for Centrifugo's WebSocket endpoint (/connection/websocket)
// on opt.URL; opt.Token is the user's connection token (Config.Token).
func NewWebSocket(opt transports.Options) *WSClient {
	opt = opt.WithDefaults()
	return &WSClient{opt: opt, out: newOutbox(opt.Buffer), conns: map[net.Conn]struct{}{}, subs: map[string]*wsSub{}}
}

// Connect connects, subscribes to the lobby and the user's dm channel, and returns once both
// subscriptions are live.
func (w *WSClient) Connect(ctx context.Context) error {
	if w.opt.Token == "" {
		return ErrNoToken
	}
	u, err := endpoint(w.opt.URL, "/connection/websocket", true)
	if err != nil {
		return err
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return transports.ErrClosed
	}
	if w.c != nil {
		w.mu.Unlock()
		return errors.New("centrifugo: Connect called twice")
	}
	c := centrifuge.NewJsonClient(u, centrifuge.Config{
		Token:          w.opt.Token,
		Name:           "wirelab",
		NetDialContext: w.dial,
	})
	w.c = c
	w.mu.Unlock()

	connected := make(chan string, 1)
	c.OnConnected(func(e centrifuge.ConnectedEvent) {
		w.mu.Lock()
		w.session, w.live = e.ClientID, true
		w.mu.Unlock()
		select {
		case connected <- e.ClientID:
		default:
		}
	})
	c.OnConnecting(func(e centrifuge.ConnectingEvent) {
		w.opt.Logger.Debug("centrifugo: connecting", "code", e.Code, "reason", e.Reason)
		w.mu.Lock()
		end := w.live && w.opt.NoReconnect && !w.ended
		if end {
			w.ended = true
		}
		w.mu.Unlock()
		if end {
			// No reconnect wanted: end the client as a broken session would. Disconnect
			// takes the client's lock, which this handler may run under: not inline.
			go func() { _ = c.Disconnect(); w.out.close() }()
		}
	})
	c.OnError(func(e centrifuge.ErrorEvent) { w.opt.Logger.Debug("centrifugo: client error", "err", e.Error) })
	discErr := make(chan error, 1)
	c.OnDisconnected(func(e centrifuge.DisconnectedEvent) {
		select {
		case discErr <- fmt.Errorf("centrifugo: disconnected: %d %s", e.Code, e.Reason):
		default:
		}
	})
	if err := c.Connect(); err != nil {
		return fmt.Errorf("centrifugo: connect: %w", err)
	}
	select {
	case <-connected:
	case err := <-discErr:
		return err
	case <-ctx.Done():
		return fmt.Errorf("centrifugo: connect: %w", ctx.Err())
	}
	for _, ch := range []string{DMChannel(w.opt.User), RoomChannel(Lobby)} {
		if err := w.subscribe(ctx, ch); err != nil {
			return err
		}
	}
	return nil
}

// dial dials through opt.Dial and keeps the connection for Drop.
func (w *WSClient) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	nc, err := w.opt.Dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: nc}
	tc.onClose = func() {
		w.mu.Lock()
		delete(w.conns, tc)
		w.mu.Unlock()
	}
	w.mu.Lock()
	w.conns[tc] = struct{}{}
	w.mu.Unlock()
	return tc, nil
}

// subscribe subscribes to ch (if it is not already) and waits for the answer.
func (w *WSClient) subscribe(ctx context.Context, ch string) error {
	w.mu.Lock()
	s, ok := w.subs[ch]
	if !ok {
		sub, err := w.c.NewSubscription(ch)
		if err != nil {
			w.mu.Unlock()
			return fmt.Errorf("centrifugo: subscription to %s: %w", ch, err)
		}
		s = &wsSub{sub: sub, ready: make(chan struct{})}
		w.subs[ch] = s
		sub.OnPublication(func(e centrifuge.PublicationEvent) {
			from := ""
			if e.Info != nil {
				from = e.Info.User
			}
			if env, ok := envelopeFor(ch, e.Data, from, 0); ok {
				w.out.deliver(env, time.Now())
			}
		})
		sub.OnSubscribed(func(e centrifuge.SubscribedEvent) {
			if e.WasRecovering && !e.Recovered {
				w.out.deliver(gapEnvelope(ch), time.Now())
			}
			s.settle(nil)
		})
		sub.OnUnsubscribed(func(e centrifuge.UnsubscribedEvent) {
			s.settle(fmt.Errorf("centrifugo: subscribe %s: unsubscribed: %d %s", ch, e.Code, e.Reason))
		})
		sub.OnError(func(e centrifuge.SubscriptionErrorEvent) {
			var ce *centrifuge.Error
			if errors.As(e.Error, &ce) && !ce.Temporary {
				s.settle(serverError(ce.Code, ce.Message, "subscribe"))
				return
			}
			w.opt.Logger.Debug("centrifugo: subscription error", "channel", ch, "err", e.Error)
		})
		w.mu.Unlock()
		// Not under w.mu: centrifuge-go may wait for a handler that takes it.
		if err := sub.Subscribe(); err != nil {
			w.unsubscribe(ch)
			return fmt.Errorf("centrifugo: subscribe %s: %w", ch, err)
		}
	} else {
		w.mu.Unlock()
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
		return fmt.Errorf("centrifugo: subscribe %s: %w", ch, ctx.Err())
	}
	if s.err != nil {
		w.unsubscribe(ch)
	}
	return s.err
}

// unsubscribe leaves ch; leaving a channel the client is not in is not an error.
func (w *WSClient) unsubscribe(ch string) {
	w.mu.Lock()
	s, ok := w.subs[ch]
	delete(w.subs, ch)
	w.mu.Unlock()
	if ok {
		_ = s.sub.Unsubscribe()
		_ = w.c.RemoveSubscription(s.sub)
	}
}

// Session is the client id Centrifugo gave the current connection (it changes on a reconnect).
func (w *WSClient) Session() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.session
}

// User is the client's user.
func (w *WSClient) User() string { return w.opt.User }

// Send maps env onto Centrifugo (join: subscribe, leave: unsubscribe, say: publish into the
// room's channel, dm: publish into the recipient's channel and then the sender's) and returns
// ok once Centrifugo has answered every operation. A publish whose connection breaks before its
// answer fails: centrifuge-go does not publish again, and neither does this client.
func (w *WSClient) Send(ctx context.Context, env chat.Envelope) (chat.Envelope, error) {
	w.mu.Lock()
	c, closed := w.c, w.closed
	w.mu.Unlock()
	if closed {
		return chat.Envelope{}, transports.ErrClosed
	}
	if c == nil {
		return chat.Envelope{}, ErrNotConnected
	}
	cmd, err := plan(env, w.opt.User)
	if err != nil {
		return chat.Envelope{}, err
	}
	switch cmd.op {
	case "subscribe":
		if err := w.subscribe(ctx, cmd.channels[0]); err != nil {
			return chat.Envelope{}, err
		}
	case "unsubscribe":
		w.unsubscribe(cmd.channels[0])
	case "publish":
		err := publishAll(cmd.channels, func(ch string) error {
			if _, err := c.Publish(ctx, ch, cmd.data); err != nil {
				var ce *centrifuge.Error
				if errors.As(err, &ce) {
					return serverError(ce.Code, ce.Message, "publish")
				}
				return fmt.Errorf("centrifugo: publish to %s: %w", ch, err)
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
func (w *WSClient) Messages() <-chan transports.Delivery { return w.out.ch }

// Drop closes the client's TCP connections as a network failure would; centrifuge-go
// reconnects and recovers.
func (w *WSClient) Drop() {
	w.mu.Lock()
	conns := make([]net.Conn, 0, len(w.conns))
	for c := range w.conns {
		conns = append(conns, c)
	}
	w.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// Close disconnects, closes Messages and returns once centrifuge-go has stopped.
func (w *WSClient) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	c := w.c
	w.mu.Unlock()
	w.out.close() // first: a handler blocked on a full Messages must let go
	if c != nil {
		c.Close()
	}
	return nil
}

// trackedConn tells its owner when it closes.
type trackedConn struct {
	net.Conn
	once    sync.Once
	onClose func()
}

func (t *trackedConn) Close() error {
	t.once.Do(func() {
		if t.onClose != nil {
			t.onClose()
		}
	})
	return t.Conn.Close()
}
