package lab

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/netem"
	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/web"
)

// DemoConfig configures StartDemo. The zero value of a field means its default.
type DemoConfig struct {
	// Listen is the real address the browser connects to: TCP for HTTP and UDP on the same
	// port number for WebTransport ("" means 127.0.0.1:0).
	Listen string
	// RTT is the link's round-trip time, half of it each way; Loss the random loss of each
	// direction, a fraction in [0, 1). Zero means none.
	RTT  time.Duration
	Loss float64
	// BlockUDP drops every UDP packet on the link (WebTransport cannot connect).
	BlockUDP bool
	// PollInterval is the page's short-polling interval (zero means 2 s).
	PollInterval time.Duration
	// Seed seeds the link's loss process.
	Seed uint64
	// Hub configures the chat core (heartbeat, TTLs).
	Hub chat.Config
	// Logger (default: discard).
	Logger *slog.Logger
}

// Demo is the teaching demo (`lab demo`): the chat server on a virtual host of an emulated
// network, reached through a relay on the loopback — browser -> relay -> emulated link ->
// server — with the page's sliders changing the link while traffic flows. It is the demo's
// assembly (netem, server and the page's handler); the page and its endpoints are web's. It
// implements web.LinkControl.
//
// Unlike a lab run, the server runs in this process: the demo measures nothing.
//
// Goroutines: the server's (HTTP and WebTransport), the network's and the relay's; Close stops
// them all and waits.
type Demo struct {
	net   *netem.Network
	link  *netem.Link
	relay *netem.Relay
	srv   *server.Server

	served   chan struct{} // closed when Serve returns, with serveErr set
	serveErr error

	mu       sync.Mutex
	rtt      time.Duration
	loss     float64
	blockUDP bool

	closeOnce sync.Once
	closeErr  error
}

var _ web.LinkControl = (*Demo)(nil)

// The demo's virtual network: the server on one host, the relay's end on another.
const (
	demoServerAddr = "10.0.0.1"
	demoRelayAddr  = "10.0.0.2"
	demoPort       = 80
)

// StartDemo builds the network, starts the server on it and the relay on cfg.Listen.
func StartDemo(cfg DemoConfig) (d *Demo, err error) {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RTT < 0 || cfg.RTT > web.MaxRTT {
		return nil, fmt.Errorf("round-trip time %s is out of range (0 to %s)", cfg.RTT, web.MaxRTT)
	}
	n := netem.New(netem.Config{Seed: cfg.Seed, TraceLimit: -1})
	d = &Demo{net: n, served: make(chan struct{}), rtt: cfg.RTT, loss: cfg.Loss, blockUDP: cfg.BlockUDP}
	defer func() {
		if err != nil {
			if d.srv != nil {
				_ = d.srv.Shutdown(context.Background())
			}
			_ = n.Close()
		}
	}()
	sh, err := n.Host(demoServerAddr)
	if err != nil {
		return nil, err
	}
	rh, err := n.Host(demoRelayAddr)
	if err != nil {
		return nil, err
	}
	p := d.profile()
	if d.link, err = n.Connect(rh, sh, p, p); err != nil {
		return nil, err
	}
	d.relay, err = rh.Relay(netem.RelayConfig{Listen: cfg.Listen, Target: fmt.Sprintf("%s:%d", demoServerAddr, demoPort)})
	if err != nil {
		return nil, err
	}
	srv, err := server.New(server.Config{
		Hub:       cfg.Hub,
		Transport: transports.ServerOptions{Logger: cfg.Logger},
		Web: web.Handler(web.Options{PollInterval: cfg.PollInterval, Link: d,
			// d.srv is set before the server serves.
			CheckOrigin: func(r *http.Request) bool { return d.srv.T.CheckOrigin(r) }}),
		Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	d.srv = srv
	// The browser reaches the server at the relay's address (and, on loopback, as localhost):
	// pages from there are the server's own origin.
	if err := srv.T.AddAddr(d.relay.TCPAddr().String()); err != nil {
		return nil, err
	}
	ln, err := sh.ListenTCP(demoPort)
	if err != nil {
		return nil, err
	}
	pc, err := sh.ListenUDP(demoPort)
	if err != nil {
		ln.Close()
		return nil, err
	}
	go func() {
		d.serveErr = srv.Serve(ln, pc)
		close(d.served)
	}()
	return d, nil
}

// Addr is where the browser connects (the relay's real address, HOST:PORT).
func (d *Demo) Addr() string { return d.relay.TCPAddr().String() }

// Done is closed when the server stops by itself (an error: see Close).
func (d *Demo) Done() <-chan struct{} { return d.served }

// profile is one direction's link profile, under d.mu or before the demo is shared.
func (d *Demo) profile() netem.LinkProfile {
	return netem.LinkProfile{Delay: d.rtt / 2, Loss: netem.Loss{Rate: d.loss}, BlockUDP: d.blockUDP}
}

// LinkState implements web.LinkControl.
func (d *Demo) LinkState() web.LinkState {
	d.mu.Lock()
	rtt, loss := d.rtt, d.loss
	d.mu.Unlock()
	count := func(dir *netem.Direction) web.LinkCounters {
		s := dir.Stats()
		return web.LinkCounters{Packets: s.Offered.Packets, Bytes: s.Offered.Bytes, Dropped: s.Dropped.Total().Packets}
	}
	st := web.LinkState{RTTms: float64(rtt) / float64(time.Millisecond), LossPct: loss * 100,
		Up: count(d.link.AB), Down: count(d.link.BA)}
	if d.srv != nil {
		st.ServerRequests = d.srv.T.Requests.Load()
	}
	return st
}

// SetLink implements web.LinkControl: both directions change at once, while traffic flows.
func (d *Demo) SetLink(rtt time.Duration, loss float64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	oldRTT, oldLoss := d.rtt, d.loss
	d.rtt, d.loss = rtt, loss
	p := d.profile()
	if err := d.link.SetProfiles(p, p); err != nil {
		d.rtt, d.loss = oldRTT, oldLoss
		return err
	}
	return nil
}

// Close stops the server (telling every session), the relay and the network, and waits for
// them. It returns the server's error, if it stopped with one.
func (d *Demo) Close() error {
	d.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := d.srv.Shutdown(ctx)
		<-d.served
		if d.serveErr != nil && err == nil {
			err = d.serveErr
		}
		_ = d.relay.Close()
		_ = d.net.Close()
		d.closeErr = err
	})
	return d.closeErr
}
