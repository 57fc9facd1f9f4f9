package transports

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/wirelab/wirelab/chat"
)

// DeliveryMode is how a transport's client gets its messages: pushed to it over a connection
// it holds (Push: stream, SSE, WebSocket, WebTransport), or by asking for them (Poll: short and
// long polling). The table in transports/all says it per transport; results.json records it per
// run ("delivery").
type DeliveryMode string

// The delivery modes, as results.json spells them.
const (
	Push DeliveryMode = "push"
	Poll DeliveryMode = "poll"
)

// Client is a chat client over one transport. Every transport's client has this shape; they
// differ only in how envelopes travel.
//
// A Client keeps its session across connections: when a connection breaks it reconnects and
// resumes with after=N (the newest seq it has without a hole), so a caller sees every envelope
// once. Envelopes arrive on Messages in the order they arrived on the wire; transports that can
// deliver out of order (wt-uni, wt-datagram) do so, and seq tells the order they were sent in.
type Client interface {
	// Connect opens the session and returns once it is live (the welcome has arrived).
	Connect(ctx context.Context) error
	// Session is the session id (empty before Connect).
	Session() string
	// User is the client's user.
	User() string
	// Send sends one command (join, leave, say, dm, who). Commands other than who get a cid
	// if they have none and are sent again every Options.RetryInterval until the server's ok
	// or error arrives, which Send returns (an error envelope as a *chat.Error).
	Send(ctx context.Context, env chat.Envelope) (chat.Envelope, error)
	// Messages delivers msg and presence envelopes, errors not tied to a command (a gap, an
	// error for bytes sent raw), and answers no Send was waiting for (an ok repeated for a
	// command sent again). It is closed by Close, or when the session ends for good.
	Messages() <-chan Delivery
	// Drop cuts the current connection as a network failure would; the client reconnects and
	// resumes. It is for tests.
	Drop()
	// Close ends the client and waits for its goroutines.
	Close() error
}

// Delivery is one envelope as the client received it.
type Delivery struct {
	Env chat.Envelope
	At  time.Time // when the bytes that carried it were read
}

// DialFunc dials TCP; the lab passes one that dials on an emulated network.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Options configure a client. The zero value of a field means its default.
type Options struct {
	// URL is the server's base URL: http://host:port (WebTransport clients use the same host and
	// port over QUIC).
	URL string
	// User is the user id.
	User string
	// Token is the user's token when the server needs one (lab token USER).
	Token string
	// Dial dials TCP (default: a net.Dialer).
	Dial DialFunc
	// PacketConn is the UDP socket QUIC clients use (default: a new one on 0.0.0.0:0). The
	// client does not close a PacketConn it was given.
	PacketConn net.PacketConn
	// TLS is the TLS config for WebTransport (default: verify against CertHashes, or the system roots).
	TLS *tls.Config
	// CertHashes are SHA-256 hashes of acceptable server certificates (like the browser's
	// serverCertificateHashes); used when TLS is nil.
	CertHashes [][32]byte
	// RetryInterval is how long Send waits for an answer before sending again (default 2 s).
	RetryInterval time.Duration
	// PollInterval is the short-polling interval (default 1 s).
	PollInterval time.Duration
	// Buffer is the size of the Messages channel (default 1024).
	Buffer int
	// NoPong stops the client answering pings (tests use it to trigger the heartbeat timeout).
	NoPong bool
	// NoReconnect makes a broken connection end the client instead of resuming.
	NoReconnect bool
	// Logger receives the client's logs (default: discard).
	Logger *slog.Logger
}

// WithDefaults returns o with defaults filled in.
func (o Options) WithDefaults() Options {
	if o.Dial == nil {
		d := &net.Dialer{}
		o.Dial = d.DialContext
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = 2 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Buffer <= 0 {
		o.Buffer = 1024
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Conn is one connection of a client: what a transport implements. The Engine owns it: it calls
// Recv from one goroutine and Send from others.
type Conn interface {
	// Recv returns the next envelopes from the server, blocking until there are some. after is
	// the newest seq the client has without a hole (polling transports ask for what follows).
	// It returns an error when the connection is over.
	Recv(ctx context.Context, after uint64) ([]chat.Envelope, error)
	// Send sends one envelope upstream. Transports whose upstream is request-reply return the
	// answer envelopes; the others return none (the answer comes downstream).
	Send(ctx context.Context, env chat.Envelope) ([]chat.Envelope, error)
	// Close ends the connection abruptly; a blocked Recv returns.
	Close() error
}

// Dialer opens connections for an Engine.
type Dialer interface {
	// Dial opens a new session when session is empty, and returns its welcome; otherwise it
	// resumes session with everything after after (the welcome may then be empty).
	Dial(ctx context.Context, session string, after uint64) (Conn, chat.Envelope, error)
}

// ErrClosed is returned by Send and Connect after Close.
var ErrClosed = errors.New("transports: client is closed")

// ErrSessionGone is the error Send returns once the server has forgotten the session.
var ErrSessionGone = errors.New("transports: the session has ended on the server")

// RawConn is implemented by a Conn that can send bytes upstream as one envelope, unchecked: the
// conformance suite uses it to send malformed envelopes over WebSocket and WebTransport. Its
// answers are handled like Send's; the server's error envelopes for such bytes reach Messages.
type RawConn interface {
	SendRaw(ctx context.Context, b []byte) ([]chat.Envelope, error)
}

// ErrNoRaw is returned by Engine.SendRaw when the transport's Conn does not implement RawConn.
var ErrNoRaw = errors.New("transports: the connection does not implement transports.RawConn (SendRaw)")
