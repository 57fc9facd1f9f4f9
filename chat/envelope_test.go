package chat

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// knownCodes are every error code the package defines.
var knownCodes = map[string]bool{
	CodeBadJSON: true, CodeTooLarge: true, CodeUnknownType: true, CodeMissingField: true,
	CodeBadRoom: true, CodeBadUser: true, CodeNotMember: true, CodeTooManyRooms: true,
	CodeTextTooLong: true, CodeUnknownUser: true, CodeUnknownSession: true, CodeUnauthorized: true,
	CodeGap: true, CodeBadAfter: true, CodeSlowConsumer: true, CodeReplaced: true, CodeHeartbeat: true,
	CodeExpired: true, CodeShutdown: true, CodeUnavailable: true,
}

func TestParseEnvelope(t *testing.T) {
	lim := Limits{MaxEnvelope: 200, MaxText: 20}
	long := strings.Repeat("a", 65)
	tests := []struct {
		name string
		in   string
		code string // "" means valid
		cid  CID    // the cid the result must carry
		want Envelope
	}{
		{name: "join", in: `{"type":"join","room":"r1","cid":"c"}`, cid: `"c"`, want: Envelope{Type: TypeJoin, Room: "r1", CID: `"c"`}},
		{name: "join without cid", in: `{"type":"join","room":"r1"}`, want: Envelope{Type: TypeJoin, Room: "r1"}},
		{name: "leave", in: `{"type":"leave","room":"r.1-x_y"}`, want: Envelope{Type: TypeLeave, Room: "r.1-x_y"}},
		{name: "say", in: `{"type":"say","room":"lobby","text":"hi","cid":12}`, cid: `12`, want: Envelope{Type: TypeSay, Room: "lobby", Text: "hi", CID: `12`}},
		{name: "dm", in: `{"type":"dm","to":"bob","text":"hi","cid":"x"}`, cid: `"x"`, want: Envelope{Type: TypeDM, To: "bob", Text: "hi", CID: `"x"`}},
		{name: "who", in: `{"type":"who","room":"lobby"}`, want: Envelope{Type: TypeWho, Room: "lobby"}},
		{name: "pong", in: `{"type":"pong"}`, want: Envelope{Type: TypePong}},
		{name: "ping", in: `{"type":"ping"}`, want: Envelope{Type: TypePing}},
		{name: "ack", in: `{"type":"ack","seq":7}`, want: Envelope{Type: TypeAck, Seq: 7}},
		{name: "unknown fields ignored", in: `{"type":"pong","extra":[1,{"a":2}]}`, want: Envelope{Type: TypePong}},
		{name: "whitespace", in: " {\"type\" : \"pong\"}\n", want: Envelope{Type: TypePong}},
		{name: "text at MaxText", in: `{"type":"say","room":"r","text":"` + strings.Repeat("t", 20) + `","cid":"c"}`, cid: `"c"`,
			want: Envelope{Type: TypeSay, Room: "r", Text: strings.Repeat("t", 20), CID: `"c"`}},

		{name: "not json", in: `hello`, code: CodeBadJSON},
		{name: "truncated", in: `{"type":"say","room":"r","cid":"c"`, code: CodeBadJSON},
		{name: "array", in: `[1,2]`, code: CodeBadJSON},
		{name: "empty", in: ``, code: CodeBadJSON},
		{name: "wrong field type keeps cid", in: `{"type":"say","room":"r","text":"x","cid":"c","seq":"x"}`, code: CodeBadJSON, cid: `"c"`},
		{name: "cid of wrong type", in: `{"type":"say","room":"r","text":"x","cid":true}`, code: CodeBadJSON},
		{name: "cid null", in: `{"type":"pong","cid":null}`, code: CodeBadJSON},
		{name: "cid too long", in: `{"type":"pong","cid":"` + strings.Repeat("c", 129) + `"}`, code: CodeBadJSON},
		{name: "too large keeps cid", in: `{"type":"say","room":"r","cid":"big","text":"` + strings.Repeat("x", 200) + `"}`, code: CodeTooLarge, cid: `"big"`},
		{name: "too large garbage", in: strings.Repeat("x", 201), code: CodeTooLarge},
		{name: "no type", in: `{"room":"r","cid":"c"}`, code: CodeMissingField, cid: `"c"`},
		{name: "unknown type", in: `{"type":"shout","cid":"c"}`, code: CodeUnknownType, cid: `"c"`},
		{name: "server type from client", in: `{"type":"welcome"}`, code: CodeUnknownType},
		{name: "join without room", in: `{"type":"join"}`, code: CodeMissingField},
		{name: "who without room", in: `{"type":"who"}`, code: CodeMissingField},
		{name: "bad room", in: `{"type":"join","room":"a b","cid":"c"}`, code: CodeBadRoom, cid: `"c"`},
		{name: "room too long", in: `{"type":"leave","room":"` + long + `"}`, code: CodeBadRoom},
		{name: "say without room", in: `{"type":"say","text":"x","cid":"c"}`, code: CodeMissingField, cid: `"c"`},
		{name: "say bad room", in: `{"type":"say","room":"a/b","text":"x","cid":"c"}`, code: CodeBadRoom, cid: `"c"`},
		{name: "say without cid", in: `{"type":"say","room":"r","text":"x"}`, code: CodeMissingField},
		{name: "say without text", in: `{"type":"say","room":"r","cid":"c"}`, code: CodeMissingField, cid: `"c"`},
		{name: "text too long", in: `{"type":"say","room":"r","text":"` + strings.Repeat("t", 21) + `","cid":"c"}`, code: CodeTextTooLong, cid: `"c"`},
		{name: "dm without to", in: `{"type":"dm","text":"x","cid":"c"}`, code: CodeMissingField, cid: `"c"`},
		{name: "dm bad user", in: `{"type":"dm","to":"b@b","text":"x","cid":"c"}`, code: CodeBadUser, cid: `"c"`},
		{name: "dm without text", in: `{"type":"dm","to":"bob","cid":"c"}`, code: CodeMissingField, cid: `"c"`},
		{name: "ack without seq", in: `{"type":"ack"}`, code: CodeMissingField},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, err := ParseEnvelope([]byte(tc.in), lim)
			if env.CID != tc.cid {
				t.Errorf("cid = %q, want %q", env.CID, tc.cid)
			}
			if tc.code == "" {
				if err != nil {
					t.Fatalf("ParseEnvelope: %v", err)
				}
				if !reflect.DeepEqual(env, tc.want) {
					t.Errorf("got %+v, want %+v", env, tc.want)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T), want a *chat.Error with code %s", err, err, tc.code)
			}
			if ce.Code != tc.code {
				t.Errorf("code %s (%s), want %s", ce.Code, ce.Text, tc.code)
			}
			if ce.Text == "" {
				t.Error("the error has no text")
			}
			e := ErrorEnvelope(env.CID, err)
			if e.Type != TypeError || e.Code != tc.code || e.CID != tc.cid {
				t.Errorf("ErrorEnvelope = %+v", e)
			}
		})
	}
}

