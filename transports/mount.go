package transports

import (
	"net"
	"net/http"
)

// Carrier is what a transport's bytes travel on: TCP (HTTP/1.1 and WebSocket) or QUIC
// (WebTransport over HTTP/3). On TCP a lost segment holds back every later byte of the
// connection (head of line); on QUIC only the stream it belongs to waits.
type Carrier string

// The carriers, as results.json spells them (a run's "carrier").
const (
	TCP  Carrier = "tcp"
	QUIC Carrier = "quic"
)

// Mux is where a transport's server side mounts itself: server/ implements it over one HTTP
// listener and one UDP socket with the same port number. Every transport package has a Mount
// function that takes one.
type Mux interface {
	// HandleGet serves h for GET and HEAD requests on path; any other method is answered 405
	// with "Allow: GET, HEAD".
	HandleGet(path string, h http.Handler)
	// ServeQUIC runs s on the server's UDP socket: from Serve until Shutdown, which closes it.
	ServeQUIC(s QUICServer)
}

// QUICServer is a transport's server on the UDP socket (WebTransport's HTTP/3 server).
type QUICServer interface {
	// Serve serves on pc until Close; it returns nil after Close and does not close pc.
	Serve(pc net.PacketConn) error
	// Close ends every connection and stops Serve.
	Close() error
	// CertHash is the SHA-256 hash of the server's certificate (a browser's
	// serverCertificateHashes).
	CertHash() [32]byte
}
