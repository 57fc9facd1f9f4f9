package netem

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/header/parse"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

const (
	// MTU of every virtual NIC.
	MTU = 1500
	// nicID is the id of a host's only NIC in its stack.
	nicID = 1
	// nicQueueLen is the outbound queue of an attached host's NIC (the
	// child side of a bridge). gVisor does not retry a packet the link
	// refuses, so the queue is large; overflows are counted in
	// HostStats.NICDrops.
	nicQueueLen = 65536
	// ListenBacklog is the accept queue of every TCP listener (gonet's own
	// ListenTCP fixes it at 4096, too small for a dial burst of 10,000).
	ListenBacklog = 65535
	// udpBufferMax caps SetReadBuffer/SetWriteBuffer; quic-go asks for 7 MiB.
	udpBufferMax = 8 << 20
)

// TCP loss recovery of a host's connections: RFC 6675 (SACK, three
// duplicate ACKs) and the retransmission timeout on a host that only dials,
// RACK with tail loss probes once it listens (Host.ListenTCP).
var (
	clientRecovery = tcpip.TCPRecovery(0)
	serverRecovery = tcpip.TCPRACKLossDetection
)

// ErrRemoteHost is returned by the socket methods of a Host that lives in
// another process (see BridgeHost); use the Host returned by AttachHost in
// that process instead.
var ErrRemoteHost = errors.New("netem: host lives in another process; open sockets on the Host that AttachHost returned there")

// Host is a virtual machine with one IPv4 address and its own gVisor TCP/IP
// stack. Its sockets are real TCP and UDP endpoints: what they send crosses
// the links of the Network as IP packets.
type Host struct {
	n    *Network
	addr netip.Addr
	s    *stack.Stack // nil for a bridged host on the parent side
	nic  *nic         // nil for a bridged host on the parent side

	// deliver hands packets that crossed a link to the host: into the
	// local stack, or over the bridge socket. It takes ownership.
	deliver func([]*buffer.View)

	routes   atomic.Pointer[map[netip.Addr]*Direction]
	noRoute  atomic.Uint64
	bridge   *bridgeParent // parent side of a bridged host
	attached *attachment   // child side (AttachHost)
	kern     *kernelHost   // a Linux kernel stack in a namespace (KernelHost)
	stopOnce sync.Once
}

// HostStats are a host's own counters (drops that happen before any link).
type HostStats struct {
	// NICDrops counts packets dropped because the virtual NIC's outbound
	// queue (65,536 packets) was full. Only an attached host (the child
	// side of a bridge) has that queue; other hosts' packets go straight
	// to their links, so it stays zero for them.
	NICDrops uint64 `json:"nic_drops"`
	// NoRoute counts packets to an address this host has no link to.
	NoRoute uint64 `json:"no_route"`
	// TCP counters of the host's stack (zero for the parent side of a
	// bridged host). Retransmissions while the links drop nothing, or
	// SpuriousRTO above zero, mean ACKs came back later than gVisor's
	// 200 ms minimum RTO: the emulator (or the machine) fell behind, and
	// latencies of that run include its queueing.
	TCPRetransmits  uint64 `json:"tcp_retransmits"`
	TCPTimeouts     uint64 `json:"tcp_timeouts"`
	TCPSpuriousRTO  uint64 `json:"tcp_spurious_rto"`
	TCPListenDrops  uint64 `json:"tcp_listen_drops"` // SYNs or ACKs dropped by a full accept queue
	TCPSegmentsSent uint64 `json:"tcp_segments_sent"`
}

// Addr returns the host's address.
func (h *Host) Addr() netip.Addr { return h.addr }

// Stats returns the host's counters.
func (h *Host) Stats() HostStats {
	st := HostStats{NoRoute: h.noRoute.Load()}
	if h.nic != nil {
		st.NICDrops = h.nic.drops.Load()
	}
	if h.kern != nil {
		h.kernelStats(&st)
	}
	if h.s != nil {
		t := h.s.Stats().TCP
		st.TCPRetransmits = t.Retransmits.Value()
		st.TCPTimeouts = t.Timeouts.Value()
		st.TCPSpuriousRTO = t.SpuriousRTORecovery.Value()
		st.TCPListenDrops = t.ListenOverflowSynDrop.Value() + t.ListenOverflowAckDrop.Value()
		st.TCPSegmentsSent = t.SegmentsSent.Value()
	}
	return st
}

