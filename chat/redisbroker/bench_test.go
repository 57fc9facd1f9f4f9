package redisbroker

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/internal/redistest"
)

// BenchmarkFanout measures a room message delivered to 1,000 sessions: on a single node with
// the memory broker, on one node of a Redis cluster (publisher and subscribers together), and
// across nodes (publisher on node 1, subscribers on node 2). "one-at-a-time" waits for every
// copy before the next message (latency from the say to the copy in each outbox); "burst"
// sends them back to back (copies per second).
//
//	go test -run XXX -bench Fanout -benchtime 200x ./chat/redisbroker/
func BenchmarkFanout(b *testing.B) {
	const subs = 1000
	rs := redistest.Start(b)
	quiet := slog.New(slog.DiscardHandler)
	hub := func(b *testing.B, name string, broker chat.Broker) *chat.Hub {
		h, err := chat.NewHub(chat.Config{Node: name, Broker: broker, Logger: quiet, Outbox: 4096, SendQueue: 4096})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = h.Shutdown(context.Background()) })
		return h
	}
	redisHub := func(b *testing.B, prefix, name string) *chat.Hub {
		br, err := New(Options{URL: rs.URL(), Node: name, Prefix: prefix, Logger: quiet, Outbox: 4096})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = br.Close() })
		return hub(b, name, br)
	}
	n := 0
	setups := []struct {
		name string
		mk   func(b *testing.B) (pub, sub *chat.Hub)
	}{
		{"memory", func(b *testing.B) (*chat.Hub, *chat.Hub) { h := hub(b, "m", nil); return h, h }},
		{"redis-same-node", func(b *testing.B) (*chat.Hub, *chat.Hub) {
			n++
			h := redisHub(b, fmt.Sprintf("bs%d:", n), "n1")
			return h, h
		}},
		{"redis-cross-node", func(b *testing.B) (*chat.Hub, *chat.Hub) {
			n++
			p := fmt.Sprintf("bc%d:", n)
			return redisHub(b, p, "n1"), redisHub(b, p, "n2")
		}},
	}
	for _, st := range setups {
		for _, mode := range []string{"one-at-a-time", "burst"} {
			b.Run(st.name+"/"+mode, func(b *testing.B) {
				pub, sub := st.mk(b)
				benchFanout(b, pub, sub, subs, mode == "burst")
			})
		}
	}
}

func benchFanout(b *testing.B, pub, sub *chat.Hub, subs int, burst bool) {
	ctx := context.Background()
	join := chat.Envelope{Type: chat.TypeJoin, Room: "r", CID: chat.StringCID("j")}
	ps, err := pub.Open(ctx, "publisher")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ps.Handle(ctx, join); err != nil {
		b.Fatal(err)
	}
	var (
		mu     sync.Mutex
		sent   = map[int]time.Time{}
		lat    []time.Duration
		copies int
		cond   = sync.NewCond(&mu)
	)
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i := 0; i < subs; i++ {
		s, err := sub.Open(ctx, "s"+strconv.Itoa(i))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Handle(ctx, join); err != nil {
			b.Fatal(err)
		}
		c, err := s.Attach(chat.AttachOptions{After: s.LastSeq()})
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Detach()
			buf := make([]chat.Entry, 0, 256)
			for {
				bt, err := c.Next(rctx, buf)
				if err != nil {
					return
				}
				now := time.Now()
				mu.Lock()
				for _, e := range bt.Entries {
					if e.P.Type() != chat.TypeMsg {
						continue
					}
					k, _ := strconv.Atoi(e.Envelope().Text)
					lat = append(lat, now.Sub(sent[k]))
					copies++
				}
				cond.Broadcast()
				mu.Unlock()
			}
		}()
	}
	// Presence events of the joins have settled once a first message went round.
	say := func(k int) {
		mu.Lock()
		sent[k] = time.Now()
		mu.Unlock()
		if _, err := ps.Handle(ctx, chat.Envelope{Type: chat.TypeSay, Room: "r", Text: strconv.Itoa(k), CID: chat.StringCID("w" + strconv.Itoa(k))}); err != nil {
			b.Fatal(err)
		}
	}
	waitFor := func(want int) {
		mu.Lock()
		for copies < want {
			cond.Wait()
		}
		mu.Unlock()
	}
	say(-1)
	waitFor(subs)
	mu.Lock()
	copies, lat = 0, lat[:0]
	mu.Unlock()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		say(i)
		if !burst {
			waitFor((i + 1) * subs)
		}
	}
	waitFor(b.N * subs)
	el := time.Since(start)
	b.StopTimer()
	mu.Lock()
	slices.Sort(lat)
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(copies)/el.Seconds(), "copies/s")
	b.ReportMetric(p(0.5), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
	mu.Unlock()
}
