package netem

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// bridgeChildEnv makes the test binary act as the child of a bridge: it
// attaches fd 3 as a host and runs a TCP echo server on port 80.
const bridgeChildEnv = "NETEM_BRIDGE_CHILD"

func bridgeChild() int {
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
	fmt.Printf("attached %s pid %d\n", h.Addr(), os.Getpid())
	<-h.Done()
	ln.Close()
	return 0
}

func TestBridgeHostInChildProcess(t *testing.T) {
	p := LinkProfile{Delay: 2 * time.Millisecond, Loss: Loss{Rate: 0.01}}
	n := New(Config{Seed: 3})
	defer n.Close()
	srv, childEnd, err := n.BridgeHost("10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cli := n.MustHost("10.0.0.2")
	l, err := n.Connect(cli, srv, p, p)
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
	defer func() {
		n.Close() // closes the bridge: the child sees Done and exits
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v\n%s", err, out.String())
		}
		if !bytes.Contains(out.Bytes(), []byte("attached 10.0.0.1 pid "+strconv.Itoa(cmd.Process.Pid))) {
			t.Errorf("child output %q", out.String())
		}
	}()

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
