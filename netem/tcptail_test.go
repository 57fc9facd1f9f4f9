package netem

import (
	"context"
	"io"
	"testing"
	"time"
)

// TestIdleSenderTailLossWhilePeerTalks is the chat client's case: a
// connection that sends one small message now and then while its peer
// streams to it. The link drops the client's second message (its only
// segment in flight). gVisor's tail loss probe would be pushed back by
// every segment that arrives from the peer (its PTO is re-armed on each
// one), so with RACK-TLP on, the message would wait until the peer
// stopped talking for a whole PTO, or until the client sent again: seconds
// in a chat. netem's stacks recover it by the retransmission timer, which
// incoming segments do not push back, as Linux's TLP and RTO are.
//
// The server writes a small message every 20 ms (each one's first byte
// is how many client messages it has read) and stops after 500; the test
// fails if the lost message only arrived after the server stopped.
func TestIdleSenderTailLossWhilePeerTalks(t *testing.T) {
	const (
		msgSize  = 100
		maxTicks = 500
	)
	up := LinkProfile{Delay: 10 * time.Millisecond, Drops: []DropRule{{Proto: TCP, Port: 80, Packets: []int{2}}}}
	down := LinkProfile{Delay: 10 * time.Millisecond}
	_, srv, cli, l := pair(t, Config{Seed: 1}, up, down)
	ln, err := srv.ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	type result struct {
		ticks int // ticks written when the second message arrived (maxTicks: after the server stopped)
		err   error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		got := make(chan struct{}, 2)
		go func() {
			b := make([]byte, msgSize)
			for {
				if _, err := io.ReadFull(c, b); err != nil {
					return
				}
				got <- struct{}{}
			}
		}()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		n, ticks := 0, 0
		msg := make([]byte, msgSize)
		for n < 2 {
			select {
			case <-got:
				n++
				continue
			case <-tick.C:
			}
			if ticks == maxTicks {
				<-got // the peer is quiet now: the probe or timer fires
				n++
				continue
			}
			msg[0] = byte(n)
			if _, err := c.Write(msg); err != nil {
				done <- result{err: err}
				return
			}
			ticks++
		}
		msg[0] = byte(n)
		_, err = c.Write(msg)
		done <- result{ticks: ticks, err: err}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := cli.DialTCP(ctx, "10.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, msgSize)
	if _, err := c.Write(msg); err != nil { // data packet 1: delivered
		t.Fatal(err)
	}
	// Wait until the server has read it (and so acknowledged it): the
	// connection is idle, then send data packet 2, which the link drops.
	b := make([]byte, msgSize)
	sent2 := false
	for {
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		if !sent2 && b[0] >= 1 {
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			sent2 = true
			continue
		}
		if b[0] >= 2 {
			break
		}
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := l.AB.Stats().Dropped.Rule.Packets; got != 1 {
		t.Fatalf("the rule dropped %d packets, want 1", got)
	}
	st := cli.Stats()
	t.Logf("second message arrived after the server's message %d; client stack: %d timeouts, %d retransmits", r.ticks, st.TCPTimeouts, st.TCPRetransmits)
	if r.ticks >= maxTicks {
		t.Fatalf("the client's lost segment was retransmitted only after the server stopped writing (%d messages, every 20 ms): "+
			"its loss probe was postponed by every segment the server sent (is RACK-TLP back on in newStack?)", maxTicks)
	}
	if st.TCPRetransmits == 0 {
		t.Fatalf("the client's stack retransmitted nothing, yet the dropped message arrived")
	}
}

// TestServerFindsLossWithRACK: a host that listens keeps gVisor's RACK.
// The server writes a small message every 100 ms and the link drops its
// third. RACK marks it lost when the client's SACK for the fourth comes
// back, about 20 ms after the fourth is sent; without RACK, three
// duplicate ACKs would take 300 ms and the retransmission timer (200 ms)
// would fire first.
func TestServerFindsLossWithRACK(t *testing.T) {
	const msgs, msgSize = 8, 100
	down := LinkProfile{Delay: 10 * time.Millisecond, Drops: []DropRule{{Proto: TCP, Port: 80, Packets: []int{3}}}}
	_, srv, cli, l := pair(t, Config{Seed: 1}, LinkProfile{Delay: 10 * time.Millisecond}, down)
	ln, err := srv.ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		msg := make([]byte, msgSize)
		for range msgs {
			<-tick.C
			if _, err := c.Write(msg); err != nil {
				done <- err
				return
			}
		}
		// Wait for the client to close: everything was delivered.
		_, err = io.Copy(io.Discard, c)
		done <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := cli.DialTCP(ctx, "10.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, msgs*msgSize)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := l.BA.Stats().Dropped.Rule.Packets; got != 1 {
		t.Fatalf("the rule dropped %d packets, want 1", got)
	}
	st := srv.Stats()
	t.Logf("server stack: %d retransmits, %d timeouts", st.TCPRetransmits, st.TCPTimeouts)
	if st.TCPRetransmits == 0 {
		t.Fatal("the server retransmitted nothing, yet the dropped message arrived")
	}
	if st.TCPTimeouts != 0 {
		t.Fatalf("the server recovered its lost segment by the retransmission timer (%d timeouts): a listening host should find it with RACK", st.TCPTimeouts)
	}
}
