package centrifugo

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// Transport names, as a scenario's transports spell them.
const (
	WebSocket = "centrifugo/websocket"
	SSE       = "centrifugo/sse"
	Stream    = "centrifugo/stream"
)

// Transports lists the transports this package has clients for.
var Transports = []string{WebSocket, SSE, Stream}

// NewClient returns a client for one of Transports.
func NewClient(transport string, opt transports.Options) (transports.Client, error) {
	switch transport {
	case WebSocket:
		return NewWebSocket(opt), nil
	case SSE:
		return NewSSE(opt), nil
	case Stream:
		return NewStream(opt), nil
	}
	return nil, fmt.Errorf("centrifugo: no transport %q (have %s)", transport, strings.Join(Transports, ", "))
}

// ErrNoToken is returned by Connect when Options.Token is empty: Centrifugo accepts only
// connections with a token signed by its config's secret (Config.Token).
var ErrNoToken = errors.New("centrifugo: Options.Token is empty (sign one with Config.Token(user))")

// ErrNotConnected is returned by Send before Connect has succeeded.
var ErrNotConnected = errors.New("centrifugo: Send before Connect")

// pubData is what a chat message publishes: the text, and for a dm the recipient. The sender
// is the publication's client info (the user its token names), not something a client claims.
type pubData struct {
	Text string `json:"text"`
	To   string `json:"to,omitempty"`
}

// envelopeFor turns a publication in channel into the msg envelope the lab records. ok is
// false for a channel or data that is not the chat's.
func envelopeFor(channel string, data []byte, from string, timeMS int64) (chat.Envelope, bool) {
	var d pubData
	if json.Unmarshal(data, &d) != nil {
		return chat.Envelope{}, false
	}
	env := chat.Envelope{Type: chat.TypeMsg, From: from, Text: d.Text}
	if timeMS > 0 {
		env.TS = timeMS * int64(time.Millisecond)
	}
	switch {
	case strings.HasPrefix(channel, RoomNamespace+":"):
		env.Room = channel[len(RoomNamespace)+1:]
	case strings.HasPrefix(channel, DMNamespace+":#") && d.To != "":
		env.To = d.To
	default:
		return chat.Envelope{}, false
	}
	return env, true
}

// gapEnvelope tells the caller that Centrifugo could not recover channel after a reconnect:
// the publications in between are lost (a finding, not papered over).
func gapEnvelope(channel string) chat.Envelope {
	return chat.Envelope{Type: chat.TypeError, Code: chat.CodeGap,
		Error: "centrifugo could not recover " + channel + " after a reconnect: publications in between are lost"}
}

// command is one chat command as Centrifugo operations.
type command struct {
	op       string   // "subscribe", "unsubscribe", "publish"
	channels []string // publish: in order (a dm: the recipient's channel, then the sender's)
	data     []byte
}

// plan maps env (from user) onto Centrifugo. who is unsupported: presence is off (see doc.go).
func plan(env chat.Envelope, user string) (command, error) {
	switch env.Type {
	case chat.TypeJoin, chat.TypeLeave:
		if !chat.ValidName(env.Room) {
			return command{}, chat.Errorf(chat.CodeBadRoom, "room %q is not 1 to 64 of A-Z a-z 0-9 _ . -", env.Room)
		}
		op := "subscribe"
		if env.Type == chat.TypeLeave {
			op = "unsubscribe"
		}
		return command{op: op, channels: []string{RoomChannel(env.Room)}}, nil
	case chat.TypeSay:
		if !chat.ValidName(env.Room) {
			return command{}, chat.Errorf(chat.CodeBadRoom, "room %q is not 1 to 64 of A-Z a-z 0-9 _ . -", env.Room)
		}
		b, _ := json.Marshal(pubData{Text: env.Text}) // strings always encode
		return command{op: "publish", channels: []string{RoomChannel(env.Room)}, data: b}, nil
	case chat.TypeDM:
		if !chat.ValidName(env.To) {
			return command{}, chat.Errorf(chat.CodeBadUser, "user %q is not 1 to 64 of A-Z a-z 0-9 _ . -", env.To)
		}
		b, _ := json.Marshal(pubData{Text: env.Text, To: env.To})
		chs := []string{DMChannel(env.To)}
		if env.To != user {
			chs = append(chs, DMChannel(user)) // the copy for the sender's tabs
		}
		return command{op: "publish", channels: chs, data: b}, nil
	case chat.TypeWho:
		return command{}, chat.Errorf("unsupported", "who: the centrifugo peer runs without presence (see peers/centrifugo/doc.go)")
	}
	return command{}, chat.Errorf(chat.CodeUnknownType, "type %q is not a command the centrifugo peer maps", env.Type)
}

// publishAll publishes into every channel at once (a dm's two publications are pipelined, not one
// after the other's answer: waiting would hold the sender's own copy back by a round trip) and
// returns the first error in channel order.
func publishAll(channels []string, publish func(ch string) error) error {
	errs := make([]error, len(channels))
	var wg sync.WaitGroup
	for i, ch := range channels {
		wg.Go(func() { errs[i] = publish(ch) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// serverError turns a Centrifugo error reply into the chat error it means.
func serverError(code uint32, message string, op string) error {
	c := chat.CodeUnavailable
	switch code {
	case 101, 109: // unauthorized, token expired
		c = chat.CodeUnauthorized
	case 102: // unknown channel
		c = chat.CodeBadRoom
	case 103: // permission denied: a say into a room the session has not joined
		if op == "publish" {
			c = chat.CodeNotMember
		} else {
			c = chat.CodeUnauthorized
		}
	case 106: // limit exceeded (channel limit)
		c = chat.CodeTooManyRooms
	case 107: // bad request
		c = chat.CodeBadJSON
	case 111: // too many requests
		c = chat.CodeRateLimited
	}
	return &chat.Error{Code: c, Text: fmt.Sprintf("centrifugo %s: error %d: %s", op, code, message)}
}

// endpoint is opt.URL (http://host:port) with path, and the scheme changed to ws for WebSocket.
func endpoint(base, path string, ws bool) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("centrifugo: Options.URL %q is not http://HOST:PORT", base)
	}
	if ws {
		switch u.Scheme {
		case "http":
			u.Scheme = "ws"
		case "https":
			u.Scheme = "wss"
		}
	}
	u.Path = path
	return u.String(), nil
}

// outbox is the Messages channel with a close that no delivery can race.
type outbox struct {
	ch      chan transports.Delivery
	closing chan struct{}
	mu      sync.RWMutex
	done    bool
	once    sync.Once
}

func newOutbox(n int) *outbox {
	return &outbox{ch: make(chan transports.Delivery, n), closing: make(chan struct{})}
}

// deliver hands env to the caller, waiting while Messages is full; false once closed.
func (o *outbox) deliver(env chat.Envelope, at time.Time) bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.done {
		return false
	}
	select {
	case o.ch <- transports.Delivery{Env: env, At: at}:
		return true
	case <-o.closing:
		return false
	}
}

// close unblocks deliveries and closes Messages, once.
func (o *outbox) close() {
	o.once.Do(func() {
		close(o.closing)
		o.mu.Lock()
		o.done = true
		close(o.ch)
		o.mu.Unlock()
	})
}
