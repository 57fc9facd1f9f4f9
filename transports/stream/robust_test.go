package stream_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/stream"
)

// A malformed or over-long item in the stream is skipped; what follows is delivered.
func TestClientSkipsMalformed(t *testing.T) {
	var body strings.Builder
	body.WriteString("not json\n{\"type\":\"msg\",\"text\":\"" + strings.Repeat("x", stream.MaxLine) + "\"}\n{}\n")
	body.WriteString(`{"type":"msg","seq":1,"room":"lobby","from":"bob","text":"good"}` + "\n")
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/session", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"type":"welcome","session":"s1","user":"alice"}`))
	})
	mux.HandleFunc("GET "+stream.Path, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(body.String()))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()
	c := stream.NewClient(transports.Options{URL: ts.URL, User: "alice", NoReconnect: true})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-c.Messages():
		if d.Env.Type != chat.TypeMsg || d.Env.Text != "good" || d.Env.Seq != 1 {
			t.Fatalf("got %+v, want the good message", d.Env)
		}
	case <-ctx.Done():
		t.Fatal("the good message did not arrive")
	}
}
