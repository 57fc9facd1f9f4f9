package longpoll

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// Name is the transport's name.
const Name = "longpoll"

// Path is the poll's endpoint.
const Path = "/api/longpoll"

// MaxBatch is the most envelopes one answer carries.
const MaxBatch = 512

// WriteTimeout bounds writing one answer.
const WriteTimeout = 10 * time.Second

// Mount mounts the transport's endpoint (GET Path) on m.
func Mount(m transports.Mux, srv *transports.Server) error {
	m.HandleGet(Path, Handler(srv))
	return nil
}

// Handler serves GET /api/longpoll?session=S&after=N.
func Handler(srv *transports.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, after, ok := srv.SessionRequest(w, r, "")
		if !ok {
			return
		}
		// What is already there goes out at once, without a cursor: a client that is behind
		// catches up batch by batch and is never taken for a slow consumer.
		direct, entries, err := sess.Read(after, MaxBatch)
		if err != nil {
			transports.WriteError(w, "", err)
			return
		}
		if len(direct) == 0 && len(entries) == 0 {
			direct, entries, err = wait(r.Context(), srv, sess, after)
			if err != nil {
				transports.WriteError(w, "", err)
				return
			}
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no")
		// Whatever was taken from the cursor is written now; if the write fails the entries
		// are still in the outbox and the client's next poll (same after) gets them.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(WriteTimeout))
		_, _ = w.Write(transports.AppendArray(make([]byte, 0, 512), direct, entries))
	})
}

// wait attaches a cursor (replacing any earlier one), waits for a batch or the timeout, and
// detaches. An ended cursor (replaced by a newer poll, slow_consumer, shutdown) is answered as an
// error envelope inside the array: the client polls again.
func wait(rctx context.Context, srv *transports.Server, sess *chat.Session, after uint64) ([]chat.Envelope, []chat.Entry, error) {
	cur, err := sess.Attach(chat.AttachOptions{After: after})
	if err != nil {
		return nil, nil, err
	}
	defer cur.Detach()
	ctx, stop := transports.MergeCancel(rctx, srv.Context())
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, srv.Options().LongPollTimeout)
	defer cancel()
	b, err := cur.Next(ctx, make([]chat.Entry, 0, MaxBatch))
	if err != nil {
		var ce *chat.Error
		if errors.As(err, &ce) {
			return []chat.Envelope{chat.ErrorEnvelope("", ce)}, nil, nil
		}
		if srv.Context().Err() != nil {
			return []chat.Envelope{chat.ErrorEnvelope("", chat.Errorf(chat.CodeShutdown, "the server is shutting down; reconnect later"))}, nil, nil
		}
		return nil, nil, nil // timeout (or the client left): an empty answer
	}
	return b.Direct, b.Entries, nil
}
