package websocket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Close status codes the server sends.
const (
	closeNormal        = 1000
	closeGoingAway     = 1001
	closeProtocolError = 1002
	closeTooBig        = 1009
	closeTryAgainLater = 1013
)

// errClosed is returned by readMessage when the client sent a close frame.
var errClosed = errors.New("websocket: the client closed the connection")

// protocolError is a frame the server cannot accept; the connection ends with code.
type protocolError struct {
	code int
	text string
}

func (e *protocolError) Error() string {
	return fmt.Sprintf("websocket: %s (close %d)", e.text, e.code)
}

// frameReader reads client frames (masked, RFC 6455) from a connection: the server's read side.
// It keeps only a small header buffer while it waits, so an idle connection costs little, and it
// runs on a shallow stack. Control frames are handled on the way: a ping is answered with a pong
// through pong, a close ends reading with errClosed.
type frameReader struct {
	r     io.Reader
	limit int // the largest message; a bigger one is a protocolError with closeTooBig
	pong  func(payload []byte) error

	buf   [128]byte // bytes read but not yet used: buf[off:end]
	off   int
	end   int
	msg   []byte // the message being assembled across continuation frames
	inMsg bool
}

// fill makes at least n bytes (n <= len(buf)) available in buf[off:end].
func (f *frameReader) fill(n int) error {
	if f.end-f.off >= n {
		return nil
	}
	if f.off > 0 {
		f.end = copy(f.buf[:], f.buf[f.off:f.end])
		f.off = 0
	}
	for f.end < n {
		m, err := f.r.Read(f.buf[f.end:])
		f.end += m
		if err != nil {
			if f.end >= n {
				return nil
			}
			if err == io.EOF && f.end > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// read copies len(p) bytes of payload into p, from buf first.
func (f *frameReader) read(p []byte) error {
	n := copy(p, f.buf[f.off:f.end])
	f.off += n
	if n < len(p) {
		if _, err := io.ReadFull(f.r, p[n:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// readMessage returns the next text or binary message, unmasked. The slice is valid until the
// next call.
func (f *frameReader) readMessage() ([]byte, error) {
	for {
		if err := f.fill(2); err != nil {
			return nil, err
		}
		b0, b1 := f.buf[f.off], f.buf[f.off+1]
		fin, rsv, op := b0&0x80 != 0, b0&0x70, b0&0x0f
		masked, n := b1&0x80 != 0, int64(b1&0x7f)
		hl := 2
		switch n {
		case 126:
			hl = 4
		case 127:
			hl = 10
		}
		if masked {
			hl += 4
		}
		if err := f.fill(hl); err != nil {
			return nil, err
		}
		h := f.buf[f.off : f.off+hl]
		switch n {
		case 126:
			n = int64(binary.BigEndian.Uint16(h[2:4]))
		case 127:
			u := binary.BigEndian.Uint64(h[2:10])
			if u > 1<<62 {
				return nil, &protocolError{closeProtocolError, "frame length out of range"}
			}
			n = int64(u)
		}
		var key [4]byte
		if masked {
			copy(key[:], h[hl-4:hl])
		}
		f.off += hl
		switch {
		case rsv != 0:
			return nil, &protocolError{closeProtocolError, "reserved bits set (no extension was negotiated)"}
		case !masked:
			return nil, &protocolError{closeProtocolError, "client frames must be masked"}
		}
		control := op >= opClose
		switch op {
		case opClose, opPing, opPong:
			if !fin || n > 125 {
				return nil, &protocolError{closeProtocolError, "a control frame must be final and at most 125 bytes"}
			}
		case opText, opBinary:
			if f.inMsg {
				return nil, &protocolError{closeProtocolError, "a new message began before the last one ended"}
			}
		case opContinuation:
			if !f.inMsg {
				return nil, &protocolError{closeProtocolError, "a continuation frame without a message"}
			}
		default:
			return nil, &protocolError{closeProtocolError, fmt.Sprintf("unknown opcode %d", op)}
		}
		if control {
			var p [125]byte
			if err := f.read(p[:n]); err != nil {
				return nil, err
			}
			unmask(p[:n], key, 0)
			switch op {
			case opClose:
				return nil, errClosed
			case opPing:
				if f.pong != nil {
					if err := f.pong(p[:n]); err != nil {
						return nil, err
					}
				}
			}
			continue
		}
		if !f.inMsg {
			f.msg = f.msg[:0]
			f.inMsg = true
		}
		if int64(len(f.msg))+n > int64(f.limit) {
			return nil, &protocolError{closeTooBig, fmt.Sprintf("message over %d bytes", f.limit)}
		}
		start := len(f.msg)
		if need := start + int(n); need > cap(f.msg) {
			grown := make([]byte, start, max(need, 2*cap(f.msg), 512))
			copy(grown, f.msg)
			f.msg = grown
		}
		f.msg = f.msg[:start+int(n)]
		if err := f.read(f.msg[start:]); err != nil {
			return nil, err
		}
		unmask(f.msg[start:], key, 0)
		if fin {
			f.inMsg = false
			msg := f.msg
			if cap(f.msg) > 512 {
				f.msg = nil // don't hold a big buffer while idle
			}
			return msg, nil
		}
	}
}

// unmask XORs p with the masking key, starting at key offset pos.
func unmask(p []byte, key [4]byte, pos int) {
	for i := range p {
		p[i] ^= key[(pos+i)&3]
	}
}

// appendPong appends a pong frame.
func appendPong(b, payload []byte) []byte {
	return append(appendHeader(b, 0x80|opPong, len(payload)), payload...)
}
