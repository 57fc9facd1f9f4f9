package lab

import (
	"context"
	"net/netip"
	"sync"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlog"
	"github.com/quic-go/quic-go/qlogwriter"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports/webtransport"
)

// LossMap tells which messages a QUIC packet loss hit. The lab uses it to tell a message delayed
// by the loss of its own bytes from one delayed behind another's loss (head-of-line blocking), as
// netem's drop trace does for TCP: QUIC's packets are encrypted on the wire, so the endpoints'
// own records are used instead. quic-go reports every packet it sends with its frames, and every
// packet it declares lost.
//
// It is an observer of the webtransport package (webtransport.ServerObserver, ClientObserver),
// beside wiretap.go, which reads netem's drop trace for TCP.
//
// Downstream (a server's LossMap, webtransport.Config.Observer): the server notes which stream
// carries which message (wt-uni), at which offsets of the control stream a message's line lies
// (wt-stream), and which message each datagram carries (wt-datagram); a lost packet's frames
// then name the messages whose bytes it carried, as (session id, seq) in Lost.
//
// Upstream (a client's LossMap, webtransport.Client.Observe): the client notes which stream
// carries which command (wt-uni, wt-datagram: a stream per command) or at which offsets of the
// control stream a command's line lies (wt-stream); a lost packet's frames name the commands, as
// (session id, cid) in LostCommands.
//
// A packet quic-go declares lost that in fact arrived late counts as lost (spurious loss
// detection is rare).
type LossMap struct {
	mu       sync.Mutex
	byRemote map[netip.AddrPort]*connTrace
	lost     map[string]map[uint64]struct{}   // session id -> seqs (downstream)
	lostCmds map[string]map[chat.CID]struct{} // session id -> cids (upstream)
}

// NewLossMap returns an empty map.
func NewLossMap() *LossMap {
	return &LossMap{byRemote: map[netip.AddrPort]*connTrace{}, lost: map[string]map[uint64]struct{}{},
		lostCmds: map[string]map[chat.CID]struct{}{}}
}

// Tracer is for a server's quic.Config.Tracer (a webtransport.ServerObserver).
func (m *LossMap) Tracer(_ context.Context, isClient bool, _ quic.ConnectionID) qlogwriter.Trace {
	if isClient {
		return nil
	}
	return &connTrace{m: m, packets: newPacketLog(), notes: newStreamNotes[uint64]()}
}

// Lost returns, per session id, the seqs of messages a lost packet carried since the last Reset.
func (m *LossMap) Lost() map[string][]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string][]uint64, len(m.lost))
	for s, seqs := range m.lost {
		for q := range seqs {
			out[s] = append(out[s], q)
		}
	}
	return out
}

// LostCommands returns, per session id, the cids of commands a lost packet carried upstream
// since the last Reset.
func (m *LossMap) LostCommands() map[string][]chat.CID {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string][]chat.CID, len(m.lostCmds))
	for s, cids := range m.lostCmds {
		for c := range cids {
			out[s] = append(out[s], c)
		}
	}
	return out
}

// Reset forgets the losses recorded so far.
func (m *LossMap) Reset() {
	m.mu.Lock()
	m.lost = map[string]map[uint64]struct{}{}
	m.lostCmds = map[string]map[chat.CID]struct{}{}
	m.mu.Unlock()
}

var (
	_ webtransport.ServerObserver = (*LossMap)(nil)
	_ webtransport.ClientObserver = (*LossMap)(nil)
)

// Session returns the trace of the server's connection from remote (a webtransport.ServerObserver).
func (m *LossMap) Session(remote netip.AddrPort) webtransport.SessionObserver {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.byRemote[remote]; c != nil {
		return c
	}
	return nil
}

// Conn returns the trace of a new client connection (a webtransport.ClientObserver).
func (m *LossMap) Conn() webtransport.ConnObserver {
	if m == nil {
		return nil
	}
	return m.newCmdTrace()
}

