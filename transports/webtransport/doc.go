// Package webtransport is the WebTransport transport in its three forms, over HTTP/3 (QUIC, UDP)
// on path /wt of the same port number as HTTP:
//
//   - wt-stream (/wt?user=U): one bidirectional stream that the client opens; NDJSON both ways.
//     The client writes first (a command, or an empty line: QUIC streams are invisible to the
//     peer until written); the server's first line is the welcome.
//   - wt-uni (/wt?user=U&mode=uni): the bidirectional stream carries the welcome, errors and
//     pings; every outbox envelope travels on its own unidirectional stream, and so does every
//     command the Go client sends, so a lost packet delays only the envelope or command it
//     carried (no head-of-line blocking either way). Envelopes arrive out of order; seq says the
//     order. Commands on the control stream are accepted too (the browser page sends them there).
//   - wt-datagram (/wt?user=U&mode=datagram): every outbox envelope is one QUIC datagram,
//     retransmitted by the server until the client acknowledges its seq (ack datagrams, see
//     datagram.go and docs/PROTOCOL.md); one too large for a datagram goes on a unidirectional
//     stream. Commands go upstream as in wt-uni.
//
// Every mode resumes with &session=S&after=N, takes a token as &token=T, and gets pings on the
// bidirectional stream that the client answers with pongs.
//
// The server's certificate is loaded from files or generated at start (ECDSA P-256, valid 13
// days, for 127.0.0.1, ::1 and localhost) so that a browser can trust it by its SHA-256 hash
// (serverCertificateHashes); GET /api/wt-cert-hash serves the hash.
//
// Goroutines. Server: quic-go and webtransport-go run their own per connection; each
// WebTransport session is served by its HTTP/3 handler goroutine (tracked by
// transports.Server, so Shutdown waits for it), which writes downstream, plus one goroutine
// reading the control stream, one accepting the client's command streams (wt-uni, wt-datagram;
// it owns one short-lived goroutine per stream), one watching the session (it closes the QUIC
// connection under a writer stuck on a silent peer) and, in datagram mode, one reading acks and
// one retransmitting. The handler waits for all of them.
// Client: per connection, one goroutine reads the control stream; uni and datagram modes add one
// accepting unidirectional streams (and one short-lived goroutine per stream, so that streams
// are read independently); datagram mode adds one reading datagrams and one sending acks. A
// command is written by the goroutine that sends it. Conn.Close closes the QUIC connection and
// waits for all of them.
//
// Observers. A server's Config.Observer and a client's Observe are told which message or command
// each stream, control-stream range and datagram carries, and see quic-go's trace (as
// quic.Config.Tracer does); the transport measures nothing itself (the lab's QUIC loss
// attribution, lab/quicloss.go, is one observer). They are called on the write paths above.
//
// Files: server.go (Mount, NewServer, the session's writer and readers), client.go (Client and
// its Conn), datagram.go (the datagram mode's framing and acks), cert.go, observer.go. It
// imports chat and transports only.
package webtransport
