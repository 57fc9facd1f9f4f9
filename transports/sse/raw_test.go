package sse_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wirelab/wirelab/chat"
)

// post does a plain HTTP POST and decodes the answer envelope.
func post(t *testing.T, url string, body string) chat.Envelope {
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
			t.Fatalf("POST %s: answer %q: %v", url, b, err)
		}
	}
	return env
}

func openSession(t *testing.T, base, user string) string {
	t.Helper()
	w := post(t, base+"/api/session?user="+user, "")
	if w.Type != chat.TypeWelcome || w.Session == "" {
		t.Fatalf("welcome %+v", w)
	}
	return w.Session
}

// rawGet sends a GET as curl would, on its own TCP connection, and returns the parsed response
// head with the raw connection's reader; the caller reads the body.
func rawGet(t *testing.T, base, path string, header ...string) (*http.Response, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: " + strings.TrimPrefix(base, "http://") + "\r\nUser-Agent: curl/8\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp, c
}

func wantHeader(t *testing.T, resp *http.Response, key, want string) {
	t.Helper()
	if got := resp.Header.Get(key); got != want {
		t.Errorf("%s: %q, want %q", key, got, want)
	}
}
