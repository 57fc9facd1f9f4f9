//go:build linux

package netem

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/buffer"
)

// A kernel host is a Linux network namespace of its own, created by the lab
// (unshare(CLONE_NEWNET) on a locked OS thread) and holding one TUN device
// with the host's address. Its TCP/IP stack is the kernel's: sockets opened
// in the namespace (Host.Do, Host.DialContext, Host.ListenTCP,
// Host.ListenPacket) and processes started there (Host.Start) use Linux TCP
// and UDP. The lab holds the TUN's file descriptor: what the host sends is
// read from it and passed through the links like any host's packets, and
// what a link delivers to the host is written to it.
//
// The namespace has no name in /run/netns: it lives as long as a file
// descriptor or a process holds it (the lab's, and the processes started
// in it, which die with the lab: Pdeathsig). So the kernel removes it, its
// TUN device and its sockets however the lab ends, SIGKILL included; no
// interface or route of the machine's own namespace is ever touched (the
// TUN is created inside the new namespace), and the only route in it is
// 10.0.0.0/8 through its TUN: nothing leads out. A lab killed while a
// process it started was being forked can leave that process behind; the
// first kernel host of a later lab kills such orphans (sweepOrphans).
//
// The TUN device has no offloads (no IFF_VNET_HDR): the kernel segments
// every TCP and UDP GSO write before it reaches the device, so the link sees
// wire-sized packets (MTU 1500) and one drop loses one segment, as on a
// real path.

// kernelTUNName names a host's device uniquely: wl, the lab's pid, the host's index.
func kernelTUNName(index uint64) string {
	return fmt.Sprintf("wl%d.%d", os.Getpid()%1000000, index%10000)
}

// ownerEnv marks the processes a kernel host starts with the lab's pid, so
// a later lab can tell its orphans (sweepOrphans).
const ownerEnv = "WIRELAB_NETEM_OWNER"

var (
	kernelSeq   atomic.Uint64
	sweepOnce   sync.Once
	hostNSOnce  sync.Once
	hostNS      *os.File // this process's own network namespace
	hostNSError error
)

type kernelHost struct {
	ns         *os.File // the namespace (an open /proc/thread-self/ns/net)
	dev        wgtun.Device
	name       string
	once       sync.Once
	closed     atomic.Bool
	readErrors atomic.Uint64
	wmu        sync.Mutex
	wbufs      [][]byte // write batch, each with room to coalesce 64 KiB
}

// KernelAvailable says whether kernel hosts can be made here: nil, or an
// error naming what is missing (root, network namespaces, /dev/net/tun).
func KernelAvailable() error {
	if os.Geteuid() != 0 {
		return errors.New("netem: the kernel stack needs root (to create network namespaces and TUN devices); run as root, or use the gvisor stack (stack: gvisor in a scenario, --stack gvisor for lab probe)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("netem: the kernel stack needs /dev/net/tun (%v); load the tun module, or use the gvisor stack (stack: gvisor, --stack gvisor)", err)
	}
	if err := originNS(); err != nil {
		return err
	}
	return nil
}

func originNS() error {
	hostNSOnce.Do(func() {
		hostNS, hostNSError = os.Open("/proc/self/ns/net")
		if hostNSError != nil {
			hostNSError = fmt.Errorf("netem: the kernel stack needs network namespaces: %w; use stack: gvisor", hostNSError)
		}
	})
	return hostNSError
}

// onThread runs enter, then f, on a locked OS thread, then moves the thread
// back to this process's namespace. If it cannot move back, the thread is
// left locked and dies with the goroutine (so no other goroutine ever runs
// in another namespace by accident). f does not run when enter fails.
func onThread(enter func() error, f func() error) error {
	if err := originNS(); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := enter(); err != nil {
			runtime.UnlockOSThread() // enter left the thread where it was
			errc <- err
			return
		}
		err := f()
		if rerr := unix.Setns(int(hostNS.Fd()), unix.CLONE_NEWNET); rerr != nil {
			errc <- errors.Join(err, fmt.Errorf("netem: leaving a kernel host's namespace: %w", rerr))
			return // the thread stays locked and exits with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// inNamespace runs f on an OS thread that has joined ns (see onThread).
func inNamespace(ns *os.File, f func() error) error {
	return onThread(func() error {
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("netem: joining a kernel host's namespace: %w", err)
		}
		return nil
	}, f)
}

// newNamespace creates a network namespace and returns it open.
func newNamespace() (*os.File, error) {
	if err := KernelAvailable(); err != nil {
		return nil, err
	}
	var ns *os.File
	err := onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("netem: creating a network namespace: %w (the kernel stack needs root; use stack: gvisor)", err)
		}
		return nil
	}, func() error {
		var err error
		ns, err = os.Open("/proc/thread-self/ns/net")
		return err
	})
	if err != nil && ns != nil {
		ns.Close()
		ns = nil
	}
	return ns, err
}

