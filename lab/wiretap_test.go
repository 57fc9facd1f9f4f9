package lab

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
)

// discardConn is a net.Conn whose writes go nowhere.
type discardConn struct{ net.Conn }

func (discardConn) Write(b []byte) (int, error) { return len(b), nil }
func (discardConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(10, 1, 0, 1), Port: 40000} }
func (discardConn) RemoteAddr() net.Addr        { return &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 8080} }

// maskedFrame is a client's text frame (RFC 6455: masked), with a 16-bit length when long.
func maskedFrame(payload []byte, key [4]byte) []byte {
	f := []byte{0x81}
	if len(payload) < 126 {
		f = append(f, 0x80|byte(len(payload)))
	} else {
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(len(payload)))
	}
	f = append(f, key[:]...)
	for i, c := range payload {
		f = append(f, c^key[i%4])
	}
	return f
}

// TestTapUnmasksWebSocketUpstream: the text marker of a WebSocket client's say is found at its
// stream offset although the frame is masked on the wire, however the bytes are split across
// writes; an HTTP request's marker is found as is.
func TestTapUnmasksWebSocketUpstream(t *testing.T) {
	req := []byte("GET /ws?user=u00001 HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nUpgrade: websocket\r\n\r\n")
	say1 := []byte(`{"type":"say","room":"lobby","text":"m17.abcdefg","cid":"m17"}`)
	say2 := []byte(`{"type":"dm","to":"u00002","text":"m4242.` + string(bytes.Repeat([]byte("x"), 200)) + `","cid":"m4242"}`)
	wire := append(append(append([]byte{}, req...), maskedFrame(say1, [4]byte{1, 2, 3, 4})...), maskedFrame(say2, [4]byte{9, 8, 7, 6})...)
	want := map[int32]uint64{
		17:   uint64(len(req) + 6 + bytes.Index(say1, []byte(`m17.`))),
		4242: uint64(len(req) + 6 + len(say1) + 8 + bytes.Index(say2, []byte(`m4242.`))),
	}
	for _, chunk := range []int{1, 3, 7, len(wire)} {
		log := &markLog{on: true}
		tc := newTapConn(discardConn{}, log, 5, 200)
		for i := 0; i < len(wire); i += chunk {
			if _, err := tc.Write(wire[i:min(i+chunk, len(wire))]); err != nil {
				t.Fatal(err)
			}
		}
		got := map[int32]uint64{}
		for _, m := range log.marks {
			if !m.up || m.session != 5 {
				t.Errorf("chunk %d: mark %+v, want upstream of session 5", chunk, m)
			}
			got[m.msg] = m.off
		}
		if len(got) != len(want) || got[17] != want[17] || got[4242] != want[4242] {
			t.Errorf("chunk %d: marks at %v, want %v", chunk, got, want)
		}
	}
}

// TestTapTellsWebSocketByHeader: a connection is a WebSocket by its request head's Upgrade
// header, whatever its path (a peer's /socket.io/ or /connection/websocket), and an HTTP
// connection (a poll's GET, then a POST on the same connection) is scanned as is.
func TestTapTellsWebSocketByHeader(t *testing.T) {
	say := []byte(`42["say",{"room":"r1","text":"m31.abcdefg"}]`)
	post := []byte(`{"type":"say","room":"lobby","text":"m9.abcdefg","cid":"m9"}`)
	poll := []byte("GET /api/poll?session=s1 HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n")
	emu := []byte(`{"session":"s","data":"{\"id\":3,\"publish\":{\"channel\":\"room:r\",\"data\":{\"text\":\"m7.abc\"}}}"}`)
	postReq := []byte("POST /api/send HTTP/1.1\r\nHost: 10.0.0.1\r\nContent-Length: 63\r\n\r\n")
	for _, tc := range []struct {
		name string
		wire []byte
		msg  int32
		off  uint64
	}{
		{"socket.io websocket", append([]byte("GET /socket.io/?EIO=4&transport=websocket&sid=x HTTP/1.1\r\nhost: h\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n"), maskedFrame(say, [4]byte{7, 7, 1, 2})...),
			31, uint64(len("GET /socket.io/?EIO=4&transport=websocket&sid=x HTTP/1.1\r\nhost: h\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n") + 6 + bytes.Index(say, []byte("m31.")))},
		{"poll then post", append(append(append([]byte{}, poll...), postReq...), post...),
			9, uint64(len(poll) + len(postReq) + bytes.Index(post, []byte("m9.")))},
		{"post first", append(append([]byte{}, postReq...), post...),
			9, uint64(len(postReq) + bytes.Index(post, []byte("m9.")))},
		{"escaped in a JSON string", append(append([]byte{}, postReq...), emu...),
			7, uint64(len(postReq) + bytes.Index(emu, []byte("m7.")))},
	} {
		for _, chunk := range []int{1, 5, len(tc.wire)} {
			log := &markLog{on: true}
			c := newTapConn(discardConn{}, log, 2, 100)
			for i := 0; i < len(tc.wire); i += chunk {
				if _, err := c.Write(tc.wire[i:min(i+chunk, len(tc.wire))]); err != nil {
					t.Fatal(err)
				}
			}
			if len(log.marks) != 1 || log.marks[0].msg != tc.msg || log.marks[0].off != tc.off {
				t.Errorf("%s, chunk %d: marks %+v, want one of message %d at %d", tc.name, chunk, log.marks, tc.msg, tc.off)
			}
		}
	}
}
