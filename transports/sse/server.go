package sse

import (
	"net/http"
	"strconv"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// Name is the transport's name.
const Name = "sse"

// Path is the event stream's endpoint.
const Path = "/api/sse"

// WriteTimeout bounds one write of a batch to the client.
const WriteTimeout = transports.StreamWriteTimeout

// ContentType is the event stream's media type.
const ContentType = "text/event-stream"

// RetryMillis is the reconnection delay the stream asks browsers for.
const RetryMillis = 1000

// Mount mounts the transport's endpoint (GET Path) on m.
func Mount(m transports.Mux, srv *transports.Server) error {
	m.HandleGet(Path, Handler(srv))
	return nil
}

// Handler serves GET /api/sse?session=S[&after=N]; a Last-Event-ID header wins over after. The
// stream opens with the retry field; every entry is an event whose id is its seq.
func Handler(srv *transports.Server) http.Handler {
	return transports.ServeStream(srv, transports.StreamFormat{
		ContentType:  ContentType,
		AfterHeader:  "Last-Event-ID",
		Preamble:     []byte("retry: " + strconv.Itoa(RetryMillis) + "\n\n"),
		AppendBatch:  AppendBatch,
		AppendDirect: func(buf, env []byte) []byte { return AppendEvent(buf, 0, false, env) },
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
