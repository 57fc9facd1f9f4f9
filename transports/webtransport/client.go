package webtransport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/qlogwriter"
	wt "github.com/quic-go/webtransport-go"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// maxIncomingUni is how many unidirectional streams the client lets the server have open at once.
const maxIncomingUni = 1000

// ctlHeaderLen is the length of the WebTransport header that starts the control stream's upstream
// bytes on the wire: the stream type 0x41 (a 2-byte varint) and the session id (the CONNECT
// stream's id, 0: each QUIC connection carries one session, 1 byte). A ConnObserver counts
// stream offsets as QUIC does.
const ctlHeaderLen = 3

// maxUniEnvelope bounds what the client reads from one unidirectional stream.
const maxUniEnvelope = 16 << 20

// Client is a WebTransport chat client in one of the three modes.
type Client struct {
	*transports.Engine
	d *Dialer
}

var _ transports.Client = (*Client)(nil)

// The three transports' names, as scenario files and the web page spell them.
const (
	StreamName   = "wt-stream"
	UniName      = "wt-uni"
	DatagramName = "wt-datagram"
)

// ModeOf returns the mode of a transport name (wt-stream, wt-uni, wt-datagram).
func ModeOf(name string) (string, error) {
	switch name {
	case StreamName:
		return ModeStream, nil
	case UniName:
		return ModeUni, nil
	case DatagramName:
		return ModeDatagram, nil
	}
	return "", fmt.Errorf("webtransport: %q is not a WebTransport transport (wt-stream, wt-uni, wt-datagram)", name)
}

// NewClient returns a client of the named transport (wt-stream, wt-uni or wt-datagram; anything
// else panics); Connect opens the session.
func NewClient(name string, opt transports.Options) *Client {
	d := NewDialer(name, opt)
	return &Client{Engine: transports.NewEngine(name, d, opt), d: d}
}

// NewStreamClient returns a wt-stream client.
func NewStreamClient(opt transports.Options) *Client { return NewClient(StreamName, opt) }

// NewUniClient returns a wt-uni client.
func NewUniClient(opt transports.Options) *Client { return NewClient(UniName, opt) }

// NewDatagramClient returns a wt-datagram client.
func NewDatagramClient(opt transports.Options) *Client {
	return NewClient(DatagramName, opt)
}

// Observe makes the client tell o which command each of its QUIC connections carries where
// (the lab attributes upstream losses with it). Call it before Connect.
func (c *Client) Observe(o ClientObserver) { c.d.Observe(o) }

// Close ends the client, then its QUIC transport (and the UDP socket if the client opened it).
func (c *Client) Close() error {
	err := c.Engine.Close()
	return errors.Join(err, c.d.Close())
}

// NewDialer returns the dialer of the named transport (the auto transport switches between
// dialers). Its Close releases the QUIC transport once no connection is needed any more.
func NewDialer(name string, opt transports.Options) *Dialer {
	mode, err := ModeOf(name)
	if err != nil {
		panic(err)
	}
	return &Dialer{opt: opt.WithDefaults(), mode: mode}
}

// Dialer opens WebTransport connections for a transports.Engine: one QUIC connection and one
// session each, all on one quic.Transport over Options.PacketConn (or a UDP socket of its own).
type Dialer struct {
	opt  transports.Options
	mode string

	mu     sync.Mutex
	tr     *quic.Transport
	wtt    *wt.Transport
	ownPC  net.PacketConn
	closed bool

	wttUsed bool
	obs     ClientObserver
}

// Observe makes the dialer's connections tell o which command they carry where. Call it before
// the first Dial.
func (d *Dialer) Observe(o ClientObserver) {
	d.mu.Lock()
	d.obs = o
	d.mu.Unlock()
}

// Close closes the QUIC transport; connections still open are cut.
func (d *Dialer) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var err error
	if d.wttUsed {
		_ = d.wtt.Close() // (it panics if it never made a connection)
	}
	if d.tr != nil {
		err = d.tr.Close()
	}
	if d.ownPC != nil {
		err = errors.Join(err, d.ownPC.Close())
	}
	return err
}

func (d *Dialer) transport() (*quic.Transport, *wt.Transport, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, nil, transports.ErrClosed
	}
	if d.tr == nil {
		pc := d.opt.PacketConn
		if pc == nil {
			var err error
			pc, err = net.ListenPacket("udp", ":0")
			if err != nil {
				return nil, nil, fmt.Errorf("webtransport: opening a UDP socket: %w", err)
			}
			d.ownPC = pc
		}
		d.tr = &quic.Transport{Conn: pc}
		d.wtt = &wt.Transport{}
	}
	return d.tr, d.wtt, nil
}

