package sse

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// IdleTimeout is how long a client waits for anything (a ping at least) before it takes the
// connection for dead and resumes on a new one (transports.StreamIdleTimeout).
const IdleTimeout = transports.StreamIdleTimeout

// Client is a server-sent events client: the shared HTTP client on the streaming dialer,
// reading events.
type Client struct{ *transports.HTTPEngine }

var _ transports.Client = (*Client)(nil)

// NewClient returns a client; Connect opens the session.
func NewClient(opt transports.Options) *Client {
	return &Client{transports.NewHTTPEngine(Name, newDialer(opt), opt)}
}

// NewDialer returns the transport's dialer (the auto transport switches between dialers). It is
// an io.Closer: Close drops its idle keep-alive connections.
func NewDialer(opt transports.Options) transports.Dialer { return newDialer(opt) }

func newDialer(opt transports.Options) *transports.StreamDialer {
	return transports.NewStreamDialer(opt, framing)
}

// framing is what SSE adds to the shared streaming client.
var framing = transports.StreamFraming{
	Name: Name, Path: Path,
	Prepare: func(h http.Header, _ url.Values, after uint64) {
		h.Set("Accept", ContentType)
		if after > 0 {
			// As a browser's EventSource resumes: the last event id it has.
			h.Set("Last-Event-ID", strconv.FormatUint(after, 10))
		}
	},
	NewFraming: func(body io.Reader) transports.Framing { return eventFraming{NewParser(body, MaxLine)} },
}

// eventFraming reads events for the shared streaming client; events of another type than
// "message" are not ours (a newer server might add some) and are skipped.
type eventFraming struct{ *Parser }

func (p eventFraming) Next() ([]byte, bool, error) {
	ev, err := p.Parser.Next()
	if errors.Is(err, ErrLineTooLong) {
		return nil, false, fmt.Errorf("%w: %w", transports.ErrItemTooLong, err)
	}
	if err != nil {
		return nil, false, err
	}
	return ev.Data, ev.Type == "" || ev.Type == "message", nil
}

// Decode decodes one event's data as an envelope.
func Decode(data []byte) (chat.Envelope, error) { return transports.DecodeItem(data) }
