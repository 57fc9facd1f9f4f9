package lab

import (
	"bytes"
	"net"
	"net/netip"
	"sync"

	"github.com/wirelab/wirelab/netem"
)

// A wireMark says where the text of one message crossed a TCP connection: on which flow, at which
// stream offset. With the link's drop trace it tells whether a packet that carried the message's
// own bytes was lost (the delay is its own) or not (it was stuck behind another's: head of line).
type wireMark struct {
	session int32
	msg     int32
	up      bool // client to server (the sender's say), else server to client
	flow    netem.Flow
	off     uint64
	n       uint32
}

// markLog collects marks from every tapped connection.
type markLog struct {
	mu    sync.Mutex
	marks []wireMark
	on    bool
}

func (l *markLog) add(m wireMark) {
	l.mu.Lock()
	if l.on {
		l.marks = append(l.marks, m)
	}
	l.mu.Unlock()
}

// tapConn counts stream offsets both ways and records where message texts pass.
type tapConn struct {
	net.Conn
	log       *markLog
	session   int32
	textLen   uint32
	up, down  netem.Flow
	rx, tx    uint64
	rtail     []byte // last bytes read, to find a marker split across reads
	wtail     []byte
	ws        *wsUpstream // a WebSocket client's frames, unmasked (nil unless it sent an upgrade request)
	wsHead    []byte      // the first bytes written, until they tell
	wsChecked bool
}

// wsRequest starts a WebSocket client's upgrade request.
var wsRequest = []byte("GET /ws?")

// textMarker precedes every message text in every transport's JSON.
var textMarker = []byte(`"text":"m`)

const tailKeep = 24

func newTapConn(c net.Conn, log *markLog, session int, textLen int) *tapConn {
	t := &tapConn{Conn: c, log: log, session: int32(session), textLen: uint32(textLen)}
	la, _ := netip.ParseAddrPort(c.LocalAddr().String())
	ra, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	t.up = netem.Flow{Proto: netem.TCP, Src: la, Dst: ra}
	t.down = t.up.Reverse()
	return t
}

func (t *tapConn) Read(b []byte) (int, error) {
	n, err := t.Conn.Read(b)
	if n > 0 {
		t.rtail = t.scan(t.rtail, b[:n], t.rx, false)
		t.rx += uint64(n)
	}
	return n, err
}

func (t *tapConn) Write(b []byte) (int, error) {
	n, err := t.Conn.Write(b)
	if n > 0 {
		if !t.wsChecked {
			// The first bytes written say whether this is a WebSocket upgrade request (until
			// then nothing written can hold a marker).
			t.wsHead = append(t.wsHead, b[:min(n, len(wsRequest)-len(t.wsHead))]...)
			switch {
			case !bytes.HasPrefix(wsRequest, t.wsHead):
				t.wsChecked = true
			case len(t.wsHead) == len(wsRequest):
				t.wsChecked = true
				t.ws = &wsUpstream{}
			}
		}
		switch {
		case t.ws != nil:
			t.ws.feed(t, b[:n], t.tx)
		case t.wsChecked:
			t.wtail = t.scan(t.wtail, b[:n], t.tx, true)
		}
		t.tx += uint64(n)
	}
	return n, err
}

// wsUpstream follows a WebSocket client's side of the connection: the upgrade request, then
// frames whose payload is masked (RFC 6455 5.3), so the text marker is not visible on the wire.
// It unmasks the start of each frame's payload and scans it at the payload's stream offsets.
type wsUpstream struct {
	framing bool   // the upgrade request has been written
	crlf    int    // how much of "\r\n\r\n" ends what the request has written so far
	hdr     []byte // the frame header being read
	key     [4]byte
	left    uint64 // payload bytes of the current frame not yet seen
	pos     uint64 // payload bytes of the current frame seen
	start   uint64 // stream offset of the current frame's payload
	payload []byte // its first wsScanMax bytes, unmasked
}

// wsScanMax is how much of a frame's payload is searched: the text marker of a chat envelope is
// near its start.
const wsScanMax = 4096

func (w *wsUpstream) feed(t *tapConn, b []byte, off uint64) {
	for i := 0; i < len(b); {
		if !w.framing {
			for ; i < len(b) && w.crlf < 4; i++ {
				switch {
				case b[i] == "\r\n\r\n"[w.crlf]:
					w.crlf++
				case b[i] == '\r':
					w.crlf = 1
				default:
					w.crlf = 0
				}
			}
			w.framing = w.crlf == 4
			continue
		}
		if w.left == 0 && w.pos == 0 {
			// Reading a header: 2 bytes, then 2 or 8 of length, then 4 of mask key.
			w.hdr = append(w.hdr, b[i])
			i++
			if need := wsHeaderLen(w.hdr); need == 0 || len(w.hdr) < need {
				continue
			}
			n := uint64(w.hdr[1] & 0x7f)
			switch n {
			case 126:
				n = uint64(w.hdr[2])<<8 | uint64(w.hdr[3])
			case 127:
				n = 0
				for _, c := range w.hdr[2:10] {
					n = n<<8 | uint64(c)
				}
			}
			if w.hdr[1]&0x80 != 0 {
				copy(w.key[:], w.hdr[len(w.hdr)-4:])
			} else {
				w.key = [4]byte{}
			}
			w.hdr = w.hdr[:0]
			w.left, w.pos, w.start, w.payload = n, 0, off+uint64(i), w.payload[:0]
			continue
		}
		take := min(uint64(len(b)-i), w.left)
		for _, c := range b[i : i+int(take)] {
			if len(w.payload) < wsScanMax {
				w.payload = append(w.payload, c^w.key[w.pos%4])
			}
			w.pos++
		}
		i += int(take)
		w.left -= take
		if w.left == 0 {
			t.scan(nil, w.payload, w.start, true)
			w.pos = 0
		}
	}
}

// wsHeaderLen is the length of a frame header whose first bytes are h (0: not known yet).
func wsHeaderLen(h []byte) int {
	if len(h) < 2 {
		return 0
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4
	}
	return n
}

// scan finds markers in tail+b (b starts at stream offset off) and returns the new tail.
func (t *tapConn) scan(tail, b []byte, off uint64, up bool) []byte {
	buf := b
	base := off
	if len(tail) > 0 {
		buf = append(tail, b...)
		base = off - uint64(len(tail))
	}
	for i := 0; ; {
		j := bytes.Index(buf[i:], textMarker)
		if j < 0 {
			break
		}
		start := i + j + len(textMarker)
		k := start
		idx := 0
		for k < len(buf) && k-start < 10 && buf[k] >= '0' && buf[k] <= '9' {
			idx = idx*10 + int(buf[k]-'0')
			k++
		}
		if k >= len(buf) {
			break // split: the tail keeps it for the next read
		}
		// A marker completed inside the old tail was recorded by the previous scan.
		if buf[k] == '.' && k > start && k >= len(tail) {
			flow := t.down
			if up {
				flow = t.up
			}
			t.log.add(wireMark{session: t.session, msg: int32(idx), up: up, flow: flow, off: base + uint64(start-1), n: t.textLen})
		}
		i = k
	}
	keep := min(tailKeep, len(buf))
	return append(tail[:0:0], buf[len(buf)-keep:]...)
}