func (d *Dialer) tlsConfig(host string) *tls.Config {
	if d.opt.TLS != nil {
		c := d.opt.TLS.Clone()
		if len(c.NextProtos) == 0 {
			c.NextProtos = []string{http3.NextProtoH3}
		}
		return c
	}
	c := &tls.Config{NextProtos: []string{http3.NextProtoH3}, ServerName: host, MinVersion: tls.VersionTLS13}
	if len(d.opt.CertHashes) > 0 {
		hashes := d.opt.CertHashes
		c.InsecureSkipVerify = true // verified by hash below, as a browser's serverCertificateHashes
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("webtransport: the server sent no certificate")
			}
			h := sha256.Sum256(cs.PeerCertificates[0].Raw)
			for _, want := range hashes {
				if h == want {
					return nil
				}
			}
			return fmt.Errorf("webtransport: the server's certificate hash %x is not in Options.CertHashes (get it from GET /api/wt-cert-hash)", h)
		}
	}
	return c
}

func quicConfig() *quic.Config {
	return &quic.Config{
		EnableDatagrams:                  true,
		EnableStreamResetPartialDelivery: true,
		MaxIdleTimeout:                   IdleTimeout,
		KeepAlivePeriod:                  KeepAlive,
		MaxIncomingUniStreams:            maxIncomingUni,
	}
}

