package shortpoll

import "github.com/wirelab/wirelab/transports"

// Client is a short-polling client: the shared HTTP client on a dialer that polls Path every
// Options.PollInterval.
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
	opt = opt.WithDefaults()
	return &transports.PollDialer{H: transports.NewHTTPClient(opt), Path: Path, Interval: opt.PollInterval}
}
