package netem

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// tcpPipe returns the two ends of a TCP connection between two hosts over
// a zero-delay link.
func tcpPipe(t *testing.T) (c1, c2 net.Conn, stop func(), err error) {
	n := New(Config{Seed: 1})
	srv, cli := n.MustHost("10.0.0.1"), n.MustHost("10.0.0.2")
	if _, err := n.Connect(cli, srv, LinkProfile{}, LinkProfile{}); err != nil {
		n.Close()
		return nil, nil, nil, err
	}
	ln, err := srv.ListenTCP(80)
	if err != nil {
		n.Close()
		return nil, nil, nil, err
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	c1, err = cli.DialTCP(context.Background(), "10.0.0.1:80")
	a := <-ch
	if err == nil {
		err = a.err
	}
	if err != nil {
		if c1 != nil {
			c1.Close()
		}
		if a.c != nil {
			a.c.Close()
		}
		n.Close()
		return nil, nil, nil, err
	}
	return c1, a.c, func() { c1.Close(); a.c.Close(); n.Close() }, nil
}

// The host's TCP net.Conn passes x/net's conformance tests for net.Conn
// (deadlines, concurrent use, close while blocked).
func TestTCPConnNettest(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) { return tcpPipe(t) })
}

func TestTCPConnDeadlineAndHalfClose(t *testing.T) {
	c1, c2, stop, err := tcpPipe(t)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// A Read blocked without a deadline wakes when one in the past is set
	// (net/http aborts its background read this way).
	errc := make(chan error, 1)
	go func() {
		_, err := c2.Read(make([]byte, 10))
		errc <- err
	}()
	// Whether the Read has blocked yet or not, it must time out.
	c2.SetReadDeadline(time.Unix(1, 0))
	err = <-errc
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read after a past deadline: %v, want a net.Error timeout that is os.ErrDeadlineExceeded", err)
	}
	c2.SetReadDeadline(time.Time{})
	// Half-close: the peer reads what was written, then EOF, and can
	// still write back.
	if _, err := c1.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	if err := c1.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c2)
	if err != nil || string(got) != "bye" {
		t.Fatalf("read %q, %v: want \"bye\" then EOF", got, err)
	}
	if _, err := c2.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c1, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("read back %q, %v", buf, err)
	}
}

// Closing a listener unblocks a waiting Accept.
func TestTCPListenerCloseUnblocksAccept(t *testing.T) {
	n := New(Config{Seed: 1})
	defer n.Close()
	ln, err := n.MustHost("10.0.0.1").ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		errc <- err
	}()
	ln.Close() // whether Accept has blocked yet or not
	if err := <-errc; err == nil {
		t.Fatal("Accept returned no error after Close")
	}
}
