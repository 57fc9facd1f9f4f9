package transports

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wirelab/wirelab/chat"
)

// Engine is the part of a client every transport shares: the session, reconnect and resume,
// deduplication by seq, and sends retried until their ok. A transport supplies a Dialer; its
// Client embeds an Engine.
//
// Goroutines: Connect starts one receive loop (plus short-lived ones answering pings); Close
// stops them and waits.
type Engine struct {
	name string
	d    Dialer
	opt  Options

	msgs   chan Delivery
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	cidN   atomic.Uint64

	mu      sync.Mutex
	session string
	conn    Conn
	ready   chan struct{} // closed while conn is usable; replaced when it breaks
	broken  chan struct{} // closed when conn breaks (Sends waiting for an answer send again); replaced
	gone    error         // set when the session has ended for good
	recv    seqSet
	pending map[chat.CID][]chan chat.Envelope // Sends waiting for their answer, by cid
	started bool                              // Connect started the receive loop
	closed  bool
}

// NewEngine returns an engine for the transport called name.
func NewEngine(name string, d Dialer, opt Options) *Engine {
	opt = opt.WithDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Engine{name: name, d: d, opt: opt, msgs: make(chan Delivery, opt.Buffer),
		ctx: ctx, cancel: cancel, ready: make(chan struct{}), broken: make(chan struct{}), pending: map[chat.CID][]chan chat.Envelope{}}
}

// Name is the transport's name.
func (e *Engine) Name() string { return e.name }

// Options returns the client's options with defaults.
func (e *Engine) Options() Options { return e.opt }

// Session is the session id.
func (e *Engine) Session() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.session
}

// User is the client's user.
func (e *Engine) User() string { return e.opt.User }

// Messages delivers what the server sends.
func (e *Engine) Messages() <-chan Delivery { return e.msgs }

// LastSeq is the newest seq received without a hole before it.
func (e *Engine) LastSeq() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.recv.mark
}

// Connect opens the session (or, if the engine already has one from Resume, resumes it) and
// starts receiving.
func (e *Engine) Connect(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	sid, after := e.session, e.recv.mark
	e.mu.Unlock()
	conn, welcome, err := e.d.Dial(ctx, sid, after)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if welcome.Session != "" {
		e.session = welcome.Session
	}
	e.conn = conn
	close(e.ready)
	e.started = true
	e.mu.Unlock()
	e.wg.Add(1)
	go e.run(conn)
	return nil
}

// Resume makes the next Connect resume session sid after seq after instead of opening a new
// session (an upgrade from another transport uses it).
func (e *Engine) Resume(sid string, after uint64) {
	e.mu.Lock()
	e.session = sid
	e.recv = seqSet{mark: after}
	e.mu.Unlock()
}

// Drop closes the current connection abruptly; the engine reconnects and resumes.
func (e *Engine) Drop() {
	e.mu.Lock()
	c := e.conn
	e.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// Close ends the engine: the connection is closed, goroutines are waited for, Messages is closed.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	c := e.conn
	e.mu.Unlock()
	e.cancel()
	if c != nil {
		_ = c.Close()
	}
	e.wg.Wait()
	e.mu.Lock()
	started := e.started
	e.mu.Unlock()
	if !started { // else the receive loop closed it
		close(e.msgs)
	}
	return nil
}

