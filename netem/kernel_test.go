//go:build linux

package netem

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirelab/wirelab/internal/needtest"
)

// needKernel skips a test that needs kernel hosts where the machine cannot
// make them (no root, no /dev/net/tun), unless WIRELAB_REQUIRE names
// kernel: then it fails. (internal/kerneltest.Need, which imports netem.)
func needKernel(t testing.TB) {
	t.Helper()
	needtest.Need(t, "kernel", KernelAvailable(), "run as root on Linux with /dev/net/tun")
}

func kernelPair(t *testing.T, prof LinkProfile) (*Network, *Host, *Host, *Link) {
	t.Helper()
	needKernel(t)
	n := New(Config{Seed: 7})
	t.Cleanup(func() { n.Close() })
	a, err := n.KernelHost("10.2.0.1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.KernelHost("10.2.0.2")
	if err != nil {
		t.Fatal(err)
	}
	l, err := n.Connect(a, b, prof, prof)
	if err != nil {
		t.Fatal(err)
	}
	return n, a, b, l
}

// TestKernelHostTCP sends a megabyte between two Linux stacks through the
// link, with the 5th data packet dropped: the kernel retransmits it, the
// bytes arrive intact, the link counted every packet, and the dropped
// segment carried at most one MSS (no TSO super-packet crossed the link).
func TestKernelHostTCP(t *testing.T) {
	prof := LinkProfile{Delay: 2 * time.Millisecond, Drops: []DropRule{{Proto: TCP, Port: 5001, Packets: []int{5}}}}
	n, a, b, l := kernelPair(t, prof)
	if !a.IsKernel() || !b.IsKernel() {
		t.Fatal("KernelHost made a host that is not a kernel host")
	}
	ln, err := b.ListenTCP(5001)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	want := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		bs, _ := io.ReadAll(c)
		got <- bs
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := a.DialContext(ctx, "tcp", "10.2.0.2:5001")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.DialContext(ctx, "tcp", "10.2.0.9:5001"); err == nil || !strings.Contains(err.Error(), "no link") {
		t.Errorf("dialing a host with no link: %v, want the no-link error at once", err)
	}
	if la := c.LocalAddr().String(); !strings.HasPrefix(la, "10.2.0.1:") {
		t.Errorf("local address %s, want the host's 10.2.0.1", la)
	}
	if _, err := c.Write(want); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if bs := <-got; !bytes.Equal(bs, want) {
		t.Fatalf("received %d bytes, want the %d sent", len(bs), len(want))
	}
	st := l.AB.Stats()
	if st.Dropped.Rule.Packets != 1 {
		t.Errorf("link dropped %d packets by rule, want 1", st.Dropped.Rule.Packets)
	}
	if min := uint64(len(want) / 1500); st.Delivered.Packets < min {
		t.Errorf("link delivered %d packets a->b for %d bytes: fewer than %d wire-sized packets", st.Delivered.Packets, len(want), min)
	}
	evs, _ := n.DropTrace()
	if len(evs) != 1 || !evs[0].HaveRange {
		t.Fatalf("drop trace %+v, want one TCP drop with its byte range", evs)
	}
	if sz := evs[0].End - evs[0].Start; sz == 0 || sz > MTU-40 {
		t.Errorf("the dropped segment carried %d bytes: want 1..%d (one MSS; a TSO super-packet crossed the link)", sz, MTU-40)
	}
	if s := a.Stats(); s.TCPRetransmits == 0 || s.TCPSegmentsSent == 0 {
		t.Errorf("sender's kernel counters %+v: want retransmits and segments sent counted", s)
	}
}

// TestKernelHostUDP: a UDP datagram crosses the link both ways between
// kernel sockets, and the direction counts it.
func TestKernelHostUDP(t *testing.T) {
	_, a, b, l := kernelPair(t, LinkProfile{Delay: time.Millisecond})
	srv, err := b.ListenPacket(7)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			k, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			srv.WriteTo(buf[:k], from)
		}
	}()
	c, err := a.DialContext(context.Background(), "udp", "10.2.0.2:7")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	k, err := c.Read(buf)
	if err != nil || string(buf[:k]) != "ping" {
		t.Fatalf("echo: %q, %v", buf[:k], err)
	}
	if ab, ba := l.AB.Stats().Delivered.Packets, l.BA.Stats().Delivered.Packets; ab != 1 || ba != 1 {
		t.Errorf("link delivered %d a->b and %d b->a packets, want 1 and 1", ab, ba)
	}
}

// TestKernelHostStart: a process started on a kernel host sees the host's
// namespace (its TUN device and address), not the machine's.
func TestKernelHostStart(t *testing.T) {
	_, a, _, _ := kernelPair(t, LinkProfile{})
	var out bytes.Buffer
	cmd := exec.Command("cat", "/proc/net/fib_trie")
	cmd.Stdout = &out
	if err := a.Start(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "10.2.0.1") {
		t.Fatalf("the process's routing table does not hold the host's address 10.2.0.1:\n%s", out.String())
	}
	if err := a.Do(func() error {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		if len(ifs) != 2 {
			return fmt.Errorf("the namespace has interfaces %v, want lo and the TUN", ifs)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

const kernelKillChildEnv = "NETEM_TEST_KERNEL_KILL_CHILD"

// maybeKernelKillChild runs the test binary as TestKernelHostKilled's lab stand-in.
func maybeKernelKillChild() {
	if os.Getenv(kernelKillChildEnv) != "" {
		os.Exit(kernelKillChild())
	}
}

// TestKernelHostKilled: a lab killed with SIGKILL leaves nothing behind: the
// process it started in a kernel host dies with it (and with it the
// namespace and its TUN, which nothing else holds).
func TestKernelHostKilled(t *testing.T) {
	needKernel(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), kernelKillChildEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the lab stand-in did not report its process: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("bad pid line %q", line)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) && processState(pid) != "Z" {
		if time.Now().After(deadline) {
			t.Fatalf("process %d started in a kernel host outlived the killed lab", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func processState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return ""
}

// kernelKillChild is the lab stand-in of TestKernelHostKilled: it makes a
// kernel host, starts a long sleep there, prints its pid and waits to be killed.
func kernelKillChild() int {
	n := New(Config{})
	h, err := n.KernelHost("10.3.0.1")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cmd := exec.Command("sleep", "600")
	if err := h.Start(cmd); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(cmd.Process.Pid)
	select {}
}

// BenchmarkKernelLink: bulk TCP through one kernel link at zero delay
// (packets per second is the figure), and the UDP probes' one-way delay.
func BenchmarkKernelLink(b *testing.B) {
	needKernel(b)
	for i := 0; i < b.N; i++ {
		res, err := Probe(context.Background(), ProbeConfig{Stack: "kernel", Packets: 20000, TCPDuration: 3 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.PacketsPerS, "pkt/s")
		b.ReportMetric(res.DelayMS.P50*1000, "p50-µs")
		b.ReportMetric(res.TCPMbitS, "Mbit/s")
	}
}
