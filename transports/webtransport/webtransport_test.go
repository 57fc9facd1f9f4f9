package webtransport_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	wt "github.com/quic-go/webtransport-go"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/webtransport"
)

func TestRoomsAndDMsExactlyOnce(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			l := start(t, server.Config{})
			a1, a2, a3 := l.client(t, mode, "alice"), l.client(t, mode, "alice"), l.client(t, mode, "alice")
			b1, b2 := l.client(t, mode, "bob"), l.client(t, mode, "bob")
			for _, c := range []transports.Client{a1, a2, b1} {
				send(t, c, chat.Envelope{Type: chat.TypeJoin, Room: "r1"})
			}
			send(t, a1, chat.Envelope{Type: chat.TypeSay, Room: "r1", Text: "in r1"})
			send(t, b2, chat.Envelope{Type: chat.TypeDM, To: "alice", Text: "dm to alice"})
			send(t, a1, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: "end"})
			for _, tc := range []struct {
				name       string
				c          *webtransport.Client
				inR1, inDM int
			}{{"a1", a1, 1, 1}, {"a2", a2, 1, 1}, {"a3", a3, 0, 1}, {"b1", b1, 1, 1}, {"b2", b2, 0, 1}} {
				got := barrier(t, tc.c)
				if n := count(got, "end"); n != 1 {
					t.Errorf("%s got %q %d times, want 1", tc.name, "end", n)
				}
				if n := count(got, "in r1"); n != tc.inR1 {
					t.Errorf("%s got %q %d times, want %d", tc.name, "in r1", n, tc.inR1)
				}
				if n := count(got, "dm to alice"); n != tc.inDM {
					t.Errorf("%s got the DM %d times, want %d", tc.name, n, tc.inDM)
				}
			}
		})
	}
}

// burst has pub say n numbered messages in lobby while sub reads them; drop cuts sub's
// connection now and then. It checks that sub got every message exactly once and, for
// wt-stream, in order.
func burst(t *testing.T, mode string, pub, sub *webtransport.Client, n int, drop bool) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
		defer cancel()
		for i := 0; i < n; i++ {
			if _, err := pub.Send(ctx, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: fmt.Sprint(i)}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	seen := make(map[string]int)
	var order []string
	drops := 0
	timer := time.NewTimer(2 * wait)
	defer timer.Stop()
	for len(seen) < n {
		select {
		case d, ok := <-sub.Messages():
			if !ok {
				t.Fatal("messages closed")
			}
			if d.Env.Type != chat.TypeMsg || d.Env.From != pub.User() {
				continue
			}
			seen[d.Env.Text]++
			order = append(order, d.Env.Text)
			if drop && len(seen)%40 == 20 && drops < 5 {
				sub.Drop()
				drops++
			}
		case <-timer.C:
			t.Fatalf("timed out with %d of %d messages", len(seen), n)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if c := seen[fmt.Sprint(i)]; c != 1 {
			t.Errorf("message %d arrived %d times", i, c)
		}
	}
	if len(order) != n {
		t.Errorf("%d deliveries for %d messages", len(order), n)
	}
	if mode == webtransport.StreamName {
		for i, s := range order {
			if s != fmt.Sprint(i) {
				t.Fatalf("wt-stream: message %d is %q, out of order", i, s)
			}
		}
	}
	if drop && drops == 0 {
		t.Fatal("no drop happened")
	}
}

func TestResumeAfterDrop(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			l := start(t, server.Config{})
			pub, sub := l.client(t, mode, "pub"), l.client(t, mode, "sub")
			sid := sub.Session()
			burst(t, mode, pub, sub, 300, true)
			if sub.Session() != sid {
				t.Fatal("the session changed across drops; want a resume")
			}
		})
	}
}

