package websocket_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/server"
)

// The cases of the Autobahn TestSuite's sections 1-7 (framing, pings and pongs, reserved bits,
// opcodes, fragmentation, UTF-8, the close handshake), played against the server by a raw
// client that writes its own frames. The server is a chat, not an echo server: where Autobahn
// expects a message echoed, the client sends a `say` to the lobby and waits for the server to
// deliver it back to the same session (the sender's tab is in the lobby too).

// Opcodes and bits of RFC 6455 section 5.2, as the client writes them.
const (
	fin    = 0x80
	rsv1   = 0x40
	rsv2   = 0x20
	rsv3   = 0x10
	opCont = 0x0
	opText = 0x1
	opBin  = 0x2
	opClos = 0x8
	opPing = 0x9
	opPong = 0xA
)

// wire is a raw WebSocket client on a TCP connection.
type wire struct {
	t   *testing.T
	nc  *net.TCPConn
	br  *bufio.Reader
	key byte // varies the masking key from frame to frame
}

// dial opens /ws?user=user with a handshake written by hand and reads the welcome.
func (l *lab) dial(t *testing.T, user string) *wire {
	t.Helper()
	host := strings.TrimPrefix(l.base, "http://")
	c, err := net.DialTimeout("tcp", host, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w := &wire{t: t, nc: c.(*net.TCPConn), br: bufio.NewReader(c)}
	_ = c.SetDeadline(time.Now().Add(wait))
	fmt.Fprintf(c, "GET /ws?user=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", user, host)
	resp, err := http.ReadResponse(w.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 6455 section 1.3's example key and its accept value.
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("handshake: %s %v", resp.Status, resp.Header)
	}
	f := w.read()
	var e chat.Envelope
	if f.op != opText || json.Unmarshal(f.payload, &e) != nil || e.Type != chat.TypeWelcome {
		t.Fatalf("first frame: op %d %q, want the welcome", f.op, f.payload)
	}
	return w
}

// frame encodes one masked client frame; b0 holds FIN, the RSV bits and the opcode.
func (w *wire) frame(b0 byte, payload []byte) []byte {
	w.key++
	key := [4]byte{w.key, 0x5a, ^w.key, 0xc3}
	var b []byte
	switch n := len(payload); {
	case n < 126:
		b = append(b, b0, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, b0, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, b0, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i&3])
	}
	return b
}

// send writes frames in one write; chop > 0 writes them chop bytes at a time instead.
func (w *wire) send(chop int, frames ...[]byte) {
	w.t.Helper()
	b := bytes.Join(frames, nil)
	_ = w.nc.SetWriteDeadline(time.Now().Add(wait))
	if chop <= 0 {
		chop = len(b)
	}
	for len(b) > 0 {
		n := min(chop, len(b))
		if _, err := w.nc.Write(b[:n]); err != nil {
			w.t.Fatalf("write: %v", err)
		}
		b = b[n:]
	}
}

// serverFrame is one frame from the server.
type serverFrame struct {
	fin     bool
	op      byte
	payload []byte
}

