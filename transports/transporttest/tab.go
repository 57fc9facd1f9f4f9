package transporttest

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/all"
)

// slowWait: a wait or a send that takes longer is logged, to tell a slow transport (or machine)
// from a broken one.
const slowWait = time.Second

// Tab is one connected client (one browser tab) and everything it has received.
type Tab struct {
	h    *H
	C    transports.Client
	User string
	wait time.Duration

	mu      sync.Mutex
	envs    []chat.Envelope   // Messages in arrival order
	msgIDs  map[string]int    // copies of each msg id
	seen    map[uint64]bool   // seqs received on Messages or as Send's answer
	mark    uint64            // every seq up to mark has been seen
	changed chan struct{}     // closed and replaced whenever something arrives
	ended   bool              // Messages is closed
	done    chan struct{}     // the collector has ended
	pc      net.PacketConn    // owned by the tab, closed after the client
	errs    []chat.Envelope   // error envelopes on Messages
	answers map[string]string // raw cid -> msg id of oks seen on Messages

	quiet     bool          // do not log slow sends one by one (the load case sums them up)
	slowSends int           // sends that took longer than slowWait
	slowest   time.Duration // the longest of them
}

// Connect connects a new client of the case's transport for user, with opts applied to its
// options, and closes it in t.Cleanup.
func (h *H) Connect(user string, opts ...func(*transports.Options)) *Tab {
	h.T.Helper()
	tb, err := h.connect(user, opts...)
	if err != nil {
		h.T.Fatal(err)
	}
	return tb
}

func (h *H) connect(user string, opts ...func(*transports.Options)) (*Tab, error) {
	o := h.Options(user)
	for _, f := range opts {
		f(&o)
	}
	var pc net.PacketConn
	if h.tg.NewPacketConn != nil && o.PacketConn == nil {
		var err error
		if pc, err = h.tg.NewPacketConn(); err != nil {
			return nil, fmt.Errorf("new packet conn for %s: %v", user, err)
		}
		o.PacketConn = pc
	}
	c, err := all.NewClient(h.Name, o)
	if err != nil {
		if pc != nil {
			_ = pc.Close()
		}
		return nil, err
	}
	tb := &Tab{h: h, C: c, User: user, wait: h.env.Wait, msgIDs: map[string]int{}, seen: map[uint64]bool{},
		changed: make(chan struct{}), done: make(chan struct{}), pc: pc, answers: map[string]string{}}
	ctx, cancel := context.WithTimeout(context.Background(), h.env.Wait)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		_ = c.Close()
		if pc != nil {
			_ = pc.Close()
		}
		return nil, fmt.Errorf("%s: Connect for user %s: %v", h.Name, user, err)
	}
	go tb.collect()
	h.T.Cleanup(tb.Close)
	return tb, nil
}

// Close closes the client and waits for its collector. It may be called more than once.
func (tb *Tab) Close() {
	_ = tb.C.Close()
	<-tb.done
	if tb.pc != nil {
		_ = tb.pc.Close()
	}
}

func (tb *Tab) collect() {
	defer close(tb.done)
	for d := range tb.C.Messages() {
		tb.mu.Lock()
		env := d.Env
		tb.envs = append(tb.envs, env)
		switch env.Type {
		case chat.TypeMsg:
			tb.msgIDs[env.ID]++
		case chat.TypeError:
			tb.errs = append(tb.errs, env)
		case chat.TypeOK:
			tb.answers[string(env.CID)] = env.ID
		}
		tb.sawLocked(env.Seq)
		tb.notifyLocked()
		tb.mu.Unlock()
	}
	tb.mu.Lock()
	tb.ended = true
	tb.notifyLocked()
	tb.mu.Unlock()
}

func (tb *Tab) sawLocked(seq uint64) {
	if seq == 0 {
		return
	}
	tb.seen[seq] = true
	for tb.seen[tb.mark+1] {
		tb.mark++
	}
}

func (tb *Tab) notifyLocked() {
	close(tb.changed)
	tb.changed = make(chan struct{})
}

// Send sends one command and records the seq of its answer.
func (tb *Tab) Send(ctx context.Context, env chat.Envelope) (chat.Envelope, error) {
	start := time.Now()
	r, err := tb.C.Send(ctx, env)
	if el := time.Since(start); el > slowWait {
		tb.mu.Lock()
		tb.slowSends++
		tb.slowest = max(tb.slowest, el)
		quiet := tb.quiet
		tb.mu.Unlock()
		if !quiet {
			tb.h.T.Logf("%s: %s's %s took %v", tb.h.Name, tb.User, env.Type, el.Round(time.Millisecond))
		}
	}
	if r.Seq > 0 {
		tb.mu.Lock()
		tb.sawLocked(r.Seq)
		tb.notifyLocked()
		tb.mu.Unlock()
	}
	return r, err
}

// MustSend sends env and fails the test unless the answer is ok (or who's presence).
func (tb *Tab) MustSend(env chat.Envelope) chat.Envelope {
	tb.h.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), tb.wait)
	defer cancel()
	r, err := tb.Send(ctx, env)
	if err != nil {
		tb.h.T.Fatalf("%s: %s of %s: %v", tb.h.Name, env.Type, tb.User, err)
	}
	return r
}