// Dial opens a QUIC connection and a WebTransport session on it, opens the control stream and
// reads the welcome (or the error that ends the attempt).
func (d *Dialer) Dial(ctx context.Context, session string, after uint64) (transports.Conn, chat.Envelope, error) {
	base, err := url.Parse(d.opt.URL)
	if err != nil || base.Host == "" {
		return nil, chat.Envelope{}, fmt.Errorf("webtransport: Options.URL %q is not a base URL like http://127.0.0.1:8080", d.opt.URL)
	}
	addr, err := net.ResolveUDPAddr("udp", hostPort(base))
	if err != nil {
		return nil, chat.Envelope{}, fmt.Errorf("webtransport: resolving %s: %w", base.Host, err)
	}
	tr, wtt, err := d.transport()
	if err != nil {
		return nil, chat.Envelope{}, err
	}
	q := url.Values{"user": {d.opt.User}}
	if d.mode != ModeStream {
		q.Set("mode", d.mode)
	}
	if session != "" {
		q.Set("session", session)
		q.Set("after", strconv.FormatUint(after, 10))
	}
	if d.opt.Token != "" {
		q.Set("token", d.opt.Token)
	}
	u := url.URL{Scheme: "https", Host: hostPort(base), Path: Path, RawQuery: q.Encode()}

	qcfg := quicConfig()
	d.mu.Lock()
	var trace ConnObserver
	if d.obs != nil {
		trace = d.obs.Conn()
	}
	d.mu.Unlock()
	if trace != nil {
		qcfg.Tracer = func(context.Context, bool, quic.ConnectionID) qlogwriter.Trace { return trace }
	}
	qc, err := tr.Dial(ctx, addr, d.tlsConfig(base.Hostname()), qcfg)
	if err != nil {
		return nil, chat.Envelope{}, chat.Errorf(chat.CodeUnavailable, "QUIC handshake with %s: %v", addr, err)
	}
	fail := func(err error) (transports.Conn, chat.Envelope, error) {
		_ = qc.CloseWithError(0, "")
		return nil, chat.Envelope{}, err
	}
	d.mu.Lock()
	d.wttUsed = true
	d.mu.Unlock()
	cc, err := wtt.NewClientConn(qc)
	if err != nil {
		return fail(err)
	}
	rsp, ws, err := cc.Dial(ctx, u.String(), nil)
	if err != nil {
		if rsp != nil {
			return fail(statusError(rsp.StatusCode))
		}
		return fail(chat.Errorf(chat.CodeUnavailable, "opening the WebTransport session: %v", err))
	}
	ctl, err := ws.OpenStreamSync(ctx)
	if err != nil {
		return fail(chat.Errorf(chat.CodeUnavailable, "opening the control stream: %v", err))
	}
	// A stream is invisible to the server until written: an empty line opens it.
	if _, err := ctl.Write([]byte("\n")); err != nil {
		return fail(chat.Errorf(chat.CodeUnavailable, "writing on the control stream: %v", err))
	}
	br := bufio.NewReaderSize(ctl, 4096)
	stop := context.AfterFunc(ctx, func() { _ = ctl.SetReadDeadline(time.Now()) })
	line, err := br.ReadBytes('\n')
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		return fail(chat.Errorf(chat.CodeUnavailable, "reading the welcome: %v", err))
	}
	_ = ctl.SetReadDeadline(time.Time{})
	var welcome chat.Envelope
	if err := jsonUnmarshal(line, &welcome); err != nil {
		return fail(fmt.Errorf("webtransport: the first line is not an envelope: %w", err))
	}
	if welcome.Type == chat.TypeError {
		return fail(welcome.AsError())
	}
	if welcome.Type != chat.TypeWelcome {
		return fail(fmt.Errorf("webtransport: the first line is a %q, not the welcome", welcome.Type))
	}
	sid := welcome.Session
	if sid == "" {
		sid = session
	}
	if trace != nil {
		trace.Attached(sid, ctl.StreamID())
	}
	c := &clientConn{mode: d.mode, qc: qc, ws: ws, ctl: ctl, br: br, trace: trace, ctlOff: ctlHeaderLen + 1,
		in: make(chan []chat.Envelope, 64), done: make(chan struct{}), failed: make(chan struct{}),
		ackKick: make(chan struct{}, 1)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.start()
	return c, welcome, nil
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

func statusError(code int) error {
	switch code {
	case http.StatusForbidden:
		return chat.Errorf(chat.CodeUnauthorized, "the server refused the WebTransport session (HTTP 403: origin not allowed)")
	case http.StatusBadRequest:
		return chat.Errorf(chat.CodeBadJSON, "the server refused the WebTransport session (HTTP 400: bad mode or request)")
	}
	return chat.Errorf(chat.CodeUnavailable, "the server refused the WebTransport session (HTTP %d)", code)
}

// clientConn is one WebTransport session of a client.
type clientConn struct {
	mode   string
	qc     *quic.Conn
	ws     *wt.Session
	ctl    *wt.Stream
	br     *bufio.Reader
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	in     chan []chat.Envelope
	done   chan struct{} // closed by Close
	once   sync.Once
	failed chan struct{} // closed when a reader hit the end of the connection
	fonce  sync.Once
	err    error

	wmu    sync.Mutex   // serializes writes on ctl
	ctlOff int64        // under wmu: bytes written on ctl so far
	trace  ConnObserver // nil unless Dialer.Observe
	after  atomic.Uint64

	ackMu   sync.Mutex
	ackSeqs []uint64
	ackKick chan struct{}
}

func (c *clientConn) start() {
	c.wg.Go(c.readControl)
	if c.mode != ModeStream {
		c.wg.Go(c.acceptUni)
	}
	if c.mode == ModeDatagram {
		c.wg.Go(c.readDatagrams)
		c.wg.Go(c.sendAcks)
	}
}

func (c *clientConn) fail(err error) {
	c.fonce.Do(func() {
		c.err = err
		close(c.failed)
	})
}

func (c *clientConn) deliver(envs []chat.Envelope) bool {
	select {
	case c.in <- envs:
		return true
	case <-c.done:
		return false
	}
}

// readControl reads NDJSON from the control stream, batching what is already buffered.
func (c *clientConn) readControl() {
	var batch []chat.Envelope
	for {
		line, err := c.br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var env chat.Envelope
			if jerr := jsonUnmarshal(line, &env); jerr == nil {
				batch = append(batch, env)
			} else if err == nil {
				err = fmt.Errorf("webtransport: the server sent a line that is not an envelope: %w", jerr)
			}
		}
		if err != nil {
			if len(batch) > 0 {
				c.deliver(batch)
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the server ended the connection
			}
			c.fail(err)
			return
		}
		if n := c.br.Buffered(); n > 0 {
			if b, _ := c.br.Peek(n); bytes.IndexByte(b, '\n') >= 0 {
				continue // another whole line is here already
			}
		}
		if len(batch) > 0 {
			if !c.deliver(batch) {
				return
			}
			batch = nil
		}
	}
}

// acceptUni reads every unidirectional stream in its own goroutine, so that a stream waiting
// for a lost packet does not hold up the others.
func (c *clientConn) acceptUni() {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		us, err := c.ws.AcceptUniStream(c.ctx)
		if err != nil {
			c.fail(err)
			return
		}
		wg.Go(func() {
			b, err := io.ReadAll(io.LimitReader(us, maxUniEnvelope))
			if err != nil {
				return // the stream was reset or the connection ended; resume covers it
			}
			var env chat.Envelope
			if err := jsonUnmarshal(b, &env); err != nil {
				c.fail(fmt.Errorf("webtransport: a unidirectional stream holds no envelope: %w", err))
				return
			}
			if env.Seq > 0 && c.mode == ModeDatagram {
				c.queueAck(env.Seq)
			}
			c.deliver([]chat.Envelope{env})
		})
	}
}

