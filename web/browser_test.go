package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/internal/needtest"
	"github.com/wirelab/wirelab/lab"
	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/web"
)

// browserCtx is the one headless chromium every browser test shares (each page gets its own
// browser context: its own connection pool, like a separate profile); nil when none was found.
var (
	browserCtx  context.Context
	browserErr  error
	browserPath string
)

func TestMain(m *testing.M) {
	code := func() int {
		var stop func()
		browserCtx, stop, browserErr = startBrowser()
		if stop != nil {
			defer stop()
		}
		return m.Run()
	}()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func startBrowser() (context.Context, func(), error) {
	for _, p := range []string{os.Getenv("WIRELAB_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			browserPath = p
			break
		}
	}
	if browserPath == "" {
		return nil, nil, fmt.Errorf("no chromium found (apt-get install -y chromium, or set WIRELAB_CHROMIUM to the browser's path)")
	}
	dir, err := os.MkdirTemp("", "wirelab-chromium-")
	if err != nil {
		return nil, nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserPath),
		chromedp.UserDataDir(dir),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.WindowSize(1280, 720),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	stop := func() {
		bcancel()
		acancel()
		os.RemoveAll(dir)
	}
	if err := chromedp.Do(bctx); err != nil {
		stop()
		return nil, nil, fmt.Errorf("starting %s: %w", browserPath, err)
	}
	return bctx, stop, nil
}

// needBrowser skips the test without a browser, unless WIRELAB_REQUIRE names chromium.
func needBrowser(t *testing.T) {
	t.Helper()
	needtest.Need(t, "chromium", browserErr, "apt-get install -y chromium")
}

// startServer runs the chat server with the page, in-process, on loopback.
func startServer(t *testing.T, opt web.Options) string {
	t.Helper()
	return startServerWith(t, chat.Config{}, opt)
}

func startServerWith(t *testing.T, hub chat.Config, opt web.Options) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(server.Config{
		Hub:       hub,
		Transport: transports.ServerOptions{Logger: log},
		Web:       web.Handler(opt),
		Logger:    log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, pc, err := server.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln, pc) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		pc.Close()
	})
	return "http://" + ln.Addr().String()
}

// page is one browser tab in a browser context of its own.
type page struct {
	t    *testing.T
	name string
	ctx  context.Context
}

const waitFor = 20 * time.Second

func openPage(t *testing.T, name, base string, q url.Values) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	t.Cleanup(func() { cancel() })
	p := &page{t: t, name: name, ctx: ctx}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/?"+q.Encode())); err != nil {
		t.Fatalf("%s: opening the page: %v", name, err)
	}
	return p
}

// poll waits until the JavaScript expression is truthy and returns its value.
func poll[T any](p *page, what, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Poll[T](expr, chromedp.WithPollingInterval(30*time.Millisecond), chromedp.WithPollingTimeout(waitFor)))
	if err != nil {
		p.t.Fatalf("%s: waiting for %s: %v\nmessages: %v", p.name, what, err, p.messages())
	}
	return v
}

func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, expr, err)
	}
	return v
}

func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

// session waits for the page's session to be live and returns its id.
func (p *page) session() string {
	p.t.Helper()
	return poll[string](p, "the session id", `document.querySelector('[data-testid="session-id"]').textContent`)
}

type shown struct {
	From string `json:"from"`
	Text string `json:"text"`
	Seq  int    `json:"seq"`
}

func (p *page) messages() []shown {
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]shown](`Array.from(document.querySelectorAll('[data-testid="message"]'),
		e => ({from: e.dataset.from, text: e.dataset.text, seq: +e.dataset.seq}))`))
	if err != nil {
		return nil
	}
	return v
}

func (p *page) count(text string) int {
	n := 0
	for _, m := range p.messages() {
		if m.Text == text {
			n++
		}
	}
	return n
}

func jsString(s string) string { b, _ := json.Marshal(s); return string(b) }

// waitMessage waits until the page shows a message with this text.
func (p *page) waitMessage(text string) {
	p.t.Helper()
	poll[bool](p, "message "+jsString(text), `Array.from(document.querySelectorAll('[data-testid="message"]')).some(e => e.dataset.text === `+jsString(text)+`)`)
}

