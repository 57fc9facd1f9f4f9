package transports

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wirelab/wirelab/chat"
)

func newTestServer(t *testing.T, opt ServerOptions, lim chat.Limits) (*Server, *httptest.Server) {
	t.Helper()
	hub, err := chat.NewHub(chat.Config{Limits: lim, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	opt.Logger = slog.New(slog.DiscardHandler)
	s := NewServer(hub, opt)
	mux := http.NewServeMux()
	mux.HandleFunc("/api/session", s.HandleSession)
	mux.HandleFunc("/api/send", s.HandleSend)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.Close()
		_ = s.Shutdown(context.Background())
		_ = hub.Shutdown(context.Background())
	})
	return s, hs
}

func post(t *testing.T, url, body string) (int, chat.Envelope) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var env chat.Envelope
	if len(b) > 0 {
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatalf("answer %q: %v", b, err)
		}
	}
	return resp.StatusCode, env
}

func TestHandleSessionAndSend(t *testing.T) {
	signer := chat.NewSigner("k")
	_, hs := newTestServer(t, ServerOptions{Signer: signer}, chat.Limits{MaxEnvelope: 100})
	defer http.DefaultClient.CloseIdleConnections()
	if code, env := post(t, hs.URL+"/api/session?user=alice", ""); code != http.StatusUnauthorized || env.Code != chat.CodeUnauthorized {
		t.Errorf("no token: %d %+v", code, env)
	}
	tok := signer.Token("alice", time.Hour, time.Now())
	code, w := post(t, hs.URL+"/api/session?user=alice&token="+tok, "")
	if code != http.StatusOK || w.Type != chat.TypeWelcome || w.Session == "" || w.User != "alice" {
		t.Fatalf("session: %d %+v", code, w)
	}
	if code, env := post(t, hs.URL+"/api/session?user=bob&token="+tok, ""); code != http.StatusUnauthorized {
		t.Errorf("alice's token for bob: %d %+v", code, env)
	}
	send := hs.URL + "/api/send?session=" + w.Session
	for _, tc := range []struct {
		body   string
		status int
		typ    string
		code   string
	}{
		{`{"type":"say","room":"lobby","text":"hi","cid":"1"}`, 200, chat.TypeOK, ""},
		{`{"type":"pong"}`, 204, "", ""},
		{`{"type":"who","room":"lobby"}` + "\n", 200, chat.TypePresence, ""},
		{`{"type":"say","room":"lobby","text":"hi","cid":"2"`, 400, chat.TypeError, chat.CodeBadJSON},
		{`{"type":"say","room":"x","text":"hi","cid":"3"}`, 422, chat.TypeError, chat.CodeNotMember},
		{`{"type":"who","room":"x"}`, 422, chat.TypeError, chat.CodeNotMember},
		{`{"type":"say","room":"lobby","cid":"4","text":"` + strings.Repeat("x", 100) + `"}`, 413, chat.TypeError, chat.CodeTooLarge},
		{strings.Repeat(" ", 1601), 413, chat.TypeError, chat.CodeTooLarge}, // beyond FrameLimit
	} {
		code, env := post(t, send, tc.body)
		if code != tc.status || env.Type != tc.typ || env.Code != tc.code {
			t.Errorf("POST %.40q: %d %+v; want %d %s %s", tc.body, code, env, tc.status, tc.typ, tc.code)
		}
	}
	if code, env := post(t, hs.URL+"/api/send?session=nope", `{"type":"pong"}`); code != http.StatusNotFound || env.Code != chat.CodeUnknownSession {
		t.Errorf("unknown session: %d %+v", code, env)
	}
	if code, env := post(t, hs.URL+"/api/send", `{"type":"pong"}`); code != http.StatusBadRequest || env.Code != chat.CodeMissingField {
		t.Errorf("no session: %d %+v", code, env)
	}
}