// run is the receive loop: read, deliver, and on a broken connection reconnect and resume.
func (e *Engine) run(conn Conn) {
	defer e.wg.Done()
	defer close(e.msgs)
	backoff := 50 * time.Millisecond
	for {
		after := e.LastSeq()
		envs, err := conn.Recv(e.ctx, after)
		if len(envs) > 0 {
			e.handle(conn, envs, time.Now())
			backoff = 50 * time.Millisecond
		}
		if err == nil {
			continue
		}
		_ = conn.Close()
		if e.ctx.Err() != nil {
			return
		}
		if e.terminal(err) {
			return
		}
		if e.opt.NoReconnect {
			e.mu.Lock()
			if e.gone == nil {
				e.gone = fmt.Errorf("the connection ended and Options.NoReconnect is set: %w", err)
			}
			e.mu.Unlock()
			return
		}
		e.opt.Logger.Debug("connection lost, resuming", "transport", e.name, "err", err)
		e.mu.Lock()
		e.conn = nil
		e.ready = make(chan struct{})
		close(e.broken)
		e.broken = make(chan struct{})
		e.mu.Unlock()
		for {
			t := time.NewTimer(backoff)
			select {
			case <-e.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if backoff < 2*time.Second {
				backoff *= 2
			}
			e.mu.Lock()
			sid, after := e.session, e.recv.mark
			e.mu.Unlock()
			c, _, err := e.d.Dial(e.ctx, sid, after)
			if err == nil {
				conn = c
				break
			}
			if e.ctx.Err() != nil || e.terminal(err) {
				return
			}
			e.opt.Logger.Debug("reconnect failed", "transport", e.name, "err", err)
		}
		e.mu.Lock()
		e.conn = conn
		close(e.ready)
		e.mu.Unlock()
	}
}

// terminal reports whether err means the session is gone for good, and records it.
func (e *Engine) terminal(err error) bool {
	var ce *chat.Error
	if errors.As(err, &ce) && (ce.Code == chat.CodeUnknownSession || ce.Code == chat.CodeExpired || ce.Code == chat.CodeUnauthorized) {
		e.mu.Lock()
		e.gone = err
		for cid, chs := range e.pending {
			for _, ch := range chs {
				select {
				case ch <- chat.ErrorEnvelope(cid, err):
				default:
				}
			}
		}
		e.mu.Unlock()
		return true
	}
	return false
}

// handle processes envelopes read from the server.
func (e *Engine) handle(conn Conn, envs []chat.Envelope, at time.Time) {
	for _, env := range envs {
		switch env.Type {
		case chat.TypePing:
			if !e.opt.NoPong {
				e.wg.Add(1)
				go func() {
					defer e.wg.Done()
					_, _ = conn.Send(e.ctx, chat.Envelope{Type: chat.TypePong})
				}()
			}
			continue
		case chat.TypeWelcome:
			e.mu.Lock()
			if env.Session != "" {
				e.session = env.Session
			}
			e.mu.Unlock()
			continue
		case chat.TypeError:
			if env.CID != "" && e.resolve(env) {
				continue
			}
			if env.Code == chat.CodeGap && env.First > 0 {
				e.mu.Lock()
				e.recv.skipTo(env.First - 1)
				e.mu.Unlock()
			}
			if EndsConnection(env.Code) {
				// replaced, slow_consumer, heartbeat_timeout, shutdown: the connection ends
				// and the engine resumes; the caller need not see it.
				e.opt.Logger.Debug("server ended the connection", "transport", e.name, "code", env.Code)
				continue
			}
			// A gap, or an error for a command this client did not send with Send (a raw
			// envelope, an abandoned Send): the caller sees it on Messages.
		}
		// An answer resolves its Send even when its seq was seen before: a command sent
		// again with the same cid gets the same ok, with the same seq.
		resolved := false
		if env.Type == chat.TypeOK || (env.CID != "" && env.Type == chat.TypePresence) {
			resolved = e.resolve(env)
		}
		if env.Seq > 0 {
			e.mu.Lock()
			fresh := e.recv.add(env.Seq)
			e.mu.Unlock()
			if !fresh {
				continue
			}
		}
		if env.Type == chat.TypeOK && resolved {
			continue // Send returns it
		}
		select {
		case e.msgs <- Delivery{Env: env, At: at}:
		case <-e.ctx.Done():
			return
		}
	}
}

// EndsConnection reports whether an error code without a cid is the server ending the
// connection (the engine reconnects or stops) rather than news for the caller.
func EndsConnection(code string) bool {
	switch code {
	case chat.CodeReplaced, chat.CodeSlowConsumer, chat.CodeHeartbeat, chat.CodeShutdown,
		chat.CodeExpired, chat.CodeUnknownSession, chat.CodeUnauthorized:
		return true
	}
	return false
}

// resolve hands an answer to the Sends waiting for its cid and reports whether there were any.
// They stop waiting for that cid at once, so a later copy of the answer (a command sent again
// gets its ok again) is not swallowed by a Send that is returning: it reaches Messages.
func (e *Engine) resolve(env chat.Envelope) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	chs := e.pending[env.CID]
	for _, ch := range chs {
		select {
		case ch <- env:
		default:
		}
	}
	delete(e.pending, env.CID)
	return len(chs) > 0
}

// NewCID returns a fresh client id.
func (e *Engine) NewCID() chat.CID {
	return chat.StringCID(e.name + "-" + strconv.FormatUint(e.cidN.Add(1), 36))
}

