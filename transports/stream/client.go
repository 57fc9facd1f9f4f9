package stream

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

// Client is a streaming client: the shared HTTP client on the streaming dialer, reading NDJSON
// lines.
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

// framing is what NDJSON streaming adds to the shared streaming client.
var framing = transports.StreamFraming{
	Name: Name, Path: Path,
	Prepare: func(h http.Header, q url.Values, after uint64) {
		h.Set("Accept", ContentType)
		q.Set("after", strconv.FormatUint(after, 10))
	},
	NewFraming: func(body io.Reader) transports.Framing { return lineFraming{NewLineReader(body, MaxLine)} },
}

// lineFraming reads NDJSON lines for the shared streaming client.
type lineFraming struct{ *LineReader }

func (l lineFraming) Next() ([]byte, bool, error) {
	line, err := l.LineReader.Next()
	if errors.Is(err, ErrLineTooLong) {
		return nil, false, fmt.Errorf("%w: %w", transports.ErrItemTooLong, err)
	}
	return line, err == nil, err
}

// Decode decodes one NDJSON line as an envelope.
func Decode(line []byte) (chat.Envelope, error) { return transports.DecodeItem(line) }
