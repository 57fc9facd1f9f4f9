package netem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// RelayConfig configures a Relay.
type RelayConfig struct {
	// Listen is the real address to listen on; "" means "127.0.0.1:0".
	// With both TCP and UDP, UDP listens on the same port number as TCP.
	Listen string
	// Target is the virtual "ADDR:PORT" to forward to.
	Target string
	// TCP and UDP select what to relay; both false means both true.
	TCP, UDP bool
	// UDPIdle closes a UDP session after this long without a packet either
	// way; zero means 2 minutes.
	UDPIdle time.Duration
}

// Relay forwards real sockets on the loopback into the virtual network: a
// browser or curl connects to the relay, and the relay connects from its
// virtual host to the target, so the traffic crosses the emulated links.
// Every TCP connection and every UDP peer address gets its own virtual
// socket. Close stops it and waits for its goroutines; Network.Close closes
// it too.
type Relay struct {
	h      *Host
	target string
	idle   time.Duration
	tcp    net.Listener
	udp    *net.UDPConn
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	conns    map[io.Closer]struct{}
	sessions map[netip.AddrPort]*udpSession
	closed   bool
}

type udpSession struct {
	vc   *UDPConn
	last time.Time
}

// Relay starts a relay from real sockets into the network, with h as the
// virtual end: connections to the target come from h's address.
func (h *Host) Relay(cfg RelayConfig) (*Relay, error) {
	if err := h.local(); err != nil {
		return nil, err
	}
	if h.n == nil {
		return nil, errors.New("netem: relay: the host was made by AttachHost; start relays in the process that owns the Network")
	}
	if _, err := parseHostPort("relay target", cfg.Target); err != nil {
		return nil, err
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if !cfg.TCP && !cfg.UDP {
		cfg.TCP, cfg.UDP = true, true
	}
	if cfg.UDPIdle == 0 {
		cfg.UDPIdle = 2 * time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{h: h, target: cfg.Target, idle: cfg.UDPIdle, ctx: ctx, cancel: cancel,
		conns: map[io.Closer]struct{}{}, sessions: map[netip.AddrPort]*udpSession{}}
	fail := func(err error) (*Relay, error) {
		r.Close()
		return nil, err
	}
	listen := cfg.Listen
	if cfg.TCP {
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return fail(fmt.Errorf("netem: relay: listen tcp %s: %w (pick a free port, or :0)", listen, err))
		}
		r.tcp = ln
		host, _, _ := net.SplitHostPort(listen)
		listen = net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	if cfg.UDP {
		ua, err := net.ResolveUDPAddr("udp", listen)
		if err != nil {
			return fail(fmt.Errorf("netem: relay: udp address %s: %w", listen, err))
		}
		uc, err := net.ListenUDP("udp", ua)
		if err != nil {
			return fail(fmt.Errorf("netem: relay: listen udp %s: %w (the TCP port's number is taken for UDP; pick another port)", listen, err))
		}
		r.udp = uc
	}
	if err := h.n.addRelay(r); err != nil {
		return fail(err)
	}
	if r.tcp != nil {
		r.wg.Add(1)
		go r.acceptTCP()
	}
	if r.udp != nil {
		r.wg.Add(1)
		go r.readUDP()
	}
	return r, nil
}

// TCPAddr returns the real TCP address, or nil.
func (r *Relay) TCPAddr() *net.TCPAddr {
	if r.tcp == nil {
		return nil
	}
	return r.tcp.Addr().(*net.TCPAddr)
}

// UDPAddr returns the real UDP address, or nil.
func (r *Relay) UDPAddr() *net.UDPAddr {
	if r.udp == nil {
		return nil
	}
	return r.udp.LocalAddr().(*net.UDPAddr)
}

func (r *Relay) track(c io.Closer) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.Close()
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *Relay) untrack(c io.Closer) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	c.Close()
}

func (r *Relay) acceptTCP() {
	defer r.wg.Done()
	for {
		rc, err := r.tcp.Accept()
		if err != nil {
			return
		}
		if !r.track(rc) {
			return
		}
		r.wg.Add(1)
		go r.serveTCP(rc)
	}
}

func (r *Relay) serveTCP(rc net.Conn) {
	defer r.wg.Done()
	defer r.untrack(rc)
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	vc, err := r.h.DialTCP(ctx, r.target)
	cancel()
	if err != nil {
		return
	}
	if !r.track(vc) {
		return
	}
	defer r.untrack(vc)
	done := make(chan struct{})
	go func() {
		io.Copy(vc, rc)
		if cw, ok := vc.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		close(done)
	}()
	io.Copy(rc, vc)
	if cw, ok := rc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	<-done
}

func (r *Relay) readUDP() {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		k, from, err := r.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return
		}
		s := r.sessions[from]
		if s == nil {
			vc, err := r.h.DialUDP(r.target)
			if err != nil {
				r.mu.Unlock()
				continue
			}
			s = &udpSession{vc: vc}
			r.sessions[from] = s
			r.wg.Add(1)
			go r.returnUDP(from, s)
		}
		s.last = time.Now()
		r.mu.Unlock()
		s.vc.Write(buf[:k])
	}
}

// returnUDP copies the target's answers back to the real peer and ends the
// session when it has been idle for r.idle.
func (r *Relay) returnUDP(peer netip.AddrPort, s *udpSession) {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		s.vc.SetReadDeadline(time.Now().Add(min(r.idle, 5*time.Second)))
		k, err := s.vc.Read(buf)
		if err == nil {
			r.mu.Lock()
			s.last = time.Now()
			r.mu.Unlock()
			r.udp.WriteToUDPAddrPort(buf[:k], peer)
			continue
		}
		var ne net.Error
		r.mu.Lock()
		idle := time.Since(s.last) >= r.idle
		if r.closed || !errors.As(err, &ne) || !ne.Timeout() || idle {
			if r.sessions[peer] == s {
				delete(r.sessions, peer)
			}
			r.mu.Unlock()
			s.vc.Close()
			return
		}
		r.mu.Unlock()
	}
}

// Close stops the relay, closes its connections and waits for its
// goroutines. It is idempotent.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.wg.Wait()
		return nil
	}
	r.closed = true
	r.cancel()
	if r.tcp != nil {
		r.tcp.Close()
	}
	if r.udp != nil {
		r.udp.Close()
	}
	for c := range r.conns {
		c.Close()
	}
	for _, s := range r.sessions {
		s.vc.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}
