package netem_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/wirelab/wirelab/netem"
)

// Two hosts, a link with 20 ms each way and 2% bursty loss, and a TCP echo:
// the bytes arrive exactly because gVisor retransmits what the link drops.
func Example() {
	n := netem.New(netem.Config{Seed: 1})
	defer n.Close()
	srv := n.MustHost("10.0.0.1")
	cli := n.MustHost("10.0.0.2")
	p, err := netem.ParseProfile("delay=20ms loss=2% burst=3")
	if err != nil {
		panic(err)
	}
	link, err := n.Connect(cli, srv, p, p)
	if err != nil {
		panic(err)
	}

	ln, _ := srv.ListenTCP(7)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cli.DialTCP(ctx, "10.0.0.1:7")
	if err != nil {
		panic(err)
	}
	msg := make([]byte, 100_000)
	go c.Write(msg)
	if _, err := io.ReadFull(c, msg); err != nil {
		panic(err)
	}
	c.Close()
	ln.Close()
	st := link.AB.Stats()
	fmt.Println("echoed", len(msg), "bytes; offered = delivered + dropped + in flight:",
		st.Offered.Packets == st.Delivered.Packets+st.Dropped.Total().Packets+uint64(st.InFlight))

	_, err = netem.ParseProfile("loss=12")
	fmt.Println(err)
	// Output:
	// echoed 100000 bytes; offered = delivered + dropped + in flight: true
	// netem: loss "12" is not a percentage (try 12%)
}
