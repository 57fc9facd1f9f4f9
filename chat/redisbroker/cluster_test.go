package redisbroker

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/internal/redistest"
	"github.com/wirelab/wirelab/internal/testio"
)

// TestMain fails on leaked goroutines. The test binary decides go-redis's process-wide logger,
// as cmd/lab does: quiet (the tests stop and restart Redis; the broker reports it itself).
func TestMain(m *testing.M) {
	QuietLogger()
	goleak.VerifyTestMain(m)
}

var prefixes atomic.Int64

// cluster is several hubs (nodes) on one real redis-server.
type cluster struct {
	t      *testing.T
	redis  *redistest.Server
	prefix string
	nodes  []*node
}

type node struct {
	name   string
	hub    *chat.Hub
	broker *Broker
	dead   bool
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t, redis: redistest.Start(t), prefix: fmt.Sprintf("wlt%d:", prefixes.Add(1))}
	for i := 1; i <= n; i++ {
		c.add(fmt.Sprintf("node%d", i))
	}
	return c
}

func (c *cluster) add(name string) *node {
	c.t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testio.LogWriter(c.t), &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", name)
	}
	b, err := New(Options{URL: c.redis.URL(), Node: name, Prefix: c.prefix, NodeTTL: 600 * time.Millisecond, Logger: logger})
	if err != nil {
		c.t.Fatal(err)
	}
	h, err := chat.NewHub(chat.Config{Node: name, Broker: b, Logger: logger})
	if err != nil {
		c.t.Fatal(err)
	}
	nd := &node{name: name, hub: h, broker: b}
	c.nodes = append(c.nodes, nd)
	c.t.Cleanup(func() {
		_ = h.Shutdown(context.Background())
		_ = b.Close()
	})
	return nd
}

// kill makes a node stop as if its process died: its broker stops renewing the heartbeat and
// leaves its heartbeat key to expire; nothing is cleaned up in Redis.
func (n *node) kill() {
	n.dead = true
	n.broker.closing.Do(func() {
		close(n.broker.stop)
		_ = n.broker.ps.Close()
		n.broker.wg.Wait()
		_ = n.broker.rdb.Close()
	})
}

func (n *node) open(t *testing.T, user string) *tab {
	t.Helper()
	s, err := n.hub.Open(context.Background(), user)
	if err != nil {
		t.Fatalf("open %s on %s: %v", user, n.name, err)
	}
	return &tab{t: t, s: s, id: s.ID(), user: user}
}

// tab is one client session: what it has received, by seq.
type tab struct {
	t    *testing.T
	s    *chat.Session
	id   string
	user string
	got  []chat.Envelope
	last uint64
}

// do runs a command on the tab's session on node n (claiming it there if needed).
func (tb *tab) do(n *node, env chat.Envelope) chat.Envelope {
	tb.t.Helper()
	s, err := n.hub.LookupContext(context.Background(), tb.id, tb.user)
	if err != nil {
		tb.t.Fatalf("lookup %s on %s: %v", tb.user, n.name, err)
	}
	tb.s = s
	r, err := s.Handle(context.Background(), env)
	if err != nil {
		tb.t.Fatalf("%s by %s on %s: %v", env.Type, tb.user, n.name, err)
	}
	return r
}

// poll reads what the session has after the last seq seen, on node n (a poll that may reach
// any node), waiting until pred holds for something received or the deadline passes.
func (tb *tab) pollUntil(n *node, pred func(chat.Envelope) bool) {
	tb.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := n.hub.LookupContext(context.Background(), tb.id, tb.user)
		if err != nil {
			tb.t.Fatalf("lookup %s on %s: %v", tb.user, n.name, err)
		}
		tb.s = s
		c, err := s.Attach(chat.AttachOptions{After: tb.last})
		if err != nil {
			tb.t.Fatalf("attach %s on %s after %d: %v", tb.user, n.name, tb.last, err)
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		done := false
		for !done {
			b, err := c.Next(ctx, nil)
			if err != nil {
				if ctx.Err() != nil {
					cancel()
					c.Detach()
					tb.t.Fatalf("%s on %s: gave up waiting; got %s", tb.user, n.name, describe(tb.got))
				}
				break // the cursor ended (the session moved): look it up again
			}
			for _, d := range b.Direct {
				if d.Code == chat.CodeGap || d.Code == chat.CodeLost {
					tb.t.Errorf("%s: %s: %s", tb.user, d.Code, d.Error)
				}
			}
			for _, e := range b.Entries {
				if e.Seq != tb.last+1 {
					tb.t.Errorf("%s: seq %d after %d", tb.user, e.Seq, tb.last)
				}
				tb.last = e.Seq
				env := e.Envelope()
				tb.got = append(tb.got, env)
				if pred(env) {
					done = true
				}
			}
		}
		cancel()
		c.Detach()
		if done {
			return
		}
	}
}

func describe(envs []chat.Envelope) string {
	var b strings.Builder
	for _, e := range envs {
		fmt.Fprintf(&b, "\n  %d %s room=%s from=%s text=%q event=%s user=%s", e.Seq, e.Type, e.Room, e.From, e.Text, e.Event, e.User)
	}
	return b.String()
}