func (m *LossMap) record(session string, seq uint64) {
	if session == "" {
		return
	}
	m.mu.Lock()
	s := m.lost[session]
	if s == nil {
		s = map[uint64]struct{}{}
		m.lost[session] = s
	}
	s[seq] = struct{}{}
	m.mu.Unlock()
}

func (m *LossMap) recordAll(session string, seqs []uint64) {
	for _, q := range seqs {
		m.record(session, q)
	}
}

func (m *LossMap) recordCommand(session string, cid chat.CID) {
	if session == "" || cid == "" {
		return
	}
	m.mu.Lock()
	s := m.lostCmds[session]
	if s == nil {
		s = map[chat.CID]struct{}{}
		m.lostCmds[session] = s
	}
	s[cid] = struct{}{}
	m.mu.Unlock()
}

// sentFrame is what one frame of a sent packet carried.
type sentFrame struct {
	stream   quic.StreamID
	off, end int64
	seq      uint64 // a datagram's message
	datagram bool
}

// streamNotes is what a trace knows of one QUIC connection's streams: which item (a message's
// seq on a server's connection, a command's cid on a client's) each unidirectional stream, and
// each byte range of the control stream, carries. Its trace's mu guards it.
type streamNotes[K comparable] struct {
	session string
	ctl     quic.StreamID
	hasCtl  bool
	uni     map[quic.StreamID]K
	ranges  []noteRange[K]
}

type noteRange[K comparable] struct {
	off, end int64
	item     K
}

func newStreamNotes[K comparable]() streamNotes[K] {
	return streamNotes[K]{uni: map[quic.StreamID]K{}}
}

func (n *streamNotes[K]) attached(id string, ctl quic.StreamID) {
	n.session, n.ctl, n.hasCtl = id, ctl, true
}

func (n *streamNotes[K]) uniStream(id quic.StreamID, item K) {
	n.uni[id] = item
	if len(n.uni) > maxTracked {
		for k := range n.uni { // forget an arbitrary old one; streams are short-lived
			delete(n.uni, k)
			break
		}
	}
}

func (n *streamNotes[K]) line(off, end int64, item K) {
	n.ranges = append(n.ranges, noteRange[K]{off, end, item})
	if len(n.ranges) > maxTracked {
		n.ranges = n.ranges[len(n.ranges)-maxTracked/2:]
	}
}

// hit appends the items whose bytes stream frame f carried.
func (n *streamNotes[K]) hit(hit []K, f sentFrame) []K {
	if n.hasCtl && f.stream == n.ctl {
		for _, r := range n.ranges {
			if r.off < f.end && f.off < r.end {
				hit = append(hit, r.item)
			}
		}
	} else if item, ok := n.uni[f.stream]; ok {
		hit = append(hit, item)
	}
	return hit
}

// maxTracked bounds the packets and ranges kept per connection.
const maxTracked = 8192

// packetLog keeps the frames of the packets one endpoint sent, until they are lost or too old
// (maxTracked), and the highest offset sent on each stream. Its owner locks it.
type packetLog struct {
	sent  map[qlog.PacketNumber][]sentFrame
	order []qlog.PacketNumber
	// ends is the highest stream offset sent per stream, in two generations: when ends is
	// full it becomes old, and a stream still in use moves back on its next frame.
	ends, old map[quic.StreamID]int64
}

func newPacketLog() packetLog {
	return packetLog{sent: map[qlog.PacketNumber][]sentFrame{}, ends: map[quic.StreamID]int64{}}
}

