package websocket

import (
	"sync"

	"github.com/wirelab/wirelab/chat"
)

// WebSocket opcodes and the FIN bit (RFC 6455 section 5.2).
const (
	finText  = 0x80 | 0x1
	finClose = 0x80 | 0x8
)

// appendHeader appends an unmasked (server to client) frame header for a payload of n bytes.
func appendHeader(b []byte, op byte, n int) []byte {
	switch {
	case n < 126:
		return append(b, op, byte(n))
	case n < 1<<16:
		return append(b, op, 126, byte(n>>8), byte(n))
	default:
		return append(b, op, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// appendText appends one text frame holding payload.
func appendText(b, payload []byte) []byte {
	return append(appendHeader(b, finText, len(payload)), payload...)
}

// appendEntry appends one text frame holding an outbox entry, encoded straight into b: the
// length is known up front (the shared payload plus `,"seq":N`), so nothing is copied twice.
func appendEntry(b []byte, e chat.Entry) []byte {
	n := e.P.Size() + len(`,"seq":`) + digits(e.Seq)
	return e.AppendJSON(appendHeader(b, finText, n))
}

// appendClose appends a close frame with a status code and a reason (at most 123 bytes); code 0
// makes a close frame without a payload (the answer to one without a status code).
func appendClose(b []byte, code int, reason string) []byte {
	if code == 0 {
		return appendHeader(b, finClose, 0)
	}
	if len(reason) > 123 {
		reason = reason[:123]
	}
	b = appendHeader(b, finClose, 2+len(reason))
	b = append(b, byte(code>>8), byte(code))
	return append(b, reason...)
}

func digits(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}

// batchBufSize is the starting size of a writer's batch buffer: a full batch of 200-byte
// messages fits without growing.
const batchBufSize = 64 << 10

// bufPool holds batch buffers between writes, so idle connections hold none.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, batchBufSize); return &b }}
