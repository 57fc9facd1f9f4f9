package lab

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/netem"
	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/transports/webtransport"
)

// The server process: the lab starts `lab lab-server` with the bridge socket of the server host
// as fd 3 and talks to it over stdin/stdout, one JSON line each way:
//
//	child -> lab   {"ready":true,"cert_hash":"<hex>"}         once the server listens
//	lab -> child   mark                                          start of the measured window
//	child -> lab   {"ok":true}
//	lab -> child   stats
//	child -> lab   {"requests":N,"goroutines_peak":N,"rss_peak_bytes":N}
//	lab -> child   quit (or EOF)                                 shut down and exit
type childReply struct {
	Ready          bool   `json:"ready,omitempty"`
	CertHash       string `json:"cert_hash,omitempty"`
	OK             bool   `json:"ok,omitempty"`
	Requests       int64  `json:"requests"`
	GoroutinesPeak int64  `json:"goroutines_peak"`
	RSSPeak        int64  `json:"rss_peak_bytes"`
	RSS            int64  `json:"rss_bytes,omitempty"` // at ready: the idle server
	// SchedP99 is how late the server process's Go scheduler woke a 5 ms timer since mark (p99,
	// ms): the server's own "short of CPU" signal.
	SchedP99 float64 `json:"sched_delay_p99_ms,omitempty"`
	// QUICLost: per session id, the seqs whose own QUIC packets were lost (server to client).
	QUICLost map[string][]uint64 `json:"quic_lost,omitempty"`
	Error    string              `json:"error,omitempty"`
}

// ServeChild is the server process's main: it attaches the bridged host, serves the chat on it
// and answers the lab's commands until quit or EOF.
func ServeChild(bridge *os.File, hub chat.Config, in io.Reader, out io.Writer) error {
	h, err := netem.AttachHost(bridge)
	if err != nil {
		return err
	}
	defer h.Close()
	ln, err := h.ListenTCP(ServerPort)
	if err != nil {
		return err
	}
	pc, err := h.ListenUDP(ServerPort)
	if err != nil {
		ln.Close()
		return err
	}
	return ServeChildOn(ln, pc, hub, in, out)
}

// ServeChildKernel is the server process's main on the kernel stack: the lab started it inside
// the server host's network namespace, so plain sockets on addr ("10.0.0.1") are Linux TCP and
// UDP behind the emulated link.
func ServeChildKernel(addr string, hub chat.Config, in io.Reader, out io.Writer) error {
	hp := net.JoinHostPort(addr, strconv.Itoa(ServerPort))
	ln, err := net.Listen("tcp4", hp)
	if err != nil {
		return fmt.Errorf("listening on %s (is this process in the lab's server namespace?): %w", hp, err)
	}
	pc, err := net.ListenPacket("udp4", hp)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listening on udp %s: %w", hp, err)
	}
	return ServeChildOn(ln, pc, hub, in, out)
}

// ServeChildOn serves the chat on ln and pc and answers the lab's commands until quit or EOF.
func ServeChildOn(ln net.Listener, pc net.PacketConn, hub chat.Config, in io.Reader, out io.Writer) error {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub.Logger = quiet
	loss := webtransport.NewLossMap()
	srv, err := server.New(server.Config{Hub: hub, Logger: quiet, WTLoss: loss})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln, pc) }()

	var gPeak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if g := int64(runtime.NumGoroutine()); g > gPeak.Load() {
					gPeak.Store(g)
				}
			}
		}
	}()
	enc := json.NewEncoder(out)
	hash := srv.CertHash()
	runtime.GC()
	if err := enc.Encode(childReply{Ready: true, CertHash: hex.EncodeToString(hash[:]), RSS: currentRSS()}); err != nil {
		return err
	}
	var base int64
	var probe *schedProbe
	defer func() {
		if probe != nil {
			probe.stop()
		}
	}()
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		switch strings.TrimSpace(sc.Text()) {
		case "mark":
			if probe != nil {
				probe.stop()
			}
			probe = startSchedProbe()
			base = srv.T.Requests.Load()
			gPeak.Store(int64(runtime.NumGoroutine()))
			resetPeakRSS()
			loss.Reset()
			_ = enc.Encode(childReply{OK: true})
		case "stats":
			var sched float64
			if probe != nil {
				sched = probe.p99()
			}
			_ = enc.Encode(childReply{Requests: srv.T.Requests.Load() - base, GoroutinesPeak: gPeak.Load(), RSSPeak: peakRSS(), QUICLost: loss.Lost(), SchedP99: sched})
		case "quit":
			goto quit
		default:
			_ = enc.Encode(childReply{Error: fmt.Sprintf("unknown command %q (mark, stats, quit)", sc.Text())})
		}
	}
quit:
	close(stop)
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	serr := srv.Shutdown(ctx)
	return errors.Join(serr, <-done)
}

// resetPeakRSS restarts the kernel's peak-RSS counter (VmHWM) for this process.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is this process's peak resident set size since the last reset.
func peakRSS() int64 { return statusKB("VmHWM:") }

// currentRSS is this process's resident set size now.
func currentRSS() int64 { return statusKB("VmRSS:") }

