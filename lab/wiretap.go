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
	log      *markLog
	session  int32
	textLen  uint32
	up, down netem.Flow
	rx, tx   uint64
	rtail    []byte // last bytes read, to find a marker split across reads
	wtail    []byte
}

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
		t.wtail = t.scan(t.wtail, b[:n], t.tx, true)
		t.tx += uint64(n)
	}
	return n, err
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
