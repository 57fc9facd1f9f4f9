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
	loss := NewLossMap()
	srv, err := server.New(server.Config{Hub: hub, Logger: quiet, WTObserver: loss})
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
			resetPeakRSS("self")
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

// resetPeakRSS restarts the kernel's peak-RSS counter (VmHWM) of a process ("self" or a pid):
// 5 sets it to the current resident set.
func resetPeakRSS(proc string) { _ = os.WriteFile("/proc/"+proc+"/clear_refs", []byte("5"), 0) }

// peakRSS is this process's peak resident set size since the last reset.
func peakRSS() int64 { return statusKB("VmHWM:") }

// currentRSS is this process's resident set size now.
func currentRSS() int64 { return statusKB("VmRSS:") }

func statusKB(field string) int64 { return procStatusKB("self", field) }

// procStatusKB reads a field of /proc/PROC/status ("self" or a pid) in bytes, 0 if it cannot.
func procStatusKB(proc, field string) int64 {
	b, err := os.ReadFile("/proc/" + proc + "/status")
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
//
// serverProc watches the process from its start: an exit Close did not ask for reaches
// Options.serverDied at once. Every request (mark, stats, quit) has a deadline
// (requestTimeout): a process that does not answer in time is hung; it is killed and
// serverDied hears that too. Close waits for the watcher, so no goroutine outlives the handle.
type childServer struct {
	serverProc
	in      *os.File // the process's stdin: the lab's commands
	outFile *os.File // the process's stdout, read through out
	out     *bufio.Scanner
	hash    [32]byte
	rss0    int64
	cpu0    time.Duration
	timeout time.Duration // for one request (requestTimeout; tests shorten it)
	pause   *testPause    // WIRELAB_TEST_PAUSE: stop the process once, after Mark
	paused  *pauser

	mu     sync.Mutex // one request at a time
	broken error      // under mu: a request failed, the pipes are out of step
}

// The server process gets readyTimeout to start serving, and requestTimeout to answer each
// request: enough for a stats answer with a 1,000 sessions' QUIC loss map on a loaded machine,
// and for a WIRELAB_TEST_PAUSE pause, far less than a run.
const (
	readyTimeout   = 30 * time.Second
	requestTimeout = 30 * time.Second
)

// childError is why the server process is gone: it exited, or it hung and was killed.
type childError struct {
	what   string // "the server process exited (exit status 2)"
	stderr string // the end of its stderr
}

func (e *childError) Error() string {
	if strings.TrimSpace(e.stderr) == "" {
		return e.what + "; it wrote nothing on stderr"
	}
	return e.what + "; its stderr:\n" + strings.TrimRight(e.stderr, "\n")
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
	closeBridge := func() { // once the process has its own copy
		if bridge != nil {
			bridge.Close()
		}
	}
	args := opt.ServerCommand
	if len(args) == 0 {
		exe, err := os.Executable()
		if err != nil {
			closeBridge()
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
	// The pipes are the lab's own, not exec's, so that reads and writes on them take deadlines
	// and cmd.Wait (in the watcher) does not close them under a request.
	inR, inW, err := os.Pipe()
	if err != nil {
		closeBridge()
		return nil, nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeBridge()
		inR.Close()
		inW.Close()
		return nil, nil, err
	}
	cmd.Stdin, cmd.Stdout = inR, outW
	cs := &childServer{serverProc: newServerProc(cmd, "the server process exited during the run", opt.serverDied),
		in: inW, outFile: outR, timeout: requestTimeout, pause: opt.pause}
	cmd.Stderr = cs.stderr
	// After the process exits, its stderr is read for at most this long: a process it left
	// behind holding the pipe cannot keep Wait from returning.
	cmd.WaitDelay = 5 * time.Second
	start := cmd.Start
	if kernel {
		start = func() error { return h.Start(cmd) }
	}
	err = start()
	closeBridge()
	inR.Close() // the process's ends: this process keeps none open, so that its exit is EOF
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, nil, fmt.Errorf("starting %s: %w", args[0], err)
	}
	go cs.watch()
	cs.out = bufio.NewScanner(outR)
	// A stats line holds the QUIC loss map: per session, the seqs a lost packet carried. With
	// 1,000 sessions and wt-datagram's resends it passes bufio's 64 KiB default.
	cs.out.Buffer(make([]byte, 0, 64<<10), 256<<20)

	// The ready line, within readyTimeout or until ctx ends.
	_ = outR.SetReadDeadline(time.Now().Add(readyTimeout))
	stopRead := context.AfterFunc(ctx, func() { _ = outR.SetReadDeadline(time.Now()) })
	var hello childReply
	err = cs.read(&hello)
	stopRead()
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("no ready line within %v", readyTimeout)
	case err == nil && !hello.Ready:
		err = fmt.Errorf("its first line was not the ready line")
	}
	if err == nil {
		var b []byte
		if b, err = hex.DecodeString(hello.CertHash); err == nil && len(b) == 32 {
			copy(cs.hash[:], b)
		} else {
			err = fmt.Errorf("it sent a bad certificate hash %q", hello.CertHash)
		}
	}
	if err != nil {
		cs.kill()
		_ = cs.closePipes()
		return nil, nil, &childError{what: fmt.Sprintf("the server process did not start: %v (%s)", err, cs.cmd.ProcessState), stderr: cs.stderr.String()}
	}
	cs.rss0 = hello.RSS
	return h, cs, nil
}

func (c *childServer) closePipes() error {
	return errors.Join(c.in.Close(), c.outFile.Close())
}

// read reads one line into r. An error other than errBadLine is the pipe's: the process is
// gone, or a deadline passed.
func (c *childServer) read(r *childReply) error {
	if !c.out.Scan() {
		if err := c.out.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	if err := json.Unmarshal(c.out.Bytes(), r); err != nil {
		return fmt.Errorf("the server process's line %.80q: %w", c.out.Bytes(), errBadLine)
	}
	return nil
}

// errBadLine is read's error for a line that is not a reply.
var errBadLine = errors.New("not a JSON reply")

// ask sends one command and reads its answer, within c.timeout. A process that does not answer
// in time is killed (it hangs, or is so starved that its figures mean nothing) and reported.
func (c *childServer) ask(cmd string) (childReply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var r childReply
	if c.broken != nil {
		return r, c.broken
	}
	deadline := time.Now().Add(c.timeout)
	_ = c.in.SetWriteDeadline(deadline)
	_ = c.outFile.SetReadDeadline(deadline)
	_, err := io.WriteString(c.in, cmd+"\n")
	if err == nil {
		err = c.read(&r)
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.kill()
		c.broken = &childError{what: fmt.Sprintf("the server process did not answer %q within %v and was killed", cmd, c.timeout), stderr: c.stderr.String()}
		c.report(c.broken)
		return r, c.broken
	case errors.Is(err, errBadLine):
		c.broken = err // the replies are out of step with the requests
		return r, err
	case err != nil:
		// The process is gone (EOF, a broken pipe): say how it ended, once it has.
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case <-c.exited:
			err = c.exitError()
		case <-t.C:
			err = fmt.Errorf("server process: %q: %w", cmd, err)
		}
		c.broken = err
		return r, err
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
	cpu, cpuErr := procCPU(c.cmd.Process.Pid)
	r, err := c.ask("stats") // first: for a process that is gone, it says why
	if err == nil {
		err = cpuErr
	}
	if err != nil {
		return serverStats{}, err
	}
	return serverStats{CPU: cpu - c.cpu0, RSSPeak: r.RSSPeak, RSSBase: c.rss0, Requests: r.Requests, GoroutinesPeak: r.GoroutinesPeak, Separate: true, QUICLost: r.QUICLost, SchedMS: r.SchedP99}, nil
}

// Close tells the process to quit and waits for it to exit, until ctx ends (then it is killed).
// The error says how a process ended that did not end well, with the end of its stderr, unless
// serverDied has heard it already.
func (c *childServer) Close(ctx context.Context) error {
	c.paused.stop()
	c.stopping.Store(true)
	c.mu.Lock()
	if c.broken == nil {
		_ = c.in.SetWriteDeadline(time.Now().Add(c.timeout))
		_, _ = io.WriteString(c.in, "quit\n")
	}
	c.mu.Unlock()
	_ = c.in.Close() // EOF: quit, for a process that did not read the line
	var err error
	select {
	case <-c.exited:
	case <-ctx.Done():
		err = fmt.Errorf("the server process did not quit in time and was killed: %w", ctx.Err())
		c.kill()
	}
	_ = c.outFile.Close()
	if err == nil && c.waitErr != nil && !c.reported.Load() {
		err = &childError{what: fmt.Sprintf("the server process ended with %v", c.waitErr), stderr: c.stderr.String()}
	}
	return err
}

// stderrTail keeps what the server process writes on stderr, within bounds: the first
// stderrHead bytes (where a panic's or a fatal error's message is) and the last stderrTailMax
// (where its stack ends).
type stderrTail struct {
	mu      sync.Mutex
	head    []byte
	tail    []byte
	dropped int64 // bytes between head and tail
}

const (
	stderrHead    = 2 << 10
	stderrTailMax = 4 << 10
)

func (s *stderrTail) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(p)
	if room := stderrHead - len(s.head); room > 0 {
		k := min(room, len(p))
		s.head = append(s.head, p[:k]...)
		p = p[k:]
	}
	s.tail = append(s.tail, p...)
	if over := len(s.tail) - stderrTailMax; over > stderrTailMax { // trim now and then, not on every write
		s.dropped += int64(over)
		s.tail = append(s.tail[:0], s.tail[over:]...)
	}
	return n, nil
}

// String is the head, a note of how much was left out, and the tail.
func (s *stderrTail) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	tail, dropped := s.tail, s.dropped
	if over := len(tail) - stderrTailMax; over > 0 {
		tail, dropped = tail[over:], dropped+int64(over)
	}
	if dropped == 0 {
		return string(s.head) + string(tail)
	}
	return fmt.Sprintf("%s\n[... %d bytes ...]\n%s", s.head, dropped, tail)
}
