package server

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Listen opens a TCP listener on addr and a UDP socket on the same port number (port 0 picks a
// port free for both).
func Listen(addr string) (net.Listener, net.PacketConn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--addr %q: %v (try 127.0.0.1:8080)", addr, err)
	}
	for attempt := 0; attempt < 20; attempt++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
		if err != nil {
			return nil, nil, fmt.Errorf("listening on %s: %w", addr, err)
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err == nil {
			return ln, pc, nil
		}
		ln.Close()
		if port != "0" || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("listening on udp %s for WebTransport: %w", ln.Addr(), err)
		}
	}
	return nil, nil, fmt.Errorf("no port free for both TCP and UDP on %s", host)
}