// TestReflectedInputIsClipped: what a request says that an error repeats comes back clipped
// to chat.ClipLen characters, however long it was.
func TestReflectedInputIsClipped(t *testing.T) {
	_, hs := newTestServer(t, ServerOptions{}, chat.Limits{})
	defer http.DefaultClient.CloseIdleConnections()
	huge := strings.Repeat("u", 200<<10)
	code, env := post(t, hs.URL+"/api/session?user="+huge, "")
	if code != http.StatusBadRequest || env.Code != chat.CodeBadUser {
		t.Fatalf("a 200 KB user name: %d %+v", code, env)
	}
	if !strings.Contains(env.Error, strings.Repeat("u", chat.ClipLen)+"...") || len(env.Error) > chat.ClipLen+100 {
		t.Errorf("a 200 KB user name came back as %d bytes: %.120q", len(env.Error), env.Error)
	}
	r := httptest.NewRequest("GET", "/api/stream?after="+huge, nil)
	if _, err := After(r, ""); err == nil {
		t.Error("a 200 KB after was taken")
	} else if len(err.Error()) > chat.ClipLen+100 {
		t.Errorf("a 200 KB after: %d bytes of error", len(err.Error()))
	}
}

func TestToken(t *testing.T) {
	for _, tc := range []struct {
		name, query, auth, want string
	}{
		{"none", "", "", ""},
		{"query", "token=q", "", "q"},
		{"query wins", "token=q", "Bearer h", "q"},
		{"Bearer", "", "Bearer T.1.m", "T.1.m"},
		{"lower case", "", "bearer T.1.m", "T.1.m"},
		{"upper case", "", "BEARER T.1.m", "T.1.m"},
		{"several spaces", "", "Bearer   T.1.m", "T.1.m"},
		{"another scheme", "", "Basic dTpw", ""},
		{"a scheme without credentials", "", "Bearer", ""},
		{"a longer scheme name", "", "Bearerish T", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/ws?"+tc.query, nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			if got := Token(r); got != tc.want {
				t.Errorf("Token(?%s, Authorization: %q) = %q, want %q", tc.query, tc.auth, got, tc.want)
			}
		})
	}
	// End to end: a lower-case scheme opens a session on a server that needs tokens.
	signer := chat.NewSigner("k")
	_, hs := newTestServer(t, ServerOptions{Signer: signer}, chat.Limits{})
	defer http.DefaultClient.CloseIdleConnections()
	req, _ := http.NewRequest("POST", hs.URL+"/api/session?user=alice", nil)
	req.Header.Set("Authorization", "bearer "+signer.Token("alice", time.Hour, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("Authorization: bearer T answered %s", resp.Status)
	}
}

func TestAfter(t *testing.T) {
	for _, tc := range []struct {
		query, header string
		want          uint64
		ok            bool
	}{
		{"", "", 0, true}, {"after=5", "", 5, true}, {"after=5", "7", 7, true}, {"after=x", "", 0, false}, {"", "-1", 0, false},
	} {
		r := httptest.NewRequest("GET", "/x?"+tc.query, nil)
		if tc.header != "" {
			r.Header.Set("Last-Event-ID", tc.header)
		}
		got, err := After(r, "Last-Event-ID")
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("After(%q, %q) = %d, %v", tc.query, tc.header, got, err)
		}
		if err != nil {
			if ce, ok := err.(*chat.Error); !ok || ce.Code != chat.CodeBadAfter {
				t.Errorf("error %v, want bad_after", err)
			}
		}
	}
}

func TestAppendArray(t *testing.T) {
	p := chat.NewPayload(chat.Envelope{Type: chat.TypeMsg, ID: "m", Text: "x"})
	b := AppendArray(nil, []chat.Envelope{{Type: chat.TypeError, Code: chat.CodeGap, First: 3}}, []chat.Entry{{Seq: 3, P: p}, {Seq: 4, P: p}})
	envs, err := DecodeArray(b)
	if err != nil || len(envs) != 3 || envs[0].Code != chat.CodeGap || envs[2].Seq != 4 {
		t.Errorf("AppendArray = %s (%v)", b, err)
	}
	if b := AppendArray(nil, nil, nil); string(b) != "[]\n" {
		t.Errorf("empty = %q", b)
	}
}
