package netem

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
)

// Config configures a Network. The zero value is usable: seed 0, a drop
// trace of up to 1<<20 events.
type Config struct {
	// Seed seeds every random choice of every link (each direction draws
	// from its own PCG generator, seeded with Seed and the two host
	// addresses, so adding a link does not change the others' draws).
	Seed uint64

	// TraceLimit caps the drop trace; further drops are counted but not
	// recorded. Zero means 1<<20 events; negative means no trace.
	TraceLimit int

	// OnDrop, if set, is called for every dropped packet, synchronously
	// with the link's lock held, on the goroutine that sent the packet into
	// the link (a stack's goroutine, inside gVisor): it must be quick, must
	// not block and must not call back into netem.
	OnDrop func(DropEvent)
}

// ErrClosed is returned by Network.Host, Network.Connect,
// Network.BridgeHost and Host.Relay once the network is closed.
var ErrClosed = errors.New("netem: network is closed")

// Network is a set of virtual hosts joined by links. Create it with New and
// stop it with Close.
type Network struct {
	cfg   Config
	start time.Time
	done  chan struct{}
	wg    sync.WaitGroup

	mu     sync.Mutex
	hosts  map[netip.Addr]*Host
	links  []*Link
	relays []*Relay
	closed bool

	traceMu   sync.Mutex
	trace     []DropEvent
	traceLost uint64
}

// New creates an empty network.
func New(cfg Config) *Network {
	if cfg.TraceLimit == 0 {
		cfg.TraceLimit = 1 << 20
	}
	return &Network{
		cfg:   cfg,
		start: time.Now(),
		done:  make(chan struct{}),
		hosts: make(map[netip.Addr]*Host),
	}
}

func (n *Network) now() int64 { return int64(time.Since(n.start)) }

// parseHostAddr parses a host's address, which must be IPv4.
func parseHostAddr(addr string) (netip.Addr, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("netem: host address %q is not IPv4 (try 10.0.0.1)", addr)
	}
	return a, nil
}

// freeLocked fails if the network is closed or a already has a host. n.mu is held.
func (n *Network) freeLocked(a netip.Addr) error {
	if n.closed {
		return ErrClosed
	}
	if _, dup := n.hosts[a]; dup {
		return fmt.Errorf("netem: host %s already exists (pick another address)", a)
	}
	return nil
}

// free is freeLocked for a check before a costly set-up (addHost checks again).
func (n *Network) free(a netip.Addr) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.freeLocked(a)
}

// addHost registers h, whose packets come from outside the network (a bridge,
// a TUN), and starts read, the goroutine that routes them, which Network.Close
// waits for. On an error nothing is registered or started: the caller releases
// what it made for h.
func (n *Network) addHost(h *Host, read func(route func([]*buffer.View))) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.freeLocked(h.addr); err != nil {
		return err
	}
	h.routes.Store(&map[netip.Addr]*Direction{})
	n.hosts[h.addr] = h
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		var scratch []*buffer.View
		read(func(vs []*buffer.View) { h.route(vs, &scratch, true) })
	}()
	return nil
}

// Host creates a virtual host with the IPv4 address addr ("10.0.0.1").
func (n *Network) Host(addr string) (*Host, error) {
	a, err := parseHostAddr(addr)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.freeLocked(a); err != nil {
		return nil, err
	}
	h := &Host{n: n, addr: a, nic: newNIC()}
	h.routes.Store(&map[netip.Addr]*Direction{})
	h.nic.direct = h.routeQueued
	s, err := newStack(a, h.nic, directQDisc{h.nic})
	if err != nil {
		return nil, err
	}
	h.s = s
	h.deliver = injectInto(h.nic, a)
	n.hosts[a] = h
	return h, nil
}

// MustHost is Host for tests and examples: it panics on error.
func (n *Network) MustHost(addr string) *Host {
	h, err := n.Host(addr)
	if err != nil {
		panic(err)
	}
	return h
}

