package webtransport_test

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
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

func TestOriginAndToken(t *testing.T) {
	signer := chat.NewSigner("secret-for-tests")
	l := start(t, server.Config{Transport: transports.ServerOptions{Signer: signer}})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for _, tc := range []struct {
		name  string
		token string
		code  string
	}{
		{"no token", "", chat.CodeUnauthorized},
		{"wrong token", "nope", chat.CodeUnauthorized},
	} {
		for _, mode := range modes {
			opt := l.opts("tok")
			opt.Token = tc.token
			c := webtransport.NewClient(mode, opt)
			err := c.Connect(ctx)
			c.Close()
			var ce *chat.Error
			if !errors.As(err, &ce) || ce.Code != tc.code {
				t.Errorf("%s over %s: %v, want %s", tc.name, mode, err, tc.code)
			}
		}
	}
	tok := signer.Token("tok", time.Hour, time.Now())
	for _, mode := range modes {
		l.client(t, mode, "tok", func(o *transports.Options) { o.Token = tok })
	}
}

// rawDial opens a WebTransport session with webtransport-go itself, so a test can set headers.
func rawDial(t *testing.T, l *lab, query string, h http.Header) (*http.Response, *wt.Session, error) {
	t.Helper()
	return rawDialOpts(t, l, query, h, rawOpts{})
}

// rawOpts change rawDialOpts' client.
type rawOpts struct {
	// authority is the host:port the request names (the server's address if empty); the
	// QUIC connection goes to the server's address whatever it says.
	authority string
	// config is the client's WebTransport config (nil: the zero value, no WT_INITIAL_MAX_*).
	config *wt.Config
}

// rawDialOpts is rawDial with a client changed by o.
func rawDialOpts(t *testing.T, l *lab, query string, h http.Header, o rawOpts) (*http.Response, *wt.Session, error) {
	t.Helper()
	hash := l.hash
	tlsConf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{http3.NextProtoH3},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if sha256.Sum256(cs.PeerCertificates[0].Raw) != hash {
				return errors.New("wrong certificate")
			}
			return nil
		}}
	host := strings.TrimPrefix(l.base, "http://")
	d := &wt.Transport{TLSClientConfig: tlsConf, Config: o.config,
		DialAddr: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			return quic.DialAddrEarly(ctx, host, tlsCfg, cfg)
		}}
	t.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	authority := cmp.Or(o.authority, host)
	rsp, s, err := d.Dial(ctx, "https://"+authority+"/wt?"+query, h)
	if s != nil {
		t.Cleanup(func() { s.CloseWithError(0, "") })
	}
	return rsp, s, err
}

func TestOrigin(t *testing.T) {
	l := start(t, server.Config{Transport: transports.ServerOptions{AllowOrigins: []string{"http://ok.example"}}})
	rsp, _, err := rawDial(t, l, "user=o", http.Header{"Origin": {"http://evil.example"}})
	if err == nil || rsp == nil || rsp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v %v, want 403", rsp, err)
	}
	// DNS rebinding: evil.example resolves to the server, so the page's origin and the
	// request's authority both name it; the server does not take the authority's word.
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(l.base, "http://"))
	evil := "evil.example:" + port
	rsp, _, err = rawDialOpts(t, l, "user=o", http.Header{"Origin": {"http://" + evil}}, rawOpts{authority: evil})
	if err == nil || rsp == nil || rsp.StatusCode != http.StatusForbidden {
		t.Fatalf("a rebound name: %v %v, want 403", rsp, err)
	}
	// A page from the server's own address, as localhost too, is accepted.
	for _, origin := range []string{l.base, "http://localhost:" + port} {
		if _, _, err := rawDial(t, l, "user=o", http.Header{"Origin": {origin}}); err != nil {
			t.Fatalf("the server's own origin %s: %v", origin, err)
		}
	}
	rsp, _, err = rawDial(t, l, "user=o&mode=nope", nil)
	if err == nil || rsp == nil || rsp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad mode: %v %v, want 400", rsp, err)
	}
	_, s, err := rawDial(t, l, "user=o", http.Header{"Origin": {"http://ok.example"}})
	if err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
	// The raw session speaks the protocol: open the stream, write first, read the welcome.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	str, err := s.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := str.Write([]byte(`{"type":"join","room":"r","cid":1}` + "\n")); err != nil {
		t.Fatal(err)
	}
	_ = str.SetReadDeadline(time.Now().Add(wait))
	br := bufio.NewReader(str)
	var types []string
	for len(types) == 0 || types[len(types)-1] != chat.TypeOK {
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		var e chat.Envelope
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		types = append(types, e.Type)
	}
	if types[0] != chat.TypeWelcome {
		t.Fatalf("got %v, want the welcome first", types)
	}
}

// TestResumeWithGap resumes, over a raw session, from a seq the outbox no longer holds: the
// welcome comes first, then a gap error naming the first seq still held, then the entries from
// there.
func TestResumeWithGap(t *testing.T) {
	l := start(t, server.Config{Hub: chat.Config{Outbox: 16}})
	sub := l.client(t, webtransport.StreamName, "sub")
	pub := l.client(t, webtransport.StreamName, "pub")
	for i := range 40 {
		send(t, pub, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: fmt.Sprint(i)})
	}
	until(t, sub, text("39"))
	_, s, err := rawDial(t, l, "user=sub&session="+sub.Session()+"&after=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	str, err := s.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := str.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	_ = str.SetReadDeadline(time.Now().Add(wait))
	br := bufio.NewReader(str)
	next := func() chat.Envelope {
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		var e chat.Envelope
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		return e
	}
	if e := next(); e.Type != chat.TypeWelcome || e.Session != sub.Session() {
		t.Fatalf("first line %+v, want the welcome of the resumed session", e)
	}
	gap := next()
	if gap.Type != chat.TypeError || gap.Code != chat.CodeGap || gap.First <= 2 {
		t.Fatalf("second line %+v, want a gap error", gap)
	}
	if e := next(); e.Seq != gap.First {
		t.Fatalf("after the gap came seq %d, want %d", e.Seq, gap.First)
	}
}
