//go:build !linux

package netem

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
)

type kernelHost struct{}

func (kh *kernelHost) close() {}

var errNoKernel = errors.New("netem: the kernel stack needs Linux (network namespaces and /dev/net/tun); use stack: gvisor")

// KernelAvailable says whether kernel hosts can be made here: never, off Linux.
func KernelAvailable() error { return errNoKernel }

// KernelHost needs Linux.
func (n *Network) KernelHost(addr string) (*Host, error) { return nil, errNoKernel }

// IsKernel reports whether h's stack is the Linux kernel's.
func (h *Host) IsKernel() bool { return false }

// Do needs a kernel host (Linux).
func (h *Host) Do(f func() error) error {
	return fmt.Errorf("netem: host %s is not a kernel host", h.addr)
}

// Start needs a kernel host (Linux).
func (h *Host) Start(cmd *exec.Cmd) error {
	return fmt.Errorf("netem: host %s is not a kernel host", h.addr)
}

func (h *Host) kernelDial(context.Context, string, string) (net.Conn, error) { return nil, errNoKernel }
func (h *Host) kernelListenTCP(int) (net.Listener, error)                    { return nil, errNoKernel }
func (h *Host) kernelListenUDP(int) (*net.UDPConn, error)                    { return nil, errNoKernel }
func (h *Host) kernelStats(*HostStats)                                       {}

// KernelTCPDefaults needs Linux.
func KernelTCPDefaults() (string, error) { return "", errNoKernel }
