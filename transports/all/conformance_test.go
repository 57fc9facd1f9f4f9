package all_test

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wirelab/wirelab/netem"
	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/transports/all"
	"github.com/wirelab/wirelab/transports/transporttest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestConformance runs the conformance suite for every transport that has a client in all.go,
// each against its own in-process server on loopback.
func TestConformance(t *testing.T) {
	for _, name := range all.Names() {
		t.Run(name, func(t *testing.T) {
			env := transporttest.Env{}
			if raceEnabled && !testing.Short() {
				env.Scale = 0.2 // the full 10,000 messages run in the second, race-free pass
			}
			transporttest.Run(t, name, env)
		})
	}
}

// TestConformanceLossy runs the same suite with the clients behind an emulated link (netem: 20 ms
// each way, 1% loss each way), the load case at a tenth of its size. Nothing may be lost or
// doubled however many packets are.
func TestConformanceLossy(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: the lossy run is long")
	}
	if raceEnabled {
		t.Skip("the race detector makes the emulated link too slow; make test runs this in its race-free pass")
	}
	for _, name := range all.Names() {
		t.Run(name, func(t *testing.T) {
			transporttest.Run(t, name, transporttest.Env{Start: lossy("delay=20ms loss=1%"), Scale: 0.1, Wait: 90 * time.Second})
		})
	}
}

// lossy returns an Env.Start that serves on one netem host and gives clients another, joined by
// a link with profile p both ways.
func lossy(p string) func(t testing.TB, cfg server.Config) *transporttest.Target {
	return func(t testing.TB, cfg server.Config) *transporttest.Target {
		t.Helper()
		prof, err := netem.ParseProfile(p)
		if err != nil {
			t.Fatal(err)
		}
		n := netem.New(netem.Config{Seed: 1})
		srvHost, cliHost := n.MustHost("10.0.0.1"), n.MustHost("10.0.0.2")
		if _, err := n.Connect(cliHost, srvHost, prof, prof); err != nil {
			t.Fatal(err)
		}
		ln, err := srvHost.ListenTCP(80)
		if err != nil {
			t.Fatal(err)
		}
		pc, err := srvHost.ListenUDP(80)
		if err != nil {
			t.Fatal(err)
		}
		srv, err := server.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln, pc) }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("server shutdown: %v", err)
			}
			if err := <-served; err != nil {
				t.Errorf("server.Serve: %v", err)
			}
			_ = ln.Close()
			_ = pc.Close()
			_ = n.Close()
		})
		return &transporttest.Target{
			URL:           "http://10.0.0.1:80",
			Dial:          cliHost.DialContext,
			NewPacketConn: func() (net.PacketConn, error) { return cliHost.ListenUDP(0) },
		}
	}
}
