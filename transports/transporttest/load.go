package transporttest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// LoadSeed seeds the load case's choice of rooms and recipients.
const LoadSeed = 1

// testLoad: 100 users with 2 tabs each, in 10 rooms besides the lobby, exchange 10,000 messages
// (80% to their room, 20% DMs to a random user) as fast as the transport takes them. Every tab
// must end with exactly the messages meant for it (its room's, its user's DMs both ways), each
// once. Env.Scale (and -short) shrinks it.
func testLoad(h *H) {
	t := h.T
	users := max(4, int(100*h.env.Scale))
	nmsg := max(100, int(10000*h.env.Scale))
	const tabsPer = 2
	rooms := min(10, users/2)
	wait := 6 * h.env.Wait
	// The outbox must hold what a tab receives in the whole run (about 1,000 envelopes at full
	// scale) so that a client that falls behind during the burst can always resume.
	h.Start(Config{Hub: chat.Config{Outbox: 4096}})

	ntabs := users * tabsPer
	tabs := make([]*Tab, ntabs)
	userOf := func(i int) int { return i / tabsPer }
	roomOf := func(u int) string { return "room" + strconv.Itoa(u%rooms) }
	name := func(u int) string { return fmt.Sprintf("u%03d", u) }
	slow := func(o *transports.Options) {
		o.PollInterval = 100 * time.Millisecond
		o.RetryInterval = 3 * time.Second
		o.Buffer = 4096
	}
	forAll := func(what string, parallel int, f func(i int) error) {
		t.Helper()
		var wg sync.WaitGroup
		sem := make(chan struct{}, parallel)
		errs := make(chan error, ntabs)
		for i := range ntabs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if err := f(i); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		n := 0
		for err := range errs {
			if n++; n <= 3 {
				t.Errorf("%s: %v", what, err)
			}
		}
		if n > 0 {
			t.Fatalf("%s failed for %d of %d tabs", what, n, ntabs)
		}
	}
	start := time.Now()
	forAll("connect", 32, func(i int) (err error) {
		tabs[i], err = h.connect(name(userOf(i)), slow)
		if err == nil {
			tabs[i].mu.Lock()
			tabs[i].quiet = true
			tabs[i].mu.Unlock()
		}
		return err
	})
	forAll("join", 32, func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), h.env.Wait)
		defer cancel()
		_, err := tabs[i].Send(ctx, chat.Envelope{Type: chat.TypeJoin, Room: roomOf(userOf(i))})
		return err
	})
	connected := time.Since(start)

	// The plan: message k is sent by tab k % ntabs, in order per tab.
	rng := rand.New(rand.NewPCG(LoadSeed, 0))
	type planned struct {
		env  chat.Envelope
		dmTo int // recipient user of a DM, or -1
	}
	plan := make([][]planned, ntabs)
	for k := range nmsg {
		from := k % ntabs
		p := planned{dmTo: -1}
		text := "load " + strconv.Itoa(k)
		if rng.Float64() < 0.8 {
			p.env = chat.Envelope{Type: chat.TypeSay, Room: roomOf(userOf(from)), Text: text}
		} else {
			p.dmTo = rng.IntN(users)
			p.env = chat.Envelope{Type: chat.TypeDM, To: name(p.dmTo), Text: text}
		}
		plan[from] = append(plan[from], p)
	}
	// expected[id] lists the tabs that must get message id.
	var mu sync.Mutex
	expected := make(map[string][]int, nmsg)
	tabsOfUser := func(u int) []int {
		out := make([]int, tabsPer)
		for j := range out {
			out[j] = u*tabsPer + j
		}
		return out
	}
	tabsOfRoom := map[string][]int{}
	for i := range ntabs {
		r := roomOf(userOf(i))
		tabsOfRoom[r] = append(tabsOfRoom[r], i)
	}
	sendStart := time.Now()
	// Each tab keeps a few sends in flight, as a busy user's tab would.
	const inflight = 2
	forAll("send", ntabs, func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		var wg sync.WaitGroup
		sem := make(chan struct{}, inflight)
		errc := make(chan error, len(plan[i]))
		for _, p := range plan[i] {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				r, err := tabs[i].Send(ctx, p.env)
				if err != nil {
					errc <- fmt.Errorf("%s: %s %q: %v", tabs[i].User, p.env.Type, p.env.Text, err)
					return
				}
				var to []int
				if p.dmTo < 0 {
					to = tabsOfRoom[p.env.Room]
				} else {
					to = tabsOfUser(p.dmTo)
					if from := userOf(i); from != p.dmTo {
						to = append(to, tabsOfUser(from)...)
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if _, dup := expected[r.ID]; dup {
					errc <- fmt.Errorf("message id %s was given to two sends", r.ID)
					return
				}
				expected[r.ID] = to
			}()
		}
		wg.Wait()
		close(errc)
		return <-errc // the first error, or nil
	})
	sent := time.Since(sendStart)
	// One deadline for all: a tab that never gets everything fails the case in time.
	forAll("barrier", ntabs, func(i int) error { return tabs[i].barrier(wait) })
	drained := time.Since(sendStart)

	want := make([]map[string]bool, ntabs)
	for i := range want {
		want[i] = map[string]bool{}
	}
	copies := 0
	for id, to := range expected {
		for _, i := range to {
			want[i][id] = true
			copies++
		}
	}
	slowSends, slowest := 0, time.Duration(0)
	for _, tb := range tabs {
		tb.mu.Lock()
		slowSends += tb.slowSends
		slowest = max(slowest, tb.slowest)
		tb.mu.Unlock()
	}
	if slowSends > 0 {
		t.Logf("%s: %d of %d sends took over %v (the slowest %v)", h.Name, slowSends, nmsg, slowWait, slowest.Round(time.Millisecond))
	}
	lost, doubled, stray, gaps := 0, 0, 0, 0
	var examples []string
	note := func(format string, args ...any) {
		if len(examples) < 5 {
			examples = append(examples, fmt.Sprintf(format, args...))
		}
	}
	for i, tb := range tabs {
		got := tb.msgIDCounts()
		for id := range want[i] {
			switch n := got[id]; {
			case n == 0:
				lost++
				note("tab %d (%s) lacks %s", i, tb.User, id)
			case n > 1:
				doubled += n - 1
				note("tab %d (%s) has %d copies of %s", i, tb.User, n, id)
			}
		}
		for id, n := range got {
			if !want[i][id] {
				stray += n
				note("tab %d (%s) got %s, not meant for it", i, tb.User, id)
			}
		}
		for _, e := range tb.Errors() {
			if e.Code == chat.CodeGap {
				gaps++
			}
		}
	}
	t.Logf("%s: %d users x %d tabs, %d messages, %d copies: connected in %v, sent in %v (%.0f msg/s), all delivered after %v (%.0f copies/s)",
		h.Name, users, tabsPer, len(expected), copies, connected.Round(time.Millisecond), sent.Round(time.Millisecond),
		float64(len(expected))/sent.Seconds(), drained.Round(time.Millisecond), float64(copies)/drained.Seconds())
	if len(expected) != nmsg || lost > 0 || doubled > 0 || stray > 0 || gaps > 0 {
		t.Errorf("%s: %d messages acknowledged of %d; copies: %d lost, %d doubled, %d not meant for the tab, %d gap errors (of %d expected); e.g. %v",
			h.Name, len(expected), nmsg, lost, doubled, stray, gaps, copies, examples)
	}
}

// msgIDCounts returns a copy of the copies received per msg id.
func (tb *Tab) msgIDCounts() map[string]int {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	out := make(map[string]int, len(tb.msgIDs))
	for k, v := range tb.msgIDs {
		out[k] = v
	}
	return out
}