func text(s string) func(chat.Envelope) bool {
	return func(e chat.Envelope) bool { return e.Type == chat.TypeMsg && e.Text == s }
}

// count counts messages with text s.
func (tb *tab) count(s string) int {
	n := 0
	for _, e := range tb.got {
		if e.Type == chat.TypeMsg && e.Text == s {
			n++
		}
	}
	return n
}

func dm(to, text, cid string) chat.Envelope {
	return chat.Envelope{Type: chat.TypeDM, To: to, Text: text, CID: chat.StringCID(cid)}
}

func say(room, text, cid string) chat.Envelope {
	return chat.Envelope{Type: chat.TypeSay, Room: room, Text: text, CID: chat.StringCID(cid)}
}

// A DM from a user on node 1 reaches the recipient's tabs on nodes 2 and 3 exactly once, and
// the sender's own tab.
func TestDMAcrossNodes(t *testing.T) {
	c := newCluster(t, 3)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	alice := n1.open(t, "alice")
	bob2 := n2.open(t, "bob")
	bob3 := n3.open(t, "bob")
	alice.do(n1, dm("bob", "hello bob", "c1"))
	alice.do(n1, dm("bob", "hello again", "c2")) // retried below: must not be sent twice
	alice.do(n2, dm("bob", "hello again", "c2")) // the same command retried on another node
	alice.do(n1, dm("bob", "last", "c3"))
	for b, n := range map[*tab]*node{bob2: n2, bob3: n3} {
		b.pollUntil(n, text("last"))
		for _, m := range []string{"hello bob", "hello again", "last"} {
			if n := b.count(m); n != 1 {
				t.Errorf("bob's tab got %q %d times, want once:%s", m, n, describe(b.got))
			}
		}
	}
	alice.pollUntil(n2, text("last"))
	if n := alice.count("hello bob"); n != 1 {
		t.Errorf("alice's tab got her DM %d times, want once", n)
	}
	if n, _ := n3.broker.UserSessions(context.Background(), "bob"); n != 2 {
		t.Errorf("the registry has %d sessions of bob, want 2", n)
	}
}

// A room spanning three nodes: everyone gets every message once, and presence is the same
// from every node.
func TestRoomAcrossThreeNodes(t *testing.T) {
	c := newCluster(t, 3)
	var tabs []*tab
	for i, n := range c.nodes {
		tb := n.open(t, fmt.Sprintf("u%d", i+1))
		tb.do(n, chat.Envelope{Type: chat.TypeJoin, Room: "r", CID: chat.StringCID("j")})
		tabs = append(tabs, tb)
	}
	for i, tb := range tabs {
		tb.do(c.nodes[i], say("r", fmt.Sprintf("from %d", i+1), "s"))
	}
	for i, tb := range tabs {
		tb.pollUntil(c.nodes[i], func(chat.Envelope) bool { return tb.count("from 1")+tb.count("from 2")+tb.count("from 3") == 3 })
		for j := 1; j <= 3; j++ {
			if n := tb.count(fmt.Sprintf("from %d", j)); n != 1 {
				t.Errorf("u%d got %q %d times", i+1, fmt.Sprintf("from %d", j), n)
			}
		}
	}
	for i, n := range c.nodes {
		r := tabs[i].do(n, chat.Envelope{Type: chat.TypeWho, Room: "r", CID: chat.StringCID("w")})
		if !slices.Equal(r.Members, []string{"u1", "u2", "u3"}) {
			t.Errorf("who r on %s = %v, want [u1 u2 u3]", n.name, r.Members)
		}
	}
}

// No sticky sessions: each poll reaches another node; the session follows with nothing lost
// or doubled, and the node it left lets it go.
func TestPollOnAnotherNode(t *testing.T) {
	c := newCluster(t, 3)
	n1 := c.nodes[0]
	alice := n1.open(t, "alice")
	bob := c.nodes[1].open(t, "bob")
	alice.do(n1, chat.Envelope{Type: chat.TypeJoin, Room: "r", CID: chat.StringCID("j")})
	bob.do(c.nodes[1], chat.Envelope{Type: chat.TypeJoin, Room: "r", CID: chat.StringCID("j")})
	for i := 0; i < 30; i++ {
		bob.do(c.nodes[i%3], say("r", fmt.Sprintf("m%d", i), fmt.Sprintf("c%d", i)))
		if i%3 == 2 {
			alice.pollUntil(c.nodes[(i/3)%3], text(fmt.Sprintf("m%d", i)))
		}
	}
	for i := 0; i < 30; i++ {
		if n := alice.count(fmt.Sprintf("m%d", i)); n != 1 {
			t.Errorf("alice got m%d %d times:%s", i, n, describe(alice.got))
		}
	}
	claimed := uint64(0)
	for _, n := range c.nodes {
		claimed += n.hub.ClusterStats().Claimed
	}
	if claimed < 10 {
		t.Errorf("only %d claims for sessions polled on three nodes in turn", claimed)
	}
	holders := 0
	for _, n := range c.nodes {
		if n.hub.Holds(alice.id) {
			holders++
		}
	}
	if holders > 1 {
		t.Errorf("%d nodes hold alice's session", holders)
	}
}

