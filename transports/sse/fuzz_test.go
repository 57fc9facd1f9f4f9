package sse_test

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"testing"
	"testing/iotest"

	"github.com/wirelab/wirelab/transports/sse"
)

// modelEvents interprets a whole event stream the way the HTML standard describes it, on one
// buffer: the reference the streaming Parser must agree with.
func modelEvents(data []byte) (evs []sse.Event, lastID string) {
	var buf []byte
	hasData := false
	var evType, id string
	hasID := false
	for {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			return evs, lastID // an unterminated line and its event are dropped
		}
		line := data[:i]
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
		if len(line) == 0 {
			if hasID {
				lastID = id
			}
			if hasData {
				evs = append(evs, sse.Event{ID: id, HasID: hasID, Type: evType, Data: bytes.TrimSuffix(buf, []byte{'\n'})})
			}
			buf, hasData, evType, id, hasID = nil, false, "", "", false
			continue
		}
		if line[0] == ':' {
			continue
		}
		name, value := string(line), ""
		if c := bytes.IndexByte(line, ':'); c >= 0 {
			name, value = string(line[:c]), string(line[c+1:])
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch name {
		case "data":
			buf = append(append(buf, value...), '\n')
			hasData = true
		case "event":
			evType = value
		case "id":
			if !bytes.Contains([]byte(value), []byte{0}) {
				id, hasID = value, true
			}
		}
	}
}

func parseAll(t *testing.T, r io.Reader, max int) (evs []sse.Event, lastID string, tooLong int) {
	p := sse.NewParser(r, max)
	for {
		ev, err := p.Next()
		switch {
		case err == nil:
			if bytes.IndexByte(ev.Data, '\r') >= 0 {
				t.Fatalf("data holds a CR: %q", ev.Data)
			}
			ev.Data = bytes.Clone(ev.Data)
			evs = append(evs, ev)
		case errors.Is(err, sse.ErrLineTooLong):
			tooLong++
		case err == io.EOF:
			return evs, p.LastEventID(), tooLong
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
}

func FuzzSSEParser(f *testing.F) {
	f.Add([]byte("retry: 1000\n\nid: 1\ndata: {\"type\":\"msg\"}\n\n"), []byte("a\nb"), uint64(3))
	f.Add([]byte("data:x\r\ndata: y\r\rid: 7\x00\n: c\nevent: e\ndata\n\n"), []byte("\r\n\r"), uint64(0))
	f.Add([]byte("data: a\rb\r\n\r\n"), []byte(""), uint64(1<<63))
	f.Add([]byte("id\nid: 2\n\ndata: tail"), []byte(" lead"), uint64(9))
	f.Fuzz(func(t *testing.T, stream, data []byte, id uint64) {
		// The streaming parser agrees with the whole-buffer model, at every buffer boundary.
		want, wantID := modelEvents(stream)
		for _, r := range []io.Reader{bytes.NewReader(stream), iotest.OneByteReader(bytes.NewReader(stream))} {
			got, gotID, tl := parseAll(t, r, 0)
			if tl != 0 || gotID != wantID || len(got) != len(want) {
				t.Fatalf("got %d events (last id %q, %d too long), want %d (last id %q)", len(got), gotID, tl, len(want), wantID)
			}
			for i := range got {
				g, w := got[i], want[i]
				if g.ID != w.ID || g.HasID != w.HasID || g.Type != w.Type || !bytes.Equal(g.Data, w.Data) {
					t.Fatalf("event %d: %+v, want %+v", i, g, w)
				}
			}
		}
		// A small limit: no panic, and it goes on after a long line.
		_, _, _ = parseAll(t, iotest.HalfReader(bytes.NewReader(stream)), 8)

		// Round trip: what AppendEvent writes reads back (line ends become LF).
		wire := sse.AppendEvent(nil, id, true, data)
		wire = sse.AppendEvent(wire, 0, false, data)
		got, last, _ := parseAll(t, iotest.OneByteReader(bytes.NewReader(wire)), 0)
		norm := bytes.ReplaceAll(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), []byte("\r"), []byte("\n"))
		if len(got) != 2 || last != strconv.FormatUint(id, 10) {
			t.Fatalf("round trip: %d events, last id %q; want 2, %d", len(got), last, id)
		}
		if !got[0].HasID || got[0].ID != last || got[1].HasID {
			t.Fatalf("round trip ids: %+v %+v", got[0], got[1])
		}
		for _, ev := range got {
			if !bytes.Equal(ev.Data, norm) {
				t.Fatalf("round trip data %q, want %q", ev.Data, norm)
			}
		}
	})
}
