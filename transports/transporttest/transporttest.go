// Package transporttest is the conformance suite every transport runs: the same cases, with the
// same expectations, over real sockets. It is the definition of "works" for a transport.
//
// Run starts a chat server per case through Env.Start, connects clients of the named transport
// (transports/all) and checks what they receive: room isolation, DMs to every tab, ok for every
// send, order, resume after a forced disconnect, retries that are not doubled, heartbeat timeout,
// presence, the envelope size limit, malformed envelopes, and a load of 100 users with 2 tabs
// exchanging 10,000 messages with nothing lost or doubled.
//
// The environment is the caller's (Env.Start): the suite says what server it wants (Config) and
// the caller builds it — on loopback, behind an emulated link, on Redis nodes — and says how
// clients reach it (Target). The suite owns the cases and never imports server/ (the assembly
// above every transport), netem, lab or results: it sits beside the transports it tests.
//
// Waiting: nothing here sleeps to synchronise. A case waits on what clients receive (with a
// deadline), and it knows a client has received everything up to a point by a barrier: the
// client sends who, whose answer is queued in its session's outbox like everything else; once
// every seq up to that answer's has arrived, nothing sent before it is still on its way.
//
// Goroutines: each client has one collector goroutine reading Messages; it ends when the client
// is closed, in t.Cleanup, which waits for it. Env.Start stops its servers in t.Cleanup.
package transporttest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// Env is where the suite runs.
type Env struct {
	// Start starts a chat server with cfg and returns how clients reach it. It must stop the
	// server in t.Cleanup. Required (the suite cannot build a server itself): callers pass one
	// built on server.New, e.g. serving on 127.0.0.1.
	Start func(t testing.TB, cfg Config) *Target
	// Scale multiplies the size of the load case (0 means 1; with -short, 0.1).
	Scale float64
	// Wait bounds every wait for something to arrive (0 means 20 s; the load case allows 6x).
	Wait time.Duration
	// Traits are the transport's (from transports/all's table).
	Traits Traits
}

// Config is the server a case asks for: Env.Start maps it onto the server it builds
// (server.Config's fields of the same names).
type Config struct {
	// Hub configures the chat core (heartbeat, TTLs, limits, outbox).
	Hub chat.Config
	// Logger is never nil when Start gets it (a case that sets none discards logs).
	Logger *slog.Logger
}

// Target is a running server as clients see it.
type Target struct {
	// URL is the server's base URL, http://host:port.
	URL string
	// Dial dials TCP for clients (nil: the host's network).
	Dial transports.DialFunc
	// NewPacketConn returns a fresh UDP socket for one QUIC client (nil: the client opens its
	// own). The suite closes it after the client.
	NewPacketConn func() (net.PacketConn, error)
	// CertHashes are the WebTransport certificate hashes; when empty the suite reads
	// GET /api/wt-cert-hash.
	CertHashes [][32]byte
}

// Traits are what the suite must know about a transport that its client does not say. The
// caller gives them (Env.Traits), from transports/all's table: the suite knows no names.
type Traits struct {
	// Polling transports hold no connection between requests: no heartbeat, a session lives
	// while requests come (its TTL).
	Polling bool
	// HTTPUpstream transports send commands with POST /api/send, so the suite can post raw
	// bytes there itself.
	HTTPUpstream bool
	// Reorders: envelopes may arrive in another order than their seq (several streams,
	// datagrams); order is then checked by seq only.
	Reorders bool
	// QUIC transports need the server's WebTransport certificate hash.
	QUIC bool
}

// RawSender is implemented by clients that can send bytes upstream unchecked, as one envelope,
// on their current connection (transports.Engine does, when the transport's Conn implements
// transports.RawConn). The server's answers arrive on Messages. The suite needs it to send
// malformed envelopes over transports whose upstream is not POST /api/send.
type RawSender interface {
	SendRaw(ctx context.Context, b []byte) error
}

// Case is one conformance case.
type Case struct {
	Name string
	Run  func(h *H)
}

