package netem

import (
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// nic is a host's virtual network card, a gVisor link endpoint. On a host
// made by Network.Host the stack's writes go through the link model in the
// writing goroutine (direct): the link only queues them in its delay line,
// so no goroutine hand-off is spent before it. On an attached host (the
// child of a bridge) they land in a queue that one goroutine drains in
// batches into the bridge socket. Inbound packets are injected straight
// into the stack by whoever delivers them.
type nic struct {
	// direct, if set, takes the stack's outbound packets synchronously
	// (and ownership of them), one at a time: the NIC's queueing
	// discipline (directQDisc) hands it every packet the stack writes, so
	// gVisor's default discipline does not wrap each in a list of one.
	// The queue and pump are then unused.
	direct func(*buffer.View)

	mu     sync.Mutex
	q      []*buffer.View
	closed bool
	signal chan struct{}
	drops  atomic.Uint64
	disp   atomic.Pointer[dispatcherRef]
	shut   atomic.Bool // closed, for the direct path
}

type dispatcherRef struct{ d stack.NetworkDispatcher }

var _ stack.LinkEndpoint = (*nic)(nil)

func newNIC() *nic {
	return &nic{signal: make(chan struct{}, 1)}
}

func (e *nic) dispatcher() stack.NetworkDispatcher {
	if r := e.disp.Load(); r != nil {
		return r.d
	}
	return nil
}

// WritePackets queues the stack's outbound packets for the pump. It never
// blocks; when the queue is full the packet is dropped and counted.
func (e *nic) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	ss := pkts.AsSlice()
	if e.direct != nil {
		for _, pkt := range ss {
			e.writeDirect(pkt)
		}
		return len(ss), nil
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return len(ss), nil
	}
	for _, pkt := range ss {
		if len(e.q) >= nicQueueLen {
			e.drops.Add(1)
			continue
		}
		e.q = append(e.q, pkt.ToView())
	}
	e.mu.Unlock()
	select {
	case e.signal <- struct{}{}:
	default:
	}
	return len(ss), nil
}

// writeDirect copies pkt out of the stack and hands it to e.direct.
func (e *nic) writeDirect(pkt *stack.PacketBuffer) {
	if !e.shut.Load() {
		e.direct(pkt.ToView())
	}
}

// directQDisc is the queueing discipline of a NIC with a direct path: it
// passes each packet on as the stack writes it. (gVisor's default wraps
// every packet in a one-element PacketBufferList, an allocation a packet.)
type directQDisc struct{ e *nic }

func (q directQDisc) WritePacket(pkt *stack.PacketBuffer) tcpip.Error {
	q.e.writeDirect(pkt)
	return nil
}

func (directQDisc) Close() {}

// pump drains the queue into handle until done is closed.
func (e *nic) pump(done <-chan struct{}, handle func([]*buffer.View)) {
	var batch []*buffer.View
	for {
		select {
		case <-e.signal:
		case <-done:
			return
		}
		for {
			e.mu.Lock()
			batch, e.q = e.q, batch[:0]
			e.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			handle(batch)
			clear(batch)
		}
	}
}

// close drops whatever is queued and refuses further packets.
func (e *nic) close() {
	e.shut.Store(true)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	for _, v := range e.q {
		v.Release()
	}
	e.q = nil
}

func (e *nic) MTU() uint32                             { return MTU }
func (e *nic) SetMTU(uint32)                           {}
func (e *nic) MaxHeaderLength() uint16                 { return 0 }
func (e *nic) LinkAddress() tcpip.LinkAddress          { return "" }
func (e *nic) SetLinkAddress(tcpip.LinkAddress)        {}
func (e *nic) Wait()                                   {}
func (e *nic) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }
func (e *nic) AddHeader(*stack.PacketBuffer)           {}
func (e *nic) ParseHeader(*stack.PacketBuffer) bool    { return true }
func (e *nic) Close()                                  {}
func (e *nic) SetOnCloseAction(func())                 {}
func (e *nic) IsAttached() bool                        { return e.dispatcher() != nil }
func (e *nic) Attach(d stack.NetworkDispatcher)        { e.disp.Store(&dispatcherRef{d}) }

// Capabilities: packets never get corrupted on a virtual link, so checksums
// are neither computed nor verified (a saving of about a tenth of the CPU
// per packet).
func (e *nic) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityRXChecksumOffload | stack.CapabilityTXChecksumOffload
}
