// Package all is the table of transports: for each, its name, its carrier (TCP or QUIC), its
// delivery (pushed or polled, and at an interval or not), how its server side mounts and its
// client. The server mounts from it (server/), the lab builds clients and decides what needs
// UDP from it (lab/), the conformance suite and the benchmarks run every transport in it, and
// the lab writes each run's carrier and delivery into results.json from it, so that no other
// package lists transport names. A new transport is a package of its own shape
// (doc.go, server.go with Mount, client.go with NewClient) and one row here.
//
// It imports transports and every transport package; nothing below it imports it (never server,
// lab or results).
package all

import (
	"fmt"
	"strings"
	"time"

	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/auto"
	"github.com/wirelab/wirelab/transports/longpoll"
	"github.com/wirelab/wirelab/transports/shortpoll"
	"github.com/wirelab/wirelab/transports/sse"
	"github.com/wirelab/wirelab/transports/stream"
	"github.com/wirelab/wirelab/transports/websocket"
	"github.com/wirelab/wirelab/transports/webtransport"
)

// Transport is one row of the table.
type Transport struct {
	// Name is the transport's name, as scenario files, results and the web page spell it.
	Name string
	// Carrier is what its bytes travel on. auto's is QUIC: it moves to wt-uni when it can.
	Carrier transports.Carrier
	// Polls is set for a transport whose client asks for its messages (short and long
	// polling) instead of being pushed them: its Delivery is Poll. The lab writes each run's
	// delivery into results.json from it.
	Polls bool
	// Interval is set for a polling transport that asks every Options.PollInterval (the
	// scenario's poll_interval) instead of holding its request until something arrives; the
	// lab writes that interval into each of its runs.
	Interval bool
	// PostsUpstream is set for a transport whose client sends its commands with POST /api/send
	// (the HTTP transports), not on its own connection.
	PostsUpstream bool
	// Reorders is set for a transport whose envelopes may arrive in another order than their
	// seq (several QUIC streams, datagrams; auto, which may be on wt-uni).
	Reorders bool
	// Fallback is set for a transport that picks its carrier per session (auto: QUIC when
	// UDP gets through, else TCP). It needs UDP like QUIC, but the lab does not attribute its
	// losses as QUIC's.
	Fallback bool
	// Endpoint is the path its server side is reached on; transports that share one (the
	// three WebTransport modes on /wt) share its Mount, which runs once. Empty: nothing of its
	// own to mount (auto uses the others').
	Endpoint string
	// Mount mounts the server side on m (nil when Endpoint is empty).
	Mount func(m transports.Mux, srv *transports.Server, cfg ServerConfig) error
	// NewClient returns a client of the transport.
	NewClient func(transports.Options) transports.Client
}

// ServerConfig is what a transport's Mount may need besides the shared transports.Server. The
// zero value of a field means its default.
type ServerConfig struct {
	// CertFile and KeyFile hold WebTransport's certificate; empty means one is generated at
	// start.
	CertFile, KeyFile string
	// WTObserver, if set, is told which message each WebTransport stream, control-stream
	// range and datagram carries; nil observes nothing.
	WTObserver webtransport.ServerObserver
}

// mountHTTP adapts an HTTP transport's Mount, which needs no ServerConfig.
func mountHTTP(f func(transports.Mux, *transports.Server) error) func(transports.Mux, *transports.Server, ServerConfig) error {
	return func(m transports.Mux, s *transports.Server, _ ServerConfig) error { return f(m, s) }
}

func mountWT(m transports.Mux, s *transports.Server, cfg ServerConfig) error {
	return webtransport.Mount(m, s, webtransport.Config{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, Observer: cfg.WTObserver})
}