// add keeps the frames of a sent packet (a datagram frame as nextDatagram names it; nil: not
// kept) and returns the stream bytes in it that were sent before. quic-go sends a stream's bytes
// again only after declaring the packet that carried them lost: by its loss detection (which
// also reports PacketLost) or, without any event, when its probe timeout fires (it then declares
// the oldest outstanding packet lost). With sparse traffic most losses are found the second way,
// so a resend is how the trace sees them.
func (l *packetLog) add(e qlog.PacketSent, nextDatagram func() (uint64, bool)) (resent []sentFrame) {
	var frames []sentFrame
	for _, f := range e.Frames {
		switch fr := f.Frame.(type) {
		case *qlog.StreamFrame:
			sf := sentFrame{stream: fr.StreamID, off: fr.Offset, end: fr.Offset + fr.Length}
			frames = append(frames, sf)
			if sf.end > sf.off {
				if hi := l.end(sf.stream); sf.off < hi {
					resent = append(resent, sentFrame{stream: sf.stream, off: sf.off, end: min(sf.end, hi)})
				}
				l.setEnd(sf.stream, sf.end)
			}
		case *qlog.DatagramFrame:
			if nextDatagram != nil {
				if seq, ok := nextDatagram(); ok {
					frames = append(frames, sentFrame{datagram: true, seq: seq})
				}
			}
		}
	}
	if len(frames) == 0 {
		return resent
	}
	pn := e.Header.PacketNumber
	l.sent[pn] = frames
	l.order = append(l.order, pn)
	if len(l.order) > maxTracked {
		delete(l.sent, l.order[0])
		l.order = l.order[1:]
	}
	return resent
}

func (l *packetLog) end(id quic.StreamID) int64 {
	if e, ok := l.ends[id]; ok {
		return e
	}
	return l.old[id]
}

func (l *packetLog) setEnd(id quic.StreamID, end int64) {
	l.ends[id] = max(end, l.end(id))
	if len(l.ends) > maxTracked {
		l.old, l.ends = l.ends, map[quic.StreamID]int64{}
	}
}

// lost returns (and forgets) the frames of a lost packet.
func (l *packetLog) lost(pn qlog.PacketNumber) []sentFrame {
	frames := l.sent[pn]
	delete(l.sent, pn)
	return frames
}

// connTrace follows one QUIC connection of a server.
type connTrace struct {
	m *LossMap

	mu      sync.Mutex
	remote  netip.AddrPort
	packets packetLog
	notes   streamNotes[uint64] // the message of each stream and control-stream range
	dgrams  []uint64            // seqs of datagrams handed to quic-go, not yet seen in a sent packet
}

func (c *connTrace) AddProducer() qlogwriter.Recorder { return c }
func (c *connTrace) SupportsSchemas(string) bool      { return true }
func (c *connTrace) Close() error                     { return nil }

func (c *connTrace) RecordEvent(ev qlogwriter.Event) {
	switch e := ev.(type) {
	case qlog.StartedConnection:
		remote := e.Remote.IPv4
		if !remote.IsValid() {
			remote = e.Remote.IPv6
		}
		c.mu.Lock()
		c.remote = remote
		c.mu.Unlock()
		c.m.mu.Lock()
		c.m.byRemote[remote] = c
		c.m.mu.Unlock()
	case qlog.PacketSent:
		c.mu.Lock()
		hit := c.hits(c.packets.add(e, c.nextDatagram))
		session := c.notes.session
		c.mu.Unlock()
		c.m.recordAll(session, hit)
	case qlog.PacketLost:
		c.mu.Lock()
		hit := c.hits(c.packets.lost(e.Header.PacketNumber))
		session := c.notes.session
		c.mu.Unlock()
		c.m.recordAll(session, hit)
	case qlog.ConnectionClosed:
		c.m.mu.Lock()
		if c.m.byRemote[c.remote] == c {
			delete(c.m.byRemote, c.remote)
		}
		c.m.mu.Unlock()
	}
}

// nextDatagram is the seq of the oldest datagram not yet seen in a packet (under mu).
func (c *connTrace) nextDatagram() (uint64, bool) {
	if len(c.dgrams) == 0 {
		return 0, false
	}
	seq := c.dgrams[0]
	c.dgrams = c.dgrams[1:]
	return seq, true
}

