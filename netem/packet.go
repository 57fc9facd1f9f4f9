package netem

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Flow is a transport 5-tuple as seen in one direction of a link.
type Flow struct {
	Proto Protocol
	Src   netip.AddrPort
	Dst   netip.AddrPort
}

func (f Flow) String() string { return fmt.Sprintf("%s %s->%s", f.Proto, f.Src, f.Dst) }

// Reverse returns the flow of the opposite direction.
func (f Flow) Reverse() Flow { return Flow{Proto: f.Proto, Src: f.Dst, Dst: f.Src} }

// flowKey is a Flow packed for fast hashing (netip values hash slowly).
type flowKey struct {
	src, dst     [4]byte
	sport, dport uint16
	proto        Protocol
}

func keyOf(f Flow) flowKey {
	return flowKey{src: f.Src.Addr().As4(), dst: f.Dst.Addr().As4(), sport: f.Src.Port(), dport: f.Dst.Port(), proto: f.Proto}
}

// TCP flag bits.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
)

// pktInfo is what the link model needs from a packet's headers.
type pktInfo struct {
	flow     Flow
	size     int // IP total length
	payload  int // transport payload bytes
	seq      uint32
	flags    uint8
	hasPorts bool
}

// parseIPv4 reads the IPv4 and TCP/UDP headers of b. Packets it cannot parse
// are still carried (hasPorts false) but are invisible to per-flow rules.
func parseIPv4(b []byte) (pi pktInfo, ok bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return pi, false
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || total < ihl || total > len(b) {
		return pi, false
	}
	pi.size = total
	pi.flow.Proto = Protocol(b[9])
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	frag := binary.BigEndian.Uint16(b[6:8]) & 0x1fff
	t := b[ihl:total]
	switch {
	case frag != 0:
	case pi.flow.Proto == TCP && len(t) >= 20:
		doff := int(t[12]>>4) * 4
		if doff < 20 || doff > len(t) {
			break
		}
		pi.flow.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(t[0:2]))
		pi.flow.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(t[2:4]))
		pi.seq = binary.BigEndian.Uint32(t[4:8])
		pi.flags = t[13]
		pi.payload = len(t) - doff
		pi.hasPorts = true
		return pi, true
	case pi.flow.Proto == UDP && len(t) >= 8:
		pi.flow.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(t[0:2]))
		pi.flow.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(t[2:4]))
		pi.payload = len(t) - 8
		pi.hasPorts = true
		return pi, true
	}
	pi.flow.Src = netip.AddrPortFrom(src, 0)
	pi.flow.Dst = netip.AddrPortFrom(dst, 0)
	return pi, true
}

// dstAddr4 returns the IPv4 destination of b without a full parse.
func dstAddr4(b []byte) (netip.Addr, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(b[16:20])), true
}