// Stack returns the host's gVisor stack, or nil for a host that lives in
// another process. Use it for options netem does not wrap.
func (h *Host) Stack() *stack.Stack { return h.s }

// newStack builds a stack with one NIC holding addr, tuned as described in
// the package documentation. qdisc, if not nil, is the NIC's queueing
// discipline (nil: gVisor's default, which calls ep.WritePackets).
func newStack(addr netip.Addr, ep stack.LinkEndpoint, qdisc stack.QueueingDiscipline) (*stack.Stack, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
		HandleLocal:        true,
	})
	fail := func(what string, err tcpip.Error) (*stack.Stack, error) {
		s.Destroy()
		return nil, fmt.Errorf("netem: host %s: %s: %s", addr, what, err)
	}
	if err := s.CreateNICWithOptions(nicID, ep, stack.NICOptions{QDisc: qdisc}); err != nil {
		return fail("create NIC", err)
	}
	pa := tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddrFrom4(addr.As4()).WithPrefix(),
	}
	if err := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
		return fail("add address", err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nicID}})
	sack := tcpip.TCPSACKEnabled(true)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		return fail("enable SACK", err)
	}
	// No RACK-TLP until the host listens (see serverRecovery): gVisor
	// re-arms a connection's tail loss probe on every segment it receives,
	// acknowledging or not, and disarms the retransmission timer when it
	// does. A connection that sends a little while its peer streams to it
	// (a chat client) then never probes nor times out for a lost last
	// segment: it waits for the peer to pause for a whole probe timeout or
	// for its own next write, seconds in a chat. Without RACK, gVisor finds
	// losses by three duplicate ACKs (SACK, RFC 6675) and the retransmission
	// timer, which incoming segments do not push back. docs/METRICS.md.
	rec := clientRecovery
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &rec); err != nil {
		return fail("turn RACK off", err)
	}
	// Receive-buffer auto-tuning stays on: small fixed buffers throttle TCP
	// at tens of milliseconds of RTT and would make it look falsely slow.
	// A connection starts with gVisor's default of 1 MiB (idle memory is
	// the same, about 12 KB a pair): gVisor charges a segment's memory,
	// several times a small message's bytes, to the receive buffer and
	// keeps out-of-order segments only while they fit in 3/4 of it. With
	// 64 KiB a hole in a stream of small messages filled that within a
	// few seconds, and at 5% loss a connection whose hole took an RTO or
	// two to repair stalled for 15-40 s; with 1 MiB it did not.
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: 4 << 20}
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &rcv); err != nil {
		return fail("set TCP receive buffer range", err)
	}
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &moderate); err != nil {
		return fail("enable receive buffer moderation", err)
	}
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: 4 << 20}
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &snd); err != nil {
		return fail("set TCP send buffer range", err)
	}
	// A host has 49,536 ephemeral ports (16000-65535); clients that open a
	// connection per request (short polling) would run out with Linux's
	// 60 s TIME-WAIT, so it is 5 s and its ports may be reused at once.
	tw := tcpip.TCPTimeWaitTimeoutOption(5 * time.Second)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &tw); err != nil {
		return fail("set TIME-WAIT timeout", err)
	}
	twReuse := tcpip.TCPTimeWaitReuseGlobal
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &twReuse); err != nil {
		return fail("allow TIME-WAIT reuse", err)
	}
	if err := s.SetOption(tcpip.ReceiveBufferSizeOption{Min: stack.MinBufferSize, Default: 1 << 20, Max: udpBufferMax}); err != nil {
		return fail("set UDP receive buffer range", err)
	}
	if err := s.SetOption(tcpip.SendBufferSizeOption{Min: stack.MinBufferSize, Default: 1 << 20, Max: udpBufferMax}); err != nil {
		return fail("set UDP send buffer range", err)
	}
	return s, nil
}

