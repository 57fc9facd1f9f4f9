package transports

import (
	"errors"
	"net/http"
	"time"

	"github.com/wirelab/wirelab/chat"
)

// StreamWriteTimeout bounds one write of a batch to a streaming client.
const StreamWriteTimeout = 10 * time.Second

// streamBatchSize is the most outbox entries one write carries.
const streamBatchSize = 256

// StreamFormat is how a streaming transport (chunked NDJSON, server-sent events) frames the
// outbox on its one long response; the rest of serving it is ServeStream's, the same for both.
type StreamFormat struct {
	// ContentType is the response's media type.
	ContentType string
	// AfterHeader names a request header that carries after and wins over the query's (SSE's
	// Last-Event-ID); "" for none.
	AfterHeader string
	// Header holds more response headers.
	Header map[string]string
	// Preamble is written first (SSE's retry field); nil: the headers alone are flushed.
	Preamble []byte
	// AppendBatch appends a cursor batch: its direct envelopes, its entries, a ping if due.
	AppendBatch func(buf []byte, b chat.Batch) []byte
	// AppendDirect appends one envelope (its JSON) that has no seq: the error that ends a stream.
	AppendDirect func(buf, env []byte) []byte
}

// ServeStream serves a streaming transport's GET: the session from the request (SessionRequest),
// then every batch of its outbox as the format frames it, each write flushed and bounded by
// StreamWriteTimeout, until the client goes, the server shuts down, or the session ends with an
// error, which is written as the stream's last envelope.
func ServeStream(srv *Server, f StreamFormat) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, after, ok := srv.SessionRequest(w, r, f.AfterHeader)
		if !ok {
			return
		}
		cur, err := sess.Attach(chat.AttachOptions{After: after, Heartbeat: true})
		if err != nil {
			WriteError(w, "", err)
			return
		}
		defer cur.Detach()
		ctx, stop := MergeCancel(r.Context(), srv.Context())
		defer stop()

		h := w.Header()
		h.Set("Content-Type", f.ContentType)
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no")
		for k, v := range f.Header {
			h.Set(k, v)
		}
		rc := http.NewResponseController(w)
		w.WriteHeader(http.StatusOK)
		buf := make([]byte, 0, 4096)
		if f.Preamble != nil {
			err = writeFlush(rc, w, append(buf, f.Preamble...))
		} else {
			err = rc.Flush()
		}
		if err != nil {
			return
		}
		dst := make([]chat.Entry, 0, streamBatchSize)
		for {
			b, err := cur.Next(ctx, dst)
			if err != nil {
				var ce *chat.Error
				if errors.As(err, &ce) {
					env := chat.ErrorEnvelope("", ce)
					_ = writeFlush(rc, w, f.AppendDirect(buf[:0], chat.Marshal(&env)))
				}
				return
			}
			buf = f.AppendBatch(buf[:0], b)
			if writeFlush(rc, w, buf) != nil {
				return
			}
			if cap(buf) > 256<<10 {
				buf = make([]byte, 0, 4096) // a burst passed: give the memory back
			}
		}
	})
}

func writeFlush(rc *http.ResponseController, w http.ResponseWriter, b []byte) error {
	_ = rc.SetWriteDeadline(time.Now().Add(StreamWriteTimeout)) // not supported on every writer: best effort
	if _, err := w.Write(b); err != nil {
		return err
	}
	return rc.Flush()
}
