package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/web"
)

// TestWrongMethod: every endpoint answers a method it does not take with 405, an Allow header and
// (on the chat's endpoints) a bad_method error envelope, not the page's 404; its own methods
// still reach it.
func TestWrongMethod(t *testing.T) {
	srv, err := server.New(server.Config{Logger: slog.New(slog.DiscardHandler), Web: web.Handler(web.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	h := srv.Handler()
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/api/session?user=a", 405, "POST"},
		{"GET", "/api/send?session=x", 405, "POST"},
		{"POST", "/api/poll?session=x", 405, "GET, HEAD"},
		{"POST", "/api/longpoll?session=x", 405, "GET, HEAD"},
		{"DELETE", "/api/stream?session=x", 405, "GET, HEAD"},
		{"POST", "/api/sse?session=x", 405, "GET, HEAD"},
		{"POST", "/ws?user=a", 405, "GET, HEAD"},
		{"PUT", "/api/wt-cert-hash", 405, "GET, HEAD"},
		{"POST", "/", 405, "GET, HEAD"},
		{"POST", "/api/config", 405, "GET, HEAD"},
		// their own methods still get through
		{"GET", "/api/poll", 400, ""},  // missing_field: no session
		{"POST", "/api/send", 400, ""}, // missing_field: no session
		{"GET", "/api/wt-cert-hash", 200, ""},
		{"HEAD", "/api/wt-cert-hash", 200, ""},
		{"GET", "/nope", 404, ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader("")))
		if rec.Code != tc.status || rec.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d, Allow %q; want %d, Allow %q (%.120s)", tc.method, tc.path, rec.Code, rec.Header().Get("Allow"), tc.status, tc.allow, rec.Body.String())
			continue
		}
		if tc.status != 405 || tc.path == "/" || tc.path == "/api/config" {
			continue // the page's own answers are not chat envelopes
		}
		var env chat.Envelope
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Type != chat.TypeError || env.Code != transports.CodeBadMethod || !strings.Contains(env.Error, tc.allow) {
			t.Errorf("%s %s: body %q (%v), want a bad_method error naming %s", tc.method, tc.path, rec.Body.String(), err, tc.allow)
		}
	}
}
