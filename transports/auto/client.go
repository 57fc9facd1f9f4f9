package auto

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/longpoll"
	"github.com/wirelab/wirelab/transports/stream"
	"github.com/wirelab/wirelab/transports/websocket"
)

// Name is the transport's name.
const Name = "auto"

// TryTimeout bounds one attempt to connect with one transport.
const TryTimeout = 5 * time.Second

// Candidate is one transport auto may use.
type Candidate struct {
	Name   string
	Dialer transports.Dialer
}

// Candidates returns the transports auto tries, best first, ending with long polling.
func Candidates(opt transports.Options) []Candidate {
	var out []Candidate
	if c, ok := wtUni(opt); ok {
		out = append(out, c)
	}
	return append(out,
		Candidate{websocket.Name, websocket.NewDialer(opt)},
		Candidate{stream.Name, stream.NewDialer(opt)},
		Candidate{longpoll.Name, longpoll.NewDialer(opt)},
	)
}

// wtUni is set by the WebTransport package's registration (see wt.go).
var wtUni = func(transports.Options) (Candidate, bool) { return Candidate{}, false }

// Client is the automatic client.
type Client struct {
	*transports.Engine
	d *dialer
}

var _ transports.Client = (*Client)(nil)

// NewClient returns an automatic client over the default candidates.
func NewClient(opt transports.Options) *Client { return NewClientWith(opt, Candidates(opt)) }

// NewClientWith returns an automatic client over the given candidates, best first; the last one
// opens the session (it must be able to: long polling). Tests use it to take transports away.
func NewClientWith(opt transports.Options, cands []Candidate) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	d := &dialer{cands: cands, ctx: ctx, cancel: cancel, using: cands[len(cands)-1].Name}
	c := &Client{d: d}
	c.Engine = transports.NewEngine(Name, d, opt)
	d.eng = c.Engine
	return c
}

// Using is the name of the transport the session is on now.
func (c *Client) Using() string {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	return c.d.using
}

// Upgraded returns a channel closed once the background upgrade has finished (moved the session
// or found nothing better).
func (c *Client) Upgraded() <-chan struct{} { return c.d.upgraded() }

// Close stops the upgrade, then the engine, and closes every candidate's idle connections.
func (c *Client) Close() error {
	c.d.cancel()
	c.d.wg.Wait()
	err := c.Engine.Close()
	for _, cd := range c.d.cands {
		if cl, ok := cd.Dialer.(interface{ Close() error }); ok {
			_ = cl.Close()
		}
	}
	return err
}

type dialer struct {
	cands  []Candidate
	eng    *transports.Engine
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	using   string
	started bool
	done    chan struct{}
}

func (d *dialer) upgraded() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done == nil {
		d.done = make(chan struct{})
	}
	return d.done
}

// Dial opens a new session on the last candidate (long polling) and starts the upgrade; a resume
// tries the candidates best first.
func (d *dialer) Dial(ctx context.Context, session string, after uint64) (transports.Conn, chat.Envelope, error) {
	if session == "" {
		last := d.cands[len(d.cands)-1]
		c, welcome, err := last.Dialer.Dial(ctx, "", 0)
		if err != nil {
			return nil, chat.Envelope{}, err
		}
		ac := &conn{cur: c}
		d.startUpgrade(ac, welcome.Session)
		return ac, welcome, nil
	}
	var errs []error
	for _, cd := range d.cands {
		tctx, cancel := context.WithTimeout(ctx, TryTimeout)
		c, welcome, err := cd.Dialer.Dial(tctx, session, after)
		cancel()
		if err == nil {
			d.mu.Lock()
			d.using = cd.Name
			d.mu.Unlock()
			return &conn{cur: c}, welcome, nil
		}
		errs = append(errs, err)
		var ce *chat.Error
		if errors.As(err, &ce) && (ce.Code == chat.CodeUnknownSession || ce.Code == chat.CodeUnauthorized) {
			return nil, chat.Envelope{}, err // the session is gone: no transport will do
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, chat.Envelope{}, errors.Join(errs...)
}

// startUpgrade tries the better candidates in the background and moves ac to the first that
// connects.
func (d *dialer) startUpgrade(ac *conn, session string) {
	d.mu.Lock()
	if d.started {
		d.mu.Unlock()
		return
	}
	d.started = true
	if d.done == nil {
		d.done = make(chan struct{})
	}
	done := d.done
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer close(done)
		for _, cd := range d.cands[:len(d.cands)-1] {
			if d.ctx.Err() != nil {
				return
			}
			// While the new connection is set up the old one stops polling, so the two do
			// not take the session from each other; the new one resumes after what the
			// client holds, and anything both deliver is dropped by seq.
			ac.beginUpgrade()
			tctx, cancel := context.WithTimeout(d.ctx, TryTimeout)
			c, _, err := cd.Dialer.Dial(tctx, session, d.eng.LastSeq())
			cancel()
			if err != nil {
				ac.endUpgrade(nil)
				continue
			}
			if !ac.endUpgrade(c) {
				_ = c.Close() // the client closed meanwhile
				return
			}
			d.mu.Lock()
			d.using = cd.Name
			d.mu.Unlock()
			return
		}
	}()
}

// conn is the engine's view: the connection of the moment, swapped in place by an upgrade.
type conn struct {
	mu        sync.Mutex
	cur       transports.Conn
	upgrading chan struct{} // non-nil while an upgrade is being tried; closed when it ends
	closed    bool
}

func (c *conn) beginUpgrade() {
	c.mu.Lock()
	c.upgrading = make(chan struct{})
	c.mu.Unlock()
}

// endUpgrade swaps in next (if not nil) and reports whether it was taken.
func (c *conn) endUpgrade(next transports.Conn) bool {
	c.mu.Lock()
	ch := c.upgrading
	c.upgrading = nil
	taken := false
	var old transports.Conn
	if next != nil && !c.closed {
		old, c.cur = c.cur, next
		taken = true
	}
	c.mu.Unlock()
	if ch != nil {
		close(ch)
	}
	if old != nil {
		_ = old.Close()
	}
	return taken
}

func (c *conn) Recv(ctx context.Context, after uint64) ([]chat.Envelope, error) {
	for {
		c.mu.Lock()
		wait, cur := c.upgrading, c.cur
		c.mu.Unlock()
		if wait != nil {
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		envs, err := cur.Recv(ctx, after)
		if err == nil {
			return envs, nil
		}
		c.mu.Lock()
		moved := c.cur != cur || c.upgrading != nil
		c.mu.Unlock()
		if moved && ctx.Err() == nil {
			if len(envs) > 0 {
				return envs, nil
			}
			continue // the old connection ended because the session moved: go on with the new
		}
		return envs, err
	}
}

func (c *conn) Send(ctx context.Context, env chat.Envelope) ([]chat.Envelope, error) {
	c.mu.Lock()
	cur := c.cur
	c.mu.Unlock()
	return cur.Send(ctx, env)
}

func (c *conn) Close() error {
	c.mu.Lock()
	c.closed = true
	cur := c.cur
	c.mu.Unlock()
	return cur.Close()
}

// SendRaw passes raw bytes to the connection of the moment, if it can send them.
func (c *conn) SendRaw(ctx context.Context, b []byte) ([]chat.Envelope, error) {
	c.mu.Lock()
	cur := c.cur
	c.mu.Unlock()
	if r, ok := cur.(transports.RawConn); ok {
		return r.SendRaw(ctx, b)
	}
	return nil, transports.ErrNoRaw
}
