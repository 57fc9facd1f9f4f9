package stream

import (
	"errors"
	"net/http"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// Name is the transport's name.
const Name = transports.Stream

// Path is the stream's endpoint.
const Path = "/api/stream"

// WriteTimeout bounds one write of a batch to the client.
const WriteTimeout = 10 * time.Second

// ContentType is the stream's media type.
const ContentType = "application/x-ndjson"

// batchSize is the most outbox entries one write carries.
const batchSize = 256

// Mount mounts the transport's endpoint (GET Path) on m.
func Mount(m transports.Mux, srv *transports.Server) error {
	m.HandleGet(Path, Handler(srv))
	return nil
}

// Handler serves GET /api/stream?session=S&after=N.
func Handler(srv *transports.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, after, ok := srv.SessionRequest(w, r, "")
		if !ok {
			return
		}
		cur, err := sess.Attach(chat.AttachOptions{After: after, Heartbeat: true})
		if err != nil {
			transports.WriteError(w, "", err)
			return
		}
		defer cur.Detach()
		ctx, stop := transports.MergeCancel(r.Context(), srv.Context())
		defer stop()

		h := w.Header()
		h.Set("Content-Type", ContentType)
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no")
		h.Set("X-Content-Type-Options", "nosniff")
		rc := http.NewResponseController(w)
		w.WriteHeader(http.StatusOK)
		if rc.Flush() != nil {
			return
		}
		buf := make([]byte, 0, 4096)
		dst := make([]chat.Entry, 0, batchSize)
		for {
			b, err := cur.Next(ctx, dst)
			if err != nil {
				var ce *chat.Error
				if errors.As(err, &ce) {
					env := chat.ErrorEnvelope("", ce)
					_ = write(rc, w, AppendLine(buf[:0], chat.Marshal(&env)))
				}
				return
			}
			buf = AppendBatch(buf[:0], b)
			if write(rc, w, buf) != nil {
				return
			}
			if cap(buf) > 256<<10 {
				buf = make([]byte, 0, 4096) // a burst passed: give the memory back
			}
		}
	})
}

// AppendBatch appends a cursor batch as NDJSON lines: the direct envelopes, the entries in seq
// order, then a ping if one is due.
func AppendBatch(buf []byte, b chat.Batch) []byte {
	for i := range b.Direct {
		buf = AppendLine(buf, chat.Marshal(&b.Direct[i]))
	}
	for _, e := range b.Entries {
		buf = e.AppendJSON(buf)
		buf = append(buf, '\n')
	}
	if b.Ping {
		buf = append(buf, `{"type":"ping"}`+"\n"...)
	}
	return buf
}

func write(rc *http.ResponseController, w http.ResponseWriter, b []byte) error {
	_ = rc.SetWriteDeadline(time.Now().Add(WriteTimeout)) // not supported on every writer: best effort
	if _, err := w.Write(b); err != nil {
		return err
	}
	return rc.Flush()
}
