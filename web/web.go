// Package web is wirelab's browser chat: one HTML page (index.html, inline CSS and JavaScript,
// nothing from a CDN) with a client for every transport a browser can use — shortpoll,
// longpoll, stream, sse, websocket, wt-stream, wt-uni, wt-datagram and auto — a transport picker
// that moves the session between them without losing or repeating a message, a live panel
// (messages per second, requests, bytes, a latency chart) and a side-by-side compare view
// (/?compare=websocket,longpoll).
//
// Handler serves the page at / and two small JSON endpoints the page reads:
//
//	GET  /api/config     {"poll_ms":N,"demo":BOOL}: the short-polling interval and whether the
//	                     emulated link can be changed
//	GET  /api/demo/link  the emulated link's settings and counters (lab demo only)
//	POST /api/demo/link  {"rtt_ms":X,"loss_pct":Y} changes them while traffic flows (lab demo
//	                     only; Content-Type application/json, and from the page's own origin:
//	                     another site's page cannot move the teacher's sliders)
//
// The chat itself is the server's (docs/PROTOCOL.md); the page speaks exactly that protocol.
// The handler starts no goroutines.
//
// web owns the page and its HTTP handlers, nothing more: server/ mounts Handler at /, and the
// emulated link behind the sliders is lab's (lab.StartDemo implements LinkControl). Of wirelab
// it imports chat only (chat.Clip, for request text echoed in errors); never server, transports,
// netem or lab.
package web

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/wirelab/wirelab/chat"
)

//go:embed index.html
var page []byte

// Page is the embedded HTML page.
func Page() []byte { return page }

// Options configure the handler. The zero value serves the page for `lab serve`.
type Options struct {
	// PollInterval is the page's short-polling interval (zero means 1 s; lab demo uses 2 s).
	// The query parameter poll=MS overrides it for one page.
	PollInterval time.Duration
	// Link, when set, lets the page read and change the emulated link (lab demo). Nil hides the
	// controls and answers 404 on /api/demo/link.
	Link LinkControl
	// CheckOrigin says whether a request's Origin header is one of the server's own
	// (transports.Server.CheckOrigin): POST /api/demo/link from any other origin is refused
	// with 403. Nil accepts only requests without an Origin (not from a browser).
	CheckOrigin func(*http.Request) bool
}

// LinkControl is the emulated network of `lab demo` as the page sees it.
type LinkControl interface {
	// LinkState returns the settings and counters now.
	LinkState() LinkState
	// SetLink sets the round-trip time (half of it each way) and the random loss (a fraction
	// in [0, 1), each direction) while traffic flows.
	SetLink(rtt time.Duration, loss float64) error
}

// LinkState is what GET /api/demo/link answers.
type LinkState struct {
	RTTms   float64 `json:"rtt_ms"`
	LossPct float64 `json:"loss_pct"`
	// Up is browser -> server, Down server -> browser, as the emulated link counted them: IP
	// packets and bytes (every header included), and the packets it dropped.
	Up   LinkCounters `json:"up"`
	Down LinkCounters `json:"down"`
	// ServerRequests is the server's count of HTTP requests and WebTransport sessions, all
	// tabs together.
	ServerRequests int64 `json:"server_requests"`
}

// LinkCounters count one direction of the emulated link.
type LinkCounters struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	Dropped uint64 `json:"dropped"`
}

// linkSettings is the body of POST /api/demo/link.
type linkSettings struct {
	RTTms   *float64 `json:"rtt_ms"`
	LossPct *float64 `json:"loss_pct"`
}

// Limits of the page's sliders, enforced here too.
const (
	MaxRTT     = 2 * time.Second
	MaxLossPct = 50.0
)

// Handler serves the page and its endpoints. Mount it at / (server.Config.Web).
func Handler(opt Options) http.Handler {
	if opt.PollInterval <= 0 {
		opt.PollInterval = time.Second
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(page)
	})
	m.HandleFunc("GET /api/config", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"poll_ms": opt.PollInterval.Milliseconds(), "demo": opt.Link != nil})
	})
	m.HandleFunc("/api/demo/link", func(w http.ResponseWriter, r *http.Request) {
		if opt.Link == nil {
			writeError(w, http.StatusNotFound, "no emulated link here: the link controls are in `lab demo`, not `lab serve`")
			return
		}
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, opt.Link.LinkState())
		case http.MethodPost:
			if !linkAllowed(w, r, opt.CheckOrigin) {
				return
			}
			setLink(w, r, opt.Link)
		default:
			w.Header().Set("Allow", "GET, POST")
			writeError(w, http.StatusMethodNotAllowed, "use GET to read the link or POST {\"rtt_ms\":80,\"loss_pct\":2} to change it")
		}
	})
	// The page and its config take GET only: any other method is 405, not the 404 below.
	for _, path := range []string{"/{$}", "/api/config"} {
		m.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not a method of %s: use GET", chat.Clip(r.Method), r.URL.Path))
		})
	}
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such page %q: the chat is at / and the protocol is in docs/PROTOCOL.md", chat.Clip(r.URL.Path)))
	})
	return m
}

// linkAllowed refuses a POST /api/demo/link that another site's page could have sent (CSRF):
// one from a foreign origin, and one whose body is not declared JSON (a cross-origin form or a
// fetch with a text/plain body needs no CORS preflight; application/json does).
func linkAllowed(w http.ResponseWriter, r *http.Request, checkOrigin func(*http.Request) bool) bool {
	if origin := r.Header.Get("Origin"); origin != "" && (checkOrigin == nil || !checkOrigin(r)) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("origin %q may not change the link: only the demo's own page may", chat.Clip(origin)))
		return false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: send the settings as application/json, like {\"rtt_ms\":80,\"loss_pct\":2}", chat.Clip(r.Header.Get("Content-Type"))))
		return false
	}
	return true
}

func setLink(w http.ResponseWriter, r *http.Request, l LinkControl) {
	var s linkSettings
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&s); err != nil {
		writeError(w, http.StatusBadRequest, "the body must be JSON like {\"rtt_ms\":80,\"loss_pct\":2}: "+err.Error())
		return
	}
	cur := l.LinkState()
	rtt, loss := cur.RTTms, cur.LossPct
	if s.RTTms != nil {
		rtt = *s.RTTms
	}
	if s.LossPct != nil {
		loss = *s.LossPct
	}
	if rtt < 0 || rtt > float64(MaxRTT.Milliseconds()) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("rtt_ms %v is out of range (use 0 to %d)", rtt, MaxRTT.Milliseconds()))
		return
	}
	if loss < 0 || loss > MaxLossPct {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("loss_pct %v is out of range (use 0 to %v)", loss, MaxLossPct))
		return
	}
	if err := l.SetLink(time.Duration(rtt*float64(time.Millisecond)), loss/100); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, l.LinkState())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"type": "error", "error": msg})
}
