package web_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/web"
)

type fakeLink struct {
	rtt  time.Duration
	loss float64
}

func (f *fakeLink) LinkState() web.LinkState {
	return web.LinkState{RTTms: float64(f.rtt.Milliseconds()), LossPct: f.loss * 100}
}

func (f *fakeLink) SetLink(rtt time.Duration, loss float64) error {
	f.rtt, f.loss = rtt, loss
	return nil
}

func TestHandler(t *testing.T) {
	link := &fakeLink{rtt: 80 * time.Millisecond, loss: 0.02}
	demo := web.Options{Link: link, CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "http://127.0.0.1:8080" }}
	const jsonType = "application/json"
	for _, tc := range []struct {
		name         string
		opt          web.Options
		method, path string
		ctype        string // Content-Type of the body
		origin       string // Origin header, if any
		body         string
		status       int
		want         string // a substring of the answer
	}{
		{"page", web.Options{}, "GET", "/", "", "", "", 200, `data-testid="session-id"`},
		{"config of serve", web.Options{}, "GET", "/api/config", "", "", "", 200, `{"demo":false,"poll_ms":1000}`},
		{"config of demo", web.Options{PollInterval: 2 * time.Second, Link: link}, "GET", "/api/config", "", "", "", 200, `{"demo":true,"poll_ms":2000}`},
		{"no link in serve", web.Options{}, "GET", "/api/demo/link", "", "", "", 404, "lab demo"},
		{"link state", demo, "GET", "/api/demo/link", "", "", "", 200, `"rtt_ms":80`},
		{"set link", demo, "POST", "/api/demo/link", jsonType, "", `{"rtt_ms":200,"loss_pct":5}`, 200, `"rtt_ms":200,"loss_pct":5`},
		{"set loss only", demo, "POST", "/api/demo/link", jsonType, "", `{"loss_pct":1}`, 200, `"rtt_ms":200,"loss_pct":1`},
		{"from the page", demo, "POST", "/api/demo/link", "application/json; charset=utf-8", "http://127.0.0.1:8080", `{"loss_pct":2}`, 200, `"loss_pct":2`},
		{"loss out of range", demo, "POST", "/api/demo/link", jsonType, "", `{"loss_pct":80}`, 400, "out of range"},
		{"rtt out of range", demo, "POST", "/api/demo/link", jsonType, "", `{"rtt_ms":-1}`, 400, "out of range"},
		{"not json", demo, "POST", "/api/demo/link", jsonType, "", `rtt=1`, 400, `{\"rtt_ms\":80`},
		// CSRF: another site's page posts without a preflight (text/plain, a form) or from its
		// own origin; none of them moves the link.
		{"text/plain", demo, "POST", "/api/demo/link", "text/plain", "", `{"loss_pct":50}`, 415, "application/json"},
		{"a form", demo, "POST", "/api/demo/link", "application/x-www-form-urlencoded", "https://evil.example", `{"loss_pct":50}`, 403, "evil.example"},
		{"no content type", demo, "POST", "/api/demo/link", "", "", `{"loss_pct":50}`, 415, "application/json"},
		{"a foreign origin", demo, "POST", "/api/demo/link", jsonType, "https://evil.example", `{"loss_pct":50}`, 403, "own page"},
		{"a foreign origin, text/plain", demo, "POST", "/api/demo/link", "text/plain;charset=UTF-8", "https://evil.example", `{"loss_pct":50}`, 403, "own page"},
		{"an origin and no checker", web.Options{Link: link}, "POST", "/api/demo/link", jsonType, "http://127.0.0.1:8080", `{"loss_pct":50}`, 403, "own page"},
		{"other method", demo, "DELETE", "/api/demo/link", "", "", "", 405, "POST"},
		{"unknown path", web.Options{}, "GET", "/nope", "", "", "", 404, "docs/PROTOCOL.md"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := link.LinkState()
			rec := httptest.NewRecorder()
			r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.ctype != "" {
				r.Header.Set("Content-Type", tc.ctype)
			}
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			web.Handler(tc.opt).ServeHTTP(rec, r)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
				t.Errorf("%s %s: %d %q, want %d and %q", tc.method, tc.path, rec.Code, rec.Body.String(), tc.status, tc.want)
			}
			if strings.HasPrefix(tc.path, "/api/") && !json.Valid(rec.Body.Bytes()) {
				t.Errorf("%s: the answer is not JSON: %q", tc.path, rec.Body.String())
			}
			if rec.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("%s: Cache-Control %q, want no-store", tc.path, rec.Header().Get("Cache-Control"))
			}
			if tc.status >= 400 && link.LinkState() != before {
				t.Errorf("a refused request changed the link from %+v to %+v", before, link.LinkState())
			}
		})
	}
}

// TestUnknownPathIsClipped: a 404 repeats at most chat.ClipLen characters of the path.
func TestUnknownPathIsClipped(t *testing.T) {
	rec := httptest.NewRecorder()
	web.Handler(web.Options{}).ServeHTTP(rec, httptest.NewRequest("GET", "/"+strings.Repeat("p", 100<<10), nil))
	if rec.Code != 404 || rec.Body.Len() > 300 || !strings.Contains(rec.Body.String(), strings.Repeat("p", chat.ClipLen-1)+`...`) {
		t.Errorf("a 100 KB path: %d, %d bytes: %.200q", rec.Code, rec.Body.Len(), rec.Body.String())
	}
}

// TestPageIsSelfContained: nothing is loaded from elsewhere (the page works offline) and every
// hook of the contract is in it.
func TestPageIsSelfContained(t *testing.T) {
	page := string(web.Page())
	for _, bad := range []string{`src="http`, `href="http`, `src="//`, `href="//`, "url(http", "<script src", `rel="stylesheet"`, "@import"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page contains %q: it must not load anything from elsewhere", bad)
		}
	}
	for _, id := range []string{"user", "transport", "room", "message-input", "send", "dm-to", "session-id"} {
		if !strings.Contains(page, `data-testid="`+id+`"`) {
			t.Errorf("the page has no data-testid=%q", id)
		}
	}
}
