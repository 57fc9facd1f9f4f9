package lab

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/wirelab/wirelab/results"
	"github.com/wirelab/wirelab/scenarios"
)

// Bar is the progress display: a redrawn bar on a terminal, plain lines otherwise.
type Bar struct {
	W        io.Writer
	Terminal bool

	mu       sync.Mutex
	total    int
	started  time.Time
	estimate time.Duration
	cur      string
	done     int
	stop     chan struct{}
	wg       sync.WaitGroup
}

func (b *Bar) Start(total int, estimate time.Duration) {
	b.mu.Lock()
	b.total, b.started, b.estimate = total, time.Now(), estimate
	b.mu.Unlock()
	fmt.Fprintf(b.W, "%d runs, about %s of measuring (plus setup)\n", total, estimate.Round(time.Second))
	if b.Terminal {
		b.stop = make(chan struct{})
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-b.stop:
					return
				case <-t.C:
					b.draw()
				}
			}
		}()
	}
}

func describe(p scenarios.Point) string {
	burst := ""
	if p.Burst > 0 {
		burst = fmt.Sprintf(" (bursts of %g)", p.Burst)
	}
	stack := ""
	if p.Stack == scenarios.StackKernel {
		stack = "  [Linux]"
	}
	return fmt.Sprintf("%-11s loss %4.1f%%%s  delay %v  repeat %d%s", p.Transport, p.Loss*100, burst, p.Delay, p.Repeat+1, stack)
}

func (b *Bar) Begin(i int, p scenarios.Point) {
	b.mu.Lock()
	b.cur = describe(p)
	b.mu.Unlock()
	if !b.Terminal {
		fmt.Fprintf(b.W, "[%d/%d] %s ...\n", i+1, b.total, describe(p))
	}
}

func (b *Bar) End(i int, p scenarios.Point, r results.Run) {
	b.mu.Lock()
	b.done = i + 1
	b.mu.Unlock()
	line := fmt.Sprintf("[%d/%d] %s  p50 %.1f ms  p99 %.1f ms  lost %d  dup %d  stalls %d (%d head-of-line",
		i+1, b.total, describe(p), r.Latency.P50, r.Latency.P99, r.Lost, r.Duplicates, r.Stalls.Count, r.Stalls.Collateral)
	if r.Stalls.System > 0 {
		line += fmt.Sprintf(", %d system", r.Stalls.System)
	}
	line += ")"
	if b.Terminal {
		fmt.Fprintf(b.W, "\r\033[K%s\n", line)
		for _, w := range r.Warnings {
			fmt.Fprintf(b.W, "    \033[1;33mwarning:\033[0m %s\n", w)
		}
		b.draw()
		return
	}
	fmt.Fprintln(b.W, line)
	for _, w := range r.Warnings {
		fmt.Fprintf(b.W, "    warning: %s\n", w)
	}
}

func (b *Bar) draw() {
	b.mu.Lock()
	defer b.mu.Unlock()
	const width = 30
	fill := 0
	if b.total > 0 {
		fill = width * b.done / b.total
	}
	el := time.Since(b.started)
	eta := ""
	if b.done > 0 {
		eta = fmt.Sprintf(" ETA %s", (el / time.Duration(b.done) * time.Duration(b.total-b.done)).Round(time.Second))
	}
	fmt.Fprintf(b.W, "\r\033[K[%s%s] %d/%d %s %s%s", strings.Repeat("#", fill), strings.Repeat(".", width-fill),
		b.done, b.total, el.Round(time.Second), b.cur, eta)
}

func (b *Bar) Done() {
	if b.stop != nil {
		close(b.stop)
		b.wg.Wait()
		fmt.Fprint(b.W, "\r\033[K")
	}
	fmt.Fprintf(b.W, "done: %d runs in %s\n", b.done, time.Since(b.started).Round(time.Second))
}
