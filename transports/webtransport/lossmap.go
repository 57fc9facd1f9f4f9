package webtransport

import (
	"context"
	"net/netip"
	"sync"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlog"
	"github.com/quic-go/quic-go/qlogwriter"
)

// LossMap tells which messages a QUIC packet loss hit. The lab sets it on its server (Config.Loss)
// to tell a message delayed by the loss of its own bytes from one delayed behind another's loss
// (head-of-line blocking), as netem's drop trace does for TCP: QUIC's packets are encrypted on the
// wire, so the server's own record is used instead. quic-go reports every packet it sends with
// its frames, and every packet it declares lost; the server notes which stream carries which
// message (wt-uni), at which offsets of the control stream a message's line lies (wt-stream), and
// which message each datagram carries (wt-datagram). A lost packet's frames then name the
// messages whose bytes it carried.
//
// A packet quic-go declares lost that in fact arrived late counts as lost (spurious loss
// detection is rare). Only the server to client direction is covered.
type LossMap struct {
	mu       sync.Mutex
	byRemote map[netip.AddrPort]*connTrace
	lost     map[string]map[uint64]struct{} // session id -> seqs
}

// NewLossMap returns an empty map.
func NewLossMap() *LossMap {
	return &LossMap{byRemote: map[netip.AddrPort]*connTrace{}, lost: map[string]map[uint64]struct{}{}}
}

// Tracer is for quic.Config.Tracer.
func (m *LossMap) Tracer(_ context.Context, isClient bool, _ quic.ConnectionID) qlogwriter.Trace {
	if isClient {
		return nil
	}
	return &connTrace{m: m, sent: map[qlog.PacketNumber][]sentFrame{}, uni: map[quic.StreamID]uint64{}}
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

// Reset forgets the losses recorded so far.
func (m *LossMap) Reset() {
	m.mu.Lock()
	m.lost = map[string]map[uint64]struct{}{}
	m.mu.Unlock()
}

func (m *LossMap) trace(remote netip.AddrPort) *connTrace {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byRemote[remote]
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

// sentFrame is what one frame of a sent packet carried.
type sentFrame struct {
	stream   quic.StreamID
	off, end int64
	seq      uint64 // a datagram's message
	datagram bool
}

type ctlRange struct {
	off, end int64
	seq      uint64
}

// connTrace follows one QUIC connection.
type connTrace struct {
	m *LossMap

	mu      sync.Mutex
	session string
	remote  netip.AddrPort
	sent    map[qlog.PacketNumber][]sentFrame
	order   []qlog.PacketNumber
	uni     map[quic.StreamID]uint64
	ctl     quic.StreamID
	hasCtl  bool
	ctlSeqs []ctlRange
	dgrams  []uint64 // seqs of datagrams handed to quic-go, not yet seen in a sent packet
}

// maxTracked bounds the packets and ranges kept per connection.
const maxTracked = 8192

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
		c.sentPacket(e)
	case qlog.PacketLost:
		c.lostPacket(e.Header.PacketNumber)
	case qlog.ConnectionClosed:
		c.m.mu.Lock()
		if c.m.byRemote[c.remote] == c {
			delete(c.m.byRemote, c.remote)
		}
		c.m.mu.Unlock()
	}
}

func (c *connTrace) sentPacket(e qlog.PacketSent) {
	var frames []sentFrame
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range e.Frames {
		switch fr := f.Frame.(type) {
		case *qlog.StreamFrame:
			frames = append(frames, sentFrame{stream: fr.StreamID, off: fr.Offset, end: fr.Offset + fr.Length})
		case *qlog.DatagramFrame:
			if len(c.dgrams) > 0 {
				frames = append(frames, sentFrame{datagram: true, seq: c.dgrams[0]})
				c.dgrams = c.dgrams[1:]
			}
		}
	}
	if len(frames) == 0 {
		return
	}
	pn := e.Header.PacketNumber
	c.sent[pn] = frames
	c.order = append(c.order, pn)
	if len(c.order) > maxTracked {
		delete(c.sent, c.order[0])
		c.order = c.order[1:]
	}
}

func (c *connTrace) lostPacket(pn qlog.PacketNumber) {
	c.mu.Lock()
	frames := c.sent[pn]
	delete(c.sent, pn)
	var hit []uint64
	for _, f := range frames {
		switch {
		case f.datagram:
			hit = append(hit, f.seq)
		case c.hasCtl && f.stream == c.ctl:
			for _, r := range c.ctlSeqs {
				if r.off < f.end && f.off < r.end {
					hit = append(hit, r.seq)
				}
			}
		default:
			if seq, ok := c.uni[f.stream]; ok {
				hit = append(hit, seq)
			}
		}
	}
	session := c.session
	c.mu.Unlock()
	for _, seq := range hit {
		c.m.record(session, seq)
	}
}

// The server's notes, on the trace of its connection (all no-ops on a nil trace).

func (c *connTrace) setSession(id string, ctl quic.StreamID) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.session, c.ctl, c.hasCtl = id, ctl, true
	c.mu.Unlock()
}

func (c *connTrace) noteUni(id quic.StreamID, seq uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.uni[id] = seq
	if len(c.uni) > maxTracked {
		for k := range c.uni { // forget an arbitrary old one; streams are short-lived
			delete(c.uni, k)
			break
		}
	}
	c.mu.Unlock()
}

func (c *connTrace) noteCtl(off, end int64, seq uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.ctlSeqs = append(c.ctlSeqs, ctlRange{off, end, seq})
	if len(c.ctlSeqs) > maxTracked {
		c.ctlSeqs = c.ctlSeqs[len(c.ctlSeqs)-maxTracked/2:]
	}
	c.mu.Unlock()
}

func (c *connTrace) noteDatagram(seq uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.dgrams = append(c.dgrams, seq)
	c.mu.Unlock()
}

// unnoteDatagram takes back the last noted datagram (it was not sent).
func (c *connTrace) unnoteDatagram() {
	if c == nil {
		return
	}
	c.mu.Lock()
	if n := len(c.dgrams); n > 0 {
		c.dgrams = c.dgrams[:n-1]
	}
	c.mu.Unlock()
}