// injectInto returns a deliver function that hands packets to a stack.
//
// A plain TCP segment for the host's own address (no IP options, not a
// fragment, from another unicast address: every segment two netem hosts
// exchange) skips gVisor's IPv4 input and goes straight to the stack's
// transport demultiplexer, which is where IPv4 input would hand it after
// checks that cannot fail for it (address lookups, iptables with no rules,
// raw sockets there are none of). That is about 1.5 µs a packet, a tenth
// of a fan-out copy's cost. Everything else takes the full path.
func injectInto(ep *nic, addr netip.Addr) func([]*buffer.View) {
	self := addr.As4()
	return func(vs []*buffer.View) {
		d := ep.dispatcher()
		td, _ := d.(stack.TransportDispatcher)
		for _, v := range vs {
			if d == nil {
				v.Release()
				continue
			}
			fast := td != nil && plainTCPTo(v.AsSlice(), self)
			pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(v)})
			if fast && parse.IPv4(pkt) && parse.TCP(pkt) {
				pkt.NICID = nicID
				pkt.RXChecksumValidated = true
				td.DeliverTransportPacket(tcp.ProtocolNumber, pkt)
			} else if fast {
				// plainTCPTo checked what the parsers need; a packet
				// they refuse is malformed: drop it as IPv4 input would.
			} else {
				d.DeliverNetworkPacket(ipv4.ProtocolNumber, pkt)
			}
			pkt.DecRef()
		}
	}
}

// plainTCPTo reports whether b is an IPv4 packet without options or
// fragmentation, whose total length is len(b), carrying a whole TCP header,
// from a unicast address other than self to self.
func plainTCPTo(b []byte, self [4]byte) bool {
	if len(b) < 40 || b[0] != 0x45 || b[9] != byte(tcp.ProtocolNumber) {
		return false
	}
	if int(binary.BigEndian.Uint16(b[2:4])) != len(b) || binary.BigEndian.Uint16(b[6:8])&0x3fff != 0 {
		return false // MF set or a fragment offset: a fragment
	}
	if [4]byte(b[16:20]) != self {
		return false
	}
	src := [4]byte(b[12:16])
	if src == self || src[0] == 127 || src[0] >= 224 || src[0] == 0 {
		return false // own, loopback, multicast, broadcast or unspecified source
	}
	off := int(b[32]>>4) * 4
	return off >= 20 && 20+off <= len(b)
}

// route sends a batch of outbound packets of h to the links they belong to.
// With inline, packets due at once are delivered by the calling goroutine
// (which must hold no stack's locks: the bridge reader); without, every
// packet goes through the links' delay lines (the stack's own goroutines
// call route from inside gVisor and must not run another stack's input
// path there).
func (h *Host) route(vs []*buffer.View, scratch *[]*buffer.View, inline bool) {
	routes := *h.routes.Load()
	start := 0
	var cur *Direction
	flush := func(end int) {
		if cur != nil && end > start {
			if inline {
				*scratch = cur.send(vs[start:end], *scratch)
			} else {
				cur.sendQueued(vs[start:end])
			}
		}
	}
	for i, v := range vs {
		dst, ok := dstAddr4(v.AsSlice())
		d := routes[dst]
		if !ok || d == nil {
			flush(i)
			cur, start = nil, i+1
			h.noRoute.Add(1)
			v.Release()
			continue
		}
		if d != cur {
			flush(i)
			cur, start = d, i
		}
	}
	flush(len(vs))
}

// routeQueued sends one outbound packet of h, written by its stack, to the
// delay line of the link it belongs to (see route).
func (h *Host) routeQueued(v *buffer.View) {
	dst, ok := dstAddr4(v.AsSlice())
	d := (*h.routes.Load())[dst]
	if !ok || d == nil {
		h.noRoute.Add(1)
		v.Release()
		return
	}
	one := [1]*buffer.View{v}
	d.sendQueued(one[:])
}

func (h *Host) addRoute(to netip.Addr, d *Direction) {
	for {
		old := h.routes.Load()
		m := make(map[netip.Addr]*Direction, len(*old)+1)
		for k, v := range *old {
			m[k] = v
		}
		m[to] = d
		if h.routes.CompareAndSwap(old, &m) {
			return
		}
	}
}

// reachable fails fast when h has no link to the destination (a dial would
// otherwise retry its SYN for two minutes). Hosts made by AttachHost do not
// know their links and always pass.
func (h *Host) reachable(fa tcpip.FullAddress) error {
	if h.n == nil {
		return nil
	}
	dst := netip.AddrFrom4(fa.Addr.As4())
	if dst == h.addr || (*h.routes.Load())[dst] != nil {
		return nil
	}
	return fmt.Errorf("netem: host %s has no link to %s (Connect the two hosts first)", h.addr, dst)
}

func (h *Host) local() error {
	if h.s == nil {
		return ErrRemoteHost
	}
	return nil
}

func (h *Host) full(port uint16) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(h.addr.As4()), Port: port}
}

