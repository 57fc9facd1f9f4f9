package webtransport_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/webtransport"
)

func TestMain(m *testing.M) {
	// quic-go warns once about UDP buffer sizes on real sockets; that is for real deployments.
	os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	goleak.VerifyTestMain(m)
}

const wait = 15 * time.Second

var modes = []string{webtransport.StreamName, webtransport.UniName, webtransport.DatagramName}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

type lab struct {
	srv  *server.Server
	base string
	hash [32]byte
}

func start(t *testing.T, cfg server.Config) *lab {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = discard()
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, pc, err := server.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln, pc) }()
	l := &lab{srv: srv, base: "http://" + ln.Addr().String()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		pc.Close()
	})
	l.hash = fetchHash(t, l.base)
	return l
}

func fetchHash(t *testing.T, base string) [32]byte {
	t.Helper()
	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	defer cl.CloseIdleConnections()
	resp, err := cl.Get(base + "/api/wt-cert-hash")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v struct {
		Algorithm string `json:"algorithm"`
		Hash      string `json:"hash"`
		Bytes     []int  `json:"bytes"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.Algorithm != "sha-256" || len(v.Bytes) != 32 || len(v.Hash) != 64 {
		t.Fatalf("GET /api/wt-cert-hash: %s (%v)", b, err)
	}
	var h [32]byte
	for i, x := range v.Bytes {
		h[i] = byte(x)
	}
	return h
}

func (l *lab) opts(user string) transports.Options {
	return transports.Options{URL: l.base, User: user, CertHashes: [][32]byte{l.hash}, RetryInterval: 500 * time.Millisecond}
}

func (l *lab) client(t *testing.T, mode, user string, mod ...func(*transports.Options)) *webtransport.Client {
	t.Helper()
	opt := l.opts(user)
	for _, f := range mod {
		f(&opt)
	}
	c := webtransport.NewClient(mode, opt)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		c.Close()
		t.Fatalf("connect %s over %s: %v", user, mode, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c transports.Client, env chat.Envelope) chat.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	r, err := c.Send(ctx, env)
	if err != nil {
		t.Fatalf("%s sends %s: %v", c.User(), env.Type, err)
	}
	return r
}

// until reads c's messages until one satisfies stop, and returns the msg envelopes read.
func until(t *testing.T, c transports.Client, stop func(chat.Envelope) bool) []chat.Envelope {
	t.Helper()
	var got []chat.Envelope
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case d, ok := <-c.Messages():
			if !ok {
				t.Fatalf("%s: messages closed", c.User())
			}
			if d.Env.Type == chat.TypeMsg {
				got = append(got, d.Env)
			}
			if stop(d.Env) {
				return got
			}
		case <-timer.C:
			t.Fatalf("%s: timed out; got %d msgs", c.User(), len(got))
		}
	}
}

func text(s string) func(chat.Envelope) bool {
	return func(e chat.Envelope) bool { return e.Type == chat.TypeMsg && e.Text == s }
}

func count(envs []chat.Envelope, s string) int {
	n := 0
	for _, e := range envs {
		if e.Text == s {
			n++
		}
	}
	return n
}

// lossyConn drops a seeded fraction of the datagrams read from it and written to it (test only;
// the lab uses netem).
type lossyConn struct {
	net.PacketConn
	drop func() bool
}

func (c *lossyConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.drop() {
		return len(p), nil // lost on the way
	}
	return c.PacketConn.WriteTo(p, addr)
}

func (c *lossyConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || !c.drop() {
			return n, addr, err
		}
	}
}

// bare is the WebTransport server alone (no HTTP), for tests that look at its counters.
type bare struct {
	lab
	wt *webtransport.Server
	ts *transports.Server
}

func startBare(t testing.TB, hubCfg chat.Config, cfg webtransport.Config) *bare {
	t.Helper()
	hubCfg.Logger = discard()
	hub, err := chat.NewHub(hubCfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := transports.NewServer(hub, transports.ServerOptions{Logger: discard()})
	wts, err := webtransport.NewServer(ts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- wts.Serve(pc) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			t.Errorf("hub shutdown: %v", err)
		}
		if err := ts.Shutdown(ctx); err != nil {
			t.Errorf("transports shutdown: %v", err)
		}
		if err := wts.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		pc.Close()
	})
	return &bare{lab: lab{base: "http://" + pc.LocalAddr().String(), hash: wts.CertHash()}, wt: wts, ts: ts}
}

// barrier reads c's messages until everything the server queued for c before the call has been
// read, whatever order it arrived in, and returns the msg envelopes read. It sends who and waits
// until the client has every seq up to the answer's; then a second who's answer, which the
// client can only process after all those, marks the end in the Messages channel.
func barrier(t *testing.T, c *webtransport.Client) []chat.Envelope {
	t.Helper()
	var got []chat.Envelope
	first := send(t, c, chat.Envelope{Type: chat.TypeWho, Room: chat.Lobby, CID: chat.StringCID("barrier-1")})
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	read := func(d transports.Delivery, ok bool) {
		if !ok {
			t.Fatalf("%s: messages closed", c.User())
		}
		if d.Env.Type == chat.TypeMsg {
			got = append(got, d.Env)
		}
	}
	for c.LastSeq() < first.Seq {
		select {
		case d, ok := <-c.Messages():
			read(d, ok)
		case <-tick.C:
		case <-timer.C:
			t.Fatalf("%s: seq %d never arrived (have up to %d)", c.User(), first.Seq, c.LastSeq())
		}
	}
	second := send(t, c, chat.Envelope{Type: chat.TypeWho, Room: chat.Lobby, CID: chat.StringCID("barrier-2")})
	for {
		select {
		case d, ok := <-c.Messages():
			read(d, ok)
			if d.Env.Type == chat.TypePresence && d.Env.CID == second.CID {
				return got
			}
		case <-timer.C:
			t.Fatalf("%s: the barrier's answer never arrived", c.User())
		}
	}
}
