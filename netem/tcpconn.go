package netem

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// tcpConn is a net.Conn on a gVisor TCP endpoint, as gonet.TCPConn, with
// the same semantics (deadlines, half-closes, errors) but without its
// per-call allocations: gonet makes a wait entry and channel for every
// Read that blocks and escapes a reader and an entry on every Write. Here
// the wait entries and channels are made once, on first need, and stay
// registered with the endpoint's queue (a notification nobody waits for
// costs a non-blocking channel send). In a fan-out that is about 4.5
// allocations a delivered copy.
type tcpConn struct {
	ep tcpip.Endpoint
	wq *waiter.Queue

	dmu         sync.Mutex
	readTimer   *time.Timer
	readCancel  chan struct{}
	writeTimer  *time.Timer
	writeCancel chan struct{}

	readMu    sync.Mutex
	readEntry waiter.Entry
	readCh    chan struct{}
	sw        tcpip.SliceWriter

	writeMu    sync.Mutex
	writeEntry waiter.Entry
	writeCh    chan struct{}
	wr         bytes.Reader
}

var _ net.Conn = (*tcpConn)(nil)

func newTCPConn(wq *waiter.Queue, ep tcpip.Endpoint) *tcpConn {
	return &tcpConn{ep: ep, wq: wq, readCancel: make(chan struct{}), writeCancel: make(chan struct{})}
}

// notifyEntry registers a wait entry that signals a channel of one slot.
func notifyEntry(wq *waiter.Queue, e *waiter.Entry, mask waiter.EventMask) chan struct{} {
	ch := make(chan struct{}, 1)
	e.Init(waiter.ChannelNotifier(ch), mask)
	wq.EventRegister(e)
	return ch
}

func (c *tcpConn) cancelChans() (r, w <-chan struct{}) {
	c.dmu.Lock()
	r, w = c.readCancel, c.writeCancel
	c.dmu.Unlock()
	return r, w
}

// Read implements net.Conn.Read.
func (c *tcpConn) Read(b []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	deadline, _ := c.cancelChans()
	select {
	case <-deadline:
		return 0, c.opError("read", timeoutError{})
	default:
	}
	for {
		c.sw = b
		res, err := c.ep.Read(&c.sw, tcpip.ReadOptions{})
		c.sw = nil
		switch err.(type) {
		case nil:
			if res.Count != 0 {
				c.ep.ModerateRecvBuf(res.Count)
			}
			return res.Count, nil
		case *tcpip.ErrWouldBlock:
		case *tcpip.ErrClosedForReceive:
			return 0, io.EOF
		default:
			return 0, c.opError("read", errors.New(err.String()))
		}
		if c.readCh == nil {
			// Registered now: read again before waiting, in case data
			// arrived in between.
			c.readCh = notifyEntry(c.wq, &c.readEntry, waiter.ReadableEvents)
			continue
		}
		select {
		case <-deadline:
			return 0, c.opError("read", timeoutError{})
		case <-c.readCh:
		}
	}
}

// Write implements net.Conn.Write.
func (c *tcpConn) Write(b []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_, deadline := c.cancelChans()
	select {
	case <-deadline:
		return 0, c.opError("write", timeoutError{})
	default:
	}
	// The endpoint may take part of b, or nothing (ErrWouldBlock, when
	// its send buffer is full): write the rest after it has room.
	nbytes := 0
	for nbytes != len(b) {
		c.wr.Reset(b[nbytes:])
		n, err := c.ep.Write(&c.wr, tcpip.WriteOptions{})
		c.wr.Reset(nil)
		nbytes += int(n)
		switch err.(type) {
		case nil:
			continue
		case *tcpip.ErrWouldBlock:
		default:
			return nbytes, c.opError("write", errors.New(err.String()))
		}
		if c.writeCh == nil {
			c.writeCh = notifyEntry(c.wq, &c.writeEntry, waiter.WritableEvents)
			continue
		}
		select {
		case <-deadline:
			return nbytes, c.opError("write", timeoutError{})
		case <-c.writeCh:
		}
	}
	return nbytes, nil
}

// Close implements net.Conn.Close.
func (c *tcpConn) Close() error {
	c.ep.Close()
	return nil
}

// CloseRead shuts down the reading side of the connection.
func (c *tcpConn) CloseRead() error {
	if err := c.ep.Shutdown(tcpip.ShutdownRead); err != nil {
		return c.opError("close", errors.New(err.String()))
	}
	return nil
}

// CloseWrite shuts down the writing side of the connection (a TCP
// half-close: the peer reads EOF).
func (c *tcpConn) CloseWrite() error {
	if err := c.ep.Shutdown(tcpip.ShutdownWrite); err != nil {
		return c.opError("close", errors.New(err.String()))
	}
	return nil
}

// LocalAddr implements net.Conn.LocalAddr.
func (c *tcpConn) LocalAddr() net.Addr {
	a, err := c.ep.GetLocalAddress()
	if err != nil {
		return nil
	}
	return tcpAddr(a)
}