// readDatagrams reads envelope datagrams and queues their acks.
func (c *clientConn) readDatagrams() {
	for {
		b, err := c.ws.ReceiveDatagram(c.ctx)
		if err != nil {
			c.fail(err)
			return
		}
		env, err := parseDatagramEnvelope(b)
		if err != nil {
			continue // a datagram is not worth ending the connection for
		}
		if env.Seq > 0 {
			c.queueAck(env.Seq)
		}
		if !c.deliver([]chat.Envelope{env}) {
			return
		}
	}
}

func (c *clientConn) queueAck(seq uint64) {
	c.ackMu.Lock()
	c.ackSeqs = append(c.ackSeqs, seq)
	c.ackMu.Unlock()
	signal(c.ackKick)
}

// sendAcks sends what readDatagrams queued, as few datagrams as it can.
func (c *clientConn) sendAcks() {
	var buf []byte
	var seqs []uint64
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.ackKick:
		}
		c.ackMu.Lock()
		seqs, c.ackSeqs = c.ackSeqs, seqs[:0]
		c.ackMu.Unlock()
		upto := c.after.Load()
		for len(seqs) > 0 {
			n := min(len(seqs), MaxAckSeqs)
			buf = AppendAck(buf[:0], upto, seqs[:n])
			seqs = seqs[n:]
			if err := c.ws.SendDatagram(buf); err != nil {
				c.fail(err)
				return
			}
		}
	}
}

func (c *clientConn) Recv(ctx context.Context, after uint64) ([]chat.Envelope, error) {
	c.after.Store(after)
	select {
	case envs := <-c.in:
		return envs, nil
	default:
	}
	select {
	case envs := <-c.in:
		return envs, nil
	case <-c.failed:
		select {
		case envs := <-c.in:
			return envs, nil
		default:
		}
		return nil, c.err
	case <-c.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *clientConn) Send(ctx context.Context, env chat.Envelope) ([]chat.Envelope, error) {
	return nil, c.writeLine(ctx, append(chat.Marshal(&env), '\n'), env.CID)
}

// SendRaw sends b as one line, unchecked (tests send malformed envelopes with it), as Send does.
func (c *clientConn) SendRaw(ctx context.Context, b []byte) ([]chat.Envelope, error) {
	line := make([]byte, 0, len(b)+1)
	line = append(append(line, b...), '\n')
	return nil, c.writeLine(ctx, line, "")
}

var _ transports.RawConn = (*clientConn)(nil)

// writeLine sends one NDJSON line upstream: in wt-stream mode on the control stream; in wt-uni
// and wt-datagram modes on a unidirectional stream of its own, so that a lost packet holds back
// only the command it carried, not the ones sent after it (no head-of-line blocking upstream).
func (c *clientConn) writeLine(ctx context.Context, b []byte, cid chat.CID) error {
	if c.mode == ModeStream {
		return c.writeControl(ctx, b, cid)
	}
	us, err := c.ws.OpenUniStreamSync(ctx)
	if err != nil {
		return chat.Errorf(chat.CodeUnavailable, "opening a command stream: %v", err)
	}
	if c.trace != nil {
		c.trace.UniStream(us.StreamID(), cid)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = us.SetWriteDeadline(dl)
	}
	if _, err := us.Write(b); err != nil {
		us.CancelWrite(0)
		return chat.Errorf(chat.CodeUnavailable, "writing a command stream: %v", err)
	}
	if err := us.Close(); err != nil {
		return chat.Errorf(chat.CodeUnavailable, "closing a command stream: %v", err)
	}
	return nil
}

// writeControl writes b on the control stream.
func (c *clientConn) writeControl(ctx context.Context, b []byte, cid chat.CID) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.ctl.SetWriteDeadline(dl)
		defer c.ctl.SetWriteDeadline(time.Time{}) //nolint:errcheck // nothing to do about it
	}
	if c.trace != nil {
		c.trace.ControlLine(c.ctlOff, c.ctlOff+int64(len(b)), cid)
	}
	n, err := c.ctl.Write(b)
	c.ctlOff += int64(n)
	if err != nil {
		return chat.Errorf(chat.CodeUnavailable, "writing on the control stream: %v", err)
	}
	return nil
}

// Close cuts the connection (the QUIC connection goes with the session) and waits for the
// connection's goroutines.
func (c *clientConn) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.cancel()
		_ = c.qc.CloseWithError(0, "")
	})
	c.wg.Wait()
	return nil
}