// A node dies: its sessions leave presence within the node TTL, and its users resume on another
// node with everything sent meanwhile, nothing lost or doubled.
func TestNodeKilled(t *testing.T) {
	c := newCluster(t, 2)
	n1, n2 := c.nodes[0], c.nodes[1]
	carol := n1.open(t, "carol")
	dave := n2.open(t, "dave")
	carol.do(n1, chat.Envelope{Type: chat.TypeJoin, Room: "r", CID: chat.StringCID("j")})
	dave.do(n2, chat.Envelope{Type: chat.TypeJoin, Room: "r", CID: chat.StringCID("j")})
	dave.do(n2, say("r", "before", "b"))
	carol.pollUntil(n1, text("before"))

	n1.kill()
	start := time.Now()
	dave.pollUntil(n2, func(e chat.Envelope) bool {
		return e.Type == chat.TypePresence && e.Room == "r" && e.User == "carol" && e.Event == "leave"
	})
	t.Logf("carol left presence %v after her node died (node TTL 600ms)", time.Since(start).Round(time.Millisecond))
	r := dave.do(n2, chat.Envelope{Type: chat.TypeWho, Room: "r", CID: chat.StringCID("w")})
	if !slices.Equal(r.Members, []string{"dave"}) {
		t.Errorf("who r after carol's node died = %v, want [dave]", r.Members)
	}
	for i := 0; i < 5; i++ {
		dave.do(n2, say("r", fmt.Sprintf("while dead %d", i), fmt.Sprintf("d%d", i)))
	}
	// While her only session is away, carol is not online: a DM to her is refused (the sender
	// is told), not silently dropped.
	if _, err := dave.s.Handle(context.Background(), dm("carol", "a dm while away", "dm")); err == nil || !strings.Contains(err.Error(), "no open session") {
		t.Errorf("a DM to a user whose node died: %v, want unknown_user", err)
	}
	// carol's client reconnects; the load balancer sends it to node 2.
	carol.pollUntil(n2, text("while dead 4"))
	for i := 0; i < 5; i++ {
		if n := carol.count(fmt.Sprintf("while dead %d", i)); n != 1 {
			t.Errorf("carol got %q %d times after resuming:%s", fmt.Sprintf("while dead %d", i), n, describe(carol.got))
		}
	}
	if n := carol.count("before"); n != 1 {
		t.Errorf("carol got %q %d times", "before", n)
	}
	// She is back in presence.
	dave.pollUntil(n2, func(e chat.Envelope) bool {
		return e.Type == chat.TypePresence && e.Room == "r" && e.User == "carol" && e.Event == "join"
	})
	r = dave.do(n2, chat.Envelope{Type: chat.TypeWho, Room: "r", CID: chat.StringCID("w2")})
	if !slices.Equal(r.Members, []string{"carol", "dave"}) {
		t.Errorf("who r after carol resumed = %v, want [carol dave]", r.Members)
	}
	dave.do(n2, dm("carol", "welcome back", "dm2"))
	carol.pollUntil(n2, text("welcome back"))
	if l := n2.hub.ClusterStats().Lost; l != 0 {
		t.Errorf("node 2 counted %d lost messages", l)
	}
}

// Redis restarts (with its append-only file): the nodes reconnect; a command while it is down
// gets an error, not a hang; nothing published is lost.
func TestRedisRestart(t *testing.T) {
	c := newCluster(t, 2)
	n1, n2 := c.nodes[0], c.nodes[1]
	erin := n1.open(t, "erin")
	frank := n2.open(t, "frank")
	frank.do(n2, dm("erin", "one", "1"))
	erin.pollUntil(n1, text("one"))

	c.redis.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	_, err := frank.s.Handle(ctx, dm("erin", "while down", "2"))
	cancel()
	if err == nil {
		t.Fatal("a DM while Redis is down succeeded")
	}
	if !strings.Contains(err.Error(), "unreachable") && !strings.Contains(err.Error(), "unavailable") {
		t.Errorf("the error while Redis is down does not say so: %v", err)
	}
	t.Logf("while Redis is down: %v", err)

	c.redis.Restart()
	// Published at once: node 1's pub/sub may not be back yet; it catches up from the stream.
	// The first command may meet a pooled connection that died with the old server; go-redis
	// drops it and the next one dials the new server.
	for i := 0; ; i++ {
		_, err := frank.s.Handle(context.Background(), dm("erin", "after", "3"))
		if err == nil {
			break
		}
		if i == 3 {
			t.Fatalf("no DM goes through after Redis restarted: %v", err)
		}
	}
	frank.do(n2, dm("erin", "two", "4"))
	erin.pollUntil(n1, text("two"))
	if n := erin.count("after"); n != 1 {
		t.Errorf("erin got %q %d times:%s", "after", n, describe(erin.got))
	}
	for _, n := range c.nodes {
		if st := n.broker.Stats(); st.Lost != 0 || st.Resets != 0 {
			t.Errorf("%s: %+v", n.name, st)
		}
	}
}
