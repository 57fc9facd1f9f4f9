//go:build unix

package netem

import (
	"fmt"
	"os"
	"syscall"
)

// socketPair returns the two ends of a unix stream socket pair, close-on-exec
// (ExtraFiles clears that for the child's copy), with large buffers.
func socketPair() (parent, child *os.File, err error) {
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	for _, fd := range fds {
		syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, bridgeSocketBuffer)
		syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, bridgeSocketBuffer)
	}
	return os.NewFile(uintptr(fds[0]), "netem-bridge-parent"), os.NewFile(uintptr(fds[1]), "netem-bridge-child"), nil
}
