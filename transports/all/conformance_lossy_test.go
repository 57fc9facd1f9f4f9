//go:build !race

// The emulated-link run is left out under the race detector, which makes gVisor too slow for
// it; make test runs it in its race-free pass.

package all_test

import (
	"net"
	"testing"
	"time"

	"github.com/wirelab/wirelab/internal/kerneltest"
	"github.com/wirelab/wirelab/netem"
	"github.com/wirelab/wirelab/transports/all"
	"github.com/wirelab/wirelab/transports/transporttest"
)

// TestConformanceLossy runs the same suite with the clients behind an emulated link (netem: 20 ms
// each way, 1% loss each way), the load case at a tenth of its size. Nothing may be lost or
// doubled however many packets are.
func TestConformanceLossy(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: the lossy run is long")
	}
	for _, name := range all.Names() {
		t.Run(name, func(t *testing.T) {
			transporttest.Run(t, name, transporttest.Env{Start: lossy("delay=20ms loss=1%"), Scale: 0.1, Wait: 90 * time.Second, Traits: traitsOf(name)})
		})
	}
}

// TestConformanceKernel runs it between two Linux kernel stacks (network namespaces behind the
// same emulated link: 20 ms each way, 1% loss each way): the server's and the clients' sockets are
// Linux TCP and UDP, quic-go on real UDP sockets. It needs root and /dev/net/tun.
func TestConformanceKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: the lossy run is long")
	}
	kerneltest.Need(t)
	for _, name := range all.Names() {
		t.Run(name, func(t *testing.T) {
			// Each transport on a network of its own (its own namespaces): they run side by side,
			// the kernel stacks cost the test process little CPU and most of the time is waiting.
			t.Parallel()
			transporttest.Run(t, name, transporttest.Env{Start: lossyOn("delay=20ms loss=1%", true), Scale: 0.1, Wait: 90 * time.Second, Traits: traitsOf(name)})
		})
	}
}

// lossy returns an Env.Start that serves on one netem host and gives clients another, joined by
// a link with profile p both ways.
func lossy(p string) func(t testing.TB, cfg transporttest.Config) *transporttest.Target {
	return lossyOn(p, false)
}

// lossyOn is lossy on gVisor hosts or, with kernel, on kernel hosts.
func lossyOn(p string, kernel bool) func(t testing.TB, cfg transporttest.Config) *transporttest.Target {
	return func(t testing.TB, cfg transporttest.Config) *transporttest.Target {
		t.Helper()
		prof, err := netem.ParseProfile(p)
		if err != nil {
			t.Fatal(err)
		}
		n := netem.New(netem.Config{Seed: 1})
		t.Cleanup(func() { _ = n.Close() }) // after the server's shutdown (cleanups run last first)
		host := n.Host
		if kernel {
			host = n.KernelHost
		}
		srvHost, err := host("10.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		cliHost, err := host("10.0.0.2")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Connect(cliHost, srvHost, prof, prof); err != nil {
			t.Fatal(err)
		}
		ln, err := srvHost.ListenTCP(80)
		if err != nil {
			t.Fatal(err)
		}
		pc, err := srvHost.ListenPacket(80)
		if err != nil {
			t.Fatal(err)
		}
		serve(t, serverConfig(cfg), ln, pc, 30*time.Second)
		return &transporttest.Target{
			URL:           "http://10.0.0.1:80",
			Dial:          cliHost.DialContext,
			NewPacketConn: func() (net.PacketConn, error) { return cliHost.ListenPacket(0) },
		}
	}
}
