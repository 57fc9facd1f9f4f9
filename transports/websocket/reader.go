package websocket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
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
	closeBadData       = 1007 // a text message (or close reason) that is not UTF-8
	closeTooBig        = 1009
	closeTryAgainLater = 1013
)

// errClosed is returned by readMessage when the client sent a valid close frame; the frame's
// status code is in frameReader.closeCode.
var errClosed = errors.New("websocket: the client closed the connection")

// validCloseCode reports whether a client may send code in a close frame (RFC 6455 section
// 7.4 and the IANA registry): the defined codes except those reserved for reporting a missing
// status (1005), an abnormal closure (1006) and a TLS failure (1015), and the 3000-4999 range
// for libraries and applications. 1004 is reserved, 1016-2999 unassigned.
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	}
	return code >= 3000 && code <= 4999
}

// protocolError is a frame the server cannot accept; the connection ends with code.
type protocolError struct {
	code int
	text string
	// whole: the frame was read to its end, so the frames after it can still be read (the
	// client's answer to the server's close among them).
	whole bool
}

func (e *protocolError) Error() string {
	return fmt.Sprintf("websocket: %s (close %d)", e.text, e.code)
}

// frameReader reads client frames (masked, RFC 6455) from a connection: the server's read side.
// It keeps only a small header buffer while it waits, so an idle connection costs little, and it
// runs on a shallow stack. Control frames are handled on the way: a ping is answered with a pong
// through pong, a close ends reading with errClosed.
//
// It checks what RFC 6455 asks a server to check (the cases of the Autobahn TestSuite's
// sections 1-7): masking, reserved bits and opcodes, control frames (final, at most 125 bytes,
// allowed between the fragments of a message), the order of fragments, close frames (empty or
// a valid status code and a UTF-8 reason) and that a text message is UTF-8. A text message is
// checked as its fragments arrive, so a bad one fails at the first fragment that cannot be the
// start of valid UTF-8, not when it ends. Each failure is a *protocolError with the status to
// close with.
type frameReader struct {
	r     io.Reader
	limit int // the largest message; a bigger one is a protocolError with closeTooBig
	pong  func(payload []byte) error

	buf   [128]byte // bytes read but not yet used: buf[off:end]
	off   int
	end   int
	msg   []byte // the message being assembled across continuation frames
	inMsg bool
	text  bool // the message is a text message: its bytes must be UTF-8
	valid int  // msg[:valid] is known to be whole UTF-8 runes

	// closeCode is the status code of the client's close frame once readMessage has returned
	// errClosed (0: the frame had none).
	closeCode int
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
				return nil, &protocolError{code: closeProtocolError, text: "frame length out of range"}
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
			return nil, &protocolError{code: closeProtocolError, text: "reserved bits set (no extension was negotiated)"}
		case !masked:
			return nil, &protocolError{code: closeProtocolError, text: "client frames must be masked"}
		}
		control := op >= opClose
		switch op {
		case opClose, opPing, opPong:
			if !fin {
				return nil, &protocolError{code: closeProtocolError, text: "a control frame must not be fragmented"}
			}
			if n > 125 {
				return nil, &protocolError{code: closeProtocolError, text: fmt.Sprintf("a control frame of %d bytes (at most 125)", n)}
			}
		case opText, opBinary:
			if f.inMsg {
				return nil, &protocolError{code: closeProtocolError, text: "a new message began before the last one ended"}
			}
		case opContinuation:
			if !f.inMsg {
				return nil, &protocolError{code: closeProtocolError, text: "a continuation frame without a message"}
			}
		default:
			return nil, &protocolError{code: closeProtocolError, text: fmt.Sprintf("unknown opcode %d", op)}
		}
		if control {
			var p [125]byte
			if err := f.read(p[:n]); err != nil {
				return nil, err
			}
			unmask(p[:n], key, 0)
			switch op {
			case opClose:
				if err := f.closeFrame(p[:n]); err != nil {
					return nil, err
				}
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
			f.text = op == opText
			f.valid = 0
		}
		if int64(len(f.msg))+n > int64(f.limit) {
			return nil, &protocolError{code: closeTooBig, text: fmt.Sprintf("message over %d bytes", f.limit)}
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
		if f.text {
			if err := f.checkUTF8(fin); err != nil {
				return nil, err
			}
		}
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

// closeFrame checks a close frame's payload: nothing, or a status code a client may send
// followed by a UTF-8 reason. A good one sets closeCode.
func (f *frameReader) closeFrame(p []byte) error {
	switch {
	case len(p) == 0:
		return nil
	case len(p) == 1:
		return &protocolError{code: closeProtocolError, text: "a close frame of 1 byte (a status code takes 2)", whole: true}
	}
	code := int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return &protocolError{code: closeProtocolError, text: fmt.Sprintf("close status %d may not be sent (1000-1003, 1007-1014, 3000-4999)", code), whole: true}
	}
	if !utf8.Valid(p[2:]) {
		return &protocolError{code: closeBadData, text: "the close reason is not UTF-8", whole: true}
	}
	f.closeCode = code
	return nil
}

// checkUTF8 checks the text message's bytes not checked yet. Before the last fragment the
// message may end in the first bytes of a rune still to come, as long as they can begin one.
func (f *frameReader) checkUTF8(fin bool) error {
	rest := f.msg[f.valid:]
	if utf8.Valid(rest) { // the common case: whole runes
		f.valid = len(f.msg)
		return nil
	}
	n, ok := validPrefix(rest)
	if !ok || fin {
		return &protocolError{code: closeBadData, text: "a text message that is not UTF-8", whole: true}
	}
	f.valid += n
	return nil
}

// validPrefix reports whether b is valid UTF-8 but for an unfinished rune at its end whose
// bytes so far can begin a valid one; n is where that rune starts (len(b) if there is none).
func validPrefix(b []byte) (n int, ok bool) {
	for n < len(b) {
		if b[n] < utf8.RuneSelf {
			n++
			continue
		}
		// FullRune is false only for the valid beginning of a rune (it checks the second and
		// third bytes' ranges, so a surrogate's or an overlong form's beginning is "full").
		if !utf8.FullRune(b[n:]) {
			return n, true
		}
		r, size := utf8.DecodeRune(b[n:])
		if r == utf8.RuneError && size == 1 {
			return n, false
		}
		n += size
	}
	return n, true
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