func statusKB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// childServer is the lab's handle on the server process.
type childServer struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	hash   [32]byte
	rss0   int64
	cpu0   time.Duration
	stderr *strings.Builder
	mu     sync.Mutex
	pause  *testPause // WIRELAB_TEST_PAUSE: stop the process once, after Mark
	paused *pauser
}

// startChild starts the server process on a bridged host of nw (or, with kernel, in a kernel
// host's namespace) and waits until it serves.
func startChild(ctx context.Context, nw *netem.Network, addr string, hub chat.Config, opt Options, kernel bool, extra ...string) (*netem.Host, *childServer, error) {
	var h *netem.Host
	var bridge *os.File
	var err error
	if kernel {
		h, err = nw.KernelHost(addr)
		extra = append([]string{"--listen", addr}, extra...)
	} else {
		h, bridge, err = nw.BridgeHost(addr)
	}
	if err != nil {
		return nil, nil, err
	}
	args := opt.ServerCommand
	if len(args) == 0 {
		exe, err := os.Executable()
		if err != nil {
			bridge.Close()
			return nil, nil, err
		}
		args = []string{exe, "lab-server"}
	}
	args = append(append([]string(nil), args...),
		"--outbox", strconv.Itoa(hub.Outbox), "--send-queue", strconv.Itoa(hub.SendQueue))
	args = append(args, extra...)
	cmd := exec.Command(args[0], args[1:]...)
	if os.Getenv("GOGC") == "" {
		// As the lab does for itself (lab run): a garbage collection every 400% of heap growth
		// instead of 100%. With the default, the server's collections came at random times in
		// a run and a no-loss run's p99, every stall's threshold, moved by 15-30 ms between
		// runs of one scenario (wt-datagram at 0%: 64-131 ms; at 400: 56-73 ms).
		cmd.Env = append(os.Environ(), "GOGC=400")
	}
	if !kernel {
		cmd.ExtraFiles = []*os.File{bridge}
	}
	cs := &childServer{cmd: cmd, stderr: &strings.Builder{}, pause: opt.pause}
	cmd.Stderr = &lockedWriter{w: cs.stderr}
	if cs.in, err = cmd.StdinPipe(); err != nil {
		bridge.Close()
		return nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		bridge.Close()
		return nil, nil, err
	}
	start := cmd.Start
	if kernel {
		start = func() error { return h.Start(cmd) }
	}
	if err := start(); err != nil {
		bridge.Close()
		return nil, nil, fmt.Errorf("starting %s: %w", args[0], err)
	}
	bridge.Close()
	cs.out = bufio.NewScanner(stdout)
	// A stats line holds the QUIC loss map: per session, the seqs a lost packet carried. With
	// 1,000 sessions and wt-datagram's resends it passes bufio's 64 KiB default.
	cs.out.Buffer(make([]byte, 0, 64<<10), 256<<20)
	var hello childReply
	ready := make(chan error, 1)
	go func() { ready <- cs.read(&hello) }()
	select {
	case err = <-ready:
	case <-time.After(30 * time.Second):
		err = errors.New("no ready line within 30 s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil || !hello.Ready {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, nil, fmt.Errorf("the server process did not start: %v; its stderr:\n%s", err, cs.stderr.String())
	}
	b, err := hex.DecodeString(hello.CertHash)
	if err != nil || len(b) != 32 {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, nil, fmt.Errorf("the server process sent a bad certificate hash %q", hello.CertHash)
	}
	copy(cs.hash[:], b)
	cs.rss0 = hello.RSS
	return h, cs, nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (c *childServer) read(r *childReply) error {
	if !c.out.Scan() {
		if err := c.out.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	return json.Unmarshal(c.out.Bytes(), r)
}

func (c *childServer) ask(cmd string) (childReply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var r childReply
	if _, err := io.WriteString(c.in, cmd+"\n"); err != nil {
		return r, err
	}
	if err := c.read(&r); err != nil {
		return r, fmt.Errorf("server process: %w", err)
	}
	if r.Error != "" {
		return r, errors.New(r.Error)
	}
	return r, nil
}

func (c *childServer) CertHash() [32]byte { return c.hash }

func (c *childServer) Mark() error {
	if _, err := c.ask("mark"); err != nil {
		return err
	}
	c.cpu0, _ = procCPU(c.cmd.Process.Pid)
	if c.pause != nil && c.paused == nil {
		c.paused = startPause(c.cmd.Process.Pid, c.pause)
	}
	return nil
}

func (c *childServer) Stats() (serverStats, error) {
	cpu, err := procCPU(c.cmd.Process.Pid)
	if err != nil {
		return serverStats{}, err
	}
	r, err := c.ask("stats")
	if err != nil {
		return serverStats{}, err
	}
	return serverStats{CPU: cpu - c.cpu0, RSSPeak: r.RSSPeak, RSSBase: c.rss0, Requests: r.Requests, GoroutinesPeak: r.GoroutinesPeak, Separate: true, QUICLost: r.QUICLost, SchedMS: r.SchedP99}, nil
}

func (c *childServer) Close(ctx context.Context) error {
	c.paused.stop()
	_, _ = io.WriteString(c.in, "quit\n")
	_ = c.in.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("server process: %v; stderr:\n%s", err, c.stderr.String())
		}
		return nil
	case <-ctx.Done():
		_ = c.cmd.Process.Kill()
		<-done
		return ctx.Err()
	}
}