func TestLimitsDefaults(t *testing.T) {
	var l Limits
	if got := l.FrameLimit(); got != 16*64<<10 {
		t.Errorf("FrameLimit of the zero Limits = %d, want %d", got, 16*64<<10)
	}
	d := l.withDefaults()
	if d.MaxEnvelope != 64<<10 || d.MaxText != 64<<10 || d.MaxRooms != 100 {
		t.Errorf("defaults = %+v", d)
	}
	// Exactly MaxEnvelope is accepted, one more is too large.
	env := Envelope{Type: TypeSay, Room: "r", CID: StringCID("c"), Text: "x"}
	env.Text = strings.Repeat("x", 300-len(Marshal(&env))+1)
	b := Marshal(&env)
	if len(b) != 300 {
		t.Fatalf("built %d bytes", len(b))
	}
	if _, err := ParseEnvelope(b, Limits{MaxEnvelope: 300}); err != nil {
		t.Errorf("an envelope of exactly MaxEnvelope: %v", err)
	}
	if _, err := ParseEnvelope(b, Limits{MaxEnvelope: 299}); err == nil || err.(*Error).Code != CodeTooLarge {
		t.Errorf("an envelope one byte over MaxEnvelope: %v, want too_large", err)
	}
}

func TestValidName(t *testing.T) {
	for s, want := range map[string]bool{
		"a": true, "lobby": true, "A-Z_0.9": true, strings.Repeat("x", 64): true,
		"": false, strings.Repeat("x", 65): false, "a b": false, "ä": false, "a/b": false, "a\n": false,
	} {
		if ValidName(s) != want {
			t.Errorf("ValidName(%q) = %v, want %v", s, !want, want)
		}
	}
}

