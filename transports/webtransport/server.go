package webtransport

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
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

// Path is where WebTransport sessions are opened.
const Path = "/wt"

// Modes, as the mode query parameter spells them ("" is stream).
const (
	ModeStream   = "stream"
	ModeUni      = "uni"
	ModeDatagram = "datagram"
)

// QUIC timeouts, both sides.
const (
	// IdleTimeout closes a QUIC connection that heard nothing for this long.
	IdleTimeout = 30 * time.Second
	// KeepAlive is how often an otherwise idle QUIC connection sends a packet (keeps NAT
	// bindings and the idle timer alive; the chat heartbeat is separate).
	KeepAlive = 10 * time.Second
	// acceptTimeout is how long the server waits for the client's control stream.
	acceptTimeout = 10 * time.Second
	// finalWrite bounds the write of a closing error envelope.
	finalWrite = 2 * time.Second
	// stuckAfter is how long a writer may stay blocked once its connection is ending.
	stuckAfter = 2 * finalWrite
)

// The WebTransport session limits the server advertises in its HTTP/3 SETTINGS
// (SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI, _UNI and SETTINGS_WT_INITIAL_MAX_DATA). Safari refuses a
// server that advertises SETTINGS_WT_MAX_SESSIONS without them (webtransport-go issue 355), and
// webtransport-go sends them only when its Config says so. They bind only when the client
// advertises its own too (then webtransport-go runs session flow control with capsules); they
// are the QUIC limits below them, so the session layer never limits first.
const (
	// WTMaxIncomingStreams is how many bidirectional streams a client may have open: it needs
	// one, the control stream (quic-go's default MaxIncomingStreams, 100, is the QUIC limit).
	WTMaxIncomingStreams = 100
	// WTMaxIncomingUniStreams is the QUIC limit on unidirectional streams: a wt-uni or
	// wt-datagram client's commands in flight.
	WTMaxIncomingUniStreams = maxIncomingUni
	// WTMaxIncomingData is the session's receive window: 16 MiB, above quic-go's largest
	// connection window (15 MiB).
	WTMaxIncomingData = 16 << 20
)

// Config configures a Server. The zero value of every field means its default.
type Config struct {
	// CertFile and KeyFile are PEM files; empty means a certificate is generated at start.
	CertFile, KeyFile string
	// Observer, if set, is told which message each stream, control-stream range and datagram
	// carries (the lab attributes QUIC losses with it); nil observes nothing.
	Observer ServerObserver
}

// Server is the WebTransport server: an HTTP/3 server whose handler upgrades /wt.
type Server struct {
	t      *transports.Server
	wts    *wt.Server
	cert   tls.Certificate
	hash   [32]byte
	closed atomic.Bool

	retransmits atomic.Int64
	sessions    atomic.Int64
	obs         ServerObserver
}

func tracer(o ServerObserver) func(context.Context, bool, quic.ConnectionID) qlogwriter.Trace {
	if o == nil {
		return nil
	}
	return o.Tracer
}

type connKey struct{}

// CertHashPath is the HTTP endpoint that serves the certificate's hash (CertHashHandler).
const CertHashPath = "/api/wt-cert-hash"

// Mount builds the WebTransport server for srv and mounts it: /wt on m's UDP socket (HTTP/3),
// and GET CertHashPath on its HTTP listener, for a browser's serverCertificateHashes.
func Mount(m transports.Mux, srv *transports.Server, cfg Config) error {
	s, err := NewServer(srv, cfg)
	if err != nil {
		return err
	}
	m.HandleGet(CertHashPath, s.CertHashHandler())
	m.ServeQUIC(s)
	return nil
}

var _ transports.QUICServer = (*Server)(nil)

