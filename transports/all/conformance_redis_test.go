//go:build !race

// The Redis run is left out under the race detector (make test runs it in its race-free pass);
// the Redis broker itself is tested under it in chat/redisbroker.

package all_test

import (
	"fmt"
	"github.com/wirelab/wirelab/transports/longpoll"
	"github.com/wirelab/wirelab/transports/shortpoll"
	"github.com/wirelab/wirelab/transports/sse"
	"github.com/wirelab/wirelab/transports/stream"
	"github.com/wirelab/wirelab/transports/websocket"
	"log/slog"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wirelab/wirelab/chat/redisbroker"
	"github.com/wirelab/wirelab/internal/redistest"
	"github.com/wirelab/wirelab/transports/all"
	"github.com/wirelab/wirelab/transports/transporttest"
)

var redisPrefixes atomic.Int64

// onRedis returns an Env.Start that runs `nodes` servers sharing one Redis (each with its own
// Redis broker) and, for more than one, a round-robin load balancer in front of them that sends
// every HTTP request and WebSocket connection to the next node: no sticky sessions.
func onRedis(rs *redistest.Server, nodes int) func(t testing.TB, cfg transporttest.Config) *transporttest.Target {
	return func(t testing.TB, cfg transporttest.Config) *transporttest.Target {
		t.Helper()
		prefix := fmt.Sprintf("conf%d:", redisPrefixes.Add(1))
		ttl := cfg.Hub.SessionTTL
		if ttl <= 0 {
			ttl = 60 * time.Second
		}
		var targets []*url.URL
		var first *transporttest.Target
		for i := 1; i <= nodes; i++ {
			b, err := redisbroker.New(redisbroker.Options{URL: rs.URL(), Node: fmt.Sprintf("n%d", i), Prefix: prefix,
				SessionTTL: ttl + ttl/4, Outbox: cfg.Hub.Outbox, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() }) // after the server's shutdown (cleanups run last first)
			c := serverConfig(cfg)
			c.Hub.Broker = b
			c.Hub.Node = fmt.Sprintf("n%d", i)
			tg := loopbackWith(t, c)
			if first == nil {
				first = tg
			}
			u, _ := url.Parse(tg.URL)
			targets = append(targets, u)
		}
		if nodes == 1 {
			return first
		}
		var next atomic.Uint64
		lb := httptest.NewServer(&httputil.ReverseProxy{
			Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(targets[next.Add(1)%uint64(len(targets))]) },
			FlushInterval: -1,
		})
		t.Cleanup(lb.Close)
		return &transporttest.Target{URL: lb.URL}
	}
}

// TestConformanceRedis runs the suite against a node whose sessions, rooms and fan-out live in
// a real Redis (the several-nodes broker), for every transport; then the HTTP and WebSocket
// transports against three such nodes behind a load balancer without stickiness.
func TestConformanceRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: the Redis run is long")
	}
	rs := redistest.Start(t)
	for _, name := range all.Names() {
		t.Run("1node/"+name, func(t *testing.T) {
			transporttest.Run(t, name, transporttest.Env{Start: onRedis(rs, 1), Scale: 0.1, Traits: traitsOf(name)})
		})
	}
	for _, name := range []string{shortpoll.Name, longpoll.Name, stream.Name, sse.Name, websocket.Name} {
		t.Run("3nodes/"+name, func(t *testing.T) {
			transporttest.Run(t, name, transporttest.Env{Start: onRedis(rs, 3), Scale: 0.1, Traits: traitsOf(name)})
		})
	}
}
