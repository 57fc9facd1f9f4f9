// Package server assembles the chat server: the hub, every transport's handler on one HTTP
// listener, WebTransport on a UDP socket with the same port number, and the web page. `lab serve`
// and the lab's server process run it; tests run it in-process.
//
// It is the assembly layer, the one package that puts the chat core and every transport (through
// transports/all's table) together. Nothing under transports/ imports it (their tests may, and
// build the servers that the conformance suite and httpclienttest are given). It imports no lab,
// results, netem, scenarios or web: the page comes in as Config.Web, an http.Handler, and the
// network as the listener and socket Serve is given (internal/archtest holds this).
//
// Goroutines: Serve runs the HTTP server and the WebTransport server until Shutdown, which tells
// every session (error code shutdown), stops both servers, and waits for every connection
// goroutine.
package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/webtransport"
)

// Config configures a Server. The zero value of every field means its default.
type Config struct {
	Hub       chat.Config
	Transport transports.ServerOptions
	// CertFile and KeyFile hold WebTransport's certificate; empty means one is generated at start
	// (ECDSA P-256, valid 13 days).
	CertFile, KeyFile string
	// WTObserver, if set, is told which message each WebTransport stream, control-stream range
	// and datagram carries (the lab's QUIC loss attribution); nil observes nothing.
	WTObserver webtransport.ServerObserver
	// Web serves the page at / (default: a short text page pointing at docs/PROTOCOL.md).
	Web http.Handler
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Hold is TEST-ONLY (hold.go): hold every Hold.Every-th message Hold.Delay before
	// delivering it. Nil means what HoldEnv (WIRELAB_TEST_HOLD) says: usually nothing.
	Hold *Hold
	// HTTP bounds the time and header bytes one HTTP connection may take.
	HTTP HTTPLimits
}

// HTTPLimits bound what one HTTP connection may hold: each value is a deadline on the
// connection, after which net/http closes it. The zero value of a field means its default.
type HTTPLimits struct {
	// HeaderTimeout: a request's line and headers must arrive within it (default 10 s). A new
	// connection that sends nothing is closed after it.
	HeaderTimeout time.Duration
	// BodyTimeout: a request's body must arrive within it, counted from the end of its headers
	// (default 10 s). A body that trickles in is cut off: the request gets an error and the
	// connection is closed.
	BodyTimeout time.Duration
	// IdleTimeout: a keep-alive connection that sends no new request for this long is closed
	// (default 30 s).
	IdleTimeout time.Duration
	// WriteTimeout: an answer must be written within it (default 10 s). The streamed and held
	// answers (stream, sse, longpoll) and WebSocket set the same deadline again for each
	// write; WebTransport is not HTTP/1.
	WriteTimeout time.Duration
	// MaxHeaderBytes: the most bytes of request line and headers (default 32 KiB); a larger
	// request gets 431 and the connection is closed.
	MaxHeaderBytes int
}

// WithDefaults returns l with every zero field set to its default.
func (l HTTPLimits) WithDefaults() HTTPLimits {
	if l.HeaderTimeout <= 0 {
		l.HeaderTimeout = 10 * time.Second
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = 10 * time.Second
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 30 * time.Second
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = 10 * time.Second
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 32 << 10
	}
	return l
}

// Server is a running chat node.
type Server struct {
	Hub  *chat.Hub
	T    *transports.Server
	mux  *http.ServeMux
	http *http.Server
	wt   transports.QUICServer // WebTransport's, set when it mounts (transports.go)
	log  *slog.Logger

	once   sync.Once
	errMu  sync.Mutex
	closed chan struct{}
}

