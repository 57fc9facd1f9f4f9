package lab

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// parallel runs every index once, width at a time and never more.
func TestParallelRunsEachOnceWithinWidth(t *testing.T) {
	const n, width = 200, 7
	var mu sync.Mutex
	ran := make([]int, n)
	var inFlight, most atomic.Int32
	full := make(chan struct{}) // closed when width run at once
	var fullOnce sync.Once
	err := parallel(context.Background(), n, width, func(ctx context.Context, i int) error {
		now := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); now > m; m = most.Load() {
			if most.CompareAndSwap(m, now) {
				break
			}
		}
		if now == width {
			fullOnce.Do(func() { close(full) })
		}
		if i < width {
			<-full // the first width hold their slots until all of them run: one more would show
		}
		mu.Lock()
		ran[i]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range ran {
		if c != 1 {
			t.Fatalf("index %d ran %d times", i, c)
		}
	}
	if m := most.Load(); m != width {
		t.Fatalf("at most %d ran at once, want %d", m, width)
	}
}

// The first error is returned as it is, cancels the others' ctx and starts no more.
func TestParallelFirstErrorCancelsTheRest(t *testing.T) {
	const n, width = 100, 3
	boom := errors.New("boom")
	var started atomic.Int32
	err := parallel(context.Background(), n, width, func(ctx context.Context, i int) error {
		started.Add(1)
		if i == 0 {
			return boom
		}
		<-ctx.Done() // the others hold their slot until cancelled
		return fmt.Errorf("session %d: %w", i, ctx.Err())
	})
	if !errors.Is(err, boom) || err.Error() != "boom" {
		t.Fatalf("error %v, want the first one, boom", err)
	}
	if s := started.Load(); s > width+1 {
		t.Fatalf("%d started after the first error; at most %d can have (the width, and one waiting for a slot)", s, width+1)
	}
}

// A ctx that ended is the error even when every f that ran returned nil.
func TestParallelEndedContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var started atomic.Int32
	err := parallel(ctx, 10, 2, func(ctx context.Context, i int) error {
		started.Add(1)
		return nil
	})
	if !errors.Is(err, context.Canceled) || started.Load() != 0 {
		t.Fatalf("error %v after %d started, want context.Canceled and none started", err, started.Load())
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	err = parallel(ctx, 50, 2, func(_ context.Context, i int) error {
		if i == 5 {
			cancel() // the caller gives up midway; f itself does not fail
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}
