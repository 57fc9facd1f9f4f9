package webtransport_test

import (
	"context"
	"net/netip"
	"sync"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlogwriter"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports/webtransport"
)

// recorder is a webtransport observer (server and client side) that keeps what it was told:
// per session, the seqs the server said it sent and the cids the client said it sent.
type recorder struct {
	mu     sync.Mutex
	seqs   map[string][]uint64
	cids   map[string][]chat.CID
	resent int
}

func newRecorder() *recorder {
	return &recorder{seqs: map[string][]uint64{}, cids: map[string][]chat.CID{}}
}

func (r *recorder) Tracer(context.Context, bool, quic.ConnectionID) qlogwriter.Trace { return nil }

func (r *recorder) Session(netip.AddrPort) webtransport.SessionObserver {
	return &sessionRecorder{r: r}
}

func (r *recorder) Conn() webtransport.ConnObserver { return &connRecorder{r: r} }

func (r *recorder) Seqs(session string) []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.seqs[session]...)
}

func (r *recorder) CIDs(session string) []chat.CID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]chat.CID(nil), r.cids[session]...)
}

func (r *recorder) Resent() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resent
}

type sessionRecorder struct {
	r       *recorder
	session string
}

func (s *sessionRecorder) Attached(session string, _ quic.StreamID) {
	s.r.mu.Lock()
	s.session = session
	s.r.mu.Unlock()
}
func (s *sessionRecorder) UniStream(_ quic.StreamID, seq uint64) { s.seq(seq) }
func (s *sessionRecorder) ControlLine(_, _ int64, seq uint64)    { s.seq(seq) }
func (s *sessionRecorder) Datagram(seq uint64)                   { s.seq(seq) }
func (s *sessionRecorder) DatagramUnsent()                       {}
func (s *sessionRecorder) DatagramResent(uint64) {
	s.r.mu.Lock()
	s.r.resent++
	s.r.mu.Unlock()
}

func (s *sessionRecorder) seq(q uint64) {
	s.r.mu.Lock()
	s.r.seqs[s.session] = append(s.r.seqs[s.session], q)
	s.r.mu.Unlock()
}

type connRecorder struct {
	r       *recorder
	mu      sync.Mutex
	session string
}

func (c *connRecorder) AddProducer() qlogwriter.Recorder { return c }
func (c *connRecorder) SupportsSchemas(string) bool      { return true }
func (c *connRecorder) Close() error                     { return nil }
func (c *connRecorder) RecordEvent(qlogwriter.Event)     {}

func (c *connRecorder) Attached(session string, _ quic.StreamID) {
	c.mu.Lock()
	c.session = session
	c.mu.Unlock()
}
func (c *connRecorder) UniStream(_ quic.StreamID, cid chat.CID) { c.cid(cid) }
func (c *connRecorder) ControlLine(_, _ int64, cid chat.CID)    { c.cid(cid) }

func (c *connRecorder) cid(cid chat.CID) {
	c.mu.Lock()
	s := c.session
	c.mu.Unlock()
	c.r.mu.Lock()
	c.r.cids[s] = append(c.r.cids[s], cid)
	c.r.mu.Unlock()
}
