package webtransport

import (
	"context"
	"net/netip"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlogwriter"

	"github.com/wirelab/wirelab/chat"
)

// ServerObserver is told what a Server's QUIC connections carry, as quic.Config.Tracer is told
// what they send: a measurement (the lab's loss attribution) plugs in here, and the transport
// knows nothing of it. Config.Observer nil observes nothing.
type ServerObserver interface {
	// Tracer becomes the server's quic.Config.Tracer.
	Tracer(ctx context.Context, isClient bool, id quic.ConnectionID) qlogwriter.Trace
	// Session returns the observer of the session on the QUIC connection from remote, or nil.
	Session(remote netip.AddrPort) SessionObserver
}

// SessionObserver is told, by the server side of one session, which message went where. Its
// methods are called from the session's write paths, so they must be quick and must not block.
type SessionObserver interface {
	// Attached: the session's id and its control stream.
	Attached(session string, ctl quic.StreamID)
	// UniStream: the unidirectional stream id carries the message of seq (wt-uni, and a
	// wt-datagram message too large for a datagram).
	UniStream(id quic.StreamID, seq uint64)
	// ControlLine: bytes [off, end) of the control stream carry the message of seq (wt-stream).
	ControlLine(off, end int64, seq uint64)
	// Datagram: the next datagram handed to QUIC carries seq (called in send order);
	// DatagramUnsent takes the last one back when the send failed.
	Datagram(seq uint64)
	DatagramUnsent()
	// DatagramResent: the datagram of seq is sent again, its ack having not come in time.
	DatagramResent(seq uint64)
}

// ClientObserver is told what a Client's QUIC connections carry upstream. Set it with
// Client.Observe; nil observes nothing.
type ClientObserver interface {
	// Conn returns the observer of a new QUIC connection, or nil.
	Conn() ConnObserver
}

// ConnObserver follows one QUIC connection of a client: it is the connection's qlog trace
// (quic.Config.Tracer), and the client tells it which command went where.
type ConnObserver interface {
	qlogwriter.Trace
	// Attached: the session's id and its control stream.
	Attached(session string, ctl quic.StreamID)
	// UniStream: the unidirectional stream id carries the command cid (wt-uni, wt-datagram).
	UniStream(id quic.StreamID, cid chat.CID)
	// ControlLine: bytes [off, end) of the control stream carry the command cid (wt-stream).
	ControlLine(off, end int64, cid chat.CID)
}
