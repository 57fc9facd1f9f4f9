package server

import (
	"github.com/wirelab/wirelab/transports/websocket"
)

// setupTransports mounts every transport besides shortpoll and the two shared endpoints. Each
// transport package adds its routes here, one block each.
func (s *Server) setupTransports(cfg Config) error {
	_ = cfg
	// longpoll: s.mux.Handle("GET /api/longpoll", longpoll.Handler(s.T))
	// stream:   s.mux.Handle("GET /api/stream", stream.Handler(s.T))
	// sse:      s.mux.Handle("GET /api/sse", sse.Handler(s.T))
	s.mux.Handle("GET "+websocket.Path, websocket.Handler(s.T))
	// webtransport: build it from cfg.CertFile/KeyFile, set s.wt, and mount
	//   s.mux.Handle("GET /api/wt-cert-hash", ...)
	return nil
}
