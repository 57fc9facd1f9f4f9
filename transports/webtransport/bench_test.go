package webtransport_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/webtransport"
)

// BenchmarkRoomMessage measures one room message from a sender's Send to a subscriber's
// Messages, over loopback QUIC, one at a time (latency, not throughput).
func BenchmarkRoomMessage(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode, func(b *testing.B) {
			l := startBare(b, chat.Config{}, webtransport.Config{})
			pub, sub := benchClient(b, l, mode, "pub"), benchClient(b, l, mode, "sub")
			drained := make(chan struct{})
			go func() { // pub gets its own messages too; nobody reads them
				defer close(drained)
				for range pub.Messages() {
				}
			}()
			b.Cleanup(func() { pub.Close(); <-drained })
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				txt := strconv.Itoa(i)
				if _, err := pub.Send(ctx, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: txt}); err != nil {
					b.Fatal(err)
				}
				for d := range sub.Messages() {
					if d.Env.Type == chat.TypeMsg && d.Env.Text == txt {
						break
					}
				}
			}
			b.ReportMetric(float64(l.wt.Retransmits()), "retransmits")
		})
	}
}

func benchClient(b *testing.B, l *bare, mode, user string) *webtransport.Client {
	opt := transports.Options{URL: l.base, User: user, CertHashes: [][32]byte{l.hash}}
	c := webtransport.NewClient(mode, opt)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}
