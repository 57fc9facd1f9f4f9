package chat

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"
)

// FuzzParseEnvelope: ParseEnvelope never panics; its errors are *Error with a known code; an
// envelope it accepts encodes with Marshal to bytes it accepts again as the same envelope.
func FuzzParseEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"type":"join","room":"r1","cid":"c"}`, `{"type":"leave","room":"r"}`,
		`{"type":"say","room":"lobby","text":"hi","cid":12}`, `{"type":"dm","to":"bob","text":"hi","cid":"x"}`,
		`{"type":"who","room":"lobby"}`, `{"type":"pong"}`, `{"type":"ack","seq":7}`,
		`{"type":"say","room":"r","text":"\u2028<>&\"","cid":-1.5e3}`, `{"TYPE":"pong","Seq":1}`,
		`{"type":"say","room":"r","cid":"c"`, `[1]`, `null`, `{"cid":null}`, `{"type":"x","cid":"c"}`,
		"{\"type\":\"say\",\"room\":\"r\",\"text\":\"\xff\",\"cid\":\"c\"}", `{"members":["a"],"first":3}`,
	} {
		f.Add([]byte(s), 256)
	}
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		lim := Limits{MaxEnvelope: 1 + abs(max)%4096}
		env, err := ParseEnvelope(b, lim)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || !knownCodes[ce.Code] {
				t.Fatalf("error %v (%T) is not a *chat.Error with a known code", err, err)
			}
			// The cid carried back must encode as valid JSON.
			e := ErrorEnvelope(env.CID, err)
			if !json.Valid(Marshal(&e)) {
				t.Fatalf("the error envelope does not encode as JSON: %q", Marshal(&e))
			}
			return
		}
		out := Marshal(&env)
		again, err := ParseEnvelope(out, Limits{MaxEnvelope: 1 << 20, MaxText: lim.withDefaults().MaxText})
		if err != nil {
			t.Fatalf("%q parsed, but its re-encoding %q does not: %v", b, out, err)
		}
		if !reflect.DeepEqual(env, again) {
			t.Fatalf("%q parsed as %+v; re-encoded %q parsed as %+v", b, env, out, again)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		if n = -n; n < 0 {
			return 0
		}
	}
	return n
}

// FuzzCID: a CID read from JSON is written back as the same token; StringCID of any text reads
// back as that text.
func FuzzCID(f *testing.F) {
	for _, s := range []string{`"abc"`, `12`, `-1.5e3`, `"a\"b\u00e9"`, `""`, `true`, `{}`, `"\ud800"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var c CID
		if err := json.Unmarshal([]byte(s), &c); err == nil {
			// Echoed exactly as it came (json.Marshal would HTML-escape; Marshal does not).
			want := `{"type":"pong","cid":` + string(c) + `}`
			if b := Marshal(&Envelope{Type: TypePong, CID: c}); string(b) != want {
				t.Fatalf("CID %q from %q is written as %s", c, s, b)
			}
			env := Envelope{Type: TypePong, CID: c}
			got, err := ParseEnvelope(Marshal(&env), Limits{})
			if err != nil || got.CID != c {
				t.Fatalf("an envelope with CID %q: %+v, %v", c, got, err)
			}
		}
		c = StringCID(s)
		var back string
		if err := json.Unmarshal([]byte(c), &back); err != nil {
			t.Fatalf("StringCID(%q) = %s is not a JSON string: %v", s, c, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("StringCID(%q) reads back as %q", s, back)
		}
		got, err := ParseEnvelope(Marshal(&Envelope{Type: TypePong, CID: c}), Limits{})
		if len(c) <= 130 && (err != nil || got.CID != c) {
			t.Fatalf("StringCID(%q) does not survive Marshal and ParseEnvelope: %q, %v", s, got.CID, err)
		}
	})
}
