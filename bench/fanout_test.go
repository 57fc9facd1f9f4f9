package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wirelab/wirelab/transports/all"
)

var debugPace = os.Getenv("FANOUT_DEBUG") != ""

const (
	subscribers = 1000
	textSize    = 200 // bytes of text per message
	window      = 128 // the publisher stays at most this many messages ahead of the slowest subscriber
	publishers  = 32  // concurrent POST /api/send workers
	// floodPublishers post without waiting for subscribers, floodMsgs messages per iteration.
	floodPublishers = 128
	floodMsgs       = 10000
)

// fanoutCase says how one transport is benchmarked.
type fanoutCase struct {
	name string
	msgs int // messages per benchmark iteration
	new  func(e *env, t *tally) subscriber
}

func httpCase(name, path string, poll time.Duration, msgs int) fanoutCase {
	return fanoutCase{name: name, msgs: msgs, new: func(e *env, t *tally) subscriber {
		return &httpSub{sub: sub{t: t}, e: e, path: path, poll: poll}
	}}
}

// cases lists every transport with a lean subscriber here; those whose package is not built
// into the server (all.Names) are skipped.
var cases = []fanoutCase{
	// Short polling as its client does it: one poll a second; at most window messages per poll.
	httpCase("shortpoll", "/api/poll", time.Second, 512),
	httpCase("longpoll", "/api/longpoll", 0, 2000),
	httpCase("stream", "/api/stream", 0, 2000),
	httpCase("sse", "/api/sse", 0, 2000),
	{name: "websocket", msgs: 2000, new: func(e *env, t *tally) subscriber { return &wsSub{sub: sub{t: t}, e: e} }},
}

func available(name string) bool {
	for _, n := range all.Names() {
		if n == name {
			return true
		}
	}
	return false
}

// BenchmarkFanout: one room (lobby) of 1,000 subscriber sessions, 200-byte messages, the
// publisher at most 128 messages ahead of the slowest subscriber. Reports delivered copies/s,
// server CPU µs per copy, server KiB per connection; fails on any lost or doubled copy.
func BenchmarkFanout(b *testing.B) {
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if !available(c.name) {
				b.Skipf("transport %s is not built yet", c.name)
			}
			fanout(b, c, false)
		})
	}
}

// BenchmarkFanoutFloodSlow: a flood where every tenth subscriber stops reading for 3 s once,
// after 2,000 messages: its socket buffers fill, the server cuts it off as a slow consumer, and it
// resumes with after=N. Whatever fell out of the outbox (1,024 messages) meanwhile is lost, and
// the server says so with a gap error: the benchmark reports it.
func BenchmarkFanoutFloodSlow(b *testing.B) {
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if !available(c.name) {
				b.Skipf("transport %s is not built yet", c.name)
			}
			if c.name == "shortpoll" {
				b.Skip("a 1 s poll cannot keep up with a flood by design: the outbox (1024) overflows")
			}
			fanout(b, c, true, slowness{every: 10, after: 2000, pause: 3 * time.Second})
		})
	}
}

// BenchmarkFanoutFlood: the same room, but the publisher does not wait for anyone. Subscribers
// that fall more than the server's send queue behind are cut off (slow_consumer) and resume
// with after=N; the benchmark reports how many copies were lost (a gap) or doubled.
func BenchmarkFanoutFlood(b *testing.B) {
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if !available(c.name) {
				b.Skipf("transport %s is not built yet", c.name)
			}
			if c.name == "shortpoll" {
				b.Skip("a 1 s poll cannot keep up with a flood by design: the outbox (1024) overflows")
			}
			fanout(b, c, true)
		})
	}
}

// slowness makes some subscribers stop reading for a while once.
type slowness struct {
	every int           // every n-th subscriber is slow (0: none)
	after int64         // after this many messages
	pause time.Duration // it stops reading this long
}