// say types into the page as a user would: the DM field (empty for a room message), the text,
// then Enter or a click on Send.
func (p *page) say(dmTo, text string, enter bool) {
	p.t.Helper()
	p.setValue("dm-to", dmTo)
	p.setValue("message-input", "")
	if enter {
		p.do(chromedp.SendKeys(`[data-testid="message-input"]`, text+"\r"))
		return
	}
	p.setValue("message-input", text)
	p.do(chromedp.Click(`[data-testid="send"]`))
}

// setValue sets an input's value as typing would, with input and change events.
func (p *page) setValue(testid, v string) {
	p.t.Helper()
	eval[bool](p, `(e => { e.value = `+jsString(v)+`; e.dispatchEvent(new Event("input", {bubbles: true}));
		e.dispatchEvent(new Event("change", {bubbles: true})); return true })(document.querySelector('[data-testid="`+testid+`"]'))`)
}

func (p *page) switchTo(transport string) {
	p.t.Helper()
	p.setValue("transport", transport)
}

func (p *page) requests() int {
	p.t.Helper()
	return eval[int](p, `+document.querySelector('[data-testid="stat-requests"]').textContent`)
}

// switchTarget is where each transport's test moves mid-chat; together they cover every
// transport as a target too.
var switchTarget = map[string]string{
	"shortpoll": "websocket", "longpoll": "wt-uni", "stream": "sse", "sse": "wt-datagram",
	"websocket": "longpoll", "wt-stream": "stream", "wt-uni": "shortpoll", "wt-datagram": "wt-stream",
	"auto": "sse",
}

// TestChatEveryTransport: for every transport, alice in two tabs (a1 in the room, a2 not) and
// bob in a third: a room message reaches only the room's members, a DM reaches both of alice's
// tabs exactly once, a transport switch in the middle of a burst loses and repeats nothing, and
// the live panel counts requests.
func TestChatEveryTransport(t *testing.T) {
	needBrowser(t)
	base := startServer(t, web.Options{})
	for _, tr := range allTransports {
		t.Run(tr, func(t *testing.T) { chatScenario(t, base, tr) })
	}
}

// TestChatThroughDemoLink runs the same scenario for every transport through the emulated link
// of lab demo (80 ms round trip, 2% loss each way): what a class sees.
func TestChatThroughDemoLink(t *testing.T) {
	needBrowser(t)
	if testing.Short() {
		t.Skip("short mode: the scenario over the lossy link takes a while")
	}
	base := startDemo(t)
	for _, tr := range allTransports {
		t.Run(tr, func(t *testing.T) { chatScenario(t, base, tr) })
	}
}

var allTransports = []string{"shortpoll", "longpoll", "stream", "sse", "websocket", "wt-stream", "wt-uni", "wt-datagram", "auto"}

