package stream

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// IdleTimeout is how long a client waits for anything (a ping at least) before it takes the
// connection for dead and resumes on a new one. The server pings every chat.Config.Heartbeat
// (25 s by default).
const IdleTimeout = 70 * time.Second

// Client is a streaming client.
type Client struct {
	*transports.Engine
	d *transports.StreamDialer
}

var _ transports.Client = (*Client)(nil)

// NewClient returns a client; Connect opens the session.
func NewClient(opt transports.Options) *Client {
	d := newDialer(opt)
	return &Client{Engine: transports.NewEngine(Name, d, opt), d: d}
}

// Close ends the client and closes its idle HTTP connections.
func (c *Client) Close() error {
	err := c.Engine.Close()
	_ = c.d.Close()
	return err
}

// NewDialer returns the transport's dialer (the auto transport switches between dialers). It is
// an io.Closer: Close drops its idle keep-alive connections.
func NewDialer(opt transports.Options) transports.Dialer { return newDialer(opt) }

func newDialer(opt transports.Options) *transports.StreamDialer {
	opt = opt.WithDefaults()
	return &transports.StreamDialer{
		Name: Name, Path: Path, H: transports.NewHTTPClient(opt), Log: opt.Logger, IdleTimeout: IdleTimeout,
		Prepare: func(h http.Header, q url.Values, after uint64) {
			h.Set("Accept", ContentType)
			q.Set("after", strconv.FormatUint(after, 10))
		},
		NewFraming: func(body io.Reader) transports.Framing { return lineFraming{NewLineReader(body, MaxLine)} },
	}
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
