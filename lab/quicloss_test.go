package lab

import (
	"slices"
	"testing"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlog"

	"github.com/wirelab/wirelab/chat"
)

func sent(pn qlog.PacketNumber, frames ...*qlog.StreamFrame) qlog.PacketSent {
	e := qlog.PacketSent{Header: qlog.PacketHeader{PacketNumber: pn}}
	for _, f := range frames {
		e.Frames = append(e.Frames, qlog.Frame{Frame: f})
	}
	return e
}

// TestCmdTraceNamesLostCommands: a command is named lost when a packet carrying its bytes is
// reported lost, and when its bytes are sent again (quic-go resends after a probe timeout
// without reporting the loss); a command whose bytes went once and were never lost is not.
func TestCmdTraceNamesLostCommands(t *testing.T) {
	m := NewLossMap()
	c := m.newCmdTrace()
	const ctl, uniA, uniB, uniC = quic.StreamID(0), quic.StreamID(2), quic.StreamID(6), quic.StreamID(10)
	c.Attached("s1", ctl)
	c.ControlLine(3, 40, chat.StringCID("ctl-1"))
	c.ControlLine(40, 90, chat.StringCID("ctl-2"))
	c.UniStream(uniA, chat.StringCID("a"))
	c.UniStream(uniB, chat.StringCID("b"))
	c.UniStream(uniC, chat.StringCID("c"))

	c.RecordEvent(sent(1, &qlog.StreamFrame{StreamID: ctl, Offset: 0, Length: 40}, &qlog.StreamFrame{StreamID: uniA, Length: 50}))
	c.RecordEvent(sent(2, &qlog.StreamFrame{StreamID: uniB, Length: 50}))
	c.RecordEvent(sent(3, &qlog.StreamFrame{StreamID: ctl, Offset: 40, Length: 50}, &qlog.StreamFrame{StreamID: uniC, Length: 50}))
	c.RecordEvent(qlog.PacketLost{Header: qlog.PacketHeader{PacketNumber: 2}}) // b, reported
	c.RecordEvent(sent(4, &qlog.StreamFrame{StreamID: uniB, Length: 50}))      // b, resent
	c.RecordEvent(sent(5, &qlog.StreamFrame{StreamID: ctl, Offset: 40, Length: 50}))
	c.RecordEvent(sent(6, &qlog.StreamFrame{StreamID: uniA, Offset: 50, Length: 0, Fin: true})) // a FIN alone is no resend

	got := m.LostCommands()["s1"]
	slices.Sort(got)
	want := []chat.CID{chat.StringCID("b"), chat.StringCID("ctl-2")}
	if !slices.Equal(got, want) {
		t.Errorf("lost commands %v, want %v", got, want)
	}
}

// TestConnTraceResentStream: the server's trace names a wt-uni message whose stream bytes were
// sent again, and a datagram sent again for want of an ack.
func TestConnTraceResentStream(t *testing.T) {
	m := NewLossMap()
	c := &connTrace{m: m, packets: newPacketLog(), notes: newStreamNotes[uint64]()}
	c.Attached("s1", 0)
	c.UniStream(3, 7)
	c.UniStream(7, 8)
	c.RecordEvent(sent(1, &qlog.StreamFrame{StreamID: 3, Length: 30}, &qlog.StreamFrame{StreamID: 7, Length: 30}))
	c.RecordEvent(sent(2, &qlog.StreamFrame{StreamID: 3, Offset: 10, Length: 20}))
	c.DatagramResent(9)
	got := m.Lost()["s1"]
	slices.Sort(got)
	if want := []uint64{7, 9}; !slices.Equal(got, want) {
		t.Errorf("lost seqs %v, want %v", got, want)
	}
}
