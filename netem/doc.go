// Package netem is wirelab's userspace network: virtual hosts, each a real
// gVisor TCP/IP stack (gvisor.dev/gvisor/pkg/tcpip) with one IPv4 address,
// joined by links that delay, reorder, rate-limit and drop IP packets in one
// seeded model that hits TCP (polling, streaming, WebSocket) and UDP (QUIC,
// WebTransport) alike. Nothing is faked at the socket level: a dropped
// packet is gone, and the sending stack must notice and retransmit it.
//
// It imports no other wirelab package: it carries packets and knows nothing
// of chat, the transports or the lab, which hand it their sockets' traffic
// (internal/archtest holds this).
//
// # Overview
//
//	n := netem.New(netem.Config{Seed: 1})
//	defer n.Close()
//	srv := n.MustHost("10.0.0.1")
//	cli := n.MustHost("10.0.0.2")
//	up, _ := netem.ParseProfile("delay=20ms loss=2% burst=3")
//	link, _ := n.Connect(cli, srv, up, up) // cli->srv, srv->cli
//	ln, _ := srv.ListenTCP(80)             // a net.Listener
//	c, _ := cli.DialTCP(ctx, "10.0.0.1:80") // a net.Conn
//	pc, _ := srv.ListenUDP(443)            // a net.PacketConn quic-go accepts
//	link.AB.SetProfile(other)              // live, while traffic flows
//
// A pair of hosts has at most one link; a host may have many. For many
// simulated users, put many connections on a few client hosts, each with
// its own link to the server host (a star): a host holds tens of thousands
// of connections (about 12 KB per idle client+server TCP pair).
// Host.DialContext and Host.Listen have the shapes of net.Dialer and
// net.Listen so http.Transport, websocket dialers and http.Server plug in.
//
// A LinkProfile describes one direction: blocking (UDP or ports), periodic
// blackholes, deterministic drop rules, random loss (Bernoulli or
// Gilbert-Elliott), a rate limit behind a drop-tail queue, then delay with
// optional jitter and reordering. ParseProfile and ProfileSpec read the
// text forms ("20ms", "2%", "10mbit"); their errors are *FieldError values
// that name the field and the accepted form.
//
// Every direction counts packets and IP bytes offered, delivered and
// dropped by cause, in total and per flow (Direction.Stats, Direction.Flows).
// Network.DropTrace lists every drop with its flow and, for TCP, the range
// of stream bytes the segment carried relative to the flow's ISN, so the
// lab can tell a message delayed by the loss of its own bytes from one
// stuck behind another's (head-of-line blocking).
//
// BridgeHost and AttachHost move a host's stack into another process
// (the lab runs the chat server there), its packets crossing a unix
// socketpair and still passing through the link model in the parent.
// Host.Relay forwards real loopback TCP and UDP sockets into the network.
// Probe measures what a link actually does (the lab probe command).
//
// The stacks are tuned as measured on a prototype: SACK on; RACK loss
// detection and tail loss probes only on a host that listens (a server),
// because gVisor postpones a connection's probe on every segment it
// receives and a client that sends little while it receives a stream
// would wait seconds for a lost message (a dialing host recovers by three
// duplicate ACKs and the retransmission timer); TCP receive-buffer
// auto-tuning on over {4 KiB, 64 KiB, 4 MiB}
// (small fixed buffers throttle TCP falsely), send buffers up to 4 MiB,
// UDP buffers up to 8 MiB, listen backlog 65,535, TIME-WAIT 5 s with its
// ports reusable (a host has 49,536 ephemeral ports), checksums
// neither computed nor verified (a virtual link corrupts nothing). A plain
// TCP segment for a host (no IP options, not a fragment) enters its
// stack's TCP demultiplexer directly, skipping IPv4 input checks that
// cannot fail for it; everything else goes through gVisor's IPv4 input.
// gVisor's TCP differs from Linux's; docs/METRICS.md says how.
//
// # Goroutines
//
// A host made by Network.Host has no goroutine of its own: its stack's
// writes run through the link model in the writing goroutine, which only
// puts them in the link's delay line (no hand-off, no queue before the
// link). Each link direction has one goroutine, its delay line: a
// time-ordered queue and a single timer, which delivers every packet, in
// batches of all that are due, and runs the receiving stack's input
// processing. A packet read from a bridge that is due at once (no delay,
// nothing queued ahead of it) is delivered by the bridge's reader
// directly. The gVisor stacks run their own goroutines (TCP processors,
// timers). A bridged host has one reader goroutine in the parent; an
// attached host has a reader and a NIC pump in the child (the stack's
// writes land in a queue of 65,536 packets, overflows counted in
// HostStats.NICDrops, and the pump writes them to the bridge in batches,
// one write per batch). A relay has an
// accept loop, a UDP reader, and goroutines per relayed connection or UDP
// peer. Network.Close stops all of them, destroys every stack and waits;
// nothing outlives it (the tests check with goleak).
//
// All methods are safe for concurrent use. OnDrop callbacks run with the
// link's lock held, on the goroutine that sent the dropped packet.
package netem
