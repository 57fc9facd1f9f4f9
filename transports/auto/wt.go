package auto

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/webtransport"
)

func init() {
	wtUni = func(opt transports.Options) (Candidate, bool) {
		return Candidate{webtransport.UniName, &wtDialer{opt: opt}}, true
	}
}

// wtDialer is wt-uni for auto. Like a browser page, it learns the server's certificate hash from
// GET /api/wt-cert-hash when the options give neither a hash nor a TLS config.
type wtDialer struct {
	opt transports.Options

	mu    sync.Mutex
	inner interface {
		transports.Dialer
		Close() error
	}
	closed bool
}

func (w *wtDialer) Dial(ctx context.Context, session string, after uint64) (transports.Conn, chat.Envelope, error) {
	w.mu.Lock()
	inner, closed := w.inner, w.closed
	w.mu.Unlock()
	if closed {
		return nil, chat.Envelope{}, transports.ErrClosed
	}
	if inner == nil {
		opt := w.opt
		if opt.TLS == nil && len(opt.CertHashes) == 0 {
			h, err := FetchCertHash(ctx, opt)
			if err != nil {
				return nil, chat.Envelope{}, err
			}
			opt.CertHashes = [][32]byte{h}
		}
		w.mu.Lock()
		if w.inner == nil && !w.closed {
			w.inner = webtransport.NewDialer(webtransport.UniName, opt)
		}
		inner, closed = w.inner, w.closed
		w.mu.Unlock()
		if closed {
			return nil, chat.Envelope{}, transports.ErrClosed
		}
	}
	return inner.Dial(ctx, session, after)
}

func (w *wtDialer) Close() error {
	w.mu.Lock()
	w.closed = true
	inner := w.inner
	w.mu.Unlock()
	if inner != nil {
		return inner.Close()
	}
	return nil
}

// FetchCertHash asks the server for its WebTransport certificate hash (GET /api/wt-cert-hash).
func FetchCertHash(ctx context.Context, opt transports.Options) ([32]byte, error) {
	h := transports.NewHTTPClient(opt)
	defer h.CloseIdle()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL("/api/wt-cert-hash", url.Values{}), nil)
	if err != nil {
		return [32]byte{}, err
	}
	resp, err := h.Do(req)
	if err != nil {
		return [32]byte{}, fmt.Errorf("auto: fetching the WebTransport certificate hash: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		Hash string `json:"hash"`
	}
	var out [32]byte
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return out, fmt.Errorf("auto: /api/wt-cert-hash: %w", err)
	}
	b, err := hex.DecodeString(body.Hash)
	if err != nil || len(b) != 32 {
		return out, fmt.Errorf("auto: /api/wt-cert-hash: %q is not a SHA-256 hash in hex", body.Hash)
	}
	copy(out[:], b)
	return out, nil
}