// readFrame reads one server frame; a server frame must be unmasked and use no reserved bits.
func (w *wire) readFrame() (serverFrame, error) {
	_ = w.nc.SetReadDeadline(time.Now().Add(wait))
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		return serverFrame{}, err
	}
	if h[0]&0x70 != 0 || h[1]&0x80 != 0 {
		return serverFrame{}, fmt.Errorf("server frame header % x: reserved bits or a mask", h)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(w.br, ext[:]); err != nil {
			return serverFrame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(w.br, ext[:]); err != nil {
			return serverFrame{}, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if n > 1<<24 {
		return serverFrame{}, fmt.Errorf("server frame of %d bytes", n)
	}
	f := serverFrame{fin: h[0]&0x80 != 0, op: h[0] & 0x0f, payload: make([]byte, n)}
	_, err := io.ReadFull(w.br, f.payload)
	return f, err
}

func (w *wire) read() serverFrame {
	w.t.Helper()
	f, err := w.readFrame()
	if err != nil {
		w.t.Fatalf("reading a frame: %v", err)
	}
	return f
}

// next reads frames up to the next one that is not text, or up to a text frame whose envelope
// satisfies stop (true). Envelopes come at any time (presence, ok, msg): others are skipped.
func (w *wire) next(stop func(chat.Envelope) bool) (serverFrame, bool) {
	w.t.Helper()
	for {
		f := w.read()
		if f.op != opText {
			return f, false
		}
		var e chat.Envelope
		if err := json.Unmarshal(f.payload, &e); err != nil {
			w.t.Fatalf("text frame %q is not an envelope: %v", f.payload, err)
		}
		if stop != nil && stop(e) {
			return f, true
		}
	}
}

// control reads frames up to the next control frame.
func (w *wire) control() serverFrame {
	w.t.Helper()
	f, _ := w.next(nil)
	return f
}

// echoed waits until the server has delivered a msg with the text back to this session: the
// message was read whole.
func (w *wire) echoed(text string) {
	w.t.Helper()
	if f, ok := w.next(func(e chat.Envelope) bool { return e.Type == chat.TypeMsg && e.Text == text }); !ok {
		w.t.Fatalf("waiting for the message %.40q: a frame of op %d: %q", text, f.op, f.payload)
	}
}

// errorEnvelope waits for an error envelope with the code.
func (w *wire) errorEnvelope(code string) {
	w.t.Helper()
	if f, ok := w.next(func(e chat.Envelope) bool { return e.Type == chat.TypeError && e.Code == code }); !ok {
		w.t.Fatalf("waiting for error %s: a frame of op %d: %q", code, f.op, f.payload)
	}
}

// pong waits for a pong with the payload.
func (w *wire) pong(payload []byte) {
	w.t.Helper()
	f := w.control()
	if f.op != opPong || !bytes.Equal(f.payload, payload) {
		w.t.Fatalf("got a frame of op %d with %d bytes %.20q, want a pong with %d bytes", f.op, len(f.payload), f.payload, len(payload))
	}
}

// closed waits for the server's close frame with the status code (0: a close frame without
// one) and checks that nothing follows it: the next read is the end of the connection. answer
// says the server started the close: the client answers it, and half-closes the connection
// as a client that is done does.
func (w *wire) closed(code int, answer bool) {
	w.t.Helper()
	f := w.control()
	if f.op != opClos {
		w.t.Fatalf("got a frame of op %d %q, want a close frame with status %d", f.op, f.payload, code)
	}
	switch {
	case code == 0 && len(f.payload) != 0:
		w.t.Fatalf("close frame %q, want one without a status", f.payload)
	case code != 0 && (len(f.payload) < 2 || int(binary.BigEndian.Uint16(f.payload)) != code):
		w.t.Fatalf("close frame % x (%q), want status %d", f.payload, f.payload, code)
	}
	if answer {
		w.send(0, w.frame(fin|opClos, f.payload[:2]))
		_ = w.nc.CloseWrite()
	}
	if f, err := w.readFrame(); err != io.EOF {
		w.t.Fatalf("after the close frame: %v (op %d %q), want the end of the connection", err, f.op, f.payload)
	}
}

// cids numbers the says: a say with a cid the session has seen is a retry, answered and not
// delivered again.
var cids atomic.Int64

// say is a say envelope to the lobby with the text written as is (it may be invalid UTF-8),
// always as long as its text plus len(say("")).
func say(text string) []byte {
	return fmt.Appendf(nil, `{"type":"say","room":"lobby","cid":"%08d","text":"%s"}`, cids.Add(1)%1e8, text)
}

// sayN is a say envelope of exactly n bytes, and its text.
func sayN(n int) ([]byte, string) {
	text := strings.Repeat("*", n-len(say("")))
	return say(text), text
}

func closePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// split cuts b into n pieces of about equal length (the last ones may be empty).
func split(b []byte, n int) [][]byte {
	size := (len(b) + n - 1) / n
	out := make([][]byte, n)
	for i := range out {
		k := min(size, len(b))
		out[i], b = b[:k], b[k:]
	}
	return out
}

// fragments encodes b as a message of op in frames of the pieces, with extra frames (pings)
// written before the fragment of the same index.
func (w *wire) fragments(op byte, pieces [][]byte, between map[int][]byte) []byte {
	var out []byte
	for i, p := range pieces {
		out = append(out, between[i]...)
		b0 := byte(opCont)
		if i == 0 {
			b0 = op
		}
		if i == len(pieces)-1 {
			b0 |= fin
		}
		out = append(out, w.frame(b0, p)...)
	}
	return out
}

func TestRFC6455(t *testing.T) {
	l := start(t, server.Config{})
	sizes := []int{len(say("x")), 125, 126, 127, 128, 65535, 65536} // the shortest say has a 1-byte text
	type tc struct {
		name string
		run  func(w *wire)
	}
	cases := []tc{
		// 1: framing. Text and binary messages of the lengths around each length encoding,
		// written at once and in chops.
		{"1.1.8 text of 65536 bytes in chops of 997", func(w *wire) {
			m, text := sayN(65536)
			w.send(997, w.frame(fin|opText, m))
			w.echoed(text)
		}},
		{"1.2.8 binary of 65536 bytes in chops of 997", func(w *wire) {
			m, text := sayN(65536)
			w.send(997, w.frame(fin|opBin, m))
			w.echoed(text)
		}},
		{"1.1.1 empty text message", func(w *wire) {
			w.send(0, w.frame(fin|opText, nil))
			w.errorEnvelope(chat.CodeBadJSON) // not an envelope, but read and answered
			m, text := sayN(200)
			w.send(0, w.frame(fin|opText, m))
			w.echoed(text)
		}},

		// 2: pings and pongs.
		{"2.1 ping without payload", func(w *wire) { w.send(0, w.frame(fin|opPing, nil)); w.pong(nil) }},
		{"2.2 ping with text payload", func(w *wire) {
			w.send(0, w.frame(fin|opPing, []byte("Hello, world!")))
			w.pong([]byte("Hello, world!"))
		}},
		{"2.3 ping with binary payload", func(w *wire) {
			p := []byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff}
			w.send(0, w.frame(fin|opPing, p))
			w.pong(p)
		}},
		{"2.4 ping with 125 bytes", func(w *wire) {
			p := bytes.Repeat([]byte{0xfe}, 125)
			w.send(0, w.frame(fin|opPing, p))
			w.pong(p)
		}},
		{"2.5 ping with 126 bytes", func(w *wire) {
			w.send(0, w.frame(fin|opPing, bytes.Repeat([]byte{0xfe}, 126)))
			w.closed(1002, true)
		}},
		{"2.6 ping with 125 bytes in chops of 1", func(w *wire) {
			p := bytes.Repeat([]byte{0xfe}, 125)
			w.send(1, w.frame(fin|opPing, p))
			w.pong(p)
		}},
		{"2.7 unsolicited pong", func(w *wire) {
			w.send(0, w.frame(fin|opPong, nil), w.frame(fin|opPing, []byte("after")))
			w.pong([]byte("after")) // the pong was ignored: the first frame back answers the ping
		}},
		{"2.8 unsolicited pong with payload", func(w *wire) {
			w.send(0, w.frame(fin|opPong, []byte("unsolicited")), w.frame(fin|opPing, []byte("after")))
			w.pong([]byte("after"))
		}},
		{"2.10 ten pings", func(w *wire) {
			var frames [][]byte
			for i := range 10 {
				frames = append(frames, w.frame(fin|opPing, []byte(fmt.Sprint("ping ", i))))
			}
			w.send(0, frames...)
			for i := range 10 {
				w.pong([]byte(fmt.Sprint("ping ", i)))
			}
		}},
		{"2.11 ten pings in chops of 1", func(w *wire) {
			var frames [][]byte
			for i := range 10 {
				frames = append(frames, w.frame(fin|opPing, []byte(fmt.Sprint("ping ", i))))
			}
			w.send(1, frames...)
			for i := range 10 {
				w.pong([]byte(fmt.Sprint("ping ", i)))
			}
		}},

		// 3: reserved bits (no extension is negotiated).
		{"3.1 RSV1 on text", func(w *wire) { w.send(0, w.frame(fin|rsv1|opText, say("x"))); w.closed(1002, true) }},
		{"3.2 text, then RSV2 on text, then ping", func(w *wire) {
			m, text := sayN(300)
			w.send(0, w.frame(fin|opText, m))
			w.echoed(text)
			w.send(0, w.frame(fin|rsv2|opText, say("y")), w.frame(fin|opPing, nil))
			w.closed(1002, true) // and no pong
		}},
		{"3.3 RSV1|RSV2 on text", func(w *wire) { w.send(0, w.frame(fin|rsv1|rsv2|opText, say("x"))); w.closed(1002, true) }},
		{"3.4 RSV3 on text in chops of 1", func(w *wire) { w.send(1, w.frame(fin|rsv3|opText, say("x"))); w.closed(1002, true) }},
		{"3.5 RSV1|RSV3 on binary", func(w *wire) { w.send(0, w.frame(fin|rsv1|rsv3|opBin, say("x"))); w.closed(1002, true) }},
		{"3.6 RSV2|RSV3 on ping", func(w *wire) { w.send(0, w.frame(fin|rsv2|rsv3|opPing, nil)); w.closed(1002, true) }},
		{"3.7 all RSV bits on close", func(w *wire) {
			w.send(0, w.frame(fin|rsv1|rsv2|rsv3|opClos, closePayload(1000, "")))
			w.closed(1002, true)
		}},

		// 5: fragmentation.
		{"5.1 ping in 2 fragments", func(w *wire) {
			w.send(0, w.frame(opPing, []byte("frag")), w.frame(fin|opCont, []byte("ment")))
			w.closed(1002, true)
		}},
		{"5.2 pong in 2 fragments", func(w *wire) {
			w.send(0, w.frame(opPong, []byte("frag")), w.frame(fin|opCont, []byte("ment")))
			w.closed(1002, true)
		}},
		{"5.3 text in 2 fragments", func(w *wire) {
			m, text := sayN(200)
			w.send(0, w.fragments(opText, split(m, 2), nil))
			w.echoed(text)
		}},
		{"5.5 text in 2 fragments in chops of 1", func(w *wire) {
			m, text := sayN(200)
			w.send(1, w.fragments(opText, split(m, 2), nil))
			w.echoed(text)
		}},
		{"5.6 text in 2 fragments, a ping between them", func(w *wire) {
			m, text := sayN(200)
			w.send(0, w.fragments(opText, split(m, 2), map[int][]byte{1: w.frame(fin|opPing, []byte("between"))}))
			w.pong([]byte("between"))
			w.echoed(text)
		}},
		{"5.8 text in 2 fragments, a ping between them, in chops of 1", func(w *wire) {
			m, text := sayN(200)
			w.send(1, w.fragments(opText, split(m, 2), map[int][]byte{1: w.frame(fin|opPing, []byte("between"))}))
			w.pong([]byte("between"))
			w.echoed(text)
		}},
		{"5.9 a final continuation without a message, then a text message", func(w *wire) {
			w.send(0, w.frame(fin|opCont, []byte("fragment")), w.frame(fin|opText, say("x")))
			w.closed(1002, true)
		}},
		{"5.12 a continuation without a message, then a text message", func(w *wire) {
			w.send(0, w.frame(opCont, []byte("fragment")), w.frame(fin|opText, say("x")))
			w.closed(1002, true)
		}},
		// Autobahn sends the good message and the bad frames at once and expects the echo
		// before the close. Here the message comes back through the session's outbox, written
		// by another goroutine than the reader that closes: the close may overtake it (it stays
		// in the outbox for a resume). So the client waits for it before the bad frames.
		{"5.15 text in 2 fragments, then a continuation, then text", func(w *wire) {
			m, text := sayN(200)
			w.send(0, w.fragments(opText, split(m, 2), nil))
			w.echoed(text)
			w.send(0, w.frame(opCont, []byte("fragment3")), w.frame(fin|opText, say("x")))
			w.closed(1002, true)
		}},
		{"5.17 a second text frame inside a message", func(w *wire) {
			w.send(0, w.frame(opText, []byte("frag")), w.frame(fin|opText, []byte("ment")))
			w.closed(1002, true)
		}},
		{"5.19 text in 5 fragments, pings after the 1st and the 4th", func(w *wire) {
			m, text := sayN(500)
			w.send(0, w.fragments(opText, split(m, 5), map[int][]byte{1: w.frame(fin|opPing, []byte("pongme 1!")), 4: w.frame(fin|opPing, []byte("pongme 2!"))}))
			w.pong([]byte("pongme 1!"))
			w.pong([]byte("pongme 2!"))
			w.echoed(text)
		}},
		{"5.x binary in 3 fragments, one empty", func(w *wire) {
			m, text := sayN(300)
			w.send(0, w.fragments(opBin, [][]byte{m[:100], nil, m[100:]}, nil))
			w.echoed(text)
		}},

		// 7: the close handshake.
		{"7.1.1 text, then close", func(w *wire) {
			m, text := sayN(200)
			w.send(0, w.frame(fin|opText, m))
			w.echoed(text) // as in 5.15
			w.send(0, w.frame(fin|opClos, closePayload(1000, "")))
			w.closed(1000, false)
		}},
		{"7.1.2 close twice", func(w *wire) {
			w.send(0, w.frame(fin|opClos, closePayload(1000, "")), w.frame(fin|opClos, closePayload(1000, "")))
			w.closed(1000, false)
		}},
		{"7.1.3 close, then ping", func(w *wire) {
			w.send(0, w.frame(fin|opClos, closePayload(1000, "")), w.frame(fin|opPing, []byte("too late")))
			w.closed(1000, false) // no pong after it
		}},
		{"7.1.4 close, then text", func(w *wire) {
			w.send(0, w.frame(fin|opClos, closePayload(1000, "")), w.frame(fin|opText, say("too late")))
			w.closed(1000, false)
		}},
		{"7.1.5 a fragment, close, then the last fragment", func(w *wire) {
			w.send(0, w.frame(opText, []byte(`{"type":`)), w.frame(fin|opClos, closePayload(1000, "")), w.frame(fin|opCont, []byte(`"who"}`)))
			w.closed(1000, false)
		}},
		{"7.3.1 close without payload", func(w *wire) { w.send(0, w.frame(fin|opClos, nil)); w.closed(0, false) }},
		{"7.3.2 close with 1 byte", func(w *wire) { w.send(0, w.frame(fin|opClos, []byte{0x03})); w.closed(1002, true) }},
		{"7.3.4 close with a reason", func(w *wire) {
			w.send(0, w.frame(fin|opClos, closePayload(1000, "Hello World!")))
			w.closed(1000, false)
		}},
		{"7.3.5 close with a 123-byte reason", func(w *wire) {
			w.send(0, w.frame(fin|opClos, closePayload(1000, strings.Repeat("*", 123))))
			w.closed(1000, false)
		}},
		{"7.3.6 close with a 124-byte reason", func(w *wire) {
			w.send(0, w.frame(fin|opClos, closePayload(1000, strings.Repeat("*", 124))))
			w.closed(1002, true)
		}},
		{"7.5.1 close reason not UTF-8", func(w *wire) {
			w.send(0, w.frame(fin|opClos, closePayload(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64")))
			w.closed(1007, true)
		}},
	}

	for _, n := range sizes {
		cases = append(cases, tc{fmt.Sprintf("1.1 text of %d bytes", n), func(w *wire) {
			m, text := sayN(n)
			w.send(0, w.frame(fin|opText, m))
			w.echoed(text)
		}}, tc{fmt.Sprintf("1.2 binary of %d bytes", n), func(w *wire) {
			m, text := sayN(n)
			w.send(0, w.frame(fin|opBin, m))
			w.echoed(text)
		}})
	}
	// 4: reserved opcodes, data (3-7) and control (11-15), alone and after a message.
	for _, op := range []byte{3, 4, 5, 6, 7, 11, 12, 13, 14, 15} {
		cases = append(cases, tc{fmt.Sprintf("4 opcode %d", op), func(w *wire) {
			w.send(0, w.frame(fin|op, nil))
			w.closed(1002, true)
		}}, tc{fmt.Sprintf("4 text, then opcode %d with a payload, then ping", op), func(w *wire) {
			m, text := sayN(200)
			w.send(0, w.frame(fin|opText, m))
			w.echoed(text)
			w.send(0, w.frame(fin|op, []byte("reserved")), w.frame(fin|opPing, nil))
			w.closed(1002, true)
		}})
	}
	// 7.7, 7.9, 7.13: the status codes a client may send are echoed; the others fail.
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		cases = append(cases, tc{fmt.Sprintf("7.7 close %d", code), func(w *wire) {
			w.send(0, w.frame(fin|opClos, closePayload(code, "")))
			w.closed(code, false)
		}})
	}
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cases = append(cases, tc{fmt.Sprintf("7.9 close %d", code), func(w *wire) {
			w.send(0, w.frame(fin|opClos, closePayload(code, "")))
			w.closed(1002, true)
		}})
	}

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(l.dial(t, fmt.Sprint("rfc", i)))
		})
	}
}