// Say sends text to room and returns the ok.
func (tb *Tab) Say(room, text string) chat.Envelope {
	tb.h.T.Helper()
	return tb.MustSend(chat.Envelope{Type: chat.TypeSay, Room: room, Text: text})
}

// Join joins room.
func (tb *Tab) Join(room string) {
	tb.h.T.Helper()
	tb.MustSend(chat.Envelope{Type: chat.TypeJoin, Room: room})
}

// WaitFor waits until cond holds, or fails with what was awaited. cond is called again whenever
// the tab receives something; it may use the tab's accessors.
func (tb *Tab) WaitFor(what string, cond func() bool) {
	tb.h.T.Helper()
	if err := tb.waitFor(what, tb.wait, cond); err != nil {
		tb.h.T.Fatal(err)
	}
}

func (tb *Tab) waitFor(what string, d time.Duration, cond func() bool) error {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	start := time.Now()
	for {
		tb.mu.Lock()
		ch, ended, mark := tb.changed, tb.ended, tb.mark
		tb.mu.Unlock()
		if cond() {
			if el := time.Since(start); el > slowWait {
				tb.h.T.Logf("%s: %s waited %v for %s", tb.h.Name, tb.User, el.Round(time.Millisecond), what)
			}
			return nil
		}
		if ended {
			return fmt.Errorf("%s: %s's Messages closed while waiting for %s (has every seq up to %d; errors: %s)", tb.h.Name, tb.User, what, mark, tb.errSummary())
		}
		select {
		case <-ch:
		case <-deadline.C:
			return fmt.Errorf("%s: %s: no %s within %v (has every seq up to %d; errors: %s)", tb.h.Name, tb.User, what, d, mark, tb.errSummary())
		}
	}
}

func (tb *Tab) errSummary() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.errs) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, e := range tb.errs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%s)", e.Code, e.Error)
	}
	return b.String()
}

// Barrier returns once the tab has received everything its session was sent before now: it
// sends who, and waits until every seq up to the answer's has arrived.
func (tb *Tab) Barrier() {
	tb.h.T.Helper()
	if err := tb.barrier(tb.wait); err != nil {
		tb.h.T.Fatal(err)
	}
}

func (tb *Tab) barrier(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	r, err := tb.Send(ctx, chat.Envelope{Type: chat.TypeWho, Room: chat.Lobby})
	if err != nil {
		return fmt.Errorf("%s: barrier (who) of %s: %v", tb.h.Name, tb.User, err)
	}
	if r.Seq == 0 {
		return fmt.Errorf("%s: who's answer to %s has no seq: %+v", tb.h.Name, tb.User, r)
	}
	return tb.waitFor(fmt.Sprintf("every seq up to %d (barrier)", r.Seq), d, func() bool { return tb.Mark() >= r.Seq })
}

// Mark is the newest seq up to which the tab has received everything.
func (tb *Tab) Mark() uint64 {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.mark
}

// Ended reports whether the client's Messages channel has closed.
func (tb *Tab) Ended() bool {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.ended
}

// Answer returns the msg id of an ok for raw cid (a JSON token) seen on Messages.
func (tb *Tab) Answer(cid string) (string, bool) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	id, ok := tb.answers[cid]
	return id, ok
}

// Msgs returns the msg envelopes received, in arrival order, that match keep (nil: all).
func (tb *Tab) Msgs(keep func(chat.Envelope) bool) []chat.Envelope {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []chat.Envelope
	for _, e := range tb.envs {
		if e.Type == chat.TypeMsg && (keep == nil || keep(e)) {
			out = append(out, e)
		}
	}
	return out
}

// Copies is how many copies of msg id the tab has received.
func (tb *Tab) Copies(id string) int {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.msgIDs[id]
}

// Presence returns the presence envelopes received that match keep.
func (tb *Tab) Presence(keep func(chat.Envelope) bool) []chat.Envelope {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []chat.Envelope
	for _, e := range tb.envs {
		if e.Type == chat.TypePresence && (keep == nil || keep(e)) {
			out = append(out, e)
		}
	}
	return out
}

// Errors returns the error envelopes received on Messages.
func (tb *Tab) Errors() []chat.Envelope {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]chat.Envelope(nil), tb.errs...)
}

// NoGaps fails the test if the tab was told of a gap (something lost from its outbox).
func (tb *Tab) NoGaps() {
	tb.h.T.Helper()
	for _, e := range tb.Errors() {
		if e.Code == chat.CodeGap {
			tb.h.T.Errorf("%s: %s was told of a gap: %s", tb.h.Name, tb.User, e.Error)
		}
	}
}

// ExactlyOnce fails the test unless the tab has exactly want copies of msg id.
func (tb *Tab) ExactlyOnce(id string, want int, what string) {
	tb.h.T.Helper()
	if n := tb.Copies(id); n != want {
		tb.h.T.Errorf("%s: %s has %d copies of %s (id %s), want %d", tb.h.Name, tb.User, n, what, id, want)
	}
}

func isPresence(room, user, event string) func(chat.Envelope) bool {
	return func(e chat.Envelope) bool { return e.Room == room && e.User == user && e.Event == event }
}

func sortedCopy(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}
