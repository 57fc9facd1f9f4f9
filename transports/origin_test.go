package transports

import (
	"net/http/httptest"
	"testing"
)

func TestCheckOrigin(t *testing.T) {
	s := &Server{opt: ServerOptions{AllowOrigins: []string{"https://ok.example/"}}}
	for _, addr := range []string{"127.0.0.1:8080", "chat.example:9090", "[::1]:7070"} {
		if err := s.AddAddr(addr); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddAddr("no port"); err == nil {
		t.Error("AddAddr took an address without a port")
	}
	for _, tc := range []struct {
		name, host, origin string
		want               bool
	}{
		{"no origin (not a browser)", "127.0.0.1:8080", "", true},
		{"the listener's address", "127.0.0.1:8080", "http://127.0.0.1:8080", true},
		{"localhost for a loopback listener", "localhost:8080", "http://localhost:8080", true},
		{"https on the same port", "127.0.0.1:8080", "https://127.0.0.1:8080", true},
		{"a configured name", "chat.example:9090", "http://CHAT.example:9090", true},
		{"IPv6 loopback", "[::1]:7070", "http://[::1]:7070", true},
		{"localhost for the IPv6 listener", "localhost:7070", "http://localhost:7070", true},
		{"an allowed origin", "127.0.0.1:8080", "https://ok.example", true},
		{"another port", "127.0.0.1:8080", "http://127.0.0.1:9999", false},
		{"the name on another port", "chat.example:9090", "http://chat.example:8080", false},
		{"the default port", "127.0.0.1:8080", "http://127.0.0.1", false},
		{"DNS rebinding: Host and Origin agree on the attacker's name", "evil.example:8080", "http://evil.example:8080", false},
		{"a foreign origin", "127.0.0.1:8080", "https://evil.example", false},
		{"a sandboxed page", "127.0.0.1:8080", "null", false},
		{"another scheme", "127.0.0.1:8080", "ftp://127.0.0.1:8080", false},
		{"not a URL", "127.0.0.1:8080", "::bad", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://"+tc.host+"/ws", nil)
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if got := s.CheckOrigin(r); got != tc.want {
				t.Errorf("Host %s, Origin %q: CheckOrigin = %v, want %v", tc.host, tc.origin, got, tc.want)
			}
		})
	}
	// An unspecified address means every interface: loopback is one of them.
	if err := s.AddAddr("0.0.0.0:6060"); err != nil {
		t.Fatal(err)
	}
	for _, origin := range []string{"http://127.0.0.1:6060", "http://localhost:6060"} {
		r := httptest.NewRequest("GET", "http://evil.example:6060/ws", nil)
		r.Header.Set("Origin", origin)
		if !s.CheckOrigin(r) {
			t.Errorf("a server on 0.0.0.0:6060 refused %s", origin)
		}
	}
	s.opt.AllowOrigins = []string{"*"}
	r := httptest.NewRequest("GET", "http://srv.example/ws", nil)
	r.Header.Set("Origin", "https://any.example")
	if !s.CheckOrigin(r) {
		t.Error(`"*" refused an origin`)
	}
}
