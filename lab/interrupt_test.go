package lab

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/wirelab/wirelab/scenarios"
)

// cancelOn is a log handler that cancels the run when it has seen msg n times.
type cancelOn struct {
	msg    string
	n      int32
	seen   atomic.Int32
	cancel context.CancelFunc
}

func (h *cancelOn) Enabled(context.Context, slog.Level) bool { return true }
func (h *cancelOn) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg && h.seen.Add(1) == h.n {
		h.cancel()
	}
	return nil
}
func (h *cancelOn) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *cancelOn) WithGroup(string) slog.Handler      { return h }

// TestInterruptedRunIsNotKept: a lab stopped while a run's schedule goes (Ctrl-C) returns the
// runs that ended and the interruption, not the cut-short run's figures as if it were one.
func TestInterruptedRunIsNotKept(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: lab runs")
	}
	sc, err := scenarios.Parse("interrupt.yaml", []byte(`name: interrupt
duration: 1s
warmup: 200ms
transports: [websocket]
users: 4
link: {delay: 5ms, loss: [0%, 1%]}
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The second run is stopped as its schedule starts: after its set-up drained.
	h := &cancelOn{msg: "set-up traffic drained", n: 2, cancel: cancel}
	f, err := Run(ctx, sc, Options{InProcess: true, Logger: slog.New(h)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want the interruption", err)
	}
	if h.seen.Load() != 2 {
		t.Fatalf("the second run's set-up was seen %d times", h.seen.Load())
	}
	if f == nil || len(f.Runs) != 1 {
		t.Fatalf("runs kept: %+v, want the first one only", f)
	}
	if r := f.Runs[0]; r.Loss != 0 || r.Sent == 0 || r.Delivered == 0 {
		t.Errorf("the kept run: loss %g, sent %d, delivered %d: want the finished 0%% run", r.Loss, r.Sent, r.Delivered)
	}
	t.Log(err)
}