// NewServer builds the WebTransport server for the transports' shared state t; Mount mounts
// it. Tests serve it on a socket of their own.
func NewServer(t *transports.Server, cfg Config) (*Server, error) {
	var cert tls.Certificate
	var err error
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		cert, err = LoadCert(cfg.CertFile, cfg.KeyFile)
	} else {
		cert, err = GenerateCert(time.Now())
	}
	if err != nil {
		return nil, err
	}
	s := &Server{t: t, cert: cert, hash: CertHash(cert), obs: cfg.Observer}
	mux := http.NewServeMux()
	mux.HandleFunc(Path, s.serveWT)
	h3 := &http3.Server{
		Handler:   mux,
		TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}),
		QUICConfig: &quic.Config{
			EnableDatagrams:                  true,
			EnableStreamResetPartialDelivery: true,
			MaxIdleTimeout:                   IdleTimeout,
			KeepAlivePeriod:                  KeepAlive,
			MaxIncomingUniStreams:            maxIncomingUni, // a wt-uni client's commands in flight
			Tracer:                           tracer(cfg.Observer),
		},
		Logger: t.Log,
		ConnContext: func(ctx context.Context, c *quic.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
	s.wts = &wt.Server{H3: h3, CheckOrigin: t.CheckOrigin, Config: &wt.Config{
		MaxIncomingStreams:    WTMaxIncomingStreams,
		MaxIncomingUniStreams: WTMaxIncomingUniStreams,
		MaxIncomingData:       WTMaxIncomingData,
	}}
	return s, nil
}

// Serve serves WebTransport on pc until Close; it returns nil after Close. It does not close pc.
func (s *Server) Serve(pc net.PacketConn) error {
	err := s.wts.Serve(pc)
	if s.closed.Load() {
		return nil
	}
	return err
}

// Close closes every WebTransport connection and stops Serve.
func (s *Server) Close() error {
	s.closed.Store(true)
	return s.wts.Close()
}

// CertHash is the SHA-256 of the server's certificate (DER).
func (s *Server) CertHash() [32]byte { return s.hash }

// Retransmits is how many datagrams wt-datagram sessions have sent again for want of an ack.
func (s *Server) Retransmits() int64 { return s.retransmits.Load() }

// Sessions is how many WebTransport sessions are being served.
func (s *Server) Sessions() int64 { return s.sessions.Load() }

// Certificate is the server's certificate.
func (s *Server) Certificate() tls.Certificate { return s.cert }

// CertHashHandler serves GET /api/wt-cert-hash.
func (s *Server) CertHashHandler() http.Handler { return CertHashHandler(s.hash) }

// serveWT upgrades one request on /wt and serves the session until it ends.
func (s *Server) serveWT(w http.ResponseWriter, r *http.Request) {
	s.t.Requests.Add(1)
	if r.Method != http.MethodConnect {
		transports.WriteMethodNotAllowed(w, r, http.MethodConnect, "an extended CONNECT (WebTransport) to "+Path+"?user=NAME")
		return
	}
	mode := r.URL.Query().Get("mode")
	switch mode {
	case "", ModeStream:
		mode = ModeStream
	case ModeUni, ModeDatagram:
	default:
		http.Error(w, `mode must be stream, uni or datagram`, http.StatusBadRequest)
		return
	}
	if s.closed.Load() || s.t.Context().Err() != nil {
		http.Error(w, "the server is shutting down", http.StatusServiceUnavailable)
		return
	}
	done := s.t.Track()
	defer done()
	ws, err := s.wts.Upgrade(w, r)
	if err != nil {
		s.t.Log.Debug("webtransport upgrade failed", "err", err)
		if !s.t.CheckOrigin(r) {
			w.WriteHeader(http.StatusForbidden)
		} else {
			w.WriteHeader(http.StatusBadRequest)
		}
		return
	}
	qc, _ := r.Context().Value(connKey{}).(*quic.Conn)
	s.sessions.Add(1)
	defer s.sessions.Add(-1)
	c := &serverConn{srv: s.t, ws: ws, qc: qc, mode: mode, retransmits: &s.retransmits}
	if s.obs != nil && qc != nil {
		if ra, err := netip.ParseAddrPort(qc.RemoteAddr().String()); err == nil {
			c.obs = s.obs.Session(ra)
		}
	}
	c.serve(r)
}

// serverConn is the server side of one WebTransport session.
type serverConn struct {
	srv  *transports.Server
	ws   *wt.Session
	qc   *quic.Conn
	mode string
	ctl  *wt.Stream
	cs   *chat.Session
	cur  *chat.Cursor
	una  *unacked // datagram mode

	retransmits *atomic.Int64
	obs         SessionObserver // nil unless the server has an Observer

	wmu       sync.Mutex // serializes writes on ctl
	finalSent bool       // under wmu: a closing envelope was written
	ctlOff    int64      // under wmu: bytes written on ctl so far
	dgmu      sync.Mutex // serializes datagram sends, so the observer sees them in order
}

