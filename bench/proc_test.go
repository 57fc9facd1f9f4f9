package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wirelab/wirelab/server"
)

const serverEnv = "WIRELAB_FANOUT_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(serverEnv) == "1" {
		os.Exit(runServer())
	}
	os.Exit(m.Run())
}

// runServer is the server process: the chat server with lab serve's defaults on a loopback
// port, printed as the first stdout line; it stops when stdin closes.
func runServer() int {
	srv, err := server.New(server.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if path := os.Getenv("WIRELAB_FANOUT_SERVER_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	if path := os.Getenv("WIRELAB_FANOUT_SERVER_MEM"); path != "" {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGUSR1)
		defer signal.Stop(sig)
		go func() {
			for range sig {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				fmt.Fprintf(os.Stderr, "before GC: HeapInuse %d StackInuse %d\n", ms.HeapInuse, ms.StackInuse)
				runtime.GC()
				runtime.ReadMemStats(&ms)
				f, err := os.Create(path)
				if err != nil {
					continue
				}
				fmt.Fprintf(os.Stderr, "HeapInuse %d HeapAlloc %d StackInuse %d Sys %d NumGC %d goroutines %d\n", ms.HeapInuse, ms.HeapAlloc, ms.StackInuse, ms.Sys, ms.NumGC, runtime.NumGoroutine())
				_ = pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	fmt.Printf("listening %s\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln, nil) }()
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = srv.Shutdown(contextWithTimeout(10 * time.Second))
	if err := <-served; err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// serverProc is the server running in its own process.
type serverProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	addr   string
	pid    int
	pinned bool
}

// startServer runs the server process, pinned to CPU 1 with taskset when there is one.
func startServer(b *testing.B) *serverProc {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	args := []string{exe, "-test.run=^$"}
	pinned := false
	if ts, err := exec.LookPath("taskset"); err == nil && runtime.NumCPU() >= 2 {
		args = append([]string{ts, "-c", "1"}, args...)
		pinned = true
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), serverEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting the server process: %v", err)
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
		_, _ = io.Copy(io.Discard, stdout)
	}()
	p := &serverProc{cmd: cmd, stdin: stdin, pid: cmd.Process.Pid, pinned: pinned}
	b.Cleanup(p.stop)
	select {
	case s := <-line:
		addr, ok := strings.CutPrefix(strings.TrimSpace(s), "listening ")
		if !ok {
			b.Fatalf("the server process said %q, want \"listening ADDR\"", s)
		}
		p.addr = addr
	case <-time.After(30 * time.Second):
		b.Fatal("the server process did not say where it listens within 30 s")
	}
	return p
}

func (p *serverProc) stop() {
	if p.stdin == nil {
		return
	}
	_ = p.stdin.Close()
	p.stdin = nil
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// procUsage is a process's CPU time and memory from /proc.
type procUsage struct {
	cpu time.Duration // utime + stime
	rss int64         // resident set, bytes
	hwm int64         // peak resident set, bytes
}

var clockTick = func() time.Duration {
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return time.Second / time.Duration(n)
		}
	}
	return 10 * time.Millisecond
}()

func usage(pid int) (procUsage, error) {
	var u procUsage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// Fields after the command name (which may hold spaces) start at state, field 3.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	if len(f) < 13 {
		return u, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	u.cpu = time.Duration(ut+st) * clockTick
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			u.rss = kb << 10
		case "VmHWM":
			u.hwm = kb << 10
		}
	}
	return u, nil
}

// pinSelf puts every thread of this process on cpu and runs Go on one P; restore undoes it.
func pinSelf(cpu int) (restore func(), err error) {
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return func() {}, err
	}
	set.Set(cpu)
	if err := setAllThreads(&set); err != nil {
		_ = setAllThreads(&old)
		return func() {}, err
	}
	prev := runtime.GOMAXPROCS(1)
	return func() {
		runtime.GOMAXPROCS(prev)
		_ = setAllThreads(&old)
	}, nil
}

func setAllThreads(set *unix.CPUSet) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("pinning thread %d: %w", tid, err)
		}
	}
	return nil
}

// cpuTimes are /proc/stat's per-CPU ticks: user+nice, system, softirq+irq, idle+iowait.
type cpuTimes [][4]int64

func machineCPU() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil
	}
	var out cpuTimes
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		var t [4]int64
		for i := 1; i < len(f) && i <= 8; i++ {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			switch i {
			case 1, 2, 8: // user, nice, steal
				t[0] += v
			case 3:
				t[1] += v
			case 6, 7:
				t[2] += v
			case 4, 5:
				t[3] += v
			}
		}
		out = append(out, t)
	}
	return out
}

func (c cpuTimes) sub(d cpuTimes) string {
	var sb strings.Builder
	for i := range c {
		if i >= len(d) {
			break
		}
		var t [4]float64
		var sum float64
		for k := range t {
			t[k] = float64(c[i][k] - d[i][k])
			sum += t[k]
		}
		if sum > 0 {
			fmt.Fprintf(&sb, "cpu%d user %.0f%% sys %.0f%% irq %.0f%% idle %.0f%%; ", i, 100*t[0]/sum, 100*t[1]/sum, 100*t[2]/sum, 100*t[3]/sum)
		}
	}
	return sb.String()
}
