// Package sse is the server-sent events transport: GET /api/sse?session=S answers an endless
// text/event-stream; each outbox envelope is one event whose id is its seq and whose data is the
// envelope's JSON, so a browser's EventSource resumes by itself with Last-Event-ID. Envelopes
// without a seq (errors, pings) are events without an id. Commands go by POST /api/send.
//
// Server goroutines: a stream is served by its request's handler goroutine; it waits on the
// session's cursor and writes each batch as one write and one flush, with a write deadline, so a
// dead client costs at most the heartbeat timeout plus WriteTimeout. Client goroutines: the
// Engine's receive loop reads the body; nothing else.
//
// Framing: Parser reads an event stream as the HTML standard says (lines of at most MaxLine, 1
// MiB); it is a standalone function with a fuzz target. The client skips (and logs) an item that
// is too long or not a JSON envelope and goes on with the stream.
//
// Files: server.go (Mount, Handler), client.go (Client on the shared HTTP client, with this
// transport's framing), parser.go (the framing). It imports chat and transports only.
package sse