// TestLoss drops 10% of the UDP datagrams each client reads and writes (seeded; acks are lost
// too); every message must still arrive exactly once: QUIC retransmits stream data, wt-datagram
// retransmits until acked. The observers (the lab's loss map is one) are told which command and
// which message went where.
func TestLoss(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			lm := newRecorder()
			l := startBare(t, chat.Config{}, webtransport.Config{Observer: lm})
			rng := rand.New(rand.NewPCG(1, 2))
			var mu sync.Mutex
			lossy := func(o *transports.Options) {
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { pc.Close() })
				o.PacketConn = &lossyConn{PacketConn: pc, drop: func() bool {
					mu.Lock()
					defer mu.Unlock()
					return rng.Float64() < 0.10
				}}
			}
			// The publisher tells its observer which commands it sent, and on which session.
			up := newRecorder()
			opt := l.opts("pub")
			lossy(&opt)
			pub := webtransport.NewClient(mode, opt)
			t.Cleanup(func() { pub.Close() })
			pub.Observe(up)
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			if err := pub.Connect(ctx); err != nil {
				t.Fatalf("connect pub over %s: %v", mode, err)
			}
			sub := l.client(t, mode, "sub", lossy)
			burst(t, mode, pub, sub, 500, false)
			cmds := up.CIDs(pub.Session())
			if len(cmds) == 0 {
				t.Error("the publisher's observer was told of no command")
			}
			for _, cid := range cmds {
				if !strings.HasPrefix(string(cid), `"`+mode+"-") {
					t.Errorf("observed command %s is not one the publisher's engine named", cid)
				}
			}
			t.Logf("%s: %d commands observed upstream", mode, len(cmds))
			if n := l.wt.Retransmits(); mode == webtransport.DatagramName && n == 0 {
				t.Error("no datagram was retransmitted under 10% loss")
			} else {
				t.Logf("%d datagrams retransmitted", n)
			}
			if n := lm.Resent(); mode == webtransport.DatagramName && n == 0 {
				t.Error("the server's observer was told of no datagram sent again")
			}
			// The server's observer is told of the messages sent on the subscriber's session,
			// within the seqs it was sent.
			seqs := lm.Seqs(sub.Session())
			if len(seqs) == 0 {
				t.Error("the server's observer was told of no message for the subscriber")
			}
			for _, q := range seqs {
				if q == 0 || q > sub.LastSeq()+1000 {
					t.Errorf("observed seq %d is not one the subscriber was sent (last %d)", q, sub.LastSeq())
				}
			}
			t.Logf("%s: %d messages observed downstream", mode, len(seqs))
		})
	}
}

func TestMalformedKeepsConnection(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			l := start(t, server.Config{})
			c := l.client(t, mode, "m")
			before := l.srv.T.Requests.Load()
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			for _, tc := range []struct{ raw, code string }{
				{`{"type":"say"`, chat.CodeBadJSON},
				{`{"type":"bogus","cid":"x1"}`, chat.CodeUnknownType},
				{`{"type":"say","room":"lobby","text":"` + strings.Repeat("a", 70<<10) + `","cid":"big"}`, chat.CodeTooLarge},
				{`{"type":"say","room":"lobby","cid":"nt"}`, chat.CodeMissingField},
			} {
				if err := c.SendRaw(ctx, []byte(tc.raw)); err != nil {
					t.Fatal(err)
				}
				var got chat.Envelope
				until(t, c, func(e chat.Envelope) bool { got = e; return e.Type == chat.TypeError })
				if got.Code != tc.code {
					t.Errorf("%.40s: got %+v, want code %s", tc.raw, got, tc.code)
				}
			}
			send(t, c, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: "after"})
			until(t, c, text("after"))
			if n := l.srv.T.Requests.Load(); n != before {
				t.Errorf("%d new WebTransport sessions; the connection should have been kept", n-before)
			}
		})
	}
}

func TestHeartbeatTimeout(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			l := start(t, server.Config{Hub: chat.Config{Heartbeat: 50 * time.Millisecond, HeartbeatTimeout: 400 * time.Millisecond}})
			live := l.client(t, mode, "live")
			np := l.client(t, mode, "nopong", func(o *transports.Options) { o.NoPong = true; o.NoReconnect = true })
			timer := time.NewTimer(wait)
			defer timer.Stop()
			for open := true; open; {
				select {
				case _, open = <-np.Messages():
				case <-timer.C:
					t.Fatal("NoPong client was not cut off")
				}
			}
			before := l.srv.T.Requests.Load()
			send(t, live, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: "still here"})
			until(t, live, text("still here"))
			if n := l.srv.T.Requests.Load(); n != before {
				t.Errorf("the live client reconnected %d times; pongs should keep it", n-before)
			}
		})
	}
}

