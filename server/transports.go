package server

import (
	"net/http"

	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/all"
)

// setupTransports mounts the two shared endpoints and every transport in the table
// (transports/all), each on its endpoint.
func (s *Server) setupTransports(cfg Config) error {
	s.mux.HandleFunc("/api/session", s.T.HandleSession)
	s.mux.HandleFunc("/api/send", s.T.HandleSend)
	return all.Mount(mounter{s}, s.T, all.ServerConfig{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, WTObserver: cfg.WTObserver})
}

// mounter is the transports.Mux the transports mount themselves on: the server's HTTP mux and
// its UDP socket.
type mounter struct{ s *Server }

var _ transports.Mux = mounter{}

// HandleGet mounts h for GET (and HEAD) requests on path, and a 405 with "Allow: GET, HEAD" for
// any other method (without it the page's catch-all at / would answer 404).
func (m mounter) HandleGet(path string, h http.Handler) {
	m.s.mux.Handle("GET "+path, h)
	m.s.mux.Handle(path, transports.MethodNotAllowed(http.MethodGet, http.MethodHead))
}

// ServeQUIC makes q the server's QUIC side: Serve serves it on the UDP socket, Shutdown closes
// it. The server has one (WebTransport's).
func (m mounter) ServeQUIC(q transports.QUICServer) { m.s.wt = q }
