// Package longpoll is the long-polling transport: GET /api/longpoll?session=S&after=N answers at
// once with a JSON array of what the session has after N, or, when there is nothing, holds the
// request until something arrives or ServerOptions.LongPollTimeout passes (then the array is
// empty). Commands go by POST /api/send.
//
// A poll never loses entries: the outbox is the only state, so an answer that does not reach the
// client is sent again when the client asks with the same after.
//
// Server goroutines: none of its own; a held poll is its request's handler goroutine, waiting on
// a cursor it attaches (replacing an earlier one) and detaches when it answers. Client
// goroutines: the Engine's receive loop polls; nothing else.
package longpoll
