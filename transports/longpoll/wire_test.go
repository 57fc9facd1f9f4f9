package longpoll_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/transports"
)

func readArray(t *testing.T, resp *http.Response) []chat.Envelope {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var envs []chat.Envelope
	if err := json.Unmarshal(b, &envs); err != nil || b[0] != '[' {
		t.Fatalf("answer %q is not a JSON array: %v", b, err)
	}
	return envs
}

func TestWireFormat(t *testing.T) {
	base, _ := startServer(t, server.Config{Transport: transports.ServerOptions{LongPollTimeout: 300 * time.Millisecond}})
	sid := openSession(t, base, "alice")
	ok := post(t, base+"/api/send?session="+sid, `{"type":"say","room":"lobby","text":"one","cid":1}`)

	// Something is there: the answer comes at once, everything after 0, in seq order.
	resp, _ := rawGet(t, base, "/api/longpoll?session="+sid+"&after=0")
	wantHeader(t, resp, "Content-Type", "application/json")
	wantHeader(t, resp, "Cache-Control", "no-store")
	envs := readArray(t, resp)
	if uint64(len(envs)) != ok.Seq {
		t.Fatalf("%d envelopes, want %d: %+v", len(envs), ok.Seq, envs)
	}
	for i, e := range envs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("envelope %d has seq %d", i, e.Seq)
		}
	}
	// Asking again with the same after gives the same answer: a lost answer is not lost.
	if again := readArray(t, mustGet(t, base+"/api/longpoll?session="+sid+"&after=0")); len(again) != len(envs) {
		t.Fatalf("second poll with the same after: %d envelopes, want %d", len(again), len(envs))
	}

	// Nothing new: held until the timeout, then an empty array.
	start := time.Now()
	if envs := readArray(t, mustGet(t, base+"/api/longpoll?session="+sid+"&after="+strconv.FormatUint(ok.Seq, 10))); len(envs) != 0 {
		t.Fatalf("timeout answer %+v, want []", envs)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("poll answered after %v, want it held about 300ms", d)
	}

	// Held, then answered by a message.
	bob := openSession(t, base, "bob")
	seen := readArray(t, mustGet(t, base+"/api/longpoll?session="+sid+"&after="+strconv.FormatUint(ok.Seq, 10)))
	ok.Seq = seen[len(seen)-1].Seq // bob's presence
	got := make(chan []chat.Envelope, 1)
	go func() {
		resp, err := http.Get(base + "/api/longpoll?session=" + sid + "&after=" + strconv.FormatUint(ok.Seq, 10))
		if err != nil {
			got <- nil
			return
		}
		defer resp.Body.Close()
		var envs []chat.Envelope
		_ = json.NewDecoder(resp.Body).Decode(&envs)
		got <- envs
	}()
	post(t, base+"/api/send?session="+bob, `{"type":"dm","to":"alice","text":"psst","cid":"x"}`)
	for envs := range got {
		if len(envs) == 0 {
			// The timeout may have come first; the DM is then in the next poll.
			envs = readArray(t, mustGet(t, base+"/api/longpoll?session="+sid+"&after="+strconv.FormatUint(ok.Seq, 10)))
		}
		if len(envs) != 1 || envs[0].Text != "psst" || envs[0].Seq != ok.Seq+1 {
			t.Fatalf("answer %+v, want the DM with seq %d", envs, ok.Seq+1)
		}
		break
	}
}

func TestNewerPollReplacesHeldOne(t *testing.T) {
	base, _ := startServer(t, server.Config{Transport: transports.ServerOptions{LongPollTimeout: 5 * time.Second}})
	sid := openSession(t, base, "alice")
	last := readArray(t, mustGet(t, base+"/api/longpoll?session="+sid+"&after=0"))
	after := strconv.FormatUint(last[len(last)-1].Seq, 10)
	first := make(chan []chat.Envelope, 1)
	go func() {
		resp, err := http.Get(base + "/api/longpoll?session=" + sid + "&after=" + after)
		if err != nil {
			first <- nil
			return
		}
		defer resp.Body.Close()
		var envs []chat.Envelope
		_ = json.NewDecoder(resp.Body).Decode(&envs)
		first <- envs
	}()
	// A second poll replaces the first, which answers with a replaced error. The first may not
	// be attached yet when a second one comes: poll until it answers.
	var envs []chat.Envelope
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	short := &http.Client{Timeout: 100 * time.Millisecond}
	defer short.CloseIdleConnections()
poll:
	for {
		if resp, err := short.Get(base + "/api/longpoll?session=" + sid + "&after=" + after); err == nil {
			resp.Body.Close()
		}
		select {
		case envs = <-first:
			break poll
		case <-deadline.C:
			t.Fatal("the held poll was not replaced")
		default:
		}
	}
	if len(envs) != 1 || envs[0].Type != chat.TypeError || envs[0].Code != chat.CodeReplaced {
		t.Fatalf("replaced poll answered %+v, want one replaced error", envs)
	}
}

func mustGet(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET: %s", resp.Status)
	}
	return resp
}

func TestShutdownAnswersHeldPoll(t *testing.T) {
	base, srv := startServer(t, server.Config{Transport: transports.ServerOptions{LongPollTimeout: time.Minute}})
	sid := openSession(t, base, "alice")
	last := readArray(t, mustGet(t, base+"/api/longpoll?session="+sid+"&after=0"))
	after := strconv.FormatUint(last[len(last)-1].Seq, 10)
	before := srv.T.Requests.Load()
	answer := make(chan []byte, 1)
	go func() {
		resp, err := http.Get(base + "/api/longpoll?session=" + sid + "&after=" + after)
		if err != nil {
			answer <- []byte(err.Error())
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answer <- b
	}()
	// Wait until the server has the poll (the request counter moves), then shut down.
	deadline := time.Now().Add(10 * time.Second)
	for srv.T.Requests.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("the poll did not reach the server")
		}
		runtime.Gosched()
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Held: [{"type":"error","code":"shutdown",...}]; not yet held: the 503 error envelope.
	b := <-answer
	if !strings.Contains(string(b), `"code":"shutdown"`) {
		t.Fatalf("answer %q, want a shutdown error", b)
	}
}
