package lab

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/netem"
	"github.com/wirelab/wirelab/server"
)

// ServerPort is where the server listens on its virtual host: HTTP on TCP, WebTransport on UDP.
const ServerPort = 80

// serverStats is what the server paid in the measured window.
type serverStats struct {
	CPU            time.Duration
	RSSPeak        int64
	RSSBase        int64 // the idle server, before any session
	Requests       int64
	GoroutinesPeak int64
	Separate       bool                // measured in a process of its own
	QUICLost       map[string][]uint64 // session id -> seqs whose own QUIC packets were lost
	SchedMS        float64             // the server process's scheduler delay, p99 ms (0: in the lab's process)
}

// serverHandle is the chat server of one run, on the network's server host.
type serverHandle interface {
	CertHash() [32]byte
	// Mark starts the measured window: counters and peaks restart.
	Mark() error
	// Stats reads the counters since Mark.
	Stats() (serverStats, error)
	Close(ctx context.Context) error
}

// inProcessServer runs the server in the lab's own process, on the virtual host's sockets. Its
// CPU cannot be told apart from the lab's: results say so.
type inProcessServer struct {
	srv  *server.Server
	loss *LossMap
	done chan error
	hash [32]byte

	mark     int64
	gPeak    atomic.Int64
	stop     chan struct{}
	sampling sync.WaitGroup
}

func startInProcess(h *netem.Host, hub chat.Config) (*inProcessServer, error) {
	ln, err := h.ListenTCP(ServerPort)
	if err != nil {
		return nil, err
	}
	pc, err := h.ListenPacket(ServerPort)
	if err != nil {
		ln.Close()
		return nil, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub.Logger = quiet
	loss := NewLossMap()
	srv, err := server.New(server.Config{Hub: hub, Logger: quiet, WTObserver: loss})
	if err != nil {
		ln.Close()
		pc.Close()
		return nil, err
	}
	s := &inProcessServer{srv: srv, loss: loss, done: make(chan error, 1), hash: srv.CertHash(), stop: make(chan struct{})}
	go func() { s.done <- srv.Serve(ln, pc) }()
	s.sampling.Add(1)
	go s.sample()
	return s, nil
}

func (s *inProcessServer) sample() {
	defer s.sampling.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if g := int64(runtime.NumGoroutine()); g > s.gPeak.Load() {
				s.gPeak.Store(g)
			}
		}
	}
}

func (s *inProcessServer) CertHash() [32]byte { return s.hash }

func (s *inProcessServer) Mark() error {
	s.mark = s.srv.T.Requests.Load()
	s.loss.Reset()
	s.gPeak.Store(int64(runtime.NumGoroutine()))
	return nil
}

func (s *inProcessServer) Stats() (serverStats, error) {
	return serverStats{Requests: s.srv.T.Requests.Load() - s.mark, GoroutinesPeak: s.gPeak.Load(), QUICLost: s.loss.Lost()}, nil
}

func (s *inProcessServer) Close(ctx context.Context) error {
	close(s.stop)
	s.sampling.Wait()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; serr != nil && err == nil {
		err = fmt.Errorf("server: %w", serr)
	}
	return err
}
