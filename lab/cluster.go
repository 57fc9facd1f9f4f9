package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/netem"
	"github.com/wirelab/wirelab/results"
)

// A scenario with nodes: N > 1 runs the chat as N server nodes on Redis (chat/redisbroker):
// the lab starts a redis-server on loopback (the nodes' own network, not the emulated one),
// and each node in a process of its own on a bridged host 10.0.0.1, 10.0.0.2, ... Every client
// host has a link to every node; each session connects to one node, users spread across
// them (tab t of user u on node (u+t) mod N), so that a user's tabs and a room's members are on
// different nodes. The results add latency of copies that crossed nodes and of those that did
// not, and the Redis server's CPU.

// redisServer is the lab's redis-server process.
type redisServer struct {
	cmd  *exec.Cmd
	url  string
	dir  string
	done chan error
}

// startRedis starts redis-server on a free loopback port without persistence.
func startRedis(ctx context.Context) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("a scenario with nodes > 1 runs on Redis, and redis-server is not installed (%v): apt-get install -y redis-server, or set nodes: 1", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "wirelab-redis-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no", "--loglevel", "notice")
	out, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting redis-server: %w", err)
	}
	r := &redisServer{cmd: cmd, url: fmt.Sprintf("redis://127.0.0.1:%d/0", port), dir: dir, done: make(chan error, 1)}
	ready := make(chan struct{})
	var head strings.Builder
	go func() { // ends when redis-server's output closes; close waits for done
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			if !seen {
				head.WriteString(sc.Text() + "\n")
				if strings.Contains(sc.Text(), "Ready to accept connections") {
					seen = true
					close(ready)
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
		r.done <- cmd.Wait()
	}()
	select {
	case <-ready:
		return r, nil
	case err := <-r.done:
		r.done <- err
		r.close()
		return nil, fmt.Errorf("redis-server exited at start (%v):\n%s", err, head.String())
	case <-time.After(15 * time.Second):
		err = errors.New("redis-server was not ready within 15 s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	r.close()
	return nil, err
}

func (r *redisServer) close() {
	_ = r.cmd.Process.Kill()
	<-r.done
	os.RemoveAll(r.dir)
}

// clusterServer is N node processes and their Redis, as one serverHandle.
type clusterServer struct {
	nodes []*childServer
	hosts []*netem.Host
	redis *redisServer
	cpu0  time.Duration // Redis CPU at Mark
}

// startCluster starts Redis and n nodes on bridged hosts 10.0.0.1..n.
func startCluster(ctx context.Context, nw *netem.Network, n int, hub chat.Config, opt Options) (*clusterServer, error) {
	r, err := startRedis(ctx)
	if err != nil {
		return nil, err
	}
	c := &clusterServer{redis: r}
	for i := 1; i <= n; i++ {
		h, cs, err := startChild(ctx, nw, fmt.Sprintf("10.0.0.%d", i), hub, opt, false, "--redis", r.url, "--node", fmt.Sprintf("node%d", i))
		if err != nil {
			cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			_ = c.Close(cctx)
			cancel()
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
		c.nodes = append(c.nodes, cs)
		c.hosts = append(c.hosts, h)
	}
	return c, nil
}

// CertHash is node 1's; CertHashes has every node's.
func (c *clusterServer) CertHash() [32]byte { return c.nodes[0].CertHash() }

func (c *clusterServer) CertHashes() [][32]byte {
	out := make([][32]byte, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.CertHash()
	}
	return out
}

func (c *clusterServer) Mark() error {
	for _, n := range c.nodes {
		if err := n.Mark(); err != nil {
			return err
		}
	}
	c.cpu0, _ = procCPU(c.redis.cmd.Process.Pid)
	return nil
}

// Stats adds up the nodes: CPU, peak RSS, requests, goroutines; QUIC losses merged.
func (c *clusterServer) Stats() (serverStats, error) {
	var sum serverStats
	for _, n := range c.nodes {
		st, err := n.Stats()
		if err != nil {
			return serverStats{}, err
		}
		sum.CPU += st.CPU
		sum.RSSPeak += st.RSSPeak
		sum.RSSBase += st.RSSBase
		sum.Requests += st.Requests
		sum.GoroutinesPeak += st.GoroutinesPeak
		sum.SchedMS = max(sum.SchedMS, st.SchedMS)
		sum.Separate = true
		for k, v := range st.QUICLost {
			if sum.QUICLost == nil {
				sum.QUICLost = map[string][]uint64{}
			}
			sum.QUICLost[k] = append(sum.QUICLost[k], v...)
		}
	}
	return sum, nil
}

// RedisCPU is the Redis server's CPU time since Mark.
func (c *clusterServer) RedisCPU() time.Duration {
	cpu, err := procCPU(c.redis.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	return cpu - c.cpu0
}

func (c *clusterServer) Close(ctx context.Context) error {
	var errs []error
	for _, n := range c.nodes {
		if err := n.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	c.redis.close()
	return errors.Join(errs...)
}

// nodeOf is the node session s connects to: users spread across nodes, and a user's tabs too.
func (pt *point) nodeOf(s int) int {
	if len(pt.srvHosts) <= 1 {
		return 0
	}
	return (pt.pop.UserOf(s) + s%pt.sc.Tabs) % len(pt.srvHosts)
}

// clusterFigures splits the copies' latency into those that crossed nodes (sender and
// recipient on different nodes) and those that did not, and adds the Redis server's CPU.
func (pt *point) clusterFigures(d *driven, delivered int64, redisCPU time.Duration) *results.Cluster {
	cross := hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
	same := hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
	for s := range d.rec.sessions {
		for _, c := range d.rec.sessions[s].recs {
			h := same
			if pt.nodeOf(s) != pt.nodeOf(d.msgs[c.msg].Sender) {
				h = cross
			}
			_ = h.RecordValue(max(1, int64(c.lat/time.Microsecond)))
		}
	}
	out := &results.Cluster{
		Nodes:       len(pt.srvHosts),
		CrossNode:   latency(cross),
		SameNode:    latency(same),
		CrossCopies: cross.TotalCount(),
		RedisCPUS:   redisCPU.Seconds(),
	}
	if delivered > 0 {
		out.RedisCPUUSPerMsg = float64(redisCPU.Microseconds()) / float64(delivered)
	}
	return out
}
