package centrifugo

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func frames(t testing.TB, fr frameReader) ([]string, error) {
	var out []string
	for {
		f, err := fr.Next()
		if err != nil {
			return out, err
		}
		out = append(out, string(f))
	}
}

func TestSSEReader(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
		err      error
	}{
		{"centrifugo's own", "\r\ndata: {\"id\":1}\n\ndata: {}\n\n", []string{`{"id":1}`, `{}`}, io.EOF},
		{"data lines join", "data: a\ndata:b\r\n\r\n", []string{"a\nb"}, io.EOF},
		{"comments and fields skipped", ": hi\nevent: x\nid: 3\nretry: 10\ndata: d\n\n", []string{"d"}, io.EOF},
		{"no data no frame", "event: x\n\n\n", nil, io.EOF},
		{"cut mid line", "data: {\"id\"", nil, io.ErrUnexpectedEOF},
		{"a field without colon", "data\n\n", []string{""}, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := frames(t, newSSEReader(strings.NewReader(tc.in)))
			if !errors.Is(err, tc.err) || strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestLineReader(t *testing.T) {
	got, err := frames(t, newLineReader(strings.NewReader("{\"id\":1}\r\n\n{}\n{\"push\":{}}")))
	if !errors.Is(err, io.ErrUnexpectedEOF) || strings.Join(got, "|") != `{"id":1}|{}` {
		t.Errorf("got %q, %v", got, err)
	}
	long := strings.Repeat("x", maxFrame+10) + "\n"
	if _, err := newLineReader(strings.NewReader(long)).Next(); !errors.Is(err, errFrameTooLong) {
		t.Errorf("a line over maxFrame: %v", err)
	}
}

func TestParseReplies(t *testing.T) {
	in := `{"id":1,"connect":{"client":"c1","version":"6.9.1","ping":25,"pong":true,"session":"s","node":"n"}}
{}
{"push":{"channel":"room:r","pub":{"data":{"text":"hi"},"info":{"user":"u","client":"c"},"offset":7}}}
{"id":2,"subscribe":{"recoverable":true,"epoch":"e","offset":7,"was_recovering":true,"recovered":true,"publications":[{"data":{"text":"a"},"offset":6}]}}
{"id":3,"error":{"code":103,"message":"permission denied"}}
{"push":{"disconnect":{"code":3001,"reason":"shutdown","reconnect":true}}}`
	rs, err := parseReplies([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 6 {
		t.Fatalf("%d replies, want 6", len(rs))
	}
	if c := rs[0].Connect; c == nil || c.Client != "c1" || c.Ping != 25 || !c.Pong || c.Session != "s" || c.Node != "n" {
		t.Errorf("connect: %+v", rs[0].Connect)
	}
	if !rs[1].isPing() || rs[0].isPing() || rs[2].isPing() {
		t.Errorf("isPing wrong")
	}
	if p := rs[2].Push; p == nil || p.Channel != "room:r" || p.Pub == nil || p.Pub.Offset != 7 || p.Pub.Info.User != "u" {
		t.Errorf("push: %+v", rs[2].Push)
	}
	env, ok := envelopeFor(rs[2].Push.Channel, rs[2].Push.Pub.Data, "u", 0)
	if !ok || env.Room != "r" || env.Text != "hi" || env.From != "u" {
		t.Errorf("envelope: %+v %v", env, ok)
	}
	if s := rs[3].Subscribe; s == nil || !s.Recovered || !s.WasRecovering || len(s.Publications) != 1 || s.Epoch != "e" {
		t.Errorf("subscribe: %+v", rs[3].Subscribe)
	}
	if e := rs[4].Error; e == nil || e.Code != 103 {
		t.Errorf("error: %+v", rs[4].Error)
	}
	if d := rs[5].Push.Disconnect; d == nil || d.Code != 3001 || !d.Reconnect {
		t.Errorf("disconnect: %+v", rs[5].Push)
	}
	if _, err := parseReplies([]byte("[1]")); err == nil {
		t.Error("an array parsed as a reply")
	}
}

// FuzzFrames: whatever the server sends, the readers and the reply parser return frames or an
// error, never panic; a streamed line holds no newline; no frame is longer than maxFrame.
func FuzzFrames(f *testing.F) {
	f.Add([]byte("\r\ndata: {\"id\":1,\"connect\":{\"client\":\"c\"}}\n\ndata: {}\n\n"))
	f.Add([]byte("{\"push\":{\"channel\":\"dm:#u\",\"pub\":{\"data\":{\"text\":\"x\",\"to\":\"u\"}}}}\n{}\n"))
	f.Add([]byte("data: a\ndata: b\n: c\n\ndata:{\"id\":2,\"subscribe\":{\"publications\":[{}]}}\r\n\r\n"))
	f.Add([]byte("{\"id\":3,\"error\":{\"code\":1}}\n{\"id\":4"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, sse := range []bool{true, false} {
			var fr frameReader = newLineReader(bytes.NewReader(b))
			if sse {
				fr = newSSEReader(bytes.NewReader(b))
			}
			for n := 0; ; n++ {
				frame, err := fr.Next()
				if err != nil {
					break
				}
				if n > len(b) {
					t.Fatalf("more frames (%d) than bytes", n)
				}
				if len(frame) > maxFrame {
					t.Fatalf("a frame of %d bytes", len(frame))
				}
				if !sse && bytes.IndexByte(frame, '\n') >= 0 {
					t.Fatalf("a streamed line with a newline: %q", frame)
				}
				rs, _ := parseReplies(frame)
				for _, r := range rs {
					if r.Push != nil && r.Push.Pub != nil {
						envelopeFor(r.Push.Channel, r.Push.Pub.Data, "", r.Push.Pub.Time)
					}
				}
			}
		}
	})
}