// Send sends a command and waits for its answer, sending it again every RetryInterval (and after
// every reconnect) until the answer comes. The server deduplicates on cid, so a command is done
// once however often it is sent.
func (e *Engine) Send(ctx context.Context, env chat.Envelope) (chat.Envelope, error) {
	if env.CID == "" {
		env.CID = e.NewCID()
	}
	ch := make(chan chat.Envelope, 1)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return chat.Envelope{}, ErrClosed
	}
	e.pending[env.CID] = append(e.pending[env.CID], ch)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		chs := e.pending[env.CID]
		for i, c := range chs {
			if c == ch {
				chs = append(chs[:i], chs[i+1:]...)
				break
			}
		}
		if len(chs) == 0 {
			delete(e.pending, env.CID)
		} else {
			e.pending[env.CID] = chs
		}
		e.mu.Unlock()
	}()
	// An unavailable answer (a store or node that could not do it now; a session that moved
	// between server nodes) is not the end: the command is sent again soon, with the same cid.
	retryable := func(r chat.Envelope) bool {
		if r.Type != chat.TypeError || r.Code != chat.CodeUnavailable {
			return false
		}
		e.mu.Lock()
		e.pending[env.CID] = append(e.pending[env.CID], ch)
		e.mu.Unlock()
		return true
	}
	retry := time.NewTimer(0)
	defer retry.Stop()
	<-retry.C
	for {
		e.mu.Lock()
		conn, ready, broken, gone := e.conn, e.ready, e.broken, e.gone
		e.mu.Unlock()
		if gone != nil {
			return chat.Envelope{}, errors.Join(ErrSessionGone, gone)
		}
		select {
		case <-ready:
		case r := <-ch:
			if retryable(r) {
				continue
			}
			return answer(r)
		case <-ctx.Done():
			return chat.Envelope{}, ctx.Err()
		case <-e.ctx.Done():
			return chat.Envelope{}, ErrClosed
		}
		if conn == nil {
			continue // ready closed before conn was read: look again
		}
		replies, err := conn.Send(ctx, env)
		if len(replies) > 0 {
			e.handle(conn, replies, time.Now())
		}
		if err != nil {
			var ce *chat.Error
			if errors.As(err, &ce) && ce.Code != chat.CodeUnavailable {
				if e.terminal(err) {
					return chat.Envelope{}, errors.Join(ErrSessionGone, err)
				}
				return chat.Envelope{}, err
			}
		}
		wait := e.opt.RetryInterval
		if err != nil && wait > 250*time.Millisecond {
			wait = 250 * time.Millisecond // the connection failed: try again soon
		}
		retry.Reset(wait)
	wait:
		for {
			select {
			case r := <-ch:
				if retryable(r) {
					retry.Reset(100 * time.Millisecond)
					continue wait
				}
				return answer(r)
			case <-broken: // send again on the next connection, without waiting for the retry
				retry.Stop() // Go 1.23 timers: no stale value to drain
			case <-retry.C:
			case <-ctx.Done():
				return chat.Envelope{}, ctx.Err()
			case <-e.ctx.Done():
				return chat.Envelope{}, ErrClosed
			}
			break
		}
	}
}

func answer(r chat.Envelope) (chat.Envelope, error) {
	if err := r.AsError(); err != nil {
		return r, err
	}
	return r, nil
}

// seqSet records which seqs have arrived: all up to mark, and the ones in above.
type seqSet struct {
	mark  uint64
	above map[uint64]struct{}
}

// add records seq and reports whether it is new.
func (s *seqSet) add(seq uint64) bool {
	if seq <= s.mark {
		return false
	}
	if seq == s.mark+1 {
		s.mark++
		for len(s.above) > 0 {
			if _, ok := s.above[s.mark+1]; !ok {
				break
			}
			delete(s.above, s.mark+1)
			s.mark++
		}
		return true
	}
	if _, ok := s.above[seq]; ok {
		return false
	}
	if s.above == nil {
		s.above = map[uint64]struct{}{}
	}
	s.above[seq] = struct{}{}
	return true
}

// skipTo accepts that everything up to seq is gone (the server said gap).
func (s *seqSet) skipTo(seq uint64) {
	if seq <= s.mark {
		return
	}
	s.mark = seq
	for q := range s.above {
		if q <= seq {
			delete(s.above, q)
		}
	}
	for {
		if _, ok := s.above[s.mark+1]; !ok {
			break
		}
		delete(s.above, s.mark+1)
		s.mark++
	}
}

// SendRaw sends b as one envelope on the current connection, unchecked and without retries (for
// tests: malformed envelopes). Answers not tied to a pending Send arrive on Messages. It returns
// ErrNoRaw if the transport's Conn does not implement RawConn.
func (e *Engine) SendRaw(ctx context.Context, b []byte) error {
	for {
		e.mu.Lock()
		conn, ready, gone, closed := e.conn, e.ready, e.gone, e.closed
		e.mu.Unlock()
		if closed {
			return ErrClosed
		}
		if gone != nil {
			return errors.Join(ErrSessionGone, gone)
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return ctx.Err()
		case <-e.ctx.Done():
			return ErrClosed
		}
		if conn == nil {
			continue
		}
		rc, ok := conn.(RawConn)
		if !ok {
			return fmt.Errorf("%s: %w", e.name, ErrNoRaw)
		}
		replies, err := rc.SendRaw(ctx, b)
		if len(replies) > 0 {
			e.handle(conn, replies, time.Now())
		}
		return err
	}
}