// KernelHost creates a host whose TCP/IP stack is the Linux kernel's: a new
// network namespace with a TUN device that holds addr (IPv4). It needs
// root and /dev/net/tun (KernelAvailable says what is missing). Connect it
// like any host; open its sockets with Do, DialContext, ListenTCP or
// ListenPacket, and start processes in it with Start.
func (n *Network) KernelHost(addr string) (*Host, error) {
	a, err := parseHostAddr(addr)
	if err != nil {
		return nil, err
	}
	if err := KernelAvailable(); err != nil {
		return nil, err
	}
	sweepOnce.Do(sweepOrphans)
	if err := n.free(a); err != nil { // before making a namespace for nothing
		return nil, err
	}
	ns, err := newNamespace()
	if err != nil {
		return nil, err
	}
	kh := &kernelHost{ns: ns, name: kernelTUNName(kernelSeq.Add(1)), wbufs: make([][]byte, 64)}
	for i := range kh.wbufs {
		kh.wbufs[i] = make([]byte, 0, vnetHdrLen+65535)
	}
	if err := inNamespace(ns, func() error { return kh.setup(a) }); err != nil {
		kh.close()
		return nil, fmt.Errorf("netem: kernel host %s: %w", a, err)
	}
	h := &Host{n: n, addr: a, kern: kh, deliver: kh.write}
	if err := n.addHost(h, kh.readLoop); err != nil {
		kh.close()
		return nil, err
	}
	return h, nil
}

// setup runs inside the new namespace: the TUN device, its address and
// route, loopback, and the sysctls a lab host needs.
func (kh *kernelHost) setup(a netip.Addr) error {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("opening /dev/net/tun: %w (the kernel stack needs it; use stack: gvisor)", err)
	}
	ifr, err := unix.NewIfreq(kh.name)
	if err != nil {
		unix.Close(fd)
		return err
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if os.Getenv("WIRELAB_KERNEL_NO_OFFLOAD") != "" { // experiments: one packet per read and write
		flags &^= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return fmt.Errorf("creating TUN device %s: %w", kh.name, err)
	}
	// wireguard-go's TUN turns on the device's TSO/USO offloads and splits
	// what the kernel hands over into wire-sized packets, and coalesces
	// what it writes (GRO), as a NIC would.
	dev, _, err := wgtun.CreateUnmonitoredTUNFromFD(fd)
	if err != nil {
		unix.Close(fd)
		return fmt.Errorf("TUN device %s: %w", kh.name, err)
	}
	kh.dev = dev

	nl, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer nl.Close()
	lo, err := nl.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := nl.LinkSetUp(lo); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	link, err := nl.LinkByName(kh.name)
	if err != nil {
		return fmt.Errorf("TUN device %s: %w", kh.name, err)
	}
	if err := nl.LinkSetMTU(link, MTU); err != nil {
		return fmt.Errorf("TUN MTU: %w", err)
	}
	// Queue length of the device (packets the host sends before the lab reads them).
	if err := nl.LinkSetTxQLen(link, 10000); err != nil {
		return fmt.Errorf("TUN queue length: %w", err)
	}
	ip := net.IP(a.AsSlice())
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(8, 32)}}
	if err := nl.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("address %s: %w", a, err)
	}
	if err := nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("TUN up: %w", err)
	}
	// A lab host holds thousands of connections: a wide ephemeral range,
	// TIME-WAIT reuse for clients that open a connection per request, and
	// accept queues that take a 10,000-session dial burst. These are the
	// host's configuration, not its TCP's behaviour under loss.
	for k, v := range map[string]string{
		"net/ipv4/ip_local_port_range": "1024 65535",
		"net/ipv4/tcp_tw_reuse":        "1",
		"net/core/somaxconn":           "65535",
		"net/ipv4/tcp_max_syn_backlog": "65535",
	} {
		if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0); err != nil {
			return fmt.Errorf("sysctl %s: %w", strings.ReplaceAll(k, "/", "."), err)
		}
	}
	return nil
}

// vnetHdrLen is the virtio-net header in front of every TUN read and write.
const vnetHdrLen = 10

// readLoop reads the packets the host's kernel sends (a read may return a
// TSO/USO super-packet, split here into wire-sized packets) until the TUN
// is closed.
func (kh *kernelHost) readLoop(handle func([]*buffer.View)) {
	const batchMax = 64
	bufs := make([][]byte, batchMax)
	for i := range bufs {
		bufs[i] = make([]byte, vnetHdrLen+65535)
	}
	sizes := make([]int, batchMax)
	batch := make([]*buffer.View, 0, batchMax)
	for {
		n, err := kh.dev.Read(bufs, sizes, vnetHdrLen)
		for i := 0; i < n; i++ {
			batch = append(batch, buffer.NewViewWithData(bufs[i][vnetHdrLen:vnetHdrLen+sizes[i]]))
		}
		if len(batch) > 0 {
			handle(batch)
			clear(batch)
			batch = batch[:0]
		}
		if err != nil {
			if errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) || kh.closed.Load() {
				return
			}
			kh.readErrors.Add(1) // a packet the splitter refused: dropped
		}
	}
}

