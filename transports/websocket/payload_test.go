package websocket

import (
	"strings"

	"github.com/wirelab/wirelab/chat"
)

type testPayload struct{ p *chat.Payload }

func chatPayload(textLen int) testPayload {
	return testPayload{chat.NewPayload(chat.Envelope{Type: chat.TypeMsg, ID: "n-1", Room: "lobby", From: "a", Text: strings.Repeat("t", textLen)})}
}

func (t testPayload) entry(seq uint64) chat.Entry { return chat.Entry{Seq: seq, P: t.p} }