// Cases is every case, in the order Run runs them.
var Cases = []Case{
	{"RoomIsolation", testRoomIsolation},
	{"DMThreeTabs", testDMThreeTabs},
	{"OKForEverySend", testOKForEverySend},
	{"Order", testOrder},
	{"DropMidBurstResume", testDropMidBurst},
	{"RetryNotDoubled", testRetryNotDoubled},
	{"HeartbeatTimeout", testHeartbeatTimeout},
	{"Presence", testPresence},
	{"SizeLimit", testSizeLimit},
	{"MalformedAndUnknown", testMalformed},
	{"Load", testLoad},
}

// Run runs every case for the transport called name, each in a subtest with its own server.
func Run(t *testing.T, name string, env Env) {
	for _, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			c.Run(newH(t, name, env))
		})
	}
}

// H is one case's harness: the transport, the environment, and the server once started.
type H struct {
	T      *testing.T
	Name   string
	Traits Traits
	env    Env
	tg     *Target
	cfg    Config
	raw    *http.Client
}

func newH(t *testing.T, name string, env Env) *H {
	if env.Start == nil {
		t.Fatal("transporttest: Env.Start is nil: pass a func that starts a server (server.New) for a Config and returns its Target")
	}
	if env.Scale <= 0 {
		env.Scale = 1
		if testing.Short() {
			env.Scale = 0.1
		}
	}
	if env.Wait <= 0 {
		env.Wait = 20 * time.Second
	}
	return &H{T: t, Name: name, Traits: env.Traits, env: env}
}

// Start starts the case's server with cfg (logs discarded unless cfg has a logger).
func (h *H) Start(cfg Config) {
	h.T.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h.cfg = cfg
	h.tg = h.env.Start(h.T, cfg)
	dial := h.tg.Dial
	if dial == nil {
		d := &net.Dialer{}
		dial = d.DialContext
	}
	tr := &http.Transport{DialContext: dial, DisableCompression: true}
	h.raw = &http.Client{Transport: tr, Timeout: h.env.Wait}
	h.T.Cleanup(tr.CloseIdleConnections)
	if len(h.tg.CertHashes) == 0 && h.Traits.QUIC {
		hash, err := h.certHash()
		if err != nil {
			h.T.Fatalf("%s needs the server's certificate hash: %v", h.Name, err)
		}
		h.tg.CertHashes = [][32]byte{hash}
	}
}

func (h *H) certHash() ([32]byte, error) {
	var out [32]byte
	resp, err := h.raw.Get(h.tg.URL + "/api/wt-cert-hash")
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("GET /api/wt-cert-hash answered %s", resp.Status)
	}
	var v struct {
		Hash string `json:"hash"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return out, fmt.Errorf("GET /api/wt-cert-hash: %v", err)
	}
	b, err := hex.DecodeString(v.Hash)
	if err != nil || len(b) != 32 {
		return out, fmt.Errorf("GET /api/wt-cert-hash: hash %q is not 64 hex digits", v.Hash)
	}
	copy(out[:], b)
	return out, nil
}

// Options returns client options for user on the case's server.
func (h *H) Options(user string) transports.Options {
	return transports.Options{
		URL:           h.tg.URL,
		User:          user,
		Dial:          h.tg.Dial,
		CertHashes:    h.tg.CertHashes,
		RetryInterval: time.Second,
		PollInterval:  20 * time.Millisecond,
	}
}

// PostRaw posts b to /api/send for session sid and returns the answer envelope (nil for 204)
// and the HTTP status.
func (h *H) PostRaw(ctx context.Context, sid string, b []byte) (*chat.Envelope, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.tg.URL+"/api/send?session="+sid, strings.NewReader(string(b)))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.raw.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, resp.StatusCode, err
	}
	if resp.StatusCode == http.StatusNoContent {
		return nil, resp.StatusCode, nil
	}
	var env chat.Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, resp.StatusCode, fmt.Errorf("POST /api/send answered %s with %q: %v", resp.Status, body, err)
	}
	return &env, resp.StatusCode, nil
}

// errCode returns the code of a *chat.Error, or "" with err's text.
func errCode(err error) string {
	var ce *chat.Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	return ""
}