func TestCID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		back string
	}{
		{`"abc"`, true, `"abc"`},
		{`123`, true, `123`},
		{`-1.5e3`, true, `-1.5e3`},
		{`"a\"b"`, true, `"a\"b"`},
		{`""`, true, `""`},
		{`true`, false, ""},
		{`null`, false, ""},
		{`{}`, false, ""},
		{`"` + strings.Repeat("x", 128) + `"`, true, `"` + strings.Repeat("x", 128) + `"`},
		{`"` + strings.Repeat("x", 129) + `"`, false, ""},
	} {
		var c CID
		err := json.Unmarshal([]byte(tc.in), &c)
		if (err == nil) != tc.ok {
			t.Errorf("Unmarshal(%s): err %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		b, err := json.Marshal(c)
		if err != nil || string(b) != tc.back {
			t.Errorf("Marshal(CID %s) = %s, %v; want %s", tc.in, b, err, tc.back)
		}
	}
	if got := StringCID(`a"b`); got != `"a\"b"` {
		t.Errorf("StringCID = %s", got)
	}
	// A CID built from a plain Go string is written as a JSON string, not as broken JSON.
	env := Envelope{Type: TypeOK, CID: "plain"}
	if got := string(Marshal(&env)); got != `{"type":"ok","cid":"plain"}` {
		t.Errorf("Marshal with CID(\"plain\") = %s", got)
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	envs := []Envelope{
		{Type: TypeMsg, ID: "n-1", Room: "lobby", From: "alice", Text: `he said "<hi>" & left` + "\n\u2028", TS: 1700000000000000000},
		{Type: TypeMsg, ID: "n-2", To: "bob", From: "alice", Text: "dm", TS: 1},
		{Type: TypePresence, Room: "r", User: "u", Event: "join"},
		{Type: TypePresence, Room: "r", Members: []string{"a", "b"}},
		{Type: TypeOK, CID: StringCID("c1"), ID: "n-3"},
		{Type: TypeOK, CID: `42`},
		{Type: TypePing},
	}
	for _, env := range envs {
		p := NewPayload(env)
		if p.Type() != env.Type {
			t.Errorf("Type() = %q, want %q", p.Type(), env.Type)
		}
		if p.Size() != len(p.Bytes()) {
			t.Errorf("Size() = %d, len(Bytes()) = %d", p.Size(), len(p.Bytes()))
		}
		for _, seq := range []uint64{1, 9, 18446744073709551615} {
			b := Entry{Seq: seq, P: p}.AppendJSON([]byte("prefix"))
			if !strings.HasPrefix(string(b), "prefix") {
				t.Fatalf("AppendJSON dropped what was in the buffer: %s", b)
			}
			var got Envelope
			if err := json.Unmarshal(b[len("prefix"):], &got); err != nil {
				t.Fatalf("AppendJSON wrote invalid JSON %s: %v", b, err)
			}
			want := env
			want.Seq = seq
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip of %+v with seq %d: got %+v", env, seq, got)
			}
			if e := (Entry{Seq: seq, P: p}).Envelope(); !reflect.DeepEqual(e, want) {
				t.Errorf("Entry.Envelope = %+v, want %+v", e, want)
			}
		}
		// A broker hands the bytes back: PayloadFromBytes gives the same envelope.
		q := PayloadFromBytes(append([]byte(nil), p.Bytes()...))
		if a, b := string(Entry{Seq: 3, P: p}.AppendJSON(nil)), string(Entry{Seq: 3, P: q}.AppendJSON(nil)); a != b {
			t.Errorf("PayloadFromBytes: %s, want %s", b, a)
		}
	}
	// The seq given to NewPayload is ignored: only the entry's counts.
	p := NewPayload(Envelope{Type: TypeMsg, Seq: 99, ID: "x"})
	if got := string(Entry{Seq: 5, P: p}.AppendJSON(nil)); got != `{"type":"msg","seq":5,"id":"x"}` {
		t.Errorf("AppendJSON = %s", got)
	}
}

func TestAppendJSONAllocs(t *testing.T) {
	p := NewPayload(Envelope{Type: TypeMsg, ID: "n-1", Room: "lobby", From: "alice", Text: strings.Repeat("x", 200), TS: 1})
	buf := make([]byte, 0, 1024)
	seq := uint64(0)
	if n := testing.AllocsPerRun(100, func() {
		seq++
		buf = Entry{Seq: seq, P: p}.AppendJSON(buf[:0])
	}); n != 0 {
		t.Errorf("AppendJSON allocates %v times per call, want 0", n)
	}
}

func TestErrorEnvelope(t *testing.T) {
	e := ErrorEnvelope(`"c"`, errors.New("boom"))
	if e.Code != CodeUnavailable || e.Error != "boom" || e.CID != `"c"` {
		t.Errorf("a plain error: %+v", e)
	}
	e = ErrorEnvelope("", Errorf(CodeGap, "gone %d", 3))
	if e.Code != CodeGap || e.Error != "gone 3" {
		t.Errorf("a *chat.Error: %+v", e)
	}
	if err := e.AsError(); err == nil || err.Error() != "gap: gone 3" {
		t.Errorf("AsError = %v", err)
	}
	ok := Envelope{Type: TypeOK}
	if ok.AsError() != nil {
		t.Error("AsError of an ok is not nil")
	}
}

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"short", "alice", "alice"},
		{"exactly the limit", strings.Repeat("a", ClipLen), strings.Repeat("a", ClipLen)},
		{"one over", strings.Repeat("a", ClipLen+1), strings.Repeat("a", ClipLen) + "..."},
		{"huge", strings.Repeat("b", 900<<10), strings.Repeat("b", ClipLen) + "..."},
		{"multi-byte characters stay whole", strings.Repeat("é", ClipLen+3), strings.Repeat("é", ClipLen) + "..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Clip(tc.in); got != tc.want {
				t.Errorf("Clip(%d bytes) = %q (%d bytes), want %d bytes", len(tc.in), got, len(got), len(tc.want))
			}
		})
	}
	// What the parser repeats is clipped: a room name of 900 KB comes back as a short error.
	_, err := ParseEnvelope([]byte(`{"type":"join","room":"`+strings.Repeat("r", 60<<10)+`"}`), Limits{}.withDefaults())
	if code(err) != CodeBadRoom || len(err.Error()) > ClipLen+100 {
		t.Errorf("a huge room name: %d bytes of error (%.80s...)", len(err.Error()), err)
	}
}
