package chat

import (
	"strings"
	"testing"
	"time"
)

func TestSigner(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := NewSigner("secret")
	tok := s.Token("alice.b", time.Hour, now)
	other := NewSigner("another secret").Token("alice.b", time.Hour, now)
	i := strings.LastIndexByte(tok, '.')
	flipped := tok[:i+1] + strings.Map(func(r rune) rune {
		if r == 'A' {
			return 'B'
		}
		return 'A'
	}, tok[i+1:])
	for _, tc := range []struct {
		name, user, token string
		at                time.Time
		ok                bool
	}{
		{"valid", "alice.b", tok, now, true},
		{"valid until expiry", "alice.b", tok, now.Add(time.Hour), true},
		{"expired", "alice.b", tok, now.Add(time.Hour + time.Second), false},
		{"wrong user", "alice", tok, now, false},
		{"wrong user with a dot", "alice.b.c", tok, now, false},
		{"bad mac", "alice.b", flipped, now, false},
		{"other secret", "alice.b", other, now, false},
		{"no token", "alice.b", "", now, false},
		{"no dot", "alice.b", "garbage", now, false},
		{"mac only", "alice.b", "." + tok[i+1:], now, false},
		{"expiry not a number", "alice.b", "alice.b.x." + tok[i+1:], now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Verify(tc.user, tc.token, tc.at)
			if tc.ok != (err == nil) {
				t.Fatalf("Verify = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && code(err) != CodeUnauthorized {
				t.Errorf("code %q, want unauthorized", code(err))
			}
		})
	}
	var open *Signer
	if NewSigner("") != nil {
		t.Error("NewSigner(\"\") is not nil (an open server)")
	}
	if err := open.Verify("anyone", "", now); err != nil {
		t.Errorf("a nil Signer refused: %v", err)
	}
}