func chatScenario(t *testing.T, base, tr string) {
	start := time.Now()
	alice, bob, room := "alice-"+tr, "bob-"+tr, "room-"+tr
	q := func(user, room string) url.Values {
		v := url.Values{"user": {user}, "transport": {tr}, "poll": {"150"}}
		if room != "" {
			v.Set("room", room)
		}
		return v
	}
	a1 := openPage(t, "alice tab 1", base, q(alice, room))
	a2 := openPage(t, "alice tab 2", base, q(alice, ""))
	b := openPage(t, "bob", base, q(bob, room))
	s1, s2 := a1.session(), a2.session()
	b.session()
	if s1 == s2 || len(s1) != 32 {
		t.Fatalf("alice's two tabs show sessions %q and %q: want two different 32-hex-digit ids", s1, s2)
	}

	// A room message reaches the room's members only.
	b.say("", "hello "+room, true)
	a1.waitMessage("hello " + room)
	b.waitMessage("hello " + room)

	// A DM reaches both of alice's tabs (and bob's copy), once each.
	b.say(alice, "psst "+alice, false)
	a1.waitMessage("psst " + alice)
	a2.waitMessage("psst " + alice)
	b.waitMessage("psst " + alice)
	if n := a2.count("hello " + room); n != 0 {
		t.Errorf("alice's second tab is not in %s but shows its message %d times", room, n)
	}

	// Switch a1's transport in the middle of a burst of room messages.
	to := switchTarget[tr]
	for i := 1; i <= 3; i++ {
		b.say("", fmt.Sprintf("burst %d", i), false)
	}
	a1.switchTo(to)
	for i := 4; i <= 6; i++ {
		b.say("", fmt.Sprintf("burst %d", i), false)
	}
	a1.waitMessage("burst 6")
	b.waitMessage("burst 6")
	// a DM after the switch proves the new transport carries everything that follows
	b.say(alice, "after the switch", false)
	a1.waitMessage("after the switch")
	a2.waitMessage("after the switch")

	for _, p := range []*page{a1, a2} {
		seqs := map[int]bool{}
		for _, m := range p.messages() {
			if seqs[m.Seq] {
				t.Errorf("%s shows seq %d twice", p.name, m.Seq)
			}
			seqs[m.Seq] = true
		}
		for _, text := range []string{"psst " + alice, "after the switch"} {
			if n := p.count(text); n != 1 {
				t.Errorf("%s shows %q %d times, want once", p.name, text, n)
			}
		}
	}
	for i := 1; i <= 6; i++ {
		text := fmt.Sprintf("burst %d", i)
		a1.waitMessage(text) // wt-uni and wt-datagram deliver out of order: a lost one comes later
		if n := a1.count(text); n != 1 {
			t.Errorf("alice tab 1 (%s -> %s) shows %q %d times, want once", tr, to, text, n)
		}
		if n := a2.count(text); n != 0 {
			t.Errorf("alice tab 2 is not in the room but shows %q %d times", text, n)
		}
	}
	if s := a1.session(); s != s1 {
		t.Errorf("the switch to %s changed the session (%q -> %q): want it resumed", to, s1, s)
	}

	// The live panel counts requests: each page made at least its connect, and a page
	// that sent made more.
	if n := a2.requests(); n < 1 {
		t.Errorf("alice tab 2's panel shows %d requests", n)
	}
	// Over HTTP every message bob sent was a POST; WebSocket and WebTransport send
	// on the connection they opened with one request.
	if tr == "auto" {
		// auto opened the session on long polling, then moved it (in this browser
		// WebTransport works, so to wt-uni)
		using := poll[string](b, "auto's upgrade", `(t => t.includes("wt-uni") && t)(document.querySelector(".tname").textContent)`)
		t.Logf("bob's page shows %q", using)
	} else if strings.HasPrefix(tr, "w") {
		if n := b.requests(); n != 1 {
			t.Errorf("bob's panel shows %d requests after he sent 9 messages over %s, want 1", n, tr)
		}
	} else {
		// the panel refreshes four times a second
		poll[bool](b, "at least 10 requests on bob's panel (a POST per message)",
			`+document.querySelector('[data-testid="stat-requests"]').textContent >= 10`)
	}
	if tr == "shortpoll" {
		n := a2.requests()
		poll[bool](a2, "more short polls", fmt.Sprintf(`+document.querySelector('[data-testid="stat-requests"]').textContent > %d`, n+2))
	}
	t.Logf("%s (switched to %s): %v", tr, to, time.Since(start).Round(time.Millisecond))
}

// startDemo runs lab demo's setup (the server behind an emulated link of 80 ms round trip
// and 2% loss, reached through a relay on loopback) and returns the relay's URL.
func startDemo(t *testing.T) string { return startDemoLink(t, false) }

// startDemoLink is startDemo, with every UDP packet dropped if blockUDP (no WebTransport).
func startDemoLink(t *testing.T, blockUDP bool) string {
	t.Helper()
	d, err := lab.StartDemo(lab.DemoConfig{RTT: 80 * time.Millisecond, Loss: 0.02, BlockUDP: blockUDP, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("closing the demo: %v", err)
		}
	})
	return "http://" + d.Addr()
}

// TestScreenshotCompare takes a picture of the demo in use — the server behind the emulated
// link, websocket and short polling side by side, the same messages through both — at
// 1280x720, into out/web-compare.png.
func TestScreenshotCompare(t *testing.T) {
	needBrowser(t)
	base := startDemo(t)
	q := url.Values{"compare": {"websocket,shortpoll"}, "user": {"teacher"}, "room": {"class"}}
	p := openPage(t, "compare", base, q)
	p.do(chromedp.EmulateViewport(1280, 720))
	p.session()
	bob := openPage(t, "bob", base, url.Values{"user": {"bob"}, "transport": {"websocket"}, "room": {"class"}})
	bob.session()
	p.say("", "Good morning! Watch the latency column on each side.", false)
	for _, text := range []string{"hi teacher", "which one is faster?", "the short poll only asks every 2 s"} {
		bob.say("", text, false)
		p.waitMessage(text)
	}
	p.say("bob", "a DM goes to every tab of bob", false)
	p.setValue("dm-to", "")
	p.do(chromedp.Click(`#ticker`))
	poll[bool](p, "ticks in both columns", `Array.from(document.querySelectorAll('.client')).every(c =>
		c.querySelectorAll('[data-testid="message"][data-text^="tick"]').length >= 4)`)
	p.do(chromedp.Click(`#ticker`))
	img, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if cfg.Width != 1280 || cfg.Height != 720 {
		t.Errorf("screenshot is %dx%d, want 1280x720", cfg.Width, cfg.Height)
	}
	if _, err := png.Decode(bytes.NewReader(img)); err != nil {
		t.Fatalf("the screenshot does not decode: %v", err)
	}
	out := filepath.Join("..", "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(out, "web-compare.png")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", path, len(img))
}

