package server

import (
	"github.com/wirelab/wirelab/transports/longpoll"
	"github.com/wirelab/wirelab/transports/sse"
	"github.com/wirelab/wirelab/transports/stream"
	"github.com/wirelab/wirelab/transports/websocket"
	"github.com/wirelab/wirelab/transports/webtransport"
)

// setupTransports mounts every transport besides shortpoll and the two shared endpoints. Each
// transport package adds its routes here, one block each.
func (s *Server) setupTransports(cfg Config) error {
	_ = cfg
	s.mux.Handle("GET "+longpoll.Path, longpoll.Handler(s.T))
	s.mux.Handle("GET "+stream.Path, stream.Handler(s.T))
	s.mux.Handle("GET "+sse.Path, sse.Handler(s.T))
	s.mux.Handle("GET "+websocket.Path, websocket.Handler(s.T))
	wt, err := webtransport.NewServer(s.T, webtransport.Config{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, Loss: cfg.WTLoss})
	if err != nil {
		return err
	}
	s.wt = wt
	s.mux.Handle("GET /api/wt-cert-hash", wt.CertHashHandler())
	return nil
}