func (c *serverConn) serve(r *http.Request) {
	defer func() { _ = c.ws.CloseWithError(0, "") }()
	actx, cancel := context.WithTimeout(c.srv.Context(), acceptTimeout)
	str, err := c.ws.AcceptStream(actx)
	cancel()
	if err != nil {
		c.srv.Log.Debug("webtransport client opened no stream", "err", err)
		return
	}
	c.ctl = str
	sess, after, _, err := c.srv.OpenOrResume(r)
	if err == nil {
		c.cs = sess
		c.cur, err = sess.Attach(chat.AttachOptions{After: after, Heartbeat: true})
	}
	if err != nil {
		c.writeFinal(chat.ErrorEnvelope("", err))
		c.linger()
		return
	}
	defer c.cur.Detach()
	if c.obs != nil {
		c.obs.Attached(sess.ID(), c.ctl.StreamID())
	}
	welcome := chat.Welcome(sess)
	_ = c.ctl.SetWriteDeadline(time.Now().Add(finalWrite))
	n, err := c.ctl.Write(append(chat.Marshal(&welcome), '\n'))
	c.wmu.Lock()
	c.ctlOff += int64(n)
	c.wmu.Unlock()
	if err != nil {
		return
	}
	_ = c.ctl.SetWriteDeadline(time.Time{})

	ctx, stop := context.WithCancel(c.srv.Context())
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		defer stop()
		c.readControl(ctx)
	})
	if c.mode != ModeStream {
		wg.Go(func() { c.readCommandStreams(ctx) })
	}
	if c.mode == ModeDatagram {
		c.una = newUnacked()
		wg.Go(func() {
			defer stop()
			c.readAcks(ctx)
		})
		wg.Go(func() { c.retransmit(ctx) })
	}
	writerDone := make(chan struct{})
	wg.Go(func() { c.watch(ctx, stop, writerDone) })
	c.write(ctx)
	close(writerDone)
	stop()
	c.wmu.Lock()
	final := c.finalSent
	c.wmu.Unlock()
	if final {
		c.linger()
	}
	// Close before waiting: the reader may be blocked on a client that went silent.
	_ = c.ws.CloseWithError(0, "")
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	t := time.NewTimer(stuckAfter)
	defer t.Stop()
	select {
	case <-waited:
	case <-t.C:
		// A datagram send blocked on a silent peer (QUIC's datagram queue belongs to the
		// connection, so closing the session does not free it).
		if c.qc != nil {
			_ = c.qc.CloseWithError(0, "the session's goroutines were stuck")
		}
		<-waited
	}
}

// watch ends the connection's goroutines when the session closes (the client went). When the
// connection ends for another reason (shutdown, the reader stopped) it gives the writer
// stuckAfter to finish; a writer still blocked then is writing to a peer that went silent (a
// stream write or a datagram waiting for congestion window), so the QUIC connection is closed
// under it.
func (c *serverConn) watch(ctx context.Context, stop context.CancelFunc, writerDone <-chan struct{}) {
	select {
	case <-c.ws.Context().Done():
		stop()
		return
	case <-ctx.Done():
	}
	t := time.NewTimer(stuckAfter)
	defer t.Stop()
	select {
	case <-c.ws.Context().Done():
	case <-writerDone:
	case <-t.C:
		if c.qc != nil {
			_ = c.qc.CloseWithError(0, "the session's writer was stuck")
		} else {
			_ = c.ws.CloseWithError(0, "")
		}
	}
}

// linger lets the client read a closing envelope and close first (within finalWrite): closing
// the session at once could discard the envelope in flight.
func (c *serverConn) linger() {
	t := time.NewTimer(finalWrite)
	defer t.Stop()
	select {
	case <-c.ws.Context().Done():
	case <-t.C:
	}
}

