package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/chat/redisbroker"
	"github.com/wirelab/wirelab/lab"
)

func init() {
	// Not listed in the usage: the lab starts it, with the server host's bridge as fd 3.
	commands["lab-server"] = command{run: runLabServer}
}

func runLabServer(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("lab-server", "(started by lab run, with a netem bridge as fd 3)", stderr)
	outbox := fs.Int("outbox", 0, "outbox size per session")
	sendQueue := fs.Int("send-queue", 0, "send queue per connection")
	redisURL := fs.String("redis", "", "run as one node of a cluster on this Redis")
	node := fs.String("node", "", "with --redis: this node's name")
	listen := fs.String("listen", "", "serve on kernel sockets at this address (the lab started this process in a kernel host's namespace) instead of the bridge on fd 3")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	hub := chat.Config{Outbox: *outbox, SendQueue: *sendQueue, Node: *node}
	if *redisURL != "" {
		b, err := redisbroker.New(redisbroker.Options{URL: *redisURL, Node: *node, Outbox: *outbox,
			Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			return err
		}
		defer b.Close()
		hub.Broker = b
	}
	if *listen != "" {
		return lab.ServeChildKernel(*listen, hub, os.Stdin, stdout)
	}
	bridge := os.NewFile(3, "netem-bridge")
	if bridge == nil {
		return fmt.Errorf("no bridge on fd 3: this command is started by lab run")
	}
	// stdin: the lab's commands. Signals are the lab's to send; the context is not used, so
	// an interrupt of the terminal reaches the lab, which tells this process to quit.
	return lab.ServeChild(bridge, hub, os.Stdin, stdout)
}
