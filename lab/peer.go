package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/wirelab/wirelab/netem"
	"github.com/wirelab/wirelab/peers"
	"github.com/wirelab/wirelab/scenarios"
	"github.com/wirelab/wirelab/transports"
)

// Peer servers (issue 14): a scenario's PEER/TRANSPORT names run a peer's own server (Socket.IO
// on Node, Centrifugo) in the server host's namespace on the kernel stack, behind the same link,
// and its clients in place of wirelab's; the audit is the same. Each peer is installed once per
// lab run (on first use on a machine, with a progress line), started for every run like
// wirelab's server process, and killed with the run.

// peerSet is the peer servers a lab run needs, by server name, installed.
type peerSet map[string]peers.Server

// ensurePeers checks that every transport of sc is known (a peer's or wirelab's) and installs the
// peers it names. Peers run only on the kernel stack: their servers are processes of their own,
// which the userspace network cannot host.
func ensurePeers(ctx context.Context, sc *scenarios.Scenario, progress io.Writer) (peerSet, error) {
	set := peerSet{}
	for _, name := range sc.Transports {
		t, ok := peers.Lookup(name)
		if !ok {
			continue
		}
		for _, st := range sc.Stacks {
			if st != scenarios.StackKernel {
				return nil, fmt.Errorf("scenario %s: %s is a peer server's transport, which runs on the kernel stack only (its server is a process of its own, in a network namespace); stack is %s: set stack: kernel (needs root)", sc.Name, name, st)
			}
		}
		if set[t.Server] != nil {
			continue
		}
		dir, err := peers.DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		srv, err := peers.Ensure(ctx, t.Server, dir, progress)
		if err != nil {
			return nil, fmt.Errorf("scenario %s needs the %s peer for %s: %w", sc.Name, t.Server, name, err)
		}
		set[t.Server] = srv
	}
	return set, nil
}

// peerPoint is a run's peer server: the process and how to make its clients.
type peerPoint struct {
	*peerServer
	inst   *peers.Instance
	server peers.Server
}

// startPeerPoint starts transport t's peer server on the kernel host h, listening on ServerPort.
func startPeerPoint(ctx context.Context, h *netem.Host, t peers.Transport, set peerSet, died func(error)) (*peerPoint, error) {
	srv := set[t.Server]
	if srv == nil {
		return nil, fmt.Errorf("the %s peer was not installed for %s", t.Server, t.Name)
	}
	inst, err := srv.Prepare(h.Addr().String(), ServerPort)
	if err != nil {
		return nil, fmt.Errorf("preparing the %s server: %w", t.Server, err)
	}
	addr := net.JoinHostPort(h.Addr().String(), strconv.Itoa(ServerPort))
	ready := func(ctx context.Context) error {
		return inst.Ready(ctx, addr, transports.DialFunc(h.DialContext))
	}
	ps, err := startPeer(ctx, h, t.Server, inst.Cmd, inst.Cleanup, ready, died)
	if err != nil {
		return nil, err
	}
	return &peerPoint{peerServer: ps, inst: inst, server: srv}, nil
}