// write is the downstream loop: it ends when the cursor ends (writing its reason), the
// connection breaks, or ctx is done.
func (c *serverConn) write(ctx context.Context) {
	dst := make([]chat.Entry, 0, 64)
	buf := make([]byte, 0, 4096)
	for {
		b, err := c.cur.Next(ctx, dst)
		if err != nil {
			if ce := (*chat.Error)(nil); errors.As(err, &ce) {
				c.writeFinal(chat.ErrorEnvelope("", ce))
			}
			return
		}
		buf = buf[:0]
		for i := range b.Direct {
			buf = append(append(buf, chat.Marshal(&b.Direct[i])...), '\n')
		}
		if b.Ping {
			buf = append(buf, `{"type":"ping"}`+"\n"...)
		}
		type span struct {
			off, end int
			seq      uint64
		}
		var spans []span
		if c.mode == ModeStream {
			for _, e := range b.Entries {
				start := len(buf)
				buf = append(e.AppendJSON(buf), '\n')
				if c.obs != nil {
					spans = append(spans, span{start, len(buf), e.Seq})
				}
			}
		}
		if len(buf) > 0 {
			c.wmu.Lock()
			for _, sp := range spans {
				c.obs.ControlLine(c.ctlOff+int64(sp.off), c.ctlOff+int64(sp.end), sp.seq)
			}
			n, err := c.ctl.Write(buf)
			c.ctlOff += int64(n)
			c.wmu.Unlock()
			if err != nil {
				return
			}
		}
		switch c.mode {
		case ModeUni:
			for _, e := range b.Entries {
				buf = append(e.AppendJSON(buf[:0]), '\n')
				if err := c.sendUni(ctx, buf, e.Seq); err != nil {
					return
				}
			}
		case ModeDatagram:
			for _, e := range b.Entries {
				if err := c.sendDatagram(ctx, e, buf[:0]); err != nil {
					return
				}
			}
		}
		if len(b.Entries) > 0 {
			dst = b.Entries[:0]
		}
	}
}

// sendUni writes one envelope on a new unidirectional stream.
func (c *serverConn) sendUni(ctx context.Context, b []byte, seq uint64) error {
	us, err := c.ws.OpenUniStreamSync(ctx)
	if err != nil {
		return err
	}
	if c.obs != nil {
		c.obs.UniStream(us.StreamID(), seq)
	}
	if _, err := us.Write(b); err != nil {
		us.CancelWrite(0)
		return err
	}
	return us.Close()
}

// sendDatagram sends e as a datagram and keeps it until acked, or on a unidirectional stream if
// it does not fit in one.
func (c *serverConn) sendDatagram(ctx context.Context, e chat.Entry, buf []byte) error {
	buf = e.AppendJSON(buf)
	now := time.Now()
	if err := c.una.add(ctx, e, now, c.rto()); err != nil {
		return err
	}
	err := c.datagram(buf, e.Seq)
	if tooLarge := (*quic.DatagramTooLargeError)(nil); errors.As(err, &tooLarge) {
		c.una.remove(e.Seq) // reliable instead
		return c.sendUni(ctx, append(buf, '\n'), e.Seq)
	}
	return err
}

// datagram sends one datagram carrying seq, telling the observer in send order.
func (c *serverConn) datagram(b []byte, seq uint64) error {
	c.dgmu.Lock()
	defer c.dgmu.Unlock()
	if c.obs != nil {
		c.obs.Datagram(seq)
	}
	err := c.ws.SendDatagram(b)
	if err != nil && c.obs != nil {
		c.obs.DatagramUnsent()
	}
	return err
}

func (c *serverConn) rto() time.Duration {
	if c.qc == nil {
		return 100 * time.Millisecond
	}
	st := c.qc.ConnectionStats()
	return rto(st.SmoothedRTT, st.MeanDeviation)
}

// retransmit sends datagrams again whose ack is late.
func (c *serverConn) retransmit(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var due []chat.Entry
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.una.added:
		}
		var next time.Time
		due, next = c.una.due(time.Now(), c.rto(), due[:0])
		slices.SortFunc(due, func(a, b chat.Entry) int { return cmp.Compare(a.Seq, b.Seq) })
		c.retransmits.Add(int64(len(due)))
		for _, e := range due {
			if c.obs != nil {
				c.obs.DatagramResent(e.Seq)
			}
			buf = e.AppendJSON(buf[:0])
			if err := c.datagram(buf, e.Seq); err != nil {
				var tooLarge *quic.DatagramTooLargeError
				if !errors.As(err, &tooLarge) { // the path shrank: the next try may fit
					return
				}
			}
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		t.Reset(wait)
	}
}

// readAcks reads ack datagrams.
func (c *serverConn) readAcks(ctx context.Context) {
	for {
		b, err := c.ws.ReceiveDatagram(ctx)
		if err != nil {
			return
		}
		a, err := ParseAck(b)
		if err != nil {
			continue // a datagram is not answered: it has no cid and may be lost anyway
		}
		c.cs.Touch()
		c.ackUpTo(a)
	}
}

