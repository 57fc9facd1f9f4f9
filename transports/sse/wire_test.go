package sse_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/server"
)

type rawEvent struct {
	id    string
	hasID bool
	env   chat.Envelope
}

// readEvent reads one event from the raw body and checks its framing: "id: N" (optional), one
// "data: JSON" line, a blank line. A leading "retry:" block is skipped.
func readEvent(t *testing.T, br *bufio.Reader) rawEvent {
	t.Helper()
	var ev rawEvent
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the event stream: %v (got %q)", err, line)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if len(data) == 0 {
				continue // the retry block
			}
			if len(data) != 1 {
				t.Fatalf("event with %d data lines: %q", len(data), data)
			}
			if err := json.Unmarshal([]byte(data[0]), &ev.env); err != nil {
				t.Fatalf("data %q: %v", data[0], err)
			}
			return ev
		case strings.HasPrefix(line, "id: "):
			ev.id, ev.hasID = line[4:], true
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[6:])
		case strings.HasPrefix(line, "retry: "):
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
}

func TestWireFormat(t *testing.T) {
	base, _ := startServer(t, server.Config{})
	sid := openSession(t, base, "alice")
	ok := post(t, base+"/api/send?session="+sid, `{"type":"say","room":"lobby","text":"one","cid":1}`)
	if ok.Type != chat.TypeOK || ok.Seq == 0 {
		t.Fatalf("send answer %+v", ok)
	}
	resp, _ := rawGet(t, base, "/api/sse?session="+sid, "Accept: text/event-stream")
	if resp.StatusCode != 200 {
		t.Fatalf("status %s", resp.Status)
	}
	wantHeader(t, resp, "Content-Type", "text/event-stream")
	wantHeader(t, resp, "Cache-Control", "no-store")
	wantHeader(t, resp, "X-Accel-Buffering", "no")
	br := bufio.NewReader(resp.Body)
	if first, _ := br.ReadString('\n'); first != "retry: 1000\n" {
		t.Errorf("first line %q, want retry: 1000", first)
	}
	// With neither after nor Last-Event-ID: everything from the start, id = seq.
	for want := uint64(1); want <= ok.Seq; want++ {
		ev := readEvent(t, br)
		if !ev.hasID || ev.id != strconv.FormatUint(want, 10) || ev.env.Seq != want {
			t.Fatalf("event id %q seq %d, want %d", ev.id, ev.env.Seq, want)
		}
	}
	bob := openSession(t, base, "bob")
	post(t, base+"/api/send?session="+bob, `{"type":"dm","to":"alice","text":"psst","cid":"x"}`)
	for {
		ev := readEvent(t, br)
		if ev.env.Type == chat.TypeMsg {
			if ev.env.Text != "psst" || ev.id != strconv.FormatUint(ev.env.Seq, 10) {
				t.Fatalf("DM event %+v", ev)
			}
			break
		}
	}
}

func TestLastEventIDResume(t *testing.T) {
	base, _ := startServer(t, server.Config{})
	sid := openSession(t, base, "alice")
	var last uint64
	for i := 0; i < 5; i++ {
		last = post(t, base+"/api/send?session="+sid, fmt.Sprintf(`{"type":"say","room":"lobby","text":"m%d","cid":%d}`, i, i)).Seq
	}
	for _, tc := range []struct {
		name   string
		query  string
		header []string
		first  uint64
	}{
		{"neither", "", nil, 1},
		{"after", "&after=4", nil, 5},
		{"Last-Event-ID", "", []string{"Last-Event-ID: 6"}, 7},
		{"Last-Event-ID wins over after", "&after=2", []string{"Last-Event-ID: 8"}, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, c := rawGet(t, base, "/api/sse?session="+sid+tc.query, tc.header...)
			defer c.Close()
			br := bufio.NewReader(resp.Body)
			for want := tc.first; want <= last; want++ {
				ev := readEvent(t, br)
				if ev.env.Seq != want || ev.id != strconv.FormatUint(want, 10) {
					t.Fatalf("event id %q seq %d, want %d", ev.id, ev.env.Seq, want)
				}
			}
		})
	}
}

func TestGapEventHasNoID(t *testing.T) {
	base, _ := startServer(t, server.Config{Hub: chat.Config{Outbox: 8}})
	sid := openSession(t, base, "alice")
	for i := 0; i < 10; i++ {
		post(t, base+"/api/send?session="+sid, fmt.Sprintf(`{"type":"say","room":"lobby","text":"m%d","cid":%d}`, i, i))
	}
	resp, _ := rawGet(t, base, "/api/sse?session="+sid, "Last-Event-ID: 1")
	br := bufio.NewReader(resp.Body)
	ev := readEvent(t, br)
	if ev.hasID || ev.env.Type != chat.TypeError || ev.env.Code != chat.CodeGap || ev.env.First == 0 {
		t.Fatalf("first event %+v, want a gap error without id", ev)
	}
	next := readEvent(t, br)
	if next.env.Seq != ev.env.First || next.id != strconv.FormatUint(ev.env.First, 10) {
		t.Fatalf("after the gap: %+v, want seq %d", next, ev.env.First)
	}
}

func TestHeartbeat(t *testing.T) {
	base, _ := startServer(t, server.Config{Hub: chat.Config{Heartbeat: 100 * time.Millisecond, HeartbeatTimeout: 300 * time.Millisecond}})
	sid := openSession(t, base, "alice")
	resp, _ := rawGet(t, base, "/api/sse?session="+sid)
	br := bufio.NewReader(resp.Body)
	for pings := 0; pings < 6; {
		ev := readEvent(t, br)
		switch ev.env.Type {
		case chat.TypePing:
			if ev.hasID {
				t.Fatalf("ping with an id: %+v", ev)
			}
			pings++
			post(t, base+"/api/send?session="+sid, `{"type":"pong"}`)
		case chat.TypeError:
			t.Fatalf("stream ended despite pongs: %+v", ev)
		}
	}
	// Now stay silent: the server ends the stream with heartbeat_timeout (an event without id).
	for {
		ev := readEvent(t, br)
		if ev.env.Type != chat.TypeError {
			continue
		}
		if ev.env.Code != chat.CodeHeartbeat || ev.hasID {
			t.Fatalf("got %+v, want heartbeat_timeout without id", ev)
		}
		break
	}
	if line, err := br.ReadString('\n'); err == nil {
		t.Fatalf("stream goes on after heartbeat_timeout: %q", line)
	}
}

func TestShutdownEndsStream(t *testing.T) {
	base, srv := startServer(t, server.Config{})
	sid := openSession(t, base, "alice")
	resp, _ := rawGet(t, base, "/api/sse?session="+sid)
	br := bufio.NewReader(resp.Body)
	readEvent(t, br) // the lobby member list: the stream is attached
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	for {
		ev := readEvent(t, br)
		if ev.env.Type == chat.TypeError {
			if ev.env.Code != chat.CodeShutdown || ev.hasID {
				t.Fatalf("got %+v, want shutdown without id", ev)
			}
			break
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
