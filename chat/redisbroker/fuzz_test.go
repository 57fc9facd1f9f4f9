package redisbroker

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/wirelab/wirelab/chat"
)

// The broker parses what arrives on Redis channels: topic messages, forwarded commands and
// their answers. Whatever arrives, it parses or refuses, and never panics.

func FuzzTopicMessage(f *testing.F) {
	f.Add("1 {\"type\":\"msg\"}")
	f.Add("18446744073709551615 x")
	f.Add("0 x")
	f.Add("x")
	f.Add("")
	f.Fuzz(func(t *testing.T, p string) {
		pos, data, err := parseTopicMessage(p)
		if err != nil {
			return
		}
		if pos == 0 {
			t.Fatalf("position 0 accepted from %q", p)
		}
		if !strings.HasSuffix(p, string(data)) {
			t.Fatalf("data %q is not the tail of %q", data, p)
		}
	})
}

func FuzzForwarded(f *testing.F) {
	env := chat.Envelope{Type: chat.TypeSay, Room: "r", Text: "hi", CID: chat.StringCID("c1")}
	f.Add("1 node1 0123 alice " + string(chat.Marshal(&env)))
	f.Add("1 node1 0123 - {}")
	f.Add("1 node1 0123 alice")
	f.Add("")
	f.Fuzz(func(t *testing.T, p string) {
		c, err := parseCommand(p)
		if err != nil {
			return
		}
		if c.req == "" || c.from == "" || c.sid == "" {
			t.Fatalf("empty field accepted: %+v", c)
		}
		// What was parsed can be forwarded again.
		b := chat.Marshal(&c.env)
		var back chat.Envelope
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("a parsed envelope does not encode again: %v", err)
		}
	})
}

func FuzzAnswer(f *testing.F) {
	f.Add(`1 {"env":{"type":"ok","cid":"c"}}`)
	f.Add(`2 {"code":"unavailable","error":"x"}`)
	f.Add(`3 {"not_held":true}`)
	f.Add(`4`)
	f.Fuzz(func(t *testing.T, p string) {
		req, _, err := parseAnswer(p)
		if err == nil && req == "" {
			t.Fatalf("empty request id accepted from %q", p)
		}
	})
}
