package server

import (
	"net/http"

	"github.com/wirelab/wirelab/transports"
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
	s.handleGet(longpoll.Path, longpoll.Handler(s.T))
	s.handleGet(stream.Path, stream.Handler(s.T))
	s.handleGet(sse.Path, sse.Handler(s.T))
	s.handleGet(websocket.Path, websocket.Handler(s.T))
	wt, err := webtransport.NewServer(s.T, webtransport.Config{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, Observer: cfg.WTObserver})
	if err != nil {
		return err
	}
	s.wt = wt
	s.handleGet("/api/wt-cert-hash", wt.CertHashHandler())
	return nil
}

// handleGet mounts h for GET (and HEAD) requests on path, and a 405 with "Allow: GET, HEAD" for
// any other method (without it the page's catch-all at / would answer 404).
func (s *Server) handleGet(path string, h http.Handler) {
	s.mux.Handle("GET "+path, h)
	s.mux.Handle(path, transports.MethodNotAllowed(http.MethodGet, http.MethodHead))
}