// write hands packets a link delivered to the host's kernel: consecutive
// segments of one flow are coalesced into one write (GRO), the rest are
// written one each.
func (kh *kernelHost) write(vs []*buffer.View) {
	kh.wmu.Lock()
	defer kh.wmu.Unlock()
	for len(vs) > 0 {
		chunk := vs[:min(len(vs), len(kh.wbufs))]
		vs = vs[len(chunk):]
		bufs := kh.wbufs[:len(chunk)]
		for i, v := range chunk {
			b := v.AsSlice()
			bufs[i] = append(bufs[i][:vnetHdrLen], b...)
			v.Release()
		}
		_, _ = kh.dev.Write(bufs, vnetHdrLen) // an error: the host is gone, or a packet the kernel refused
	}
}

func (kh *kernelHost) close() {
	kh.once.Do(func() {
		kh.closed.Store(true)
		if kh.dev != nil {
			kh.dev.Close()
		}
		if kh.ns != nil {
			kh.ns.Close()
		}
	})
}

// IsKernel reports whether h's stack is the Linux kernel's (KernelHost).
func (h *Host) IsKernel() bool { return h.kern != nil }

// Do runs f on an OS thread inside a kernel host's namespace: sockets f
// opens there (net.Dial, net.Listen, net.ListenPacket) stay in the
// namespace and use its kernel stack wherever they are used afterwards.
// f must not start goroutines that open sockets (they would run
// elsewhere). Do fails on a host that is not a kernel host.
func (h *Host) Do(f func() error) error {
	if h.kern == nil {
		return fmt.Errorf("netem: host %s is not a kernel host (Do is for hosts made by KernelHost)", h.addr)
	}
	return inNamespace(h.kern.ns, f)
}

// Start starts cmd inside a kernel host's namespace (its sockets are the
// host's). The process is killed when the lab dies (Pdeathsig), and marked
// so that a later lab can kill it if that failed.
func (h *Host) Start(cmd *exec.Cmd) error {
	if h.kern == nil {
		return fmt.Errorf("netem: host %s is not a kernel host (Start is for hosts made by KernelHost)", h.addr)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, ownerEnv+"="+strconv.Itoa(os.Getpid()))
	return h.Do(cmd.Start)
}

// kernelDial dials from inside the host's namespace, from the host's
// address; network is "tcp4" or "udp4".
func (h *Host) kernelDial(ctx context.Context, network, address string) (net.Conn, error) {
	if _, err := h.target(address); err != nil {
		return nil, err
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IP(h.addr.AsSlice())}}
	if network == "udp4" {
		d.LocalAddr = &net.UDPAddr{IP: net.IP(h.addr.AsSlice())}
	}
	var c net.Conn
	err := h.Do(func() error {
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netem: kernel host %s: %w", h.addr, err)
	}
	return c, nil
}

func (h *Host) kernelListenTCP(port int) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(h.addr, uint16(port)).String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netem: kernel host %s: %w", h.addr, err)
	}
	return ln, nil
}

func (h *Host) kernelListenUDP(port int) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := h.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IP(h.addr.AsSlice()), Port: port})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netem: kernel host %s: %w", h.addr, err)
	}
	return c, nil
}

// kernelStats reads the namespace's TCP counters (/proc/net/snmp and netstat as seen from inside).
func (h *Host) kernelStats(st *HostStats) {
	_ = h.Do(func() error {
		snmp := readProcNet("/proc/thread-self/net/snmp")
		ext := readProcNet("/proc/thread-self/net/netstat")
		st.TCPRetransmits = snmp["Tcp:RetransSegs"]
		st.TCPSegmentsSent = snmp["Tcp:OutSegs"]
		st.TCPTimeouts = ext["TcpExt:TCPTimeouts"]
		st.TCPSpuriousRTO = ext["TcpExt:TCPSpuriousRTOs"]
		st.TCPListenDrops = ext["TcpExt:ListenDrops"]
		return nil
	})
}

// readProcNet parses the header/value line pairs of /proc/net/snmp and
// /proc/net/netstat into "Prefix:Name" -> value.
func readProcNet(path string) map[string]uint64 {
	m := map[string]uint64{}
	b, err := os.ReadFile(path)
	if err != nil {
		return m
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || len(names) != len(vals) || names[0] != vals[0] {
			continue
		}
		for j := 1; j < len(names); j++ {
			v, _ := strconv.ParseUint(vals[j], 10, 64)
			m[names[0]+names[j]] = v
		}
	}
	return m
}

// sweepOrphans kills processes that an earlier lab started in a kernel host
// and that outlived it (their owner pid is gone).
func sweepOrphans() {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			v, ok := strings.CutPrefix(kv, ownerEnv+"=")
			if !ok {
				continue
			}
			owner, err := strconv.Atoi(v)
			if err == nil && owner != os.Getpid() && !alive(owner) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			break
		}
	}
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// KernelTCPDefaults reads what a new namespace's TCP gets from this kernel:
// its congestion control (e.g. "bbr" or "cubic"). It makes a namespace for
// the purpose and lets it go.
func KernelTCPDefaults() (congestionControl string, err error) {
	ns, err := newNamespace()
	if err != nil {
		return "", err
	}
	defer ns.Close()
	err = inNamespace(ns, func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
		congestionControl = strings.TrimSpace(string(b))
		return err
	})
	return congestionControl, err
}
