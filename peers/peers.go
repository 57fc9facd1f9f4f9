// Package peers is the table of peer servers the lab measures beside wirelab's own transports
// (issue 14): each peer's transports, named PEER/TRANSPORT as scenario files spell them
// (socketio/longpoll, centrifugo/websocket, ...), and one way to install, start and talk to every
// peer. The peers themselves live in peers/socketio and peers/centrifugo, apart from the chat
// core: they share only its envelope types (chat) and the client shape (transports).
//
// peers imports chat and transports; never lab, results, netem, server or web.
package peers

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"

	"github.com/wirelab/wirelab/peers/centrifugo"
	"github.com/wirelab/wirelab/peers/internal/peercache"
	"github.com/wirelab/wirelab/peers/socketio"
	"github.com/wirelab/wirelab/transports"
)

// Transport is one peer transport.
type Transport struct {
	Name    string             // "socketio/websocket"
	Server  string             // the peer server's name, as results.json records it: "socket.io"
	Carrier transports.Carrier // what its bytes travel on
	Polls   bool               // the client polls for messages (long polling) instead of being pushed them
}

// Table lists every peer transport, in the order results show them.
var Table = []Transport{
	{Name: socketio.LongPoll, Server: socketio.Name, Carrier: transports.TCP, Polls: true},
	{Name: socketio.WebSocket, Server: socketio.Name, Carrier: transports.TCP},
	{Name: centrifugo.WebSocket, Server: centrifugo.Name, Carrier: transports.TCP},
	{Name: centrifugo.SSE, Server: centrifugo.Name, Carrier: transports.TCP},
	{Name: centrifugo.Stream, Server: centrifugo.Name, Carrier: transports.TCP},
}

// Unavailable names the peer transports DESIGN lists that the pinned peers cannot carry, with
// why: a scenario that names one is refused with the reason.
var Unavailable = map[string]string{
	"centrifugo/webtransport": "Centrifugo " + centrifugo.Version + "'s WebTransport endpoint completes no QUIC handshake (its TLS config selects no ALPN protocol, so every client, browsers too, gets CRYPTO_ERROR 0x178); peers/centrifugo/doc.go says what was tried. Use centrifugo/websocket, centrifugo/sse or centrifugo/stream",
}

// Names lists the peer transports in Table order.
func Names() []string {
	out := make([]string, len(Table))
	for i, t := range Table {
		out[i] = t.Name
	}
	return out
}

// Lookup finds a peer transport by name.
func Lookup(name string) (Transport, bool) {
	i := slices.IndexFunc(Table, func(t Transport) bool { return t.Name == name })
	if i < 0 {
		return Transport{}, false
	}
	return Table[i], true
}

// Is says whether name is spelled as a peer transport (PEER/TRANSPORT), known or not.
func Is(name string) bool { return strings.Contains(name, "/") }

// Server is a peer server installed and ready to start.
type Server interface {
	Name() string    // "socket.io"
	Version() string // the installed version: "4.8.4"
	// Prepare makes the command that serves on host:port (it writes what the peer reads, such
	// as its config, into a directory Instance.Cleanup removes). The caller starts the command
	// where it wants it (the lab: in the server host's network namespace).
	Prepare(host string, port int) (*Instance, error)
}

// Instance is one start of a peer server.
type Instance struct {
	Cmd *exec.Cmd
	// Ready returns once the peer answers on addr, dialled with dial, or ctx ends.
	Ready func(ctx context.Context, addr string, dial transports.DialFunc) error
	// NewClient returns a client of one of the peer's transports, for a user, talking to this
	// instance (o.URL is the instance's base URL).
	NewClient func(transport string, o transports.Options) (transports.Client, error)
	// Cleanup removes what Prepare wrote; call it once the process has exited.
	Cleanup func()
}

// DefaultCacheDir is where peers are installed: $WIRELAB_PEERS_CACHE, else
// os.UserCacheDir()/wirelab/peers.
func DefaultCacheDir() (string, error) { return peercache.Dir() }

// Ensure installs the named peer server ("socket.io", "centrifugo") into cacheDir on first use,
// with a progress line on progress, and returns it.
func Ensure(ctx context.Context, server, cacheDir string, progress io.Writer) (Server, error) {
	switch server {
	case socketio.Name:
		in, err := socketio.Ensure(ctx, cacheDir, progress)
		if err != nil {
			return nil, err
		}
		return socketIO{in}, nil
	case centrifugo.Name:
		in, err := centrifugo.Ensure(ctx, cacheDir, progress)
		if err != nil {
			return nil, err
		}
		return centrifugoServer{in}, nil
	}
	return nil, fmt.Errorf("peers: no peer server %q (have %s, %s)", server, socketio.Name, centrifugo.Name)
}

type socketIO struct{ in socketio.Install }

func (s socketIO) Name() string    { return s.in.Name }
func (s socketIO) Version() string { return s.in.Version }

func (s socketIO) Prepare(host string, port int) (*Instance, error) {
	return &Instance{
		Cmd:   s.in.Command(host, port),
		Ready: socketio.WaitReady,
		NewClient: func(transport string, o transports.Options) (transports.Client, error) {
			switch transport {
			case socketio.LongPoll:
				return socketio.NewLongPollClient(o), nil
			case socketio.WebSocket:
				return socketio.NewWebSocketClient(o), nil
			}
			return nil, fmt.Errorf("peers: socket.io has no transport %q", transport)
		},
		Cleanup: func() {},
	}, nil
}

type centrifugoServer struct{ in centrifugo.Install }

func (s centrifugoServer) Name() string    { return s.in.Name }
func (s centrifugoServer) Version() string { return s.in.Version }

func (s centrifugoServer) Prepare(host string, port int) (*Instance, error) {
	cmd, cfg, err := s.in.Command(host, port)
	if err != nil {
		return nil, err
	}
	return &Instance{
		Cmd: cmd,
		Ready: func(ctx context.Context, addr string, dial transports.DialFunc) error {
			return centrifugo.WaitReady(ctx, addr, dial)
		},
		NewClient: func(transport string, o transports.Options) (transports.Client, error) {
			o.Token = cfg.Token(o.User)
			return centrifugo.NewClient(transport, o)
		},
		Cleanup: func() { _ = cfg.Remove() },
	}, nil
}
