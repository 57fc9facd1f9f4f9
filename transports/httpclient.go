package transports

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wirelab/wirelab/chat"
)

// HTTPClient is what the HTTP transports' clients share: an http.Client on the options' dial
// function, POST /api/session and POST /api/send.
type HTTPClient struct {
	Opt  Options
	HTTP *http.Client
	Base string // http://host:port, no trailing slash
}

// NewHTTPClient returns an HTTPClient for opt (already defaulted or not).
func NewHTTPClient(opt Options) *HTTPClient {
	opt = opt.WithDefaults()
	tr := &http.Transport{
		DialContext:         opt.Dial,
		MaxIdleConnsPerHost: 4,
		// Below the server's idle timeout (lab serve: 30 s), so that the client closes an idle
		// connection before the server does: a POST sent just as the server closes the
		// connection fails, and net/http does not send it again.
		IdleConnTimeout:    20 * time.Second,
		DisableCompression: true,
		ForceAttemptHTTP2:  false,
	}
	return &HTTPClient{Opt: opt, HTTP: &http.Client{Transport: tr}, Base: strings.TrimSuffix(opt.URL, "/")}
}

// HTTPDialer is the dialer of an HTTP transport (PollDialer, StreamDialer): Close drops its
// HTTP client's idle keep-alive connections.
type HTTPDialer interface {
	Dialer
	Close() error
}

// HTTPEngine is the client of every HTTP transport (shortpoll, longpoll, stream, sse): the
// Engine on the transport's dialer. The transports differ only in their dialers.
type HTTPEngine struct {
	*Engine
	d HTTPDialer
}

var _ Client = (*HTTPEngine)(nil)

// NewHTTPEngine returns the client of the transport name over d; Connect opens the session.
func NewHTTPEngine(name string, d HTTPDialer, opt Options) *HTTPEngine {
	return &HTTPEngine{Engine: NewEngine(name, d, opt), d: d}
}

// Close ends the client and closes its idle HTTP connections.
func (c *HTTPEngine) Close() error {
	err := c.Engine.Close()
	_ = c.d.Close()
	return err
}

// URL builds an address on the server with the given query.
func (h *HTTPClient) URL(path string, q url.Values) string {
	if h.Opt.Token != "" && q.Get("token") == "" {
		q.Set("token", h.Opt.Token)
	}
	if len(q) == 0 {
		return h.Base + path
	}
	return h.Base + path + "?" + q.Encode()
}

// Do sends a request; a non-2xx answer becomes a *chat.Error from its error envelope.
func (h *HTTPClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := h.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, DecodeError(resp)
	}
	return resp, nil
}

// OpenSession does POST /api/session?user=U and returns the welcome.
func (h *HTTPClient) OpenSession(ctx context.Context) (chat.Envelope, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL("/api/session", url.Values{"user": {h.Opt.User}}), nil)
	if err != nil {
		return chat.Envelope{}, err
	}
	resp, err := h.Do(req)
	if err != nil {
		return chat.Envelope{}, err
	}
	defer resp.Body.Close()
	var env chat.Envelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return chat.Envelope{}, chat.Errorf(chat.CodeBadJSON, "session answer: %v", err)
	}
	if env.Session == "" {
		return chat.Envelope{}, chat.Errorf(chat.CodeBadJSON, "session answer has no session id")
	}
	env.Type = chat.TypeWelcome
	return env, nil
}

// PostSend does POST /api/send?session=S with env and returns the answer envelope.
func (h *HTTPClient) PostSend(ctx context.Context, session string, env chat.Envelope) ([]chat.Envelope, error) {
	return h.post(ctx, session, chat.Marshal(&env), env.CID, false)
}

// PostRaw does POST /api/send?session=S with b as the body, unchecked (the conformance suite's
// malformed envelopes); an error envelope comes back as the answer.
func (h *HTTPClient) PostRaw(ctx context.Context, session string, b []byte) ([]chat.Envelope, error) {
	return h.post(ctx, session, b, "", true)
}

// post sends body; raw answers come back as they are, error envelopes included.
func (h *HTTPClient) post(ctx context.Context, session string, body []byte, cid chat.CID, raw bool) ([]chat.Envelope, error) {
	env := chat.Envelope{CID: cid}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL("/api/send", url.Values{"session": {session}}), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.HTTP.Do(req)
	if err != nil {
		return nil, chat.Errorf(chat.CodeUnavailable, "%v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return nil, nil
	}
	var reply chat.Envelope
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		if resp.StatusCode/100 != 2 {
			return nil, chat.Errorf(chat.CodeUnavailable, "server answered %s", resp.Status)
		}
		return nil, chat.Errorf(chat.CodeUnavailable, "reading the answer: %v", err)
	}
	if raw {
		return []chat.Envelope{reply}, nil
	}
	if reply.Type == chat.TypeError && reply.CID == env.CID && env.CID != "" {
		// An error for this command: the engine matches it by cid.
		return []chat.Envelope{reply}, nil
	}
	if reply.Type == chat.TypeError {
		return nil, &chat.Error{Code: reply.Code, Text: reply.Error}
	}
	return []chat.Envelope{reply}, nil
}

// CloseIdle drops idle keep-alive connections.
func (h *HTTPClient) CloseIdle() { h.HTTP.CloseIdleConnections() }

// DecodeArray decodes a poll answer: a JSON array of envelopes.
func DecodeArray(b []byte) ([]chat.Envelope, error) {
	var envs []chat.Envelope
	if err := json.Unmarshal(b, &envs); err != nil {
		return nil, chat.Errorf(chat.CodeBadJSON, "poll answer is not a JSON array of envelopes: %v", err)
	}
	return envs, nil
}

// MergeCancel returns a context done when either a or b is done; call stop when finished.
func MergeCancel(a, b context.Context) (ctx context.Context, stop context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	unhook := context.AfterFunc(b, cancel)
	return ctx, func() { unhook(); cancel() }
}
