package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/wirelab/wirelab/chat"
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	bridge := os.NewFile(3, "netem-bridge")
	if bridge == nil {
		return fmt.Errorf("no bridge on fd 3: this command is started by lab run")
	}
	// stdin: the lab's commands. Signals are the lab's to send; the context is not used, so
	// an interrupt of the terminal reaches the lab, which tells this process to quit.
	return lab.ServeChild(bridge, chat.Config{Outbox: *outbox, SendQueue: *sendQueue}, os.Stdin, stdout)
}