// ackUpTo applies an ack, ignoring seqs the connection has not been given.
func (c *serverConn) ackUpTo(a Ack) {
	if c.una != nil {
		c.una.ack(a, time.Now())
	}
}

// readControl reads the client's NDJSON commands from the control stream.
func (c *serverConn) readControl(ctx context.Context) {
	lim := c.srv.Hub.Limits()
	sc := bufio.NewScanner(c.ctl)
	sc.Buffer(make([]byte, 0, 4096), lim.FrameLimit()+1)
	for sc.Scan() {
		if !c.command(ctx, sc.Bytes()) {
			return
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		// The error goes out first; then STOP_SENDING ends the client's write of the rest of
		// the line, which would otherwise block (nothing reads it) until the session closes
		// and take the unread error with it.
		c.writeFinal(chat.ErrorEnvelope("", chat.Errorf(chat.CodeTooLarge, "a line is over %d bytes; closing the connection", lim.FrameLimit())))
		c.ctl.CancelRead(tooLargeCode)
	}
}

// tooLargeCode is the stream error code of the STOP_SENDING that ends a line or command stream
// over the frame limit (the client has been sent too_large).
const tooLargeCode wt.StreamErrorCode = 0x413

// readCommandStreams serves the unidirectional streams a wt-uni or wt-datagram client opens
// upstream, one command each (so that a lost packet delays only the command it carried, as
// downstream), each read in its own goroutine. It returns when the session ends, after them.
func (c *serverConn) readCommandStreams(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		rs, err := c.ws.AcceptUniStream(ctx)
		if err != nil {
			return
		}
		wg.Go(func() { c.readCommandStream(ctx, rs) })
	}
}

// readCommandStream handles the NDJSON lines of one upstream unidirectional stream (one
// command, as the Go client sends, or several).
func (c *serverConn) readCommandStream(ctx context.Context, rs *wt.ReceiveStream) {
	lim := c.srv.Hub.Limits()
	stop := context.AfterFunc(ctx, func() { rs.CancelRead(0) })
	defer stop()
	b, err := io.ReadAll(io.LimitReader(rs, int64(lim.FrameLimit())+1))
	if err != nil {
		return // reset by the client, or the session ended: the client sends again
	}
	if len(b) > lim.FrameLimit() {
		rs.CancelRead(tooLargeCode)
		c.cur.Send(chat.ErrorEnvelope("", chat.Errorf(chat.CodeTooLarge, "a command stream is over %d bytes", lim.FrameLimit())))
		return
	}
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		if !c.command(ctx, line) {
			return
		}
	}
}

// command handles one NDJSON line from the client; false when ctx ended.
func (c *serverConn) command(ctx context.Context, line []byte) bool {
	lim := c.srv.Hub.Limits()
	line = trimSpace(line)
	if len(line) == 0 {
		c.cs.Touch()
		return true
	}
	env, err := chat.ParseEnvelope(line, lim)
	if err != nil {
		c.cur.Send(chat.ErrorEnvelope(env.CID, err))
		return true
	}
	if env.Type == chat.TypeAck {
		c.ackUpTo(Ack{Seqs: []uint64{env.Seq}})
	}
	pos := c.cur.Position()
	reply, err := c.cs.Handle(ctx, env)
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		c.cur.Send(chat.ErrorEnvelope(env.CID, err))
		return true
	}
	if reply.CID != "" && reply.Seq != 0 && reply.Seq <= pos {
		// A command sent again whose answer this connection was already given: answer
		// again (same seq; the client resolves it and drops the duplicate). Answers
		// not given yet are on their way through the cursor.
		c.cur.Send(reply)
	}
	return true
}

// writeFinal writes a closing envelope on the control stream, within finalWrite.
func (c *serverConn) writeFinal(env chat.Envelope) {
	if c.ctl == nil {
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.finalSent {
		return
	}
	c.finalSent = true
	_ = c.ctl.SetWriteDeadline(time.Now().Add(finalWrite))
	n, _ := c.ctl.Write(append(chat.Marshal(&env), '\n'))
	c.ctlOff += int64(n)
	_ = c.ctl.Close()
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}
