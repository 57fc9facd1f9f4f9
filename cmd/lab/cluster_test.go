package main

import (
	"bufio"
	"context"
	"fmt"
	"github.com/wirelab/wirelab/transports/longpoll"
	"github.com/wirelab/wirelab/transports/shortpoll"
	"github.com/wirelab/wirelab/transports/sse"
	"github.com/wirelab/wirelab/transports/websocket"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/internal/redistest"
	"github.com/wirelab/wirelab/internal/testio"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/all"
)

// labNode is one `lab serve --redis` process.
type labNode struct {
	name   string
	addr   string
	cmd    *exec.Cmd
	stderr *testio.LockedBuffer
	done   chan error
}

func startNode(t *testing.T, bin, redisURL, name string) *labNode {
	t.Helper()
	n := &labNode{name: name, stderr: &testio.LockedBuffer{}, done: make(chan error, 1)}
	n.cmd = exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--redis", redisURL, "--node", name,
		"--node-ttl", "1s", "--log", "warn")
	out, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	n.cmd.Stderr = n.stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	if err != nil {
		_ = n.cmd.Process.Kill()
		t.Fatalf("%s: reading the first line: %v\n%s", name, err, n.stderr.String())
	}
	m := listenLine.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		_ = n.cmd.Process.Kill()
		t.Fatalf("%s: first line %q", name, line)
	}
	n.addr = m[1]
	go func() { _, _ = io.Copy(io.Discard, r); n.done <- n.cmd.Wait() }()
	t.Cleanup(func() {
		_ = n.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-n.done:
		case <-time.After(20 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.done
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, n.stderr.String())
		}
	})
	return n
}

// kill ends the node as a crash would: SIGKILL, nothing cleaned up.
func (n *labNode) kill(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-n.done
	n.done <- nil // for the cleanup
}

// roundRobin is a load balancer with no stickiness: every request (and every WebSocket
// connection) goes to the next live node.
type roundRobin struct {
	mu    sync.Mutex
	nodes []*url.URL
	next  atomic.Uint64
	hits  map[string]int
}

func (rr *roundRobin) pick() *url.URL {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	u := rr.nodes[int(rr.next.Add(1))%len(rr.nodes)]
	rr.hits[u.Host]++
	return u
}

func (rr *roundRobin) remove(addr string) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	for i, u := range rr.nodes {
		if u.Host == addr {
			rr.nodes = append(rr.nodes[:i], rr.nodes[i+1:]...)
			return
		}
	}
}

// TestClusterNoStickySessions runs three `lab serve --redis` processes behind a round-robin
// load balancer: users on short polling, long polling, SSE and WebSocket chat in the lobby,
// each request may reach any node; then one node is killed (SIGKILL) and the chat goes on.
// Every user gets every message exactly once.
func TestClusterNoStickySessions(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: skips building the lab binary")
	}
	rs := redistest.Start(t)
	bin := buildLab(t)
	var nodes []*labNode
	rr := &roundRobin{hits: map[string]int{}}
	for i := 1; i <= 3; i++ {
		n := startNode(t, bin, rs.URL(), fmt.Sprintf("node%d", i))
		nodes = append(nodes, n)
		u, _ := url.Parse("http://" + n.addr)
		rr.nodes = append(rr.nodes, u)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(rr.pick()) },
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	lb := httptest.NewServer(proxy)
	defer lb.Close()

	names := []string{shortpoll.Name, longpoll.Name, sse.Name, websocket.Name}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type user struct {
		c       transports.Client
		mu      sync.Mutex
		got     map[string]int
		changed chan struct{}
	}
	var users []*user
	var wg sync.WaitGroup
	defer wg.Wait()
	for i, name := range names {
		c, err := all.NewClient(name, transports.Options{URL: lb.URL, User: fmt.Sprintf("u%d", i), RetryInterval: 300 * time.Millisecond, PollInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("%s: connect through the load balancer: %v", name, err)
		}
		u := &user{c: c, got: map[string]int{}, changed: make(chan struct{}, 1)}
		users = append(users, u)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range c.Messages() {
				if d.Env.Type == chat.TypeMsg {
					u.mu.Lock()
					u.got[d.Env.Text]++
					u.mu.Unlock()
					select {
					case u.changed <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	say := func(round int) {
		t.Helper()
		for i, u := range users {
			for k := 0; k < 5; k++ {
				text := fmt.Sprintf("r%d u%d m%d", round, i, k)
				if _, err := u.c.Send(ctx, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: text}); err != nil {
					t.Fatalf("%s: say %q: %v", names[i], text, err)
				}
			}
		}
	}
	// waitAll waits until every user has every message of rounds up to round.
	waitAll := func(round int) {
		t.Helper()
		want := 0
		deadline := time.Now().Add(60 * time.Second)
		for _, u := range users {
			for {
				u.mu.Lock()
				have := 0
				for r := 0; r <= round; r++ {
					for i := range users {
						for k := 0; k < 5; k++ {
							if u.got[fmt.Sprintf("r%d u%d m%d", r, i, k)] > 0 {
								have++
							}
						}
					}
				}
				u.mu.Unlock()
				want = (round + 1) * len(users) * 5
				if have == want {
					break
				}
				select {
				case <-u.changed:
				case <-time.After(time.Until(deadline)):
					t.Fatalf("%s has %d of %d messages", u.c.User(), have, want)
				}
			}
		}
	}
	say(0)
	waitAll(0)

	// Kill node 1 without warning; the load balancer stops sending to it.
	nodes[0].kill(t)
	rr.remove(nodes[0].addr)
	say(1)
	waitAll(1)

	for _, u := range users {
		u.mu.Lock()
		for text, n := range u.got {
			if n != 1 {
				t.Errorf("%s got %q %d times", u.c.User(), text, n)
			}
		}
		u.mu.Unlock()
	}
	rr.mu.Lock()
	t.Logf("requests per node: %v", rr.hits)
	rr.mu.Unlock()
}

// TestServeRedisDown: a node whose Redis is not there at start says so, answers errors (not
// hangs) and starts working once Redis is up, without a restart.
func TestServeRedisDown(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: skips building the lab binary")
	}
	redistest.Binary(t)
	bin := buildLab(t)
	rs := redistest.Start(t)
	rs.Stop() // the port is known, nothing listens on it
	n := startNode(t, bin, rs.URL(), "lonely")
	client := &http.Client{Timeout: 15 * time.Second}
	start := time.Now()
	resp, err := client.Post("http://"+n.addr+"/api/session?user=alice", "", nil)
	if err != nil {
		t.Fatalf("opening a session while Redis is down: %v (want an error answer, not a failed request)", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 500 || !strings.Contains(string(body), "unavailable") || !strings.Contains(string(body), "redis") {
		t.Errorf("while Redis is down: %s %s, want a 5xx unavailable error that names Redis", resp.Status, body)
	}
	t.Logf("answered in %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(body)))
	if !strings.Contains(n.stderr.String(), "redis") {
		t.Errorf("the node's log does not mention Redis being down:\n%s", n.stderr.String())
	}
	rs.Restart()
	resp, err = client.Post("http://"+n.addr+"/api/session?user=alice", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"welcome"`) {
		t.Errorf("once Redis is up: %s %s, want a welcome", resp.Status, body)
	}
}