func fanout(b *testing.B, c fanoutCase, flood bool, slow ...slowness) {
	srv := startServer(b)
	if !srv.pinned {
		b.Log("taskset not found or one CPU: the server is not pinned; figures are not comparable")
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 2 * subscribers, MaxConnsPerHost: 0, DisableCompression: true}
	defer tr.CloseIdleConnections()
	e := &env{base: "http://" + srv.addr, host: srv.addr, http: &http.Client{Transport: tr}, user: "fan", resume: flood}

	restore, err := pinSelf(0)
	if err != nil {
		b.Logf("load generator not pinned: %v", err)
	}
	defer restore()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub, err := newPublisher(ctx, e)
	if err != nil {
		b.Fatal(err)
	}
	base, err := usage(srv.pid)
	if err != nil {
		b.Fatal(err)
	}
	t := newTally(subscribers)
	subs := make([]subscriber, subscribers)
	for i := range subs {
		subs[i] = c.new(e, t)
		if len(slow) > 0 && i%slow[0].every == 0 {
			subs[i].counts().pauseAt, subs[i].counts().pause = slow[0].after, slow[0].pause
		}
		if err := subs[i].connect(ctx); err != nil {
			b.Fatalf("subscriber %d: %v", i, err)
		}
	}
	debugSubs = func() string {
		hist := map[int64]int{}
		var slowest []int
		low := int64(1 << 62)
		for i, s := range subs {
			m := atomic.LoadInt64(&s.counts().msgs)
			hist[m]++
			if m < low {
				low, slowest = m, nil
			}
			if m == low {
				slowest = append(slowest, i)
			}
		}
		return fmt.Sprintf("%d distinct counts, min %d held by %d subs (first %v)", len(hist), low, len(slowest), slowest[:min(len(slowest), 5)])
	}
	var wg sync.WaitGroup
	errs := make(chan error, subscribers)
	for _, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.run(ctx); err != nil {
				errs <- err
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	// Every subscriber's connection is up once its first outbox entry (the lobby's member list)
	// has arrived; a held poll needs a moment more to be back in place.
	for deadline := time.Now().Add(30 * time.Second); ; {
		n := 0
		for _, s := range subs {
			if s.counts().ready.Load() {
				n++
			}
		}
		if n == len(subs) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d subscribers are connected after 30 s", n, len(subs))
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	idle, _ := usage(srv.pid)
	time.Sleep(time.Second)
	idle2, _ := usage(srv.pid)
	if os.Getenv("WIRELAB_FANOUT_SERVER_MEM") != "" {
		_ = srv.cmd.Process.Signal(syscall.SIGUSR1)
	}

	b.ResetTimer()
	start := time.Now()
	cpu0, _ := usage(srv.pid)
	self0, _ := usage(os.Getpid())
	sys0 := machineCPU()
	var sent int64
	msgs := c.msgs
	if flood {
		msgs = floodMsgs
	}
	t.target.Store(int64(b.N * msgs))
	t.left.Store(subscribers)
	for i := 0; i < b.N; i++ {
		to := sent + int64(msgs)
		if err := pub.publish(ctx, t, sent, to, flood, errs); err != nil {
			b.Fatal(err)
		}
		sent = to
	}
	if err := waitDone(ctx, t, errs, sent, subs, flood); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	cpu1, _ := usage(srv.pid)
	self1, _ := usage(os.Getpid())
	sys1 := machineCPU()
	b.StopTimer()

	var lost, dups, kicks, resumes, gaps int64
	for _, s := range subs {
		cs := s.counts()
		lost += sent - cs.msgs
		dups += cs.dups
		kicks += cs.kicks
		resumes += cs.resumes
		gaps += cs.gaps
	}
	copies := float64(sent) * subscribers
	b.ReportMetric(copies/elapsed.Seconds(), "copies/s")
	b.ReportMetric(float64((cpu1.cpu-cpu0.cpu).Microseconds())/copies, "µs/copy")
	perConn := float64(idle.rss-base.rss) / subscribers / 1024
	again := float64(idle2.rss-base.rss) / subscribers / 1024
	b.ReportMetric(perConn, "KiB/conn")
	b.ReportMetric(float64(cpu1.hwm-base.rss)/subscribers/1024, "peak-KiB/conn")
	b.ReportMetric(float64(lost), "lost")
	b.ReportMetric(float64(dups), "dup")
	if flood {
		b.ReportMetric(float64(kicks), "kicks")
		b.ReportMetric(float64(gaps), "gaps")
	}
	b.ReportMetric(0, "ns/op")
	b.Logf("load generator %.2f µs/copy; machine: %s", float64((self1.cpu-self0.cpu).Microseconds())/copies, sys1.sub(sys0))
	if debugPace {
		codes := map[string]int{}
		for _, s := range subs {
			cs := s.counts()
			if cs.msgs < sent {
				codes[fmt.Sprintf("short by %d, last code %q, skipped %d, resumes %d", sent-cs.msgs, cs.lastCode, cs.skipped, cs.resumes)]++
			}
		}
		b.Logf("short subscribers: %v", codes)
	}
	b.Logf("%s: %d msgs x %d subscribers in %v; server RSS %d KiB before, %d KiB with %d idle conns (%.1f KiB/conn a second later), peak %d KiB; %d kicks, %d resumes, %d gaps",
		c.name, sent, subscribers, elapsed.Round(time.Millisecond), base.rss>>10, idle.rss>>10, subscribers, again, cpu1.hwm>>10, kicks, resumes, gaps)
	if perConn > 0 && (again > 1.1*perConn || again < perConn/1.1) {
		b.Logf("warning: idle RSS per connection moved from %.1f to %.1f KiB in a second: the figure is noisy", perConn, again)
	}
	if !flood && (lost != 0 || dups != 0) {
		b.Fatalf("%d copies lost, %d doubled", lost, dups)
	}
	if pub.failed.Load() > 0 {
		b.Fatalf("%d sends failed", pub.failed.Load())
	}
}

// waitDone waits until every subscriber has every message (or, after a flood, until nothing
// has arrived for a while: losses are then counted).
func waitDone(ctx context.Context, t *tally, errs chan error, sent int64, subs []subscriber, flood bool) error {
	idle := time.NewTimer(30 * time.Second)
	defer idle.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last int64 = -1
	quiet := 0
	for {
		select {
		case <-t.done:
			return nil
		case <-tick.C:
			if debugPace {
				fmt.Printf("%s waiting: %s\n", time.Now().Format("05.000"), debugSubs())
			}
			if !flood {
				continue
			}
			var n int64
			for _, s := range subs {
				n += atomic.LoadInt64(&s.counts().msgs) + atomic.LoadInt64(&s.counts().skipped) + atomic.LoadInt64(&s.counts().resumes)
			}
			if n != last {
				last, quiet = n, 0
			} else if quiet++; quiet >= 5 {
				return nil // quiet for 5 s (longer than a slow subscriber's pause): count what arrived
			}
		case err := <-errs:
			return err
		case <-idle.C:
			short := 0
			for _, s := range subs {
				if s.counts().msgs < sent {
					short++
				}
			}
			return fmt.Errorf("timed out: %d subscribers short of %d messages", short, sent)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// publisher posts say commands to /api/send from a few workers.
type publisher struct {
	e       *env
	session string
	text    string
	failed  atomic.Int64
}

func newPublisher(ctx context.Context, e *env) (*publisher, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.base+"/api/session?user=pub", nil)
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var s sub
	s.envelope(bytes.TrimSpace(body))
	if s.session == "" {
		return nil, fmt.Errorf("POST /api/session: %s %s", resp.Status, body)
	}
	return &publisher{e: e, session: s.session, text: strings.Repeat("x", textSize)}, nil
}

// publish sends messages from+1..to, staying window ahead of the slowest subscriber unless flood.
func (p *publisher) publish(ctx context.Context, t *tally, from, to int64, flood bool, errs chan error) error {
	workers := publishers
	if flood {
		workers = floodPublishers
	}
	work := make(chan int64, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				p.send(ctx, n)
			}
		}()
	}
	defer func() { close(work); wg.Wait() }()
	done := from // every subscriber has this many
	for next := from + 1; next <= to; next++ {
		for !flood && next-done > window {
			for done < next-1 && t.full(done+1) {
				done++
			}
			if next-done <= window {
				break
			}
			if debugPace {
				fmt.Printf("%s wait next=%d done=%d\n", time.Now().Format("05.000"), next, done)
			}
			var slow <-chan time.Time
			if debugPace {
				slow = time.After(50 * time.Millisecond)
			}
			select {
			case <-slow:
				fmt.Printf("%s stalled at done=%d: %s\n", time.Now().Format("05.000"), done, debugSubs())
				select {
				case <-t.notify:
				case <-ctx.Done():
					return ctx.Err()
				}
				fmt.Printf("%s unstalled\n", time.Now().Format("05.000"))
			case <-t.notify:
			case err := <-errs:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !flood {
			t.ring[next%ringSize].Store(0) // next-ringSize is long complete
		}
		select {
		case work <- next:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (p *publisher) send(ctx context.Context, n int64) {
	body := `{"type":"say","room":"lobby","cid":` + strconv.FormatInt(n, 10) + `,"text":"` + p.text + `"}`
	for attempt := 0; attempt < 5; attempt++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.e.base+"/api/send?session="+p.session, strings.NewReader(body))
		resp, err := p.e.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			continue // the cid makes a retry safe
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return
		}
	}
	p.failed.Add(1)
}

func contextWithTimeout(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	_ = cancel // the process exits right after
	return ctx
}