// TestDemoSliders moves the page's delay and loss sliders and checks the emulated link follows;
// it also checks the page fits 1280x720 without scrolling sideways, in large text too, and
// saves a picture of one chat tab (out/web-chat.png).
func TestDemoSliders(t *testing.T) {
	needBrowser(t)
	base := startDemo(t)
	p := openPage(t, "alice", base, url.Values{"user": {"alice"}, "transport": {"wt-uni"}})
	p.do(chromedp.EmulateViewport(1280, 720))
	p.session()
	poll[bool](p, "the link controls", `!document.getElementById("linkbox").hidden && document.getElementById("rtt").value === "80"`)
	eval[bool](p, `(e => { e.value = "300"; e.dispatchEvent(new Event("input", {bubbles: true})); return true })(document.getElementById("rtt"))`)
	eval[bool](p, `(e => { e.value = "10"; e.dispatchEvent(new Event("input", {bubbles: true})); return true })(document.getElementById("loss"))`)
	got := poll[string](p, "the link to change", `fetch("/api/demo/link").then(r => r.json()).then(s => s.rtt_ms === 300 && s.loss_pct === 10 && JSON.stringify(s))`)
	t.Logf("link after the sliders: %s", got)
	p.say("", "hello over a slower link", true)
	p.waitMessage("hello over a slower link")
	for _, big := range []bool{false, true} {
		if big {
			p.do(chromedp.Click(`#big`))
			poll[bool](p, "large text", `document.documentElement.classList.contains("big") && getComputedStyle(document.querySelector(".msgs li")).fontSize === "20px"`)
		}
		if w := eval[int](p, `document.documentElement.scrollWidth`); w > 1280 {
			t.Errorf("at 1280x720 (large text %v) the page is %d px wide", big, w)
		}
	}
	p.do(chromedp.Click(`#big`))
	poll[bool](p, "the panel to count the message", `document.querySelector(".s-rate").textContent !== "0.0"`)
	img, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join("..", "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "out", "web-chat.png"), img, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDemoLinkRefusesOtherSites: a page of another site (another origin: another port on
// loopback) does what a CSRF attack on the teacher's demo would — a text/plain POST, which needs
// no CORS preflight, and a JSON one, which does — and the link stays as it was. (TestDemoSliders
// shows the demo's own page still moves it.)
func TestDemoLinkRefusesOtherSites(t *testing.T) {
	needBrowser(t)
	base := startDemo(t)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!doctype html><title>another site</title><p>nothing to see")
	}))
	defer other.Close()
	p := openPage(t, "another site", other.URL, url.Values{})
	// Each fetch settles once the demo has answered it (the no-cors one with an answer the page
	// may not read; the JSON one when its preflight is refused).
	got := poll[string](p, "the demo to answer both requests", fmt.Sprintf(`(window.attack ||= Promise.allSettled([
		fetch(%[1]s, {method: "POST", mode: "no-cors", body: '{"rtt_ms":1500,"loss_pct":50}'}),
		fetch(%[1]s, {method: "POST", headers: {"Content-Type": "application/json"}, body: '{"rtt_ms":1500,"loss_pct":50}'}),
	]).then(r => window.settled = r.map(x => x.status).join(" "))) && window.settled`, jsString(base+"/api/demo/link")))
	t.Logf("the other site's requests: %s", got)
	defer http.DefaultClient.CloseIdleConnections()
	resp, err := http.Get(base + "/api/demo/link")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st web.LinkState
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.RTTms != 80 || st.LossPct != 2 {
		t.Errorf("another site's page changed the link to %v ms, %v%%", st.RTTms, st.LossPct)
	}
}

