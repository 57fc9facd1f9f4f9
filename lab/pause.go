package lab

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PauseEnv names a test-only fault: WIRELAB_TEST_PAUSE=run=N,at=D,for=D makes the lab stop the
// server process (SIGSTOP) D after the measured window of the sweep's N-th run (1-based) began,
// and let it go on (SIGCONT) after the second D: the whole process, its network stack included,
// is frozen, as a process the machine starves is. Without run= every run is paused. The tests
// use it to check that copies the machine delayed are counted as system stalls, not head of line
// (cmd/lab's TestRunSystemStalls); it needs the server in a process of its own.
const PauseEnv = "WIRELAB_TEST_PAUSE"

// testPause is a parsed PauseEnv.
type testPause struct {
	run     int // 1-based; 0 = every run
	at, dur time.Duration
}

// parsePause reads PauseEnv's value; nil for an empty one.
func parsePause(v string) (*testPause, error) {
	if v == "" {
		return nil, nil
	}
	bad := func(why string) error {
		return fmt.Errorf("%s=%q: %s (want run=N,at=DURATION,for=DURATION, e.g. run=2,at=1s,for=150ms)", PauseEnv, v, why)
	}
	p := &testPause{}
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return nil, bad(fmt.Sprintf("%q is not key=value", kv))
		}
		var err error
		switch k {
		case "run":
			if p.run, err = strconv.Atoi(val); err == nil && p.run < 1 {
				err = fmt.Errorf("runs count from 1")
			}
		case "at":
			p.at, err = time.ParseDuration(val)
		case "for":
			p.dur, err = time.ParseDuration(val)
		default:
			err = fmt.Errorf("unknown key")
		}
		if err != nil {
			return nil, bad(fmt.Sprintf("%s: %v", k, err))
		}
	}
	if p.dur <= 0 || p.at < 0 {
		return nil, bad("for must be positive and at not negative")
	}
	return p, nil
}

// pauseFromEnv is PauseEnv's pause, checked against how the server runs.
func pauseFromEnv(opt Options) (*testPause, error) {
	p, err := parsePause(os.Getenv(PauseEnv))
	if err == nil && p != nil && opt.InProcess {
		err = fmt.Errorf("%s stops the server process, and the server runs inside the lab's (in-process)", PauseEnv)
	}
	return p, err
}

// forRun is the pause of the sweep's run i (1-based), or nil.
func (p *testPause) forRun(i int) *testPause {
	if p == nil || (p.run != 0 && p.run != i) {
		return nil
	}
	return p
}

// pauser stops and continues one process on a schedule; stop ends it early (the process goes on).
type pauser struct {
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

// startPause stops pid p.at from now, for p.dur.
func startPause(pid int, p *testPause) *pauser {
	ps := &pauser{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(ps.done)
		t := time.NewTimer(p.at)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ps.quit:
			return
		}
		if syscall.Kill(pid, syscall.SIGSTOP) != nil {
			return
		}
		defer syscall.Kill(pid, syscall.SIGCONT)
		t.Reset(p.dur)
		select {
		case <-t.C:
		case <-ps.quit:
		}
	}()
	return ps
}

// stop ends the pause (continuing the process if it is stopped) and waits for it.
func (ps *pauser) stop() {
	if ps == nil {
		return
	}
	ps.once.Do(func() { close(ps.quit) })
	<-ps.done
}
