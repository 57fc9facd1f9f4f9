package lab

import (
	"context"
	"testing"

	"github.com/wirelab/wirelab/scenarios"
)

func TestRunSmall(t *testing.T) {
	sc, err := scenarios.Parse("small.yaml", []byte(`name: small
seed: 3
duration: 2s
warmup: 500ms
transports: [websocket]
users: 10
tabs: 2
rooms: 2
workload: {rate: 50/s, size: 100}
link: {delay: 20ms, loss: [2%]}
`))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Run(context.Background(), sc, Options{InProcess: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.Runs {
		t.Logf("%s loss %.2f: sent %d expected %d delivered %d lost %d dup %d ooo %d p50 %.1f p99 %.1f stalls %+v link %+v server %+v lab %+v warn %v",
			r.Transport, r.Loss, r.Sent, r.Expected, r.Delivered, r.Lost, r.Duplicates, r.OutOfOrder, r.Latency.P50, r.Latency.P99, r.Stalls, r.Link, r.Server, r.Lab, r.Warnings)
	}
}
