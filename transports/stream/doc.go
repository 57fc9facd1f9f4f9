// Package stream is the chunked HTTP streaming transport: GET /api/stream?session=S&after=N
// answers an endless NDJSON body (one envelope per line, Content-Type application/x-ndjson),
// and commands go by POST /api/send. One response carries everything the session receives for
// as long as the connection lasts.
//
// Server goroutines: a stream is served by its request's handler goroutine; it waits on the
// session's cursor and writes each batch as one write and one flush, with a write deadline, so a
// dead client costs at most the heartbeat timeout plus WriteTimeout. Client goroutines: the
// Engine's receive loop reads the body; nothing else.
//
// Framing: LineReader splits NDJSON (lines of at most MaxLine, 1 MiB); it is a standalone function
// with a fuzz target. The client skips (and logs) an item that is too long or not a JSON envelope
// and goes on with the stream.
//
// Files: server.go (Mount, Handler), client.go (Client on the shared HTTP client, with this
// transport's framing), ndjson.go (the framing). It imports chat and transports only.
package stream
