package netem

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"
)

// bridgeChildEnv makes the test binary act as the child of a bridge: it
// attaches fd 3 as a host and runs a TCP echo server on port 80.
const bridgeChildEnv = "NETEM_BRIDGE_CHILD"

// bridgeChildProfileEnv, if set, names a file where the child writes a CPU
// profile of its whole life (go tool pprof the test binary and the file).
const bridgeChildProfileEnv = "NETEM_BRIDGE_CHILD_CPUPROFILE"

func bridgeChild() int {
	if path := os.Getenv(bridgeChildProfileEnv); path != "" {
		// A CPU profile of the child, for looking at the bridge's cost.
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	h, err := AttachHost(os.NewFile(3, "bridge"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer h.Close()
	ln, err := h.ListenTCP(80)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	if err := bridgeFanoutServer(h); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	uc, err := h.ListenUDP(7)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			k, from, err := uc.ReadFrom(buf)
			if err != nil {
				return
			}
			uc.WriteTo(buf[:k], from)
		}
	}()
	fmt.Printf("attached %s pid %d\n", h.Addr(), os.Getpid())
	<-h.Done()
	ln.Close()
	uc.Close()
	return 0
}

// startBridgeChild builds a network whose host 10.0.0.1 lives in a child
// process (this test binary in child mode) and 10.0.0.2 here, linked by p.
func startBridgeChild(t testing.TB, p LinkProfile) (n *Network, srv, cli *Host, l *Link) {
	n = New(Config{Seed: 3})
	srv, childEnd, err := n.BridgeHost("10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cli = n.MustHost("10.0.0.2")
	l, err = n.Connect(cli, srv, p, p)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), bridgeChildEnv+"=1")
	cmd.ExtraFiles = []*os.File{childEnd}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	childEnd.Close()
	t.Cleanup(func() {
		n.Close() // closes the bridge: the child sees Done and exits
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v\n%s", err, out.String())
		}
		if !bytes.Contains(out.Bytes(), []byte("attached 10.0.0.1 pid "+strconv.Itoa(cmd.Process.Pid))) {
			t.Errorf("child output %q", out.String())
		}
	})
	return n, srv, cli, l
}

func TestBridgeHostInChildProcess(t *testing.T) {
	p := LinkProfile{Delay: 2 * time.Millisecond, Loss: Loss{Rate: 0.01}}
	_, srv, cli, l := startBridgeChild(t, p)
	var err error

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var c interface {
		io.ReadWriteCloser
	}
	for {
		// The child's listener may not be up yet: retry refused dials.
		c, err = cli.DialTCP(ctx, "10.0.0.1:80")
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(9, 9))
	for i := range want {
		want[i] = byte(r.Uint32())
	}
	go c.Write(want)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !bytes.Equal(got, want) {
		t.Fatal("echo through the child differs from what was sent")
	}
	ab, ba := l.AB.Stats(), l.BA.Stats()
	if ab.Dropped.Loss.Packets == 0 || ba.Dropped.Loss.Packets == 0 {
		t.Fatalf("no loss on the bridged link: %+v %+v", ab, ba)
	}
	if _, err := srv.DialTCP(ctx, "10.0.0.2:1"); err != ErrRemoteHost {
		t.Fatalf("DialTCP on the parent side of a bridged host: %v, want ErrRemoteHost", err)
	}
}

// BenchmarkBridgeUDPEcho sends 100-byte datagrams to a UDP echo server on a
// host in a child process and counts the echoes: every datagram crosses
// the bridge twice. At most 256 are in flight.
func BenchmarkBridgeUDPEcho(b *testing.B) {
	_, _, cli, _ := startBridgeChild(b, LinkProfile{})
	c, err := cli.DialUDP("10.0.0.1:7")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	// Wait for the child to answer.
	buf := make([]byte, 2048)
	for {
		c.Write([]byte("hello"))
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Read(buf); err == nil {
			break
		}
	}
	c.SetReadDeadline(time.Time{})
	window := make(chan struct{}, 256)
	done := make(chan int)
	go func() {
		got := 0
		for got < b.N {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := c.Read(buf); err != nil {
				break
			}
			got++
			<-window
		}
		done <- got
	}()
	msg := make([]byte, 100)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		window <- struct{}{}
		c.Write(msg)
	}
	got := <-done
	b.ReportMetric(float64(got)/time.Since(start).Seconds(), "echoes/s")
	if got < b.N*99/100 {
		b.Fatalf("%d of %d echoes", got, b.N)
	}
}
