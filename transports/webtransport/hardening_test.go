package webtransport_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/quicvarint"
	wt "github.com/quic-go/webtransport-go"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/webtransport"
)

// tlsFor is a client TLS config for the test server: h3, and its certificate by hash.
func tlsFor(l *lab) *tls.Config {
	hash := l.hash
	return &tls.Config{InsecureSkipVerify: true, NextProtos: []string{http3.NextProtoH3}, //nolint:gosec // checked by hash below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if sha256.Sum256(cs.PeerCertificates[0].Raw) != hash {
				return errors.New("wrong certificate")
			}
			return nil
		}}
}

// HTTP/3 and WebTransport setting identifiers (RFC 9114, RFC 9220, RFC 9297,
// draft-ietf-webtrans-http3).
const (
	settingEnableConnectProtocol   = 0x08
	settingH3Datagram              = 0x33
	settingWTEnabled               = 0x2c7cf000
	settingWTMaxSessions           = 0x14e9cd29
	settingWTInitialMaxStreamsUni  = 0x2b64
	settingWTInitialMaxStreamsBidi = 0x2b65
	settingWTInitialMaxData        = 0x2b61
)

// readSettings connects to the server with a bare QUIC client and returns the SETTINGS frame of
// the server's HTTP/3 control stream (the unidirectional stream of type 0x00; the QPACK streams
// are skipped).
func readSettings(t *testing.T, l *lab) map[uint64]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := quic.DialAddr(ctx, strings.TrimPrefix(l.base, "http://"), tlsFor(l), &quic.Config{EnableDatagrams: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	for {
		str, err := conn.AcceptUniStream(ctx)
		if err != nil {
			t.Fatalf("no HTTP/3 control stream from the server: %v", err)
		}
		_ = str.SetReadDeadline(time.Now().Add(wait))
		r := quicvarint.NewReader(str)
		typ, err := quicvarint.Read(r)
		if err != nil {
			t.Fatalf("reading a stream type: %v", err)
		}
		if typ != 0x00 {
			continue
		}
		frame, err := quicvarint.Read(r)
		if err != nil || frame != 0x04 {
			t.Fatalf("the control stream starts with frame type %#x (%v), want SETTINGS (0x4)", frame, err)
		}
		n, err := quicvarint.Read(r)
		if err != nil {
			t.Fatal(err)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			t.Fatalf("reading %d bytes of SETTINGS: %v", n, err)
		}
		settings := map[uint64]uint64{}
		pr := bytes.NewReader(payload)
		for pr.Len() > 0 {
			id, err := quicvarint.Read(pr)
			if err != nil {
				t.Fatal(err)
			}
			v, err := quicvarint.Read(pr)
			if err != nil {
				t.Fatal(err)
			}
			settings[id] = v
		}
		return settings
	}
}

// TestSettingsForSafari: the server's SETTINGS frame, as a client reads it off the wire, carries
// what Safari requires of a WebTransport server (webtransport-go issue 355): WebTransport
// enabled, WT_MAX_SESSIONS, and the three WT_INITIAL_MAX_* session limits.
func TestSettingsForSafari(t *testing.T) {
	l := start(t, server.Config{})
	got := readSettings(t, l)
	t.Logf("SETTINGS: %v", got)
	for _, want := range []struct {
		name string
		id   uint64
		min  uint64 // at least
		eq   bool   // exactly min
	}{
		{"SETTINGS_ENABLE_CONNECT_PROTOCOL", settingEnableConnectProtocol, 1, true},
		{"SETTINGS_H3_DATAGRAM", settingH3Datagram, 1, true},
		{"SETTINGS_WT_ENABLED", settingWTEnabled, 1, false},
		{"SETTINGS_WT_MAX_SESSIONS", settingWTMaxSessions, 1, false},
		{"SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI", settingWTInitialMaxStreamsBidi, webtransport.WTMaxIncomingStreams, true},
		{"SETTINGS_WT_INITIAL_MAX_STREAMS_UNI", settingWTInitialMaxStreamsUni, webtransport.WTMaxIncomingUniStreams, true},
		{"SETTINGS_WT_INITIAL_MAX_DATA", settingWTInitialMaxData, webtransport.WTMaxIncomingData, true},
	} {
		v, ok := got[want.id]
		switch {
		case !ok:
			t.Errorf("%s (%#x) is not in the server's SETTINGS", want.name, want.id)
		case want.eq && v != want.min:
			t.Errorf("%s = %d, want %d", want.name, v, want.min)
		case v < want.min:
			t.Errorf("%s = %d, want at least %d", want.name, v, want.min)
		}
	}
}

// TestFlowControlledClient: a client that advertises WT_INITIAL_MAX_* itself (as the server
// does) gets WebTransport session flow control. With room for few streams and little data, a
// wt-uni session still delivers every envelope: the server waits for the client's credit
// (capsules) instead of failing.
func TestFlowControlledClient(t *testing.T) {
	l := start(t, server.Config{})
	cfg := &wt.Config{MaxIncomingStreams: 4, MaxIncomingUniStreams: 8, MaxIncomingData: 4096}
	_, s, err := rawDialOpts(t, l, "user=safari&mode=uni", nil, rawOpts{config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ctl, err := s.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const says = 40
	var cmds bytes.Buffer
	cmds.WriteString("\n")
	for i := range says {
		fmt.Fprintf(&cmds, `{"type":"say","room":"lobby","text":"%d %s","cid":%d}`+"\n", i, strings.Repeat("x", 200), i+1)
	}
	if _, err := ctl.Write(cmds.Bytes()); err != nil {
		t.Fatal(err)
	}
	// Every say is a msg and an ok, after the lobby's two presence envelopes: seqs 1..2+2*says,
	// each on a stream of its own.
	want := 2 + 2*says
	seen := map[uint64]bool{}
	for len(seen) < want {
		us, err := s.AcceptUniStream(ctx)
		if err != nil {
			t.Fatalf("after %d of %d envelopes: %v", len(seen), want, err)
		}
		b, err := io.ReadAll(us)
		if err != nil {
			t.Fatal(err)
		}
		var e chat.Envelope
		if err := json.Unmarshal(b, &e); err != nil || e.Seq == 0 {
			t.Fatalf("stream %q: %v, want one envelope with a seq", b, err)
		}
		if seen[e.Seq] {
			t.Errorf("seq %d came twice", e.Seq)
		}
		seen[e.Seq] = true
	}
	for seq := uint64(1); seq <= uint64(want); seq++ {
		if !seen[seq] {
			t.Errorf("seq %d never came", seq)
		}
	}
}

// TestControlLineTooLarge: a line over the frame limit on the control stream cannot be read, and
// it ends the session; the documented too_large error reaches the client first. The client here
// writes the whole line before it reads (as a simple client does): the server stops its write
// (STOP_SENDING) rather than leave it blocked until the session closes under the unread error.
func TestControlLineTooLarge(t *testing.T) {
	const max = 4096 // the frame limit is 16 x 4 KiB = 64 KiB
	l := start(t, server.Config{Hub: chat.Config{Limits: chat.Limits{MaxEnvelope: max}}})
	peer := l.client(t, webtransport.StreamName, "peer")
	_, s, err := rawDial(t, l, "user=big", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ctl, err := s.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 8 MiB: more than quic-go's largest stream window (6 MiB) lets through unread.
	line := append([]byte(`{"type":"say","room":"lobby","cid":1,"text":"`), bytes.Repeat([]byte("x"), 8<<20)...)
	line = append(line, "\"}\n"...)
	_ = ctl.SetWriteDeadline(time.Now().Add(wait))
	_, werr := ctl.Write(line)
	var se *wt.StreamError
	if !errors.As(werr, &se) {
		t.Errorf("writing the line: %v, want the server's STOP_SENDING (a stream error)", werr)
	}
	_ = ctl.SetReadDeadline(time.Now().Add(wait))
	br := bufio.NewReader(ctl)
	var types []string
	for {
		b, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("the stream ended (%v) after %v, without too_large", err, types)
		}
		var e chat.Envelope
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("line %q: %v", b, err)
		}
		types = append(types, e.Type+" "+e.Code)
		if e.Type == chat.TypeError {
			if e.Code != chat.CodeTooLarge {
				t.Fatalf("error %+v, want too_large", e)
			}
			break
		}
	}
	if _, err := br.ReadBytes('\n'); !errors.Is(err, io.EOF) {
		t.Errorf("after too_large: %v, want the end of the stream", err)
	}
	// The session ends; the server goes on serving everyone else.
	select {
	case <-s.Context().Done():
	case <-ctx.Done():
		t.Error("the session did not end after too_large")
	}
	send(t, peer, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: "still serving"})
	until(t, peer, text("still serving"))
}

// TestWrongMethod: /wt takes an extended CONNECT; anything else over HTTP/3 is 405 with
// "Allow: CONNECT" and a bad_method error.
func TestWrongMethod(t *testing.T) {
	l := start(t, server.Config{})
	tr := &http3.Transport{TLSClientConfig: tlsFor(l)}
	defer tr.Close()
	cl := &http.Client{Transport: tr, Timeout: wait}
	u := strings.Replace(l.base, "http://", "https://", 1) + webtransport.Path + "?user=m"
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(method, u, nil)
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatalf("%s /wt over HTTP/3: %v", method, err)
		}
		err = transports.DecodeError(resp)
		resp.Body.Close()
		var ce *chat.Error
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodConnect || !errors.As(err, &ce) || ce.Code != transports.CodeBadMethod {
			t.Errorf("%s /wt: %s, Allow %q, %v; want 405, CONNECT, bad_method", method, resp.Status, resp.Header.Get("Allow"), err)
		}
	}
}
