package netem

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"

	"gvisor.dev/gvisor/pkg/buffer"
)

// The process bridge carries a host's IP packets between two OS processes
// over a unix SOCK_SEQPACKET socket pair, one packet per message. The
// first message, from the parent, is the hello line "netem-bridge/1 ADDR".
const bridgeHello = "netem-bridge/1 "

// bridgeSocketBuffer is the kernel buffer asked for on each end.
const bridgeSocketBuffer = 4 << 20

// bridgeParent is the lab side of a bridged host: packets the link model
// delivers to the host are written to the socket; packets read from it are
// routed through the host's links like any host's outbound packets.
type bridgeParent struct {
	conn      *net.UnixConn
	closeOnce sync.Once
	writeMu   sync.Mutex
}

func (b *bridgeParent) close() {
	b.closeOnce.Do(func() { b.conn.Close() })
}

// BridgeHost creates a host with address addr whose stack lives in another
// process. It returns the host (to Connect like any other; its socket
// methods return ErrRemoteHost) and the child's end of the bridge: pass it
// to the child, for example as exec.Cmd.ExtraFiles[0] (fd 3 in the child),
// where AttachHost turns it into a working Host; close the parent's copy of
// the file once the child has started. Packets still pass through the link
// model here, in the parent. When the child's end closes (the child exits),
// the host stops receiving and its packets are dropped.
func (n *Network) BridgeHost(addr string) (*Host, *os.File, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is4() {
		return nil, nil, fmt.Errorf("netem: host address %q is not IPv4 (try 10.0.0.1)", addr)
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("netem: bridge for %s: socketpair: %w", a, err)
	}
	for _, fd := range fds {
		syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, bridgeSocketBuffer)
		syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, bridgeSocketBuffer)
	}
	mine := os.NewFile(uintptr(fds[0]), "netem-bridge-parent")
	child := os.NewFile(uintptr(fds[1]), "netem-bridge-child")
	conn, err := unixConn(mine)
	if err != nil {
		child.Close()
		return nil, nil, fmt.Errorf("netem: bridge for %s: %w", a, err)
	}
	if _, err := conn.Write([]byte(bridgeHello + a.String())); err != nil {
		conn.Close()
		child.Close()
		return nil, nil, fmt.Errorf("netem: bridge for %s: hello: %w", a, err)
	}
	b := &bridgeParent{conn: conn}
	h := &Host{n: n, addr: a, bridge: b}
	h.routes.Store(&map[netip.Addr]*Direction{})
	h.deliver = func(vs []*buffer.View) {
		b.writeMu.Lock()
		defer b.writeMu.Unlock()
		for _, v := range vs {
			b.conn.Write(v.AsSlice()) // an error means the child is gone: drop
			v.Release()
		}
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		conn.Close()
		child.Close()
		return nil, nil, ErrClosed
	}
	if _, dup := n.hosts[a]; dup {
		n.mu.Unlock()
		conn.Close()
		child.Close()
		return nil, nil, fmt.Errorf("netem: host %s already exists (pick another address)", a)
	}
	n.hosts[a] = h
	n.wg.Add(1)
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		var scratch []*buffer.View
		one := make([]*buffer.View, 1)
		readPackets(conn, func(v *buffer.View) {
			one[0] = v
			h.route(one, &scratch)
		})
	}()
	return h, child, nil
}

// unixConn turns f into a *net.UnixConn and closes f (the conn holds a
// duplicate of the descriptor).
func unixConn(f *os.File) (*net.UnixConn, error) {
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("bridge socket: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("bridge socket is a %T, not a unix socket", c)
	}
	return uc, nil
}

// readPackets reads one packet per message until the socket fails.
func readPackets(conn *net.UnixConn, handle func(*buffer.View)) {
	buf := make([]byte, MTU+64)
	for {
		k, err := conn.Read(buf)
		if err != nil {
			return
		}
		if k == 0 {
			// A zero-length message is end of stream on SOCK_SEQPACKET.
			return
		}
		handle(buffer.NewViewWithData(buf[:k]))
	}
}

// attachment is the child side of a bridged host.
type attachment struct {
	conn *net.UnixConn
	done chan struct{} // closed when the bridge is gone or Close was called
	wg   sync.WaitGroup
	once sync.Once
}

// AttachHost is called in the child process with the file BridgeHost
// returned in the parent (for example os.NewFile(3, "bridge") when it was
// ExtraFiles[0]). It reads the host's address from the bridge, builds the
// host's gVisor stack and returns the Host, whose sockets work as on any
// host. Close it when done; Done is closed when the parent closes the
// bridge.
func AttachHost(f *os.File) (*Host, error) {
	conn, err := unixConn(f)
	if err != nil {
		return nil, fmt.Errorf("netem: attach: %w (pass the file BridgeHost returned)", err)
	}
	buf := make([]byte, 128)
	k, err := conn.Read(buf)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("netem: attach: reading the bridge hello: %w", err)
	}
	hello, ok := strings.CutPrefix(string(buf[:k]), bridgeHello)
	a, perr := netip.ParseAddr(hello)
	if !ok || perr != nil || !a.Is4() {
		conn.Close()
		return nil, fmt.Errorf("netem: attach: bridge hello %q is not %q followed by an address (is the other end a netem bridge?)", buf[:k], bridgeHello)
	}
	at := &attachment{conn: conn, done: make(chan struct{})}
	h := &Host{addr: a, nic: newNIC(), attached: at}
	h.routes.Store(&map[netip.Addr]*Direction{})
	s, err := newStack(a, h.nic)
	if err != nil {
		conn.Close()
		return nil, err
	}
	h.s = s
	inject := injectInto(h.nic)
	at.wg.Add(2)
	go func() {
		defer at.wg.Done()
		one := make([]*buffer.View, 1)
		readPackets(conn, func(v *buffer.View) {
			one[0] = v
			inject(one)
		})
		at.once.Do(func() { close(at.done) })
	}()
	go func() {
		defer at.wg.Done()
		h.nic.pump(at.done, func(vs []*buffer.View) {
			for _, v := range vs {
				conn.Write(v.AsSlice())
				v.Release()
			}
		})
	}()
	return h, nil
}

// Done returns a channel closed when an attached host's bridge is gone
// (the parent closed it or exited) or Close was called. For other hosts it
// returns nil.
func (h *Host) Done() <-chan struct{} {
	if h.attached == nil {
		return nil
	}
	return h.attached.done
}

// errNotAttached is returned by Close on a host made by Network.Host.
var errNotAttached = errors.New("netem: Close is for hosts made by AttachHost; close the Network instead")

// Close stops a host made by AttachHost: it closes the bridge, destroys the
// stack and waits for the host's goroutines. It is idempotent.
func (h *Host) Close() error {
	at := h.attached
	if at == nil {
		return errNotAttached
	}
	at.once.Do(func() { close(at.done) })
	at.conn.Close()
	at.wg.Wait()
	h.stop()
	return nil
}
