package lab

import (
	"context"
	"errors"

	"github.com/wirelab/wirelab/netem"
)

// startChild runs the server in a process of its own, on srvHost through the netem process
// bridge, so that its CPU time, memory and goroutines are its own.
func startChild(ctx context.Context, nw *netem.Network, srvHost *netem.Host, opt Options) (serverHandle, error) {
	return nil, errNoBridge
}

// errNoBridge: the server cannot run in a process of its own yet; the lab runs it in-process and
// says so in every run's warnings.
var errNoBridge = errors.New("the netem process bridge is not available")