// New builds a server; Serve starts it.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Hub.Logger == nil {
		cfg.Hub.Logger = cfg.Logger
	}
	if cfg.Transport.Logger == nil {
		cfg.Transport.Logger = cfg.Logger
	}
	if cfg.Hold == nil {
		h, err := HoldFromEnv()
		if err != nil {
			return nil, err
		}
		cfg.Hold = h
	}
	if cfg.Hold != nil {
		b, err := cfg.Hold.wrap(cfg.Hub.Broker)
		if err != nil {
			return nil, err
		}
		cfg.Hub.Broker = b
		cfg.Logger.Warn("test-only hold", "env", HoldEnv, "every", cfg.Hold.Every, "delay", cfg.Hold.Delay)
	}
	hub, err := chat.NewHub(cfg.Hub)
	if err != nil {
		return nil, err
	}
	t := transports.NewServer(hub, cfg.Transport)
	s := &Server{Hub: hub, T: t, mux: http.NewServeMux(), log: cfg.Logger, closed: make(chan struct{})}
	m := s.mux
	if err := s.setupTransports(cfg); err != nil {
		_ = hub.Shutdown(context.Background())
		return nil, err
	}
	web := cfg.Web
	if web == nil {
		web = http.HandlerFunc(defaultPage)
	}
	m.Handle("/", web)
	lim := cfg.HTTP.WithDefaults()
	s.http = &http.Server{
		Handler:           deadlines(lim, m),
		ReadHeaderTimeout: lim.HeaderTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// deadlines gives every request a write deadline and a request with a body a read deadline for
// it. (http.Server's own ReadTimeout and WriteTimeout would cover a whole response: they would
// cut off every stream.)
func deadlines(lim HTTPLimits, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		_ = rc.SetWriteDeadline(now.Add(lim.WriteTimeout))
		if r.Body != nil && r.Body != http.NoBody {
			_ = rc.SetReadDeadline(now.Add(lim.BodyTimeout))
			r.Body = &bodyDeadline{ReadCloser: r.Body, rc: rc, h: w.Header()}
		}
		next.ServeHTTP(w, r)
	})
}

// bodyDeadline lifts the body's read deadline once the body has been read: net/http then reads
// on in the background to notice a client that goes away, and that read must not time out while
// the handler works. A body that could not be read (its deadline passed) closes the connection
// after the answer: what is left of it on the wire is no request.
type bodyDeadline struct {
	io.ReadCloser
	rc   *http.ResponseController
	h    http.Header
	done bool
}

func (b *bodyDeadline) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.done {
		b.done = true
		if err == io.EOF {
			_ = b.rc.SetReadDeadline(time.Time{})
		} else {
			b.h.Set("Connection", "close")
		}
	}
	return n, err
}

// CertHash is the SHA-256 hash of WebTransport's certificate (what /api/wt-cert-hash serves).
func (s *Server) CertHash() [32]byte {
	if s.wt == nil {
		return [32]byte{}
	}
	return s.wt.CertHash()
}

// Handler is the HTTP handler of every HTTP transport and the page.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve serves HTTP on ln and, if pc is not nil, WebTransport on pc, until Shutdown. It returns
// nil after a clean shutdown.
func (s *Server) Serve(ln net.Listener, pc net.PacketConn) error {
	// Pages served from the listener's address are the server's own origin (WebSocket and
	// WebTransport check it).
	if err := s.T.AddAddr(ln.Addr().String()); err != nil {
		s.log.Warn("the listener's address is not an origin", "err", err)
	}
	errc := make(chan error, 2)
	n := 1
	go func() { errc <- s.http.Serve(ln) }()
	if pc != nil && s.wt != nil {
		n++
		go func() { errc <- s.wt.Serve(pc) }()
	}
	var first error
	for i := 0; i < n; i++ {
		err := <-errc
		if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
			err = nil
		}
		if err != nil && first == nil {
			first = err
			go s.Shutdown(context.Background()) //nolint:errcheck // the error is returned below
		}
	}
	return first
}

// Shutdown tells every session the server is going, stops the servers and waits for every
// connection goroutine, or for ctx. It is idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		herr := s.Hub.Shutdown(ctx)
		serr := s.T.Shutdown(ctx) // hijacked and streaming connections end on the hub's kick
		if s.wt != nil {
			_ = s.wt.Close()
		}
		hterr := s.http.Shutdown(ctx)
		err = errors.Join(herr, serr, hterr)
		close(s.closed)
	})
	if err == nil {
		select {
		case <-s.closed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func defaultPage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("wirelab chat server. The protocol is in docs/PROTOCOL.md; try:\n" +
		"  curl -X POST 'http://" + r.Host + "/api/session?user=alice'\n"))
}
