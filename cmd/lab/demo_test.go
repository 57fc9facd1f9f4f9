package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestDemo runs lab demo in-process: the first line is serve's, the page and the link
// endpoint answer through the relay and the emulated link, the sliders' endpoint changes the
// link, and cancelling (Ctrl-C) shuts everything down.
func TestDemo(t *testing.T) {
	defer goleak.VerifyNone(t)
	defer http.DefaultClient.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr strings.Builder
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, []string{"--addr", "127.0.0.1:0", "--rtt", "20ms", "--loss", "0%"}, pw, &stderr)
		pw.Close()
	}()
	br := bufio.NewReader(pr)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the first line: %v (stderr: %s)", err, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, br) }()
	m := listenLine.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil || m[1] != m[2] {
		t.Fatalf("first line %q does not match %v with one port", line, listenLine)
	}
	base := "http://" + m[1]
	get := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if s, ok := v.(*string); ok {
			b, _ := io.ReadAll(resp.Body)
			*s = string(b)
			return
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	var page string
	get("/", &page)
	if !strings.Contains(page, `data-testid="message-input"`) {
		t.Errorf("GET / is not the chat page")
	}
	var cfg struct {
		PollMS int  `json:"poll_ms"`
		Demo   bool `json:"demo"`
	}
	get("/api/config", &cfg)
	if cfg.PollMS != 2000 || !cfg.Demo {
		t.Errorf("config %+v, want 2 s short polls and the demo controls", cfg)
	}
	var st struct {
		RTT  float64 `json:"rtt_ms"`
		Loss float64 `json:"loss_pct"`
		Up   struct{ Packets int }
	}
	get("/api/demo/link", &st)
	if st.RTT != 20 || st.Loss != 0 || st.Up.Packets == 0 {
		t.Errorf("link %+v: want 20 ms, 0%% and packets counted (these requests crossed it)", st)
	}
	resp, err := http.Post(base+"/api/demo/link", "application/json", strings.NewReader(`{"rtt_ms":120,"loss_pct":5}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	get("/api/demo/link", &st)
	if st.RTT != 120 || st.Loss != 5 {
		t.Errorf("after POST the link is %+v, want 120 ms and 5%%", st)
	}
	resp, err = http.Post(base+"/api/demo/link", "application/json", strings.NewReader(`{"loss_pct":150}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("150%% loss answered %s, want 400", resp.Status)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("lab demo after cancel: %v\nstderr: %s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("lab demo did not stop within 20 s of cancel")
	}
}

func TestDemoFlags(t *testing.T) {
	for _, tc := range []struct{ name, flag, value, want string }{
		{"loss without percent", "--loss", "2", "try 2%"},
		{"rtt without unit", "--rtt", "80", "try 80ms"},
		{"rtt too long", "--rtt", "5s", "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr strings.Builder
			err := runDemo(context.Background(), []string{tc.flag, tc.value}, io.Discard, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s %s: error %v, want one saying %q", tc.flag, tc.value, err, tc.want)
			}
		})
	}
}
