package netem

import (
	"fmt"
	"net"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// UDPConn is a UDP socket on a virtual host. It is a net.PacketConn (and a
// net.Conn when dialed) that quic-go accepts as is: SetReadBuffer and
// SetWriteBuffer size the gVisor socket buffers (up to 8 MiB) and return
// nil, so quic-go prints no buffer warning. It has no SyscallConn, so
// quic-go uses plain ReadFrom/WriteTo (no GSO, no ECN).
type UDPConn struct {
	*gonet.UDPConn
	ep tcpip.Endpoint
}

var _ net.PacketConn = (*UDPConn)(nil)

// SetReadBuffer sets the socket's receive buffer (clamped to 8 MiB).
func (c *UDPConn) SetReadBuffer(bytes int) error {
	c.ep.SocketOptions().SetReceiveBufferSize(int64(min(bytes, udpBufferMax)), true)
	return nil
}

// SetWriteBuffer sets the socket's send buffer (clamped to 8 MiB).
func (c *UDPConn) SetWriteBuffer(bytes int) error {
	c.ep.SocketOptions().SetSendBufferSize(int64(min(bytes, udpBufferMax)), true)
	return nil
}

// ListenUDP opens a UDP socket on port (0 picks a free one).
func (h *Host) ListenUDP(port int) (*UDPConn, error) {
	if err := h.local(); err != nil {
		return nil, err
	}
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("netem: port %d is out of range (use 0-65535)", port)
	}
	return h.udp(h.full(uint16(port)), nil)
}

// ListenPacket opens a UDP socket on port (0 picks a free one) on any
// host: a *UDPConn on a gVisor host, a kernel *net.UDPConn on a kernel
// host (KernelHost), on which quic-go uses GSO and ECN as on any Linux
// socket (the kernel segments before the link sees the packets).
func (h *Host) ListenPacket(port int) (net.PacketConn, error) {
	if h.kern != nil {
		if port < 0 || port > 65535 {
			return nil, fmt.Errorf("netem: port %d is out of range (use 0-65535)", port)
		}
		c, err := h.kernelListenUDP(port)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	c, err := h.ListenUDP(port)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// DialUDP opens a UDP socket connected to address ("10.0.0.1:443").
func (h *Host) DialUDP(address string) (*UDPConn, error) {
	if err := h.local(); err != nil {
		return nil, err
	}
	ra, err := h.target(address)
	if err != nil {
		return nil, err
	}
	return h.udp(h.full(0), &ra)
}

func (h *Host) udp(laddr tcpip.FullAddress, raddr *tcpip.FullAddress) (*UDPConn, error) {
	var wq waiter.Queue
	ep, terr := h.s.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, fmt.Errorf("netem: host %s: new udp endpoint: %s", h.addr, terr)
	}
	if terr := ep.Bind(laddr); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("netem: host %s: bind udp :%d: %s (is the port in use?)", h.addr, laddr.Port, terr)
	}
	if raddr != nil {
		if terr := ep.Connect(*raddr); terr != nil {
			ep.Close()
			return nil, fmt.Errorf("netem: host %s: connect udp %s:%d: %s", h.addr, raddr.Addr, raddr.Port, terr)
		}
	}
	// A generous default: quic-go raises it to 7 MiB anyway.
	ep.SocketOptions().SetReceiveBufferSize(2<<20, true)
	return &UDPConn{UDPConn: gonet.NewUDPConn(&wq, ep), ep: ep}, nil
}
