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
	wsHead    []byte      // the first bytes written, until they tell (head)
	wsChecked bool
}

// A WebSocket client's upgrade request is a GET with this header (any case); its head is held
// at most wsHeadMax bytes.
var (
	wsGet     = []byte("GET ")
	wsUpgrade = []byte("\r\nupgrade: websocket")
)

const wsHeadMax = 16 << 10

// textMarkers precede every message text in every transport's JSON: as is, and escaped inside a
// JSON string (Centrifugo's emulation posts each command as a string: {"data":"{\"text\":\"m..."}).
var textMarkers = [][]byte{[]byte(`"text":"m`), []byte(`\"text\":\"m`)}

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
		switch {
		case !t.wsChecked:
			t.head(b[:n])
		case t.ws != nil:
			t.ws.feed(t, b[:n], t.tx)
		default:
			t.wtail = t.scan(t.wtail, b[:n], t.tx, true)
		}
		t.tx += uint64(n)
	}
	return n, err
}

// head holds the first bytes written until they say whether the connection is a WebSocket: a
// GET whose request head asks for "Upgrade: websocket" (wirelab's /ws, a peer's
// /socket.io/?transport=websocket or /connection/websocket). Then it scans what it held, as frames
// or as plain bytes; nothing before the end of a request head can hold a marker.
func (t *tapConn) head(b []byte) {
	t.wsHead = append(t.wsHead, b...)
	h := t.wsHead
	ws := false
	switch {
	case !bytes.HasPrefix(h, wsGet[:min(len(h), len(wsGet))]) || len(h) > wsHeadMax:
	case len(h) < len(wsGet):
		return
	default:
		end := bytes.Index(h, []byte("\r\n\r\n"))
		if end < 0 {
			return
		}
		ws = bytes.Contains(bytes.ToLower(h[:end]), wsUpgrade)
	}
	t.wsChecked, t.wsHead = true, nil
	if ws {
		t.ws = &wsUpstream{}
		t.ws.feed(t, h, 0)
		return
	}
	t.wtail = t.scan(t.wtail, h, 0, true)
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
	for _, marker := range textMarkers {
		for i := 0; ; {
			j := bytes.Index(buf[i:], marker)
			if j < 0 {
				break
			}
			start := i + j + len(marker)
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
	}
	keep := min(tailKeep, len(buf))
	return append(tail[:0:0], buf[len(buf)-keep:]...)
}
