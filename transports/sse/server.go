package sse

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// Name is the transport's name.
const Name = transports.SSE

// Path is the event stream's endpoint.
const Path = "/api/sse"

// WriteTimeout bounds one write of a batch to the client.
const WriteTimeout = 10 * time.Second

// ContentType is the event stream's media type.
const ContentType = "text/event-stream"

// RetryMillis is the reconnection delay the stream asks browsers for.
const RetryMillis = 1000

const batchSize = 256

// Mount mounts the transport's endpoint (GET Path) on m.
func Mount(m transports.Mux, srv *transports.Server) error {
	m.HandleGet(Path, Handler(srv))
	return nil
}

// Handler serves GET /api/sse?session=S[&after=N]; a Last-Event-ID header wins over after.
func Handler(srv *transports.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, after, ok := srv.SessionRequest(w, r, "Last-Event-ID")
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
		rc := http.NewResponseController(w)
		w.WriteHeader(http.StatusOK)
		buf := make([]byte, 0, 4096)
		buf = append(buf, "retry: "...)
		buf = strconv.AppendUint(buf, RetryMillis, 10)
		buf = append(buf, "\n\n"...)
		if write(rc, w, buf) != nil {
			return
		}
		dst := make([]chat.Entry, 0, batchSize)
		for {
			b, err := cur.Next(ctx, dst)
			if err != nil {
				var ce *chat.Error
				if errors.As(err, &ce) {
					env := chat.ErrorEnvelope("", ce)
					_ = write(rc, w, AppendEvent(buf[:0], 0, false, chat.Marshal(&env)))
				}
				return
			}
			buf = AppendBatch(buf[:0], b)
			if write(rc, w, buf) != nil {
				return
			}
			if cap(buf) > 256<<10 {
				buf = make([]byte, 0, 4096)
			}
		}
	})
}

// AppendBatch appends a cursor batch as events: the direct envelopes (no id), the entries
// (id = seq), then a ping (no id) if one is due. Envelope JSON holds no raw line end, so each
// event is one id line, one data line and a blank line.
func AppendBatch(buf []byte, b chat.Batch) []byte {
	for i := range b.Direct {
		buf = AppendEvent(buf, 0, false, chat.Marshal(&b.Direct[i]))
	}
	for _, e := range b.Entries {
		buf = append(buf, "id: "...)
		buf = strconv.AppendUint(buf, e.Seq, 10)
		buf = append(buf, "\ndata: "...)
		buf = e.AppendJSON(buf)
		buf = append(buf, "\n\n"...)
	}
	if b.Ping {
		buf = append(buf, "data: {\"type\":\"ping\"}\n\n"...)
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