// TestSizeLimit: an envelope at the limit goes through on every mode (in wt-datagram its msg is
// too large for a datagram and travels on a unidirectional stream); one over gets too_large and
// the connection goes on. A line over the frame limit on the control stream (wt-stream) cannot be
// skipped: it is answered too_large and ends the connection, and the client resumes; in wt-uni and wt-datagram, whose
// commands travel on streams of their own, the stream is refused with too_large and the
// connection goes on.
func TestSizeLimit(t *testing.T) {
	const max = 4096
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			l := start(t, server.Config{Hub: chat.Config{Limits: chat.Limits{MaxEnvelope: max}}})
			c, peer := l.client(t, mode, "big"), l.client(t, mode, "peer")
			sid := c.Session()
			env := chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, CID: chat.StringCID("c1")}
			env.Text = strings.Repeat("x", max-len(chat.Marshal(&env))-len(`,"text":""`))
			if n := len(chat.Marshal(&env)); n != max {
				t.Fatalf("test envelope is %d bytes, want %d", n, max)
			}
			send(t, c, env)
			until(t, peer, text(env.Text))
			env.CID = chat.StringCID("c2")
			env.Text += "y"
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			var ce *chat.Error
			if _, err := c.Send(ctx, env); !errors.As(err, &ce) || ce.Code != chat.CodeTooLarge {
				t.Fatalf("one byte over: %v, want too_large", err)
			}
			before := l.srv.T.Requests.Load()
			if err := c.SendRaw(ctx, []byte(`{"type":"say","text":"`+strings.Repeat("z", 16*max)+`"}`)); err != nil {
				t.Fatal(err)
			}
			// On the control stream (wt-stream) too_large comes before the connection ends.
			until(t, c, func(e chat.Envelope) bool { return e.Type == chat.TypeError && e.Code == chat.CodeTooLarge })
			send(t, c, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: "after"})
			until(t, peer, text("after"))
			switch reconnected := l.srv.T.Requests.Load() != before; {
			case mode == webtransport.StreamName && !reconnected:
				t.Error("a line over the frame limit did not end the connection")
			case mode != webtransport.StreamName && reconnected:
				t.Error("a command stream over the frame limit ended the connection; want too_large and the connection going on")
			}
			if c.Session() != sid {
				t.Error("the session changed; want a resume")
			}
		})
	}
}

// TestShutdownEndsSessions: Shutdown tells every client (code shutdown) and returns once every
// session goroutine is done.
func TestShutdownEndsSessions(t *testing.T) {
	srv, err := server.New(server.Config{Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	ln, pc, err := server.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln, pc) }()
	l := &lab{srv: srv, base: "http://" + ln.Addr().String()}
	l.hash = fetchHash(t, l.base)
	var cs []*webtransport.Client
	for _, mode := range modes {
		cs = append(cs, l.client(t, mode, "sd", func(o *transports.Options) { o.NoReconnect = true }))
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	for _, c := range cs {
		timer := time.NewTimer(wait)
		for open := true; open; {
			select {
			case _, open = <-c.Messages():
			case <-timer.C:
				t.Fatalf("%s: still open after shutdown", c.Name())
			}
		}
		timer.Stop()
	}
}

// TestShutdownWithSilentClient: clients whose network went dead (every packet dropped both
// ways) while the server had messages for them do not hold Shutdown past the writer's grace
// (the QUIC idle timeout would take 30 s).
func TestShutdownWithSilentClient(t *testing.T) {
	srv, err := server.New(server.Config{Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	ln, pc, err := server.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln, pc) }()
	l := &lab{srv: srv, base: "http://" + ln.Addr().String()}
	l.hash = fetchHash(t, l.base)
	var dead atomic.Bool
	pub := l.client(t, webtransport.StreamName, "pub")
	for _, mode := range modes {
		l.client(t, mode, "silent", func(o *transports.Options) {
			udp, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { udp.Close() })
			o.PacketConn = &lossyConn{PacketConn: udp, drop: dead.Load}
		})
	}
	dead.Store(true)
	for i := range 300 {
		send(t, pub, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: fmt.Sprint(i, strings.Repeat("x", 500))})
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if el := time.Since(start); el > 12*time.Second {
		t.Errorf("shutdown took %v", el)
	} else {
		t.Logf("shutdown took %v", el)
	}
}

// TestUniCommandsOnControlStream: a wt-uni client that sends its commands on the control stream
// (as the first protocol did, and as the browser page does) is still served; the Go client sends
// each on a unidirectional stream of its own.
func TestUniCommandsOnControlStream(t *testing.T) {
	l := start(t, server.Config{})
	peer := l.client(t, webtransport.UniName, "peer")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	d := &wt.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{http3.NextProtoH3}}, //nolint:gosec // a test server's generated certificate
		QUICConfig:      &quic.Config{EnableDatagrams: true, EnableStreamResetPartialDelivery: true},
	}
	defer d.Close()
	u := strings.Replace(l.base, "http://", "https://", 1) + webtransport.Path + "?user=old&mode=uni"
	_, ws, err := d.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	defer ws.CloseWithError(0, "")
	ctl, err := ws.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	_ = ctl.SetReadDeadline(time.Now().Add(wait))
	br := bufio.NewReader(ctl)
	if line, err := br.ReadBytes('\n'); err != nil || !bytes.Contains(line, []byte(`"welcome"`)) {
		t.Fatalf("first line %q, %v: want the welcome", line, err)
	}
	if _, err := ctl.Write([]byte(`{"type":"say","room":"lobby","text":"on the control stream","cid":"c1"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	for {
		us, err := ws.AcceptUniStream(ctx)
		if err != nil {
			t.Fatalf("no ok for a command on the control stream: %v", err)
		}
		b, err := io.ReadAll(us)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(`"type":"ok"`)) && bytes.Contains(b, []byte(`"cid":"c1"`)) {
			break
		}
	}
	until(t, peer, text("on the control stream"))
}