// hits names the messages whose bytes frames carried (under mu).
func (c *connTrace) hits(frames []sentFrame) []uint64 {
	var hit []uint64
	for _, f := range frames {
		if f.datagram {
			hit = append(hit, f.seq)
		} else {
			hit = c.notes.hit(hit, f)
		}
	}
	return hit
}

// The server's notes, on the trace of its connection (a webtransport.SessionObserver; all
// no-ops on a nil trace).

func (c *connTrace) Attached(id string, ctl quic.StreamID) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.notes.attached(id, ctl)
	c.mu.Unlock()
}

func (c *connTrace) UniStream(id quic.StreamID, seq uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.notes.uniStream(id, seq)
	c.mu.Unlock()
}

func (c *connTrace) ControlLine(off, end int64, seq uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.notes.line(off, end, seq)
	c.mu.Unlock()
}

func (c *connTrace) Datagram(seq uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.dgrams = append(c.dgrams, seq)
	c.mu.Unlock()
}

// DatagramUnsent takes back the last noted datagram (it was not sent).
func (c *connTrace) DatagramUnsent() {
	if c == nil {
		return
	}
	c.mu.Lock()
	if n := len(c.dgrams); n > 0 {
		c.dgrams = c.dgrams[:n-1]
	}
	c.mu.Unlock()
}

// cmdTrace follows one QUIC connection of a client: which command each upstream stream, or each
// range of the control stream, carried.
type cmdTrace struct {
	m *LossMap

	mu      sync.Mutex
	packets packetLog
	notes   streamNotes[chat.CID] // the command of each stream and control-stream range
}

// newCmdTrace returns a client connection's trace; nil on a nil map.
func (m *LossMap) newCmdTrace() *cmdTrace {
	if m == nil {
		return nil
	}
	return &cmdTrace{m: m, packets: newPacketLog(), notes: newStreamNotes[chat.CID]()}
}

func (c *cmdTrace) AddProducer() qlogwriter.Recorder { return c }
func (c *cmdTrace) SupportsSchemas(string) bool      { return true }
func (c *cmdTrace) Close() error                     { return nil }

func (c *cmdTrace) RecordEvent(ev qlogwriter.Event) {
	switch e := ev.(type) {
	case qlog.PacketSent:
		c.mu.Lock()
		hit := c.hits(c.packets.add(e, nil))
		session := c.notes.session
		c.mu.Unlock()
		for _, cid := range hit {
			c.m.recordCommand(session, cid)
		}
	case qlog.PacketLost:
		c.mu.Lock()
		hit := c.hits(c.packets.lost(e.Header.PacketNumber))
		session := c.notes.session
		c.mu.Unlock()
		for _, cid := range hit {
			c.m.recordCommand(session, cid)
		}
	}
}

// hits names the commands whose bytes frames carried (under mu).
func (c *cmdTrace) hits(frames []sentFrame) []chat.CID {
	var hit []chat.CID
	for _, f := range frames {
		hit = c.notes.hit(hit, f)
	}
	return hit
}

// The client's notes (a webtransport.ConnObserver; no-ops on a nil trace).

func (c *cmdTrace) Attached(id string, ctl quic.StreamID) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.notes.attached(id, ctl)
	c.mu.Unlock()
}

func (c *cmdTrace) UniStream(id quic.StreamID, cid chat.CID) {
	if c == nil || cid == "" {
		return
	}
	c.mu.Lock()
	c.notes.uniStream(id, cid)
	c.mu.Unlock()
}

func (c *cmdTrace) ControlLine(off, end int64, cid chat.CID) {
	if c == nil || cid == "" {
		return
	}
	c.mu.Lock()
	c.notes.line(off, end, cid)
	c.mu.Unlock()
}

// DatagramResent records that the datagram of seq is sent again: its ack did not come in time,
// so the server takes the first one for lost.
func (c *connTrace) DatagramResent(seq uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	session := c.notes.session
	c.mu.Unlock()
	c.m.record(session, seq)
}
