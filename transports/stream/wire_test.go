package stream_test

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/server"
)

// readLine reads one NDJSON line and checks it is one JSON object.
func readLine(t *testing.T, br *bufio.Reader) chat.Envelope {
	t.Helper()
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("reading a line: %v (got %q)", err, line)
	}
	var env chat.Envelope
	if err := json.Unmarshal([]byte(line), &env); err != nil || strings.Count(line, "\n") != 1 {
		t.Fatalf("line %q is not one JSON object: %v", line, err)
	}
	return env
}

func TestWireFormat(t *testing.T) {
	base, _ := startServer(t, server.Config{})
	sid := openSession(t, base, "alice")
	ok := post(t, base+"/api/send?session="+sid, `{"type":"say","room":"lobby","text":"one","cid":1}`)
	if ok.Type != chat.TypeOK || ok.CID != "1" || ok.Seq == 0 {
		t.Fatalf("send answer %+v", ok)
	}

	resp, _ := rawGet(t, base, "/api/stream?session="+sid+"&after=0")
	if resp.StatusCode != 200 {
		t.Fatalf("status %s", resp.Status)
	}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("transfer encoding %v, want chunked", resp.TransferEncoding)
	}
	wantHeader(t, resp, "Content-Type", "application/x-ndjson")
	wantHeader(t, resp, "Cache-Control", "no-store")
	wantHeader(t, resp, "X-Accel-Buffering", "no")
	br := bufio.NewReader(resp.Body)
	// Everything from the session's start, seq 1, 2, ...: the msg and the ok (in either
	// order: the ok is queued after the msg's fan-out), and any presence.
	var sawMsg, sawOK bool
	for want := uint64(1); want <= ok.Seq; want++ {
		env := readLine(t, br)
		if env.Seq != want {
			t.Fatalf("line seq %d, want %d: %+v", env.Seq, want, env)
		}
		sawMsg = sawMsg || (env.Type == chat.TypeMsg && env.Text == "one" && env.From == "alice" && env.Room == "lobby" && env.ID != "" && env.TS > 0)
		sawOK = sawOK || (env.Type == chat.TypeOK && env.CID == "1")
	}
	if !sawMsg || !sawOK {
		t.Fatalf("msg %v, ok %v in the first %d lines", sawMsg, sawOK, ok.Seq)
	}
	// Pushed while the stream is open.
	bob := openSession(t, base, "bob")
	post(t, base+"/api/send?session="+bob, `{"type":"dm","to":"alice","text":"psst","cid":"x"}`)
	for {
		env := readLine(t, br)
		if env.Type == chat.TypeMsg {
			if env.Text != "psst" || env.To != "alice" || env.From != "bob" || env.Room != "" {
				t.Fatalf("DM line %+v", env)
			}
			break
		}
	}
}

func TestHeartbeat(t *testing.T) {
	base, _ := startServer(t, server.Config{Hub: chat.Config{Heartbeat: 100 * time.Millisecond, HeartbeatTimeout: 300 * time.Millisecond}})
	t.Run("pong keeps the stream", func(t *testing.T) {
		sid := openSession(t, base, "alice")
		resp, _ := rawGet(t, base, "/api/stream?session="+sid)
		br := bufio.NewReader(resp.Body)
		for pings := 0; pings < 6; {
			env := readLine(t, br)
			switch env.Type {
			case chat.TypePing:
				pings++
				post(t, base+"/api/send?session="+sid, `{"type":"pong"}`)
			case chat.TypeError:
				t.Fatalf("stream ended despite pongs: %+v", env)
			}
		}
	})
	t.Run("silence ends the stream", func(t *testing.T) {
		sid := openSession(t, base, "bob")
		resp, _ := rawGet(t, base, "/api/stream?session="+sid)
		br := bufio.NewReader(resp.Body)
		for {
			env := readLine(t, br)
			if env.Type != chat.TypeError {
				continue // pings, presence
			}
			if env.Type != chat.TypeError || env.Code != chat.CodeHeartbeat {
				t.Fatalf("got %+v, want ping or heartbeat_timeout", env)
			}
			break
		}
		if line, err := br.ReadString('\n'); err == nil {
			t.Fatalf("stream goes on after heartbeat_timeout: %q", line)
		}
	})
}

func TestErrors(t *testing.T) {
	base, _ := startServer(t, server.Config{})
	for _, tc := range []struct {
		name, path string
		status     int
		code       string
	}{
		{"no session", "/api/stream", 400, chat.CodeMissingField},
		{"unknown session", "/api/stream?session=nope", 404, chat.CodeUnknownSession},
		{"bad after", "/api/stream?session=SID&after=x", 400, chat.CodeBadAfter},
		{"after beyond", "/api/stream?session=SID&after=99", 400, chat.CodeBadAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sid := openSession(t, base, "carol")
			resp, _ := rawGet(t, base, strings.Replace(tc.path, "SID", sid, 1))
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			env := readLine(t, bufio.NewReader(resp.Body))
			if env.Type != chat.TypeError || env.Code != tc.code || env.Error == "" {
				t.Errorf("answer %+v, want error %s", env, tc.code)
			}
		})
	}
}

func TestShutdownEndsStream(t *testing.T) {
	base, srv := startServer(t, server.Config{})
	sid := openSession(t, base, "alice")
	resp, _ := rawGet(t, base, "/api/stream?session="+sid)
	br := bufio.NewReader(resp.Body)
	readLine(t, br) // the lobby member list: the stream is attached
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	for {
		env := readLine(t, br)
		if env.Type == chat.TypeError {
			if env.Code != chat.CodeShutdown {
				t.Fatalf("got %+v, want shutdown", env)
			}
			break
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