// parseHostPort parses "10.0.0.1:80" for dialing.
func parseHostPort(what, address string) (tcpip.FullAddress, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !ap.Addr().Is4() {
		return tcpip.FullAddress{}, fmt.Errorf("netem: %s address %q is not IPv4:port (try 10.0.0.1:80)", what, address)
	}
	return tcpip.FullAddress{Addr: tcpip.AddrFrom4(ap.Addr().As4()), Port: ap.Port()}, nil
}

// target parses a dial address ("10.0.0.1:80") and fails fast when h has
// no link to it.
func (h *Host) target(address string) (tcpip.FullAddress, error) {
	fa, err := parseHostPort("dial", address)
	if err != nil {
		return fa, err
	}
	return fa, h.reachable(fa)
}

// DialTCP opens a TCP connection from h to address ("10.0.0.1:80"). A lost
// SYN costs gVisor's fixed initial retransmission timeout of 1 s.
func (h *Host) DialTCP(ctx context.Context, address string) (net.Conn, error) {
	if h.kern != nil {
		return h.kernelDial(ctx, "tcp4", address)
	}
	if err := h.local(); err != nil {
		return nil, err
	}
	fa, err := h.target(address)
	if err != nil {
		return nil, err
	}
	c, err := dialTCP(ctx, h.s, fa)
	if err != nil {
		return nil, fmt.Errorf("netem: host %s: dial tcp %s: %w", h.addr, address, err)
	}
	return c, nil
}

// DialContext has the signature of net.Dialer.DialContext, so a Host plugs
// into http.Transport, websocket.Dialer and the like. network is "tcp",
// "tcp4", "udp" or "udp4"; a host name is not resolved, give an address.
func (h *Host) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4":
		return h.DialTCP(ctx, address)
	case "udp", "udp4":
		if h.kern != nil {
			return h.kernelDial(ctx, "udp4", address)
		}
		return h.DialUDP(address)
	}
	return nil, fmt.Errorf("netem: network %q is not supported (use tcp or udp)", network)
}

// ListenTCP listens on port (0 picks a free one) with a backlog of
// ListenBacklog connections.
func (h *Host) ListenTCP(port int) (net.Listener, error) {
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("netem: port %d is out of range (use 0-65535)", port)
	}
	if h.kern != nil {
		return h.kernelListenTCP(port)
	}
	if err := h.local(); err != nil {
		return nil, err
	}
	// A host that listens serves: its connections (the stack reads the
	// option at each handshake) find losses with RACK and probe a lost
	// tail, as Linux does. A server sends its clients at least what they
	// send it (a chat echoes every message), so its probes are not pushed
	// back for long by what it receives.
	rec := serverRecovery
	if terr := h.s.SetTransportProtocolOption(tcp.ProtocolNumber, &rec); terr != nil {
		return nil, fmt.Errorf("netem: host %s: turn RACK on: %s", h.addr, terr)
	}
	var wq waiter.Queue
	ep, terr := h.s.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, fmt.Errorf("netem: host %s: new tcp endpoint: %s", h.addr, terr)
	}
	if terr := ep.Bind(h.full(uint16(port))); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("netem: host %s: listen tcp :%d: %s (is the port in use?)", h.addr, port, terr)
	}
	if terr := ep.Listen(ListenBacklog); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("netem: host %s: listen tcp :%d: %s", h.addr, port, terr)
	}
	return newTCPListener(&wq, ep), nil
}

// Listen has the signature of net.Listen for "tcp" and "tcp4"; address is
// ":port" or "HOSTADDR:port".
func (h *Host) Listen(network, address string) (net.Listener, error) {
	if network != "tcp" && network != "tcp4" {
		return nil, fmt.Errorf("netem: listen network %q is not supported (use tcp)", network)
	}
	port, err := listenPort(address)
	if err != nil {
		return nil, err
	}
	return h.ListenTCP(port)
}

func listenPort(address string) (int, error) {
	_, p, err := net.SplitHostPort(address)
	if err != nil {
		return 0, fmt.Errorf("netem: listen address %q is not host:port (try :80)", address)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return 0, fmt.Errorf("netem: listen port %q is not a number 0-65535", p)
	}
	return port, nil
}

// stop destroys the host's stack (aborting its endpoints) and stops its
// NIC's goroutine.
func (h *Host) stop() {
	h.stopOnce.Do(func() {
		if h.s != nil {
			h.s.Destroy()
		}
		if h.nic != nil {
			h.nic.close()
		}
		if h.bridge != nil {
			h.bridge.close()
		}
		if h.kern != nil {
			h.kern.close()
		}
	})
}
