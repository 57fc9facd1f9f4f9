package webtransport_test

import (
	"testing"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/transports"
)

func TestRoomsAndDMsExactlyOnce(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			l := start(t, server.Config{})
			a1, a2, a3 := l.client(t, mode, "alice"), l.client(t, mode, "alice"), l.client(t, mode, "alice")
			b1, b2 := l.client(t, mode, "bob"), l.client(t, mode, "bob")
			for _, c := range []transports.Client{a1, a2, b1} {
				send(t, c, chat.Envelope{Type: chat.TypeJoin, Room: "r1"})
			}
			send(t, a1, chat.Envelope{Type: chat.TypeSay, Room: "r1", Text: "in r1"})
			send(t, b2, chat.Envelope{Type: chat.TypeDM, To: "alice", Text: "dm to alice"})
			send(t, a1, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: "end"})
			for _, tc := range []struct {
				name       string
				c          transports.Client
				inR1, inDM int
			}{{"a1", a1, 1, 1}, {"a2", a2, 1, 1}, {"a3", a3, 0, 1}, {"b1", b1, 1, 1}, {"b2", b2, 0, 1}} {
				got := until(t, tc.c, text("end"))
				if n := count(got, "in r1"); n != tc.inR1 {
					t.Errorf("%s got %q %d times, want %d", tc.name, "in r1", n, tc.inR1)
				}
				if n := count(got, "dm to alice"); n != tc.inDM {
					t.Errorf("%s got the DM %d times, want %d", tc.name, n, tc.inDM)
				}
			}
		})
	}
}
