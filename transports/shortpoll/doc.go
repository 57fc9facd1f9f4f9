// Package shortpoll is the short-polling transport: the client asks GET /api/poll?session=S&after=N
// every interval and gets a JSON array of whatever is new (often nothing); commands go by
// POST /api/send. It is the simplest transport and the most expensive one on the wire.
//
// Server goroutines: none of its own; a poll is answered at once by its request's handler
// goroutine. Client goroutines: the Engine's receive loop polls; nothing else.
//
// Files: server.go (Mount, Handler), client.go (Client on the shared HTTP client). It imports
// chat and transports only.
package shortpoll
