package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"runtime"
	"sync"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/netem"
	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/web"
)

func init() {
	commands["demo"] = command{summary: "the teaching demo: the chat page behind an emulated lossy link, sliders to change it", run: runDemo}
}

// The demo's virtual network: the server on one host, the relay (where the browser's
// connections enter) on another, one link between them.
const (
	demoServerAddr = "10.0.0.1"
	demoRelayAddr  = "10.0.0.2"
	demoPort       = 80
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "[--rtt 80ms] [--loss 2%] [--addr 127.0.0.1:8080] [--open]", stderr)
	rttS := fs.String("rtt", "80ms", "round-trip time of the emulated link (half of it each way)")
	lossS := fs.String("loss", "2%", "random packet loss, each direction")
	addr := fs.String("addr", "127.0.0.1:8080", "where the browser connects: TCP for HTTP, UDP on the same port for WebTransport (port 0 picks one)")
	open := fs.Bool("open", false, "open the page in the default browser (xdg-open)")
	poll := fs.Duration("poll", 2*time.Second, "the page's short-polling interval")
	seed := fs.Uint64("seed", 1, "seed of the link's loss process")
	logLevel := fs.String("log", "warn", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	rtt, err := netem.ParseDuration("--rtt", *rttS)
	if err != nil {
		return err
	}
	loss, err := netem.ParsePercent("--loss", *lossS)
	if err != nil {
		return err
	}
	if rtt > web.MaxRTT {
		return fmt.Errorf("--rtt %s is more than the page's slider allows (at most %s)", rtt, web.MaxRTT)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log %q: use debug, info, warn or error", *logLevel)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))

	d, err := startDemo(demoConfig{Addr: *addr, RTT: rtt, Loss: loss, Poll: *poll, Seed: *seed, Logger: log})
	if err != nil {
		return err
	}
	hp := d.Addr()
	fmt.Fprintf(stdout, "listening http://%s webtransport https://%s/wt\n", hp, hp)
	fmt.Fprintf(stdout, "open http://%s/ in two tabs (or http://%s/?compare=websocket,longpoll); the link: %s round trip, %.3g%% loss each way; Ctrl-C stops\n",
		hp, hp, rtt, loss*100)
	if *open {
		if err := openBrowser("http://" + hp + "/"); err != nil {
			fmt.Fprintf(stderr, "lab demo: could not open a browser (%v); open the URL above yourself\n", err)
		}
	}
	select {
	case <-d.served:
	case <-ctx.Done():
	}
	return d.Close()
}

type demoConfig struct {
	Addr   string
	RTT    time.Duration
	Loss   float64
	Poll   time.Duration
	Seed   uint64
	Logger *slog.Logger
}

// demo is a running demo: the network, the server on its virtual host, the relay.
type demo struct {
	net   *netem.Network
	link  *netem.Link
	relay *netem.Relay
	srv   *server.Server

	served   chan struct{} // closed when Serve returns, with serveErr set
	serveErr error

	mu        sync.Mutex
	rtt       time.Duration
	loss      float64
	closeOnce sync.Once
	closeErr  error
}

func startDemo(cfg demoConfig) (d *demo, err error) {
	n := netem.New(netem.Config{Seed: cfg.Seed, TraceLimit: -1})
	d = &demo{net: n, served: make(chan struct{}), rtt: cfg.RTT, loss: cfg.Loss}
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
	d.link, err = n.Connect(rh, sh, p, p)
	if err != nil {
		return nil, err
	}
	target := fmt.Sprintf("%s:%d", demoServerAddr, demoPort)
	d.relay, err = rh.Relay(netem.RelayConfig{Listen: cfg.Addr, Target: target})
	if err != nil {
		return nil, err
	}
	port := d.relay.TCPAddr().Port
	srv, err := server.New(server.Config{
		Hub: chat.Config{},
		Transport: transports.ServerOptions{Logger: cfg.Logger,
			// The page reached as localhost (not the printed 127.0.0.1) is another origin.
			AllowOrigins: []string{fmt.Sprintf("http://localhost:%d", port)}},
		Web:    web.Handler(web.Options{PollInterval: cfg.Poll, Link: d}),
		Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	d.srv = srv
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

// Addr is where the browser connects (the relay's real address).
func (d *demo) Addr() string { return d.relay.TCPAddr().String() }

// profile is the link profile of one direction, under d.mu or before the demo is shared.
func (d *demo) profile() netem.LinkProfile {
	return netem.LinkProfile{Delay: d.rtt / 2, Loss: netem.Loss{Rate: d.loss}}
}

// LinkState implements web.LinkControl.
func (d *demo) LinkState() web.LinkState {
	d.mu.Lock()
	rtt, loss := d.rtt, d.loss
	d.mu.Unlock()
	count := func(dir *netem.Direction) web.LinkCounters {
		s := dir.Stats()
		return web.LinkCounters{Packets: s.Offered.Packets, Bytes: s.Offered.Bytes, Dropped: s.Dropped.Total().Packets}
	}
	return web.LinkState{RTTms: float64(rtt) / float64(time.Millisecond), LossPct: loss * 100,
		Up: count(d.link.AB), Down: count(d.link.BA)}
}

// SetLink implements web.LinkControl: both directions change at once, while traffic flows.
func (d *demo) SetLink(rtt time.Duration, loss float64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := [2]any{d.rtt, d.loss}
	d.rtt, d.loss = rtt, loss
	p := d.profile()
	if err := d.link.SetProfiles(p, p); err != nil {
		d.rtt, d.loss = old[0].(time.Duration), old[1].(float64)
		return err
	}
	return nil
}

// Close stops the server, the relay and the network, and waits for them.
func (d *demo) Close() error {
	d.closeOnce.Do(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := d.srv.Shutdown(sctx)
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

func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }() // reap it; the browser outlives the opener
	return nil
}
