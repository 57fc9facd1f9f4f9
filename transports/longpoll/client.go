package longpoll

import (
	"time"

	"github.com/wirelab/wirelab/transports"
)

// ClientTimeout is how long a client waits for an answer before it takes the connection for dead
// and asks again. It must exceed the server's LongPollTimeout (25 s by default).
const ClientTimeout = 60 * time.Second

// Client is a long-polling client: the shared HTTP client on a dialer that polls Path again as
// soon as an answer arrives.
type Client struct{ *transports.HTTPEngine }

var _ transports.Client = (*Client)(nil)

// NewClient returns a client; Connect opens the session.
func NewClient(opt transports.Options) *Client {
	return &Client{transports.NewHTTPEngine(Name, newDialer(opt), opt)}
}

// NewDialer returns the transport's dialer (the auto transport switches between dialers). It is
// an io.Closer: Close drops its idle keep-alive connections.
func NewDialer(opt transports.Options) transports.Dialer { return newDialer(opt) }

func newDialer(opt transports.Options) *transports.PollDialer {
	return &transports.PollDialer{H: transports.NewHTTPClient(opt), Path: Path, Timeout: ClientTimeout, UntilNews: true}
}
