package all_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/all"
	"github.com/wirelab/wirelab/transports/longpoll"
	"github.com/wirelab/wirelab/transports/shortpoll"
	"github.com/wirelab/wirelab/transports/sse"
	"github.com/wirelab/wirelab/transports/stream"
	"github.com/wirelab/wirelab/transports/websocket"
	"github.com/wirelab/wirelab/transports/webtransport"
)

// TestTable: every row has a name, a carrier and a client; a row with an endpoint mounts it;
// the carriers say what the lab needs (UDP for QUIC, QUIC attribution unless the transport
// falls back).
func TestTable(t *testing.T) {
	seen := map[string]bool{}
	for _, tr := range all.Table {
		if tr.Name == "" || seen[tr.Name] {
			t.Errorf("row %+v: no name, or a name twice", tr)
		}
		seen[tr.Name] = true
		if tr.Carrier != transports.TCP && tr.Carrier != transports.QUIC {
			t.Errorf("%s: carrier %q", tr.Name, tr.Carrier)
		}
		if tr.NewClient == nil || (tr.Endpoint != "") != (tr.Mount != nil) {
			t.Errorf("%s: client %v, endpoint %q, mount %v", tr.Name, tr.NewClient != nil, tr.Endpoint, tr.Mount != nil)
		}
		got, ok := all.Lookup(tr.Name)
		if !ok || got.Name != tr.Name || all.CarrierOf(tr.Name) != tr.Carrier {
			t.Errorf("%s: Lookup %v %v", tr.Name, got.Name, ok)
		}
		if want := map[bool]transports.DeliveryMode{true: transports.Poll, false: transports.Push}[tr.Polls]; all.DeliveryOf(tr.Name) != want {
			t.Errorf("%s: DeliveryOf %q, want %q", tr.Name, all.DeliveryOf(tr.Name), want)
		}
		if tr.Interval && !tr.Polls {
			t.Errorf("%s: an interval without polling", tr.Name)
		}
		if got := all.PollInterval(tr.Name, time.Second); got != map[bool]time.Duration{true: time.Second}[tr.Interval] {
			t.Errorf("%s: PollInterval %v (Interval %v)", tr.Name, got, tr.Interval)
		}
		if all.UsesUDP(tr.Name) != (tr.Carrier == transports.QUIC) || all.AttributesQUIC(tr.Name) != (tr.Carrier == transports.QUIC && !tr.Fallback) {
			t.Errorf("%s: UsesUDP %v, AttributesQUIC %v", tr.Name, all.UsesUDP(tr.Name), all.AttributesQUIC(tr.Name))
		}
	}
	if _, ok := all.Lookup("carrier-pigeon"); ok || all.UsesUDP("carrier-pigeon") || all.CarrierOf("carrier-pigeon") != "" ||
		all.DeliveryOf("carrier-pigeon") != "" || all.PollInterval("carrier-pigeon", time.Second) != 0 {
		t.Error("an unknown name is found")
	}
	if _, err := all.NewClient("carrier-pigeon", transports.Options{}); err == nil {
		t.Error("NewClient of an unknown name: no error")
	}
}

// fakeMux records what the transports mount.
type fakeMux struct {
	gets []string
	quic []transports.QUICServer
}

func (m *fakeMux) HandleGet(path string, _ http.Handler) { m.gets = append(m.gets, path) }
func (m *fakeMux) ServeQUIC(s transports.QUICServer)     { m.quic = append(m.quic, s) }

// TestMount: every endpoint is mounted once (the three WebTransport modes share /wt), with the
// certificate hash's endpoint, and one QUIC server.
func TestMount(t *testing.T) {
	hub, err := chat.NewHub(chat.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Shutdown(context.Background())
	srv := transports.NewServer(hub, transports.ServerOptions{})
	m := &fakeMux{}
	if err := all.Mount(m, srv, all.ServerConfig{}); err != nil {
		t.Fatal(err)
	}
	want := []string{shortpoll.Path, longpoll.Path, stream.Path, sse.Path, websocket.Path, webtransport.CertHashPath}
	if !slices.Equal(m.gets, want) || len(m.quic) != 1 {
		t.Fatalf("mounted GET %v and %d QUIC servers, want GET %v and 1", m.gets, len(m.quic), want)
	}
	_ = m.quic[0].Close()
}

// TestDelivery: short and long polling poll, short polling at the scenario's interval; every
// other transport is pushed its messages.
func TestDelivery(t *testing.T) {
	for _, name := range all.Names() {
		polls, interval := name == shortpoll.Name || name == longpoll.Name, name == shortpoll.Name
		if got := all.DeliveryOf(name) == transports.Poll; got != polls {
			t.Errorf("%s: polls %v, want %v", name, got, polls)
		}
		if got := all.PollInterval(name, 3*time.Second) == 3*time.Second; got != interval {
			t.Errorf("%s: polls at the interval %v, want %v", name, got, interval)
		}
	}
}
