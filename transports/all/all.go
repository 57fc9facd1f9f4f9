// Package all knows every transport's client by name, for the lab, the conformance suite and
// the benchmarks.
package all

import (
	"fmt"
	"strings"

	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/auto"
	"github.com/wirelab/wirelab/transports/longpoll"
	"github.com/wirelab/wirelab/transports/shortpoll"
	"github.com/wirelab/wirelab/transports/sse"
	"github.com/wirelab/wirelab/transports/stream"
	"github.com/wirelab/wirelab/transports/websocket"
	"github.com/wirelab/wirelab/transports/webtransport"
)

// constructors maps a transport name to its client constructor. Each transport adds itself here.
var constructors = map[string]func(transports.Options) transports.Client{
	transports.ShortPoll:  func(o transports.Options) transports.Client { return shortpoll.NewClient(o) },
	transports.LongPoll:   func(o transports.Options) transports.Client { return longpoll.NewClient(o) },
	transports.Stream:     func(o transports.Options) transports.Client { return stream.NewClient(o) },
	transports.SSE:        func(o transports.Options) transports.Client { return sse.NewClient(o) },
	transports.WebSocket:  func(o transports.Options) transports.Client { return websocket.NewClient(o) },
	transports.WTStream:   func(o transports.Options) transports.Client { return webtransport.NewStreamClient(o) },
	transports.WTUni:      func(o transports.Options) transports.Client { return webtransport.NewUniClient(o) },
	transports.WTDatagram: func(o transports.Options) transports.Client { return webtransport.NewDatagramClient(o) },
	transports.Auto:       func(o transports.Options) transports.Client { return auto.NewClient(o) },
}

// Names lists the transports that have a client, in transports.All order.
func Names() []string {
	var out []string
	for _, n := range transports.All {
		if _, ok := constructors[n]; ok {
			out = append(out, n)
		}
	}
	return out
}

// NewClient returns a client of the named transport.
func NewClient(name string, opt transports.Options) (transports.Client, error) {
	f, ok := constructors[name]
	if !ok {
		return nil, fmt.Errorf("unknown transport %q (one of %s)", name, strings.Join(Names(), ", "))
	}
	return f(opt), nil
}
