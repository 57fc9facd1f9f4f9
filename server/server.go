// Package server assembles the chat server: the hub, every transport's handler on one HTTP
// listener, WebTransport on a UDP socket with the same port number, and the web page. `lab serve`
// and the lab's server process run it; tests run it in-process.
//
// Goroutines: Serve runs the HTTP server and the WebTransport server until Shutdown, which tells
// every session (error code shutdown), stops both servers, and waits for every connection
// goroutine.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/shortpoll"
	"github.com/wirelab/wirelab/transports/webtransport"
)

// Config configures a Server. The zero value of every field means its default.
type Config struct {
	Hub       chat.Config
	Transport transports.ServerOptions
	// CertFile and KeyFile hold WebTransport's certificate; empty means one is generated at start
	// (ECDSA P-256, valid 13 days).
	CertFile, KeyFile string
	// WTLoss, if set, records which messages QUIC packet losses hit (the lab's stall attribution).
	WTLoss *webtransport.LossMap
	// Web serves the page at / (default: a short text page pointing at docs/PROTOCOL.md).
	Web http.Handler
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Hold is TEST-ONLY (hold.go): hold every Hold.Every-th message Hold.Delay before
	// delivering it. Nil means what HoldEnv (WIRELAB_TEST_HOLD) says: usually nothing.
	Hold *Hold
}

// Server is a running chat node.
type Server struct {
	Hub  *chat.Hub
	T    *transports.Server
	mux  *http.ServeMux
	http *http.Server
	wt   wtServer
	log  *slog.Logger

	once   sync.Once
	errMu  sync.Mutex
	closed chan struct{}
}

// wtServer is the WebTransport side (transports/webtransport), nil until it is set up.
type wtServer interface {
	Serve(pc net.PacketConn) error
	Close() error
	CertHash() [32]byte
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
	m.HandleFunc("/api/session", t.HandleSession)
	m.HandleFunc("/api/send", t.HandleSend)
	s.handleGet("/api/poll", shortpoll.Handler(t))
	if err := s.setupTransports(cfg); err != nil {
		_ = hub.Shutdown(context.Background())
		return nil, err
	}
	web := cfg.Web
	if web == nil {
		web = http.HandlerFunc(defaultPage)
	}
	m.Handle("/", web)
	s.http = &http.Server{
		Handler:           m,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	return s, nil
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