// Section 6: a text message must be UTF-8. Valid ones arrive (sent whole and a byte per
// fragment, which splits every rune); invalid ones close the connection with 1007, and a
// fragmented one fails at the first fragment that cannot be the start of UTF-8 (Autobahn's
// "fail fast"), before the rest of the message is sent.
func TestRFC6455UTF8(t *testing.T) {
	l := start(t, server.Config{})
	valid := []string{
		"Hello-µ@ßöäüàá-UTF-8!!",
		"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", // κόσμε
		"\xc2\x80", "\xe0\xa0\x80", "\xf0\x90\x80\x80", // the first rune of each length
		"\x7f", "\xdf\xbf", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", // the last
		"\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbd", // around the surrogates, and U+FFFD itself
		"\xef\xbb\xbf", "\xef\xbf\xbe", // a BOM, a noncharacter
	}
	invalid := []string{
		"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64", // a surrogate in κόσμε
		"\x80", "\xbf", "\x80\xbf\x80", // continuation bytes alone
		"\xc0 ", "\xe0\x80 ", "\xdf", // beginnings without their continuations
		"\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xc1\xbf", // overlong forms
		"\xed\xa0\x80", "\xed\xbf\xbf", "\xed\xa0\x80\xed\xb0\x80", // surrogates
		"\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf8\x88\x80\x80\x80", // beyond U+10FFFF
		"\xfe", "\xff", "\xfe\xfe\xff\xff",
	}
	i := 0
	user := func() string { i++; return fmt.Sprint("utf", i) }
	for _, s := range valid {
		t.Run(fmt.Sprintf("valid %q", s), func(t *testing.T) {
			w := l.dial(t, user())
			w.send(0, w.frame(fin|opText, say(s)))
			w.echoed(s)
			m := say(s + "|split")
			w.send(0, w.fragments(opText, split(m, len(m)), nil)) // a byte per fragment
			w.echoed(s + "|split")
		})
	}
	for _, s := range invalid {
		t.Run(fmt.Sprintf("invalid %q", s), func(t *testing.T) {
			w := l.dial(t, user())
			w.send(0, w.frame(fin|opText, say(s)))
			w.closed(1007, true)
		})
		t.Run(fmt.Sprintf("invalid %q fails fast", s), func(t *testing.T) {
			w := l.dial(t, user())
			// The fragment ends with the bad bytes and a few more; the message never ends.
			w.send(0, w.frame(opText, []byte(`{"type":"say","text":"`+s+`  `)))
			w.closed(1007, true)
		})
	}
	t.Run("a rune split between fragments, then invalid", func(t *testing.T) {
		w := l.dial(t, user())
		w.send(0, w.frame(opText, []byte(`{"text":"\xed`))) // can begin U+D000-U+D7FF
		w.send(0, w.frame(opCont, []byte("\xa0\x80")))      // a surrogate: fails here
		w.closed(1007, true)
	})
	t.Run("a message ending inside a rune", func(t *testing.T) {
		w := l.dial(t, user())
		w.send(0, w.frame(opText, []byte(`{"text":"x"}`)), w.frame(fin|opCont, []byte("\xe2\x82")))
		w.closed(1007, true)
	})
	t.Run("binary messages are not checked", func(t *testing.T) {
		w := l.dial(t, user())
		w.send(0, w.frame(fin|opBin, []byte("\xff not json")))
		w.errorEnvelope(chat.CodeBadJSON)
	})
}

// After the server closes for a bad message it read whole, it reads on for the client's close
// frame and then ends the connection itself (the client need not end it first).
func TestRFC6455CloseAfterBadText(t *testing.T) {
	l := start(t, server.Config{})
	w := l.dial(t, "bad")
	began := time.Now()
	w.send(0, w.frame(fin|opText, say("\xff")))
	f := w.control()
	if f.op != opClos || len(f.payload) < 2 || binary.BigEndian.Uint16(f.payload) != 1007 {
		t.Fatalf("got op %d %q, want close 1007", f.op, f.payload)
	}
	// Pings and messages between the server's close and the client's are not answered.
	w.send(0, w.frame(fin|opPing, nil), w.frame(fin|opText, say("late")), w.frame(fin|opClos, f.payload[:2]))
	if f, err := w.readFrame(); err != io.EOF {
		t.Fatalf("after the client's close: %v (op %d %q), want the end of the connection", err, f.op, f.payload)
	}
	// Had the server waited for the client to end the connection, it would have ended it only
	// when its wait for the client's close (closeWait, 2 s) ran out.
	if took := time.Since(began); took >= 2*time.Second {
		t.Fatalf("the connection ended %v after the bad message: the server did not end it on the client's close", took)
	}
}
