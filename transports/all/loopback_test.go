package all_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/all"
	"github.com/wirelab/wirelab/transports/transporttest"
)

// serverConfig is the server a conformance case asks for, as server.Config.
func serverConfig(cfg transporttest.Config) server.Config {
	return server.Config{Hub: cfg.Hub, Logger: cfg.Logger}
}

// loopback is the suite's plain environment (an Env.Start): the case's server in-process on
// 127.0.0.1, TCP and UDP on one port, clients on the host's network.
func loopback(t testing.TB, cfg transporttest.Config) *transporttest.Target {
	t.Helper()
	return loopbackWith(t, serverConfig(cfg))
}

// loopbackWith serves cfg on 127.0.0.1 (TCP and UDP on one port) until t's cleanup.
func loopbackWith(t testing.TB, cfg server.Config) *transporttest.Target {
	t.Helper()
	ln, pc, err := server.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("server.Listen: %v", err)
	}
	serve(t, cfg, ln, pc, 15*time.Second)
	return &transporttest.Target{URL: "http://" + ln.Addr().String()}
}

// serve starts a server with cfg on ln and pc; t's cleanup shuts it down (within shutdown), waits
// for Serve to return and closes both.
func serve(t testing.TB, cfg server.Config, ln net.Listener, pc net.PacketConn, shutdown time.Duration) {
	t.Helper()
	srv, err := server.New(cfg)
	if err != nil {
		_ = ln.Close()
		_ = pc.Close()
		t.Fatalf("server.New: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln, pc) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdown)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("server.Serve: %v", err)
		}
		_ = ln.Close()
		_ = pc.Close()
	})
}

// traitsOf is what the conformance suite must know of a transport, from the table.
func traitsOf(name string) transporttest.Traits {
	t, _ := all.Lookup(name)
	return transporttest.Traits{Polling: t.Polls, HTTPUpstream: t.PostsUpstream, Reorders: t.Reorders, QUIC: t.Carrier == transports.QUIC}
}
