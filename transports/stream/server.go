package stream

import (
	"net/http"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// Name is the transport's name.
const Name = "stream"

// Path is the stream's endpoint.
const Path = "/api/stream"

// WriteTimeout bounds one write of a batch to the client.
const WriteTimeout = transports.StreamWriteTimeout

// ContentType is the stream's media type.
const ContentType = "application/x-ndjson"

// Mount mounts the transport's endpoint (GET Path) on m.
func Mount(m transports.Mux, srv *transports.Server) error {
	m.HandleGet(Path, Handler(srv))
	return nil
}

// Handler serves GET /api/stream?session=S&after=N: one NDJSON line per envelope.
func Handler(srv *transports.Server) http.Handler {
	return transports.ServeStream(srv, transports.StreamFormat{
		ContentType:  ContentType,
		Header:       map[string]string{"X-Content-Type-Options": "nosniff"},
		AppendBatch:  AppendBatch,
		AppendDirect: AppendLine,
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
