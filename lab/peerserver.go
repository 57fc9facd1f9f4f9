package lab

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/wirelab/wirelab/netem"
)

// peerServer is a peer's server process (Socket.IO on Node, Centrifugo) running in a kernel
// host's namespace: the lab starts it, waits until it answers, and reads what it costs from
// /proc, since it speaks no lab protocol on stdin/stdout. As for childServer, serverProc
// watches it: an exit the lab did not ask for is reported at once through Options.serverDied,
// and Close waits for the watcher.
type peerServer struct {
	serverProc
	name string // "socket.io", for messages
	cpu0 time.Duration
	rss0 int64
}

// startPeer starts cmd on the kernel host h and waits until ready says the peer serves (ready
// dials it through the network, as its clients will), or readyTimeout passes. cleanup, if not
// nil, runs once the process is gone (it removes what the peer's start wrote: its config).
func startPeer(ctx context.Context, h *netem.Host, name string, cmd *exec.Cmd, cleanup func(), ready func(ctx context.Context) error, died func(error)) (*peerServer, error) {
	ps := &peerServer{serverProc: newServerProc(cmd, "the "+name+" server exited", died), name: name}
	ps.group, ps.after = true, cleanup
	if cmd.Stdout == nil {
		cmd.Stdout = ps.stderr // what the peer prints, kept for the error that says why it stopped
	}
	cmd.Stderr = ps.stderr
	cmd.WaitDelay = 5 * time.Second
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Its own process group: Close signals the group, so that nothing the peer starts outlives it.
	cmd.SysProcAttr.Setpgid = true
	if err := h.Start(cmd); err != nil {
		if cleanup != nil {
			cleanup()
		}
		return nil, fmt.Errorf("starting the %s server (%s): %w", name, cmd.Path, err)
	}
	go ps.watch()
	rctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ready(rctx) }()
	var err error
	select {
	case err = <-done:
	case <-ps.exited:
		cancel()
		<-done
		err = ps.exitError()
	}
	if err != nil {
		ps.kill()
		if ce := (*childError)(nil); !errors.As(err, &ce) {
			err = &childError{what: fmt.Sprintf("the %s server did not start serving within %v: %v", name, readyTimeout, err), stderr: ps.stderr.String()}
		}
		return nil, err
	}
	ps.rss0 = procStatusKB(strconv.Itoa(cmd.Process.Pid), "VmRSS:")
	return ps, nil
}

// CertHash: no peer serves the lab's WebTransport certificate.
func (p *peerServer) CertHash() [32]byte { return [32]byte{} }

func (p *peerServer) Mark() error {
	pid := p.cmd.Process.Pid
	cpu, err := procCPU(pid)
	if err != nil {
		return fmt.Errorf("reading the %s server's CPU time: %w", p.name, err)
	}
	p.cpu0 = cpu
	resetPeakRSS(strconv.Itoa(pid)) // as the lab's own server does at mark
	return nil
}

func (p *peerServer) Stats() (serverStats, error) {
	select {
	case <-p.exited:
		return serverStats{}, p.exitError()
	default:
	}
	pid := p.cmd.Process.Pid
	cpu, err := procCPU(pid)
	if err != nil {
		return serverStats{}, fmt.Errorf("reading the %s server's CPU time: %w", p.name, err)
	}
	return serverStats{CPU: cpu - p.cpu0, RSSPeak: procStatusKB(strconv.Itoa(pid), "VmHWM:"), RSSBase: p.rss0, Separate: true}, nil
}

// Close asks the peer to stop (SIGTERM to its group) and kills it if it has not exited when ctx
// ends.
func (p *peerServer) Close(ctx context.Context) error {
	p.stopping.Store(true)
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	var err error
	select {
	case <-p.exited:
	case <-ctx.Done():
		err = fmt.Errorf("the %s server did not stop in time and was killed: %w", p.name, ctx.Err())
		p.kill()
	}
	return err
}
