package netem

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"

	"gvisor.dev/gvisor/pkg/buffer"
)

// The process bridge carries a host's IP packets between two OS processes
// over a unix stream socket pair, each packet framed by its length (2 bytes,
// big endian), so a batch of packets is one write and one read usually
// returns many. The first frame, from the parent, is the hello
// "netem-bridge/2 ADDR".
const bridgeHello = "netem-bridge/2 "

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
	a, err := parseHostAddr(addr)
	if err != nil {
		return nil, nil, err
	}
	mine, child, err := socketPair()
	if err != nil {
		return nil, nil, fmt.Errorf("netem: bridge for %s: %w", a, err)
	}
	conn, err := unixConn(mine)
	if err != nil {
		child.Close()
		return nil, nil, fmt.Errorf("netem: bridge for %s: %w", a, err)
	}
	if err := writeFrames(conn, nil, [][]byte{[]byte(bridgeHello + a.String())}); err != nil {
		conn.Close()
		child.Close()
		return nil, nil, fmt.Errorf("netem: bridge for %s: hello: %w", a, err)
	}
	b := &bridgeParent{conn: conn}
	h := &Host{n: n, addr: a, bridge: b}
	var wbuf []byte
	h.deliver = func(vs []*buffer.View) {
		b.writeMu.Lock()
		defer b.writeMu.Unlock()
		wbuf = writeViews(b.conn, wbuf, vs) // an error means the child is gone: drop
	}
	read := func(route func([]*buffer.View)) { readPackets(bufio.NewReaderSize(conn, 256<<10), route) }
	if err := n.addHost(h, read); err != nil {
		conn.Close()
		child.Close()
		return nil, nil, err
	}
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

// writeViews frames the packets into buf, writes them with one call and
// releases them; it returns buf for reuse.
func writeViews(conn *net.UnixConn, buf []byte, vs []*buffer.View) []byte {
	buf = buf[:0]
	for _, v := range vs {
		b := v.AsSlice()
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(b)))
		buf = append(buf, b...)
		v.Release()
	}
	conn.Write(buf)
	return buf
}

// writeFrames writes raw frames (the hello).
func writeFrames(conn *net.UnixConn, buf []byte, frames [][]byte) error {
	for _, f := range frames {
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(f)))
		buf = append(buf, f...)
	}
	_, err := conn.Write(buf)
	return err
}

// readPackets reads framed packets until the socket fails, handing them
// over in batches of what one read returned.
func readPackets(r *bufio.Reader, handle func([]*buffer.View)) {
	var batch []*buffer.View
	var hdr [2]byte
	pkt := make([]byte, 65536)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		k := int(binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(r, pkt[:k]); err != nil {
			return
		}
		batch = append(batch, buffer.NewViewWithData(pkt[:k]))
		// Hand over the batch when the next frame is not already buffered.
		if r.Buffered() < 2 || len(batch) >= 256 {
			handle(batch)
			clear(batch)
			batch = batch[:0]
		}
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
	r := bufio.NewReaderSize(conn, 256<<10)
	var hdr [2]byte
	var buf []byte
	_, err = io.ReadFull(r, hdr[:])
	if err == nil {
		buf = make([]byte, min(binary.BigEndian.Uint16(hdr[:]), 128))
		_, err = io.ReadFull(r, buf)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("netem: attach: reading the bridge hello: %w (is the other end a netem bridge?)", err)
	}
	hello, ok := strings.CutPrefix(string(buf), bridgeHello)
	a, perr := netip.ParseAddr(hello)
	if !ok || perr != nil || !a.Is4() {
		conn.Close()
		return nil, fmt.Errorf("netem: attach: bridge hello %q is not %q followed by an address (is the other end a netem bridge of this version?)", buf, bridgeHello)
	}
	at := &attachment{conn: conn, done: make(chan struct{})}
	h := &Host{addr: a, nic: newNIC(), attached: at}
	h.routes.Store(&map[netip.Addr]*Direction{})
	s, err := newStack(a, h.nic, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	h.s = s
	inject := injectInto(h.nic, a)
	at.wg.Add(2)
	go func() {
		defer at.wg.Done()
		readPackets(r, inject)
		at.once.Do(func() { close(at.done) })
	}()
	go func() {
		defer at.wg.Done()
		var wbuf []byte
		h.nic.pump(at.done, func(vs []*buffer.View) { wbuf = writeViews(conn, wbuf, vs) })
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