// TestHeartbeat: on a server that pings every 300 ms and cuts a connection silent for 1 s
// more, every persistent transport's page answers each ping and keeps its one connection
// through seven pings (2.1 s: a page that did not answer would have been cut).
func TestHeartbeat(t *testing.T) {
	needBrowser(t)
	if testing.Short() {
		t.Skip("short mode: waits for seven heartbeats per transport")
	}
	base := startServerWith(t, chat.Config{Heartbeat: 300 * time.Millisecond, HeartbeatTimeout: time.Second}, web.Options{})
	for _, tr := range []string{"stream", "sse", "websocket", "wt-stream", "wt-uni", "wt-datagram"} {
		t.Run(tr, func(t *testing.T) {
			p := openPage(t, tr, base, url.Values{"user": {"hb-" + tr}, "transport": {tr}})
			p.session()
			poll[bool](p, "seven pongs", `clients[0].stats.pongs >= 7`)
			if n := eval[int](p, `clients[0].stats.connects`); n != 1 {
				t.Errorf("%s connected %d times while answering pings, want once (a missed pong is cut with heartbeat_timeout)", tr, n)
			}
		})
	}
}

// TestRoomByTyping: two users who type a room id into the room field (no query parameter)
// are both in it once the chip stops being pending; a message to it reaches both, and a third
// tab that did not join gets nothing.
func TestRoomByTyping(t *testing.T) {
	needBrowser(t)
	base := startServer(t, web.Options{})
	a := openPage(t, "ann", base, url.Values{"user": {"ann"}, "transport": {"websocket"}})
	c := openPage(t, "cy", base, url.Values{"user": {"cy"}, "transport": {"sse"}})
	o := openPage(t, "outsider", base, url.Values{"user": {"outsider"}, "transport": {"longpoll"}})
	for _, p := range []*page{a, c, o} {
		p.session()
	}
	const room = "typed-room"
	for _, p := range []*page{a, c} {
		p.setValue("room", room)
		poll[bool](p, "the join", `!!document.querySelector('.chip[data-room="`+room+`"]:not(.pending)')`)
	}
	c.say("", "in the typed room", false)
	a.waitMessage("in the typed room")
	c.waitMessage("in the typed room")
	o.say("", "lobby after", false) // lobby: everyone gets it, after the room message
	a.waitMessage("lobby after")
	o.waitMessage("lobby after")
	if n := o.count("in the typed room"); n != 0 {
		t.Errorf("a tab outside %s shows its message %d times", room, n)
	}
}

// TestAutoWithoutUDP: with UDP blocked on the link, auto gives up on wt-uni and moves the
// session from long polling to WebSocket, and the chat works throughout.
func TestAutoWithoutUDP(t *testing.T) {
	needBrowser(t)
	base := startDemoLink(t, true)
	p := openPage(t, "auto", base, url.Values{"user": {"walled"}, "transport": {"auto"}})
	p.session()
	p.say("", "before the upgrade", false)
	p.waitMessage("before the upgrade")
	poll[bool](p, "auto to settle on websocket", `document.querySelector(".tname").textContent.includes("websocket")`)
	p.say("", "after the upgrade", false)
	p.waitMessage("after the upgrade")
	if n := p.count("before the upgrade"); n != 1 {
		t.Errorf("the message sent before the upgrade is shown %d times", n)
	}
}

// TestSwitchThroughEveryTransport: one tab moves through every transport while another keeps
// sending to its room; every message shows exactly once, in one session.
func TestSwitchThroughEveryTransport(t *testing.T) {
	needBrowser(t)
	base := startServer(t, web.Options{})
	a := openPage(t, "switcher", base, url.Values{"user": {"switcher"}, "transport": {"websocket"}, "room": {"tour"}, "poll": {"150"}})
	b := openPage(t, "sender", base, url.Values{"user": {"sender"}, "transport": {"websocket"}, "room": {"tour"}})
	sid := a.session()
	b.session()
	n := 0
	for _, tr := range append(allTransports[1:], "shortpoll", "wt-datagram", "websocket") {
		a.switchTo(tr)
		for range 2 {
			n++
			b.say("", fmt.Sprintf("tour %d", n), false)
		}
	}
	a.waitMessage(fmt.Sprintf("tour %d", n))
	for i := 1; i <= n; i++ {
		a.waitMessage(fmt.Sprintf("tour %d", i))
		if c := a.count(fmt.Sprintf("tour %d", i)); c != 1 {
			t.Errorf("tour %d shown %d times", i, c)
		}
	}
	if s := a.session(); s != sid {
		t.Errorf("the session changed during the tour: %q -> %q", sid, s)
	}
}
