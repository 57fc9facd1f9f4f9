package lab

import (
	"sort"
	"sync"
	"time"
)

// schedProbe measures how late the Go scheduler wakes a goroutine in the lab process: a sleeping
// goroutine that wakes much later than asked means the harness itself was short of CPU.
type schedProbe struct {
	quit chan struct{}
	done chan struct{}

	mu    sync.Mutex
	lates []time.Duration // so far (p99 reads them while the probe runs)
}

func startSchedProbe() *schedProbe {
	p := &schedProbe{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		const step = 5 * time.Millisecond
		t := time.NewTimer(step)
		defer t.Stop()
		want := time.Now().Add(step)
		for {
			select {
			case <-p.quit:
				return
			case now := <-t.C:
				p.mu.Lock()
				p.lates = append(p.lates, now.Sub(want))
				p.mu.Unlock()
				want = now.Add(step)
				t.Reset(step)
			}
		}
	}()
	return p
}

// stop ends the probe and returns the 99th percentile lateness in ms.
func (p *schedProbe) stop() float64 {
	close(p.quit)
	<-p.done
	return p.p99()
}

// p99 is the 99th percentile lateness so far, in ms, while the probe runs or after it stopped.
func (p *schedProbe) p99() float64 {
	p.mu.Lock()
	lates := append([]time.Duration(nil), p.lates...)
	p.mu.Unlock()
	if len(lates) == 0 {
		return 0
	}
	sort.Slice(lates, func(i, j int) bool { return lates[i] < lates[j] })
	return float64(lates[len(lates)*99/100]) / 1e6
}
