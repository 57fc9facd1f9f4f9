// Package websocket is the WebSocket transport (gorilla/websocket): GET /ws?user=U opens a
// session, GET /ws?user=U&session=S&after=N resumes one. Every envelope travels in its own text
// frame, in both directions. The server's first frame is always the welcome
// {"type":"welcome","session":S,"user":U}, then the session's outbox after N.
//
// # Server goroutines
//
// gorilla/websocket does the handshake (Upgrader, on net/http's buffers) and the handler writes
// the welcome; after that the connection's frames are read and written here, because that is
// where the memory and the CPU per connection go. The handler returns (so net/http lets go of its
// buffers) and the connection costs two goroutines, both tracked by transports.Server so that
// server shutdown waits for them:
//
//   - the reader (frameReader: a 128-byte buffer, client frames checked as RFC 6455 says, a text
//     message's UTF-8 fragment by fragment, pings answered with pongs, a message over
//     Limits.FrameLimit closed with 1009, bad UTF-8 with 1007, any other breach with 1002)
//     hands each envelope to the chat core. rfc6455_test.go plays the Autobahn TestSuite's
//     cases of sections 1-7 against the server with a raw client;
//   - the writer drains the session's cursor. It encodes a whole batch of envelopes, one frame
//     each, into one pooled buffer and writes it with one system call, so a connection that
//     falls behind catches up in a few large writes; the buffer goes back to the pool after
//     every write, so an idle connection holds none. After each write it yields, so that with
//     many busy connections every writer gets its turn in order (Go's scheduler otherwise
//     starves some of them for hundreds of milliseconds).
//
// Everything both goroutines need is allocated before they start, so that they wait on the
// smallest (2 KiB) stacks: an idle connection costs about 4.6 KiB of stack and 2.9 KiB of heap
// (BenchmarkIdleConnMemory). Only one close frame goes out per connection, whichever side ends
// it, and nothing after it: both goroutines write under one mutex that knows whether it has.
//
// Errors in client envelopes are answered with error envelopes and the connection goes on; a
// message larger than Limits.FrameLimit closes it with status 1009 (message too big). When the
// core ends the connection (slow_consumer, heartbeat_timeout, replaced, shutdown) the writer
// sends the error envelope and a close frame; the client resumes with after=N.
//
// # Client
//
// Client is the shared transports.Engine on a gorilla dialer whose TCP comes from
// Options.Dial. One goroutine reads; sends and pongs are written under a mutex (gorilla allows
// one concurrent writer).
package websocket