// Link joins two hosts; each direction has its own profile and counters.
type Link struct {
	AB *Direction // from A to B
	BA *Direction // from B to A
}

// SetProfiles changes both directions while traffic flows.
func (l *Link) SetProfiles(ab, ba LinkProfile) error {
	if err := ab.Validate(); err != nil {
		return err
	}
	if err := l.BA.SetProfile(ba); err != nil {
		return err
	}
	return l.AB.SetProfile(ab)
}

// Connect joins a and b with a link whose direction a->b follows ab and
// b->a follows ba. A pair of hosts has at most one link. For many users,
// put many connections on a few client hosts, each with its own link to
// the server host (a star).
func (n *Network) Connect(a, b *Host, ab, ba LinkProfile) (*Link, error) {
	if a == nil || b == nil || a == b {
		return nil, errors.New("netem: Connect needs two different hosts")
	}
	if a.n != n || b.n != n {
		return nil, errors.New("netem: Connect: a host belongs to another network")
	}
	cab, err := ab.compile()
	if err != nil {
		return nil, err
	}
	cba, err := ba.compile()
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	if _, ok := (*a.routes.Load())[b.addr]; ok {
		return nil, fmt.Errorf("netem: %s and %s are already connected (change the link with SetProfiles)", a.addr, b.addr)
	}
	l := &Link{AB: newDirection(n, a, b, cab), BA: newDirection(n, b, a, cba)}
	a.addRoute(b.addr, l.AB)
	b.addRoute(a.addr, l.BA)
	n.links = append(n.links, l)
	n.wg.Add(2)
	go l.AB.run()
	go l.BA.run()
	return l, nil
}

// Direction returns the direction from a to b, or nil if they are not connected.
func (n *Network) Direction(from, to *Host) *Direction {
	return (*from.routes.Load())[to.addr]
}

// Links returns every link, in the order they were made.
func (n *Network) Links() []*Link {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Link(nil), n.links...)
}

func (n *Network) addRelay(r *Relay) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	n.relays = append(n.relays, r)
	return nil
}

func (n *Network) recordDrop(ev DropEvent) {
	if n.cfg.OnDrop != nil {
		n.cfg.OnDrop(ev)
	}
	if n.cfg.TraceLimit < 0 {
		return
	}
	n.traceMu.Lock()
	if len(n.trace) < n.cfg.TraceLimit {
		n.trace = append(n.trace, ev)
	} else {
		n.traceLost++
	}
	n.traceMu.Unlock()
}

// DropTrace returns a copy of the drop events recorded so far, oldest first
// per link (events of different links interleave in time order only
// roughly), and how many drops were not recorded because the trace was full.
func (n *Network) DropTrace() (events []DropEvent, unrecorded uint64) {
	n.traceMu.Lock()
	defer n.traceMu.Unlock()
	return append([]DropEvent(nil), n.trace...), n.traceLost
}

// ResetTrace empties the drop trace.
func (n *Network) ResetTrace() {
	n.traceMu.Lock()
	defer n.traceMu.Unlock()
	n.trace, n.traceLost = nil, 0
}

// Close stops every goroutine of the network, destroys every host's stack
// (connections are aborted) and waits. It is idempotent.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	close(n.done)
	hosts := make([]*Host, 0, len(n.hosts))
	for _, h := range n.hosts {
		hosts = append(hosts, h)
	}
	links := n.links
	relays := n.relays
	n.mu.Unlock()
	for _, r := range relays {
		r.Close()
	}
	for _, h := range hosts {
		if h.bridge != nil {
			h.bridge.close()
		}
		if h.kern != nil {
			h.kern.close() // ends its reader
		}
	}
	n.wg.Wait()
	for _, h := range hosts {
		h.stop()
	}
	for _, l := range links {
		l.AB.release()
		l.BA.release()
	}
	return nil
}