// Table is every transport, in the order results show them (the DESIGN table's).
var Table = []Transport{
	{Name: shortpoll.Name, Carrier: transports.TCP, Polls: true, Interval: true, PostsUpstream: true, Endpoint: shortpoll.Path, Mount: mountHTTP(shortpoll.Mount),
		NewClient: func(o transports.Options) transports.Client { return shortpoll.NewClient(o) }},
	{Name: longpoll.Name, Carrier: transports.TCP, Polls: true, PostsUpstream: true, Endpoint: longpoll.Path, Mount: mountHTTP(longpoll.Mount),
		NewClient: func(o transports.Options) transports.Client { return longpoll.NewClient(o) }},
	{Name: stream.Name, Carrier: transports.TCP, PostsUpstream: true, Endpoint: stream.Path, Mount: mountHTTP(stream.Mount),
		NewClient: func(o transports.Options) transports.Client { return stream.NewClient(o) }},
	{Name: sse.Name, Carrier: transports.TCP, PostsUpstream: true, Endpoint: sse.Path, Mount: mountHTTP(sse.Mount),
		NewClient: func(o transports.Options) transports.Client { return sse.NewClient(o) }},
	{Name: websocket.Name, Carrier: transports.TCP, Endpoint: websocket.Path, Mount: mountHTTP(websocket.Mount),
		NewClient: func(o transports.Options) transports.Client { return websocket.NewClient(o) }},
	{Name: webtransport.StreamName, Carrier: transports.QUIC, Endpoint: webtransport.Path, Mount: mountWT,
		NewClient: func(o transports.Options) transports.Client { return webtransport.NewStreamClient(o) }},
	{Name: webtransport.UniName, Carrier: transports.QUIC, Reorders: true, Endpoint: webtransport.Path, Mount: mountWT,
		NewClient: func(o transports.Options) transports.Client { return webtransport.NewUniClient(o) }},
	{Name: webtransport.DatagramName, Carrier: transports.QUIC, Reorders: true, Endpoint: webtransport.Path, Mount: mountWT,
		NewClient: func(o transports.Options) transports.Client { return webtransport.NewDatagramClient(o) }},
	{Name: auto.Name, Carrier: transports.QUIC, Reorders: true, Fallback: true,
		NewClient: func(o transports.Options) transports.Client { return auto.NewClient(o) }},
}

// Lookup finds a transport by name.
func Lookup(name string) (Transport, bool) {
	for _, t := range Table {
		if t.Name == name {
			return t, true
		}
	}
	return Transport{}, false
}

// Names lists every transport's name, in Table order.
func Names() []string {
	out := make([]string, len(Table))
	for i, t := range Table {
		out[i] = t.Name
	}
	return out
}

// NewClient returns a client of the named transport.
func NewClient(name string, opt transports.Options) (transports.Client, error) {
	t, ok := Lookup(name)
	if !ok {
		return nil, fmt.Errorf("unknown transport %q (one of %s)", name, strings.Join(Names(), ", "))
	}
	return t.NewClient(opt), nil
}

// Mount mounts every transport's server side on m, each endpoint once.
func Mount(m transports.Mux, srv *transports.Server, cfg ServerConfig) error {
	done := map[string]bool{}
	for _, t := range Table {
		if t.Mount == nil || done[t.Endpoint] {
			continue
		}
		done[t.Endpoint] = true
		if err := t.Mount(m, srv, cfg); err != nil {
			return fmt.Errorf("mounting %s on %s: %w", t.Name, t.Endpoint, err)
		}
	}
	return nil
}

// UsesUDP says whether the named transport's clients need a UDP socket (QUIC, or auto, which
// tries QUIC first). False for a name not in the table.
func UsesUDP(name string) bool {
	t, ok := Lookup(name)
	return ok && t.Carrier == transports.QUIC
}

// AttributesQUIC says whether the named transport's losses are attributed as QUIC's (its
// streams and datagrams observed): a QUIC transport that does not pick its carrier per session.
func AttributesQUIC(name string) bool {
	t, ok := Lookup(name)
	return ok && t.Carrier == transports.QUIC && !t.Fallback
}

// CarrierOf is the named transport's carrier; "" for a name not in the table.
func CarrierOf(name string) transports.Carrier {
	t, _ := Lookup(name)
	return t.Carrier
}

// DeliveryOf is the named transport's delivery: Poll when it polls, else Push; "" for a name
// not in the table.
func DeliveryOf(name string) transports.DeliveryMode {
	t, ok := Lookup(name)
	switch {
	case !ok:
		return ""
	case t.Polls:
		return transports.Poll
	}
	return transports.Push
}

// PollInterval is how often the named transport's clients ask for messages when the scenario's
// poll_interval is every: every for a transport that polls at an interval (Interval), else 0.
func PollInterval(name string, every time.Duration) time.Duration {
	if t, ok := Lookup(name); ok && t.Polls && t.Interval {
		return every
	}
	return 0
}
