// Package shortpoll is the short-polling transport: the client asks GET /api/poll?session=S&after=N
// every interval and gets a JSON array of whatever is new (often nothing); commands go by
// POST /api/send. It is the simplest transport and the most expensive one on the wire.
package shortpoll

import (
	"net/http"

	"github.com/wirelab/wirelab/transports"
)

// Name is the transport's name.
const Name = transports.ShortPoll

// MaxBatch is the most envelopes one poll answer carries; it carries at most
// chat.MaxBatchBytes of them plus one, too. The client asks again from where it got to.
//
// The answer is written under the server's write deadline (server.HTTPLimits.WriteTimeout, 10 s
// by default): a client that does not read it is cut off and the answer's memory goes back; the
// envelopes stay in the outbox for its next poll.
const MaxBatch = 512

// Handler serves GET /api/poll.
func Handler(srv *transports.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.Requests.Add(1)
		sess, err := srv.SessionOf(r)
		if err != nil {
			transports.WriteError(w, "", err)
			return
		}
		after, err := transports.After(r, "")
		if err != nil {
			transports.WriteError(w, "", err)
			return
		}
		direct, entries, err := sess.Read(after, MaxBatch)
		if err != nil {
			transports.WriteError(w, "", err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(transports.AppendArray(make([]byte, 0, 512), direct, entries))
	})
}

// Client is a short-polling client.
type Client struct {
	*transports.Engine
	d *transports.PollDialer
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

func newDialer(opt transports.Options) *transports.PollDialer {
	opt = opt.WithDefaults()
	return &transports.PollDialer{H: transports.NewHTTPClient(opt), Path: "/api/poll", Interval: opt.PollInterval}
}