// RemoteAddr implements net.Conn.RemoteAddr.
func (c *tcpConn) RemoteAddr() net.Addr {
	a, err := c.ep.GetRemoteAddress()
	if err != nil {
		return nil
	}
	return tcpAddr(a)
}

func tcpAddr(a tcpip.FullAddress) *net.TCPAddr {
	return &net.TCPAddr{IP: net.IP(a.Addr.AsSlice()), Port: int(a.Port)}
}

func (c *tcpConn) opError(op string, err error) *net.OpError {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// timeoutError is what a Read or Write past its deadline returns (inside a
// net.OpError), as gonet's: a net.Error whose Timeout is true, and
// os.ErrDeadlineExceeded for errors.Is.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
func (timeoutError) Is(target error) bool {
	return target == os.ErrDeadlineExceeded
}

// SetDeadline implements net.Conn.SetDeadline.
func (c *tcpConn) SetDeadline(t time.Time) error {
	c.dmu.Lock()
	setDeadline(&c.readCancel, &c.readTimer, t)
	setDeadline(&c.writeCancel, &c.writeTimer, t)
	c.dmu.Unlock()
	return nil
}

// SetReadDeadline implements net.Conn.SetReadDeadline.
func (c *tcpConn) SetReadDeadline(t time.Time) error {
	c.dmu.Lock()
	setDeadline(&c.readCancel, &c.readTimer, t)
	c.dmu.Unlock()
	return nil
}

// SetWriteDeadline implements net.Conn.SetWriteDeadline.
func (c *tcpConn) SetWriteDeadline(t time.Time) error {
	c.dmu.Lock()
	setDeadline(&c.writeCancel, &c.writeTimer, t)
	c.dmu.Unlock()
	return nil
}

// setDeadline arms *cancel to be closed at t (gonet's scheme): a Read or
// Write waiting on the channel it saw when it started wakes up when it is
// closed, including when t is moved into the past while it waits.
func setDeadline(cancel *chan struct{}, timer **time.Timer, t time.Time) {
	if *timer != nil && !(*timer).Stop() {
		// The timer fired (or is firing): its channel is or will be
		// closed; use a new one.
		*cancel = make(chan struct{})
	}
	select {
	case <-*cancel:
		*cancel = make(chan struct{}) // closed by an earlier past deadline
	default:
	}
	*timer = nil
	if t.IsZero() {
		return
	}
	d := time.Until(t)
	if d <= 0 {
		close(*cancel)
		return
	}
	ch := *cancel
	*timer = time.AfterFunc(d, func() { close(ch) })
}

// tcpListener is a net.Listener on a gVisor TCP endpoint whose Accept
// returns tcpConn.
type tcpListener struct {
	ep     tcpip.Endpoint
	wq     *waiter.Queue
	mu     sync.Mutex // serializes Accept's use of entry and ch
	entry  waiter.Entry
	ch     chan struct{}
	cancel chan struct{}
	once   sync.Once
}

func newTCPListener(wq *waiter.Queue, ep tcpip.Endpoint) *tcpListener {
	return &tcpListener{ep: ep, wq: wq, cancel: make(chan struct{})}
}

// Accept implements net.Listener.Accept.
func (l *tcpListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		n, wq, err := l.ep.Accept(nil)
		if err == nil {
			return newTCPConn(wq, n), nil
		}
		if _, ok := err.(*tcpip.ErrWouldBlock); !ok {
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: errors.New(err.String())}
		}
		if l.ch == nil {
			l.ch = notifyEntry(l.wq, &l.entry, waiter.ReadableEvents)
			continue
		}
		select {
		case <-l.cancel:
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: net.ErrClosed}
		case <-l.ch:
		}
	}
}

// Close implements net.Listener.Close: it closes the endpoint (a blocked
// Accept then returns its error) and cancels waiting Accepts.
func (l *tcpListener) Close() error {
	l.ep.Close()
	l.once.Do(func() { close(l.cancel) })
	return nil
}

// Addr implements net.Listener.Addr.
func (l *tcpListener) Addr() net.Addr {
	a, err := l.ep.GetLocalAddress()
	if err != nil {
		return nil
	}
	return tcpAddr(a)
}

// dialTCP opens a TCP connection from s to remote.
func dialTCP(ctx context.Context, s *stack.Stack, remote tcpip.FullAddress) (*tcpConn, error) {
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, errors.New(terr.String())
	}
	var e waiter.Entry
	ch := notifyEntry(&wq, &e, waiter.WritableEvents)
	defer wq.EventUnregister(&e)
	if err := ctx.Err(); err != nil {
		ep.Close()
		return nil, err
	}
	terr = ep.Connect(remote)
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		select {
		case <-ctx.Done():
			ep.Close()
			return nil, ctx.Err()
		case <-ch:
		}
		terr = ep.LastError()
	}
	if terr != nil {
		ep.Close()
		return nil, &net.OpError{Op: "connect", Net: "tcp", Addr: tcpAddr(remote), Err: errors.New(terr.String())}
	}
	return newTCPConn(&wq, ep), nil
}
