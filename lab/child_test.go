package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/netem"
	"github.com/wirelab/wirelab/scenarios"
)

// wait bounds every wait in these tests; none is expected to take more than a fraction of it.
const wait = 20 * time.Second

// fakeChildServer starts the test binary as a server process in mode (fakeChild). died hears
// what Options.serverDied would.
func fakeChildServer(t *testing.T, ctx context.Context, mode string) (*childServer, <-chan error, error) {
	t.Helper()
	t.Setenv(fakeChildEnv, mode)
	nw := netem.New(netem.Config{Seed: 1})
	t.Cleanup(func() { _ = nw.Close() })
	died := make(chan error, 1)
	opt := Options{ServerCommand: []string{os.Args[0]}, serverDied: func(err error) { died <- err }}
	_, cs, err := startChild(ctx, nw, "10.0.0.1", chat.Config{}, opt, false)
	if cs != nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			_ = cs.Close(ctx)
		})
	}
	return cs, died, err
}

// A server process that does what it is asked: no death reported, a clean close.
func TestChildWell(t *testing.T) {
	cs, died, err := fakeChildServer(t, context.Background(), "well")
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Mark(); err != nil {
		t.Fatal(err)
	}
	st, err := cs.Stats()
	if err != nil || st.Requests != 7 || st.GoroutinesPeak != 3 {
		t.Fatalf("stats %+v, %v", st, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := cs.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case err := <-died:
		t.Fatalf("a process that quit when told was reported: %v", err)
	default:
	}
}

// diedWith waits for the death report and checks that it says each of want.
func diedWith(t *testing.T, died <-chan error, want ...string) error {
	t.Helper()
	select {
	case err := <-died:
		var ce *childError
		if !errors.As(err, &ce) {
			t.Fatalf("reported %T %v, want a *childError", err, err)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("the report does not say %q:\n%v", w, err)
			}
		}
		return err
	case <-time.After(wait):
		t.Fatalf("no death reported within %v", wait)
	}
	return nil
}

// A process that exits on its own is reported at once, with no request to notice it: the
// watcher sees it exit.
func TestChildExitReported(t *testing.T) {
	_, died, err := fakeChildServer(t, context.Background(), "exit-after-ready")
	if err != nil {
		t.Fatal(err)
	}
	diedWith(t, died, "exited during the run (exit status 3)", "fake crash: the server fell over")
}

// A crash's stderr is kept within bounds: the head (the panic's message) and the tail (the end
// of the stack), and the request that found the process gone says the same.
func TestChildCrashAtMark(t *testing.T) {
	cs, died, err := fakeChildServer(t, context.Background(), "crash-at-mark")
	if err != nil {
		t.Fatal(err)
	}
	markErr := cs.Mark()
	reported := diedWith(t, died, "exit status 2", "panic: fake crash at mark", "the last line", "bytes ...]")
	if len(reported.Error()) > stderrHead+stderrTailMax+200 {
		t.Errorf("the report is %d bytes: stderr was not clipped", len(reported.Error()))
	}
	var ce *childError
	if !errors.As(markErr, &ce) || !strings.Contains(markErr.Error(), "exit status 2") {
		t.Errorf("mark: %v, want the process's exit", markErr)
	}
	if _, err := cs.Stats(); err == nil {
		t.Errorf("stats after the crash: no error")
	}
}

// A process that does not answer is not waited for past the request's deadline: it is killed
// and reported as hung, and closing it does not wait either.
func TestChildHangs(t *testing.T) {
	cs, died, err := fakeChildServer(t, context.Background(), "hang")
	if err != nil {
		t.Fatal(err)
	}
	cs.timeout = 100 * time.Millisecond
	done := make(chan error, 1)
	go func() { _, err := cs.Stats(); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), `did not answer "stats" within 100ms and was killed`) {
			t.Fatalf("stats of a hung process: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("stats of a hung process did not return")
	}
	diedWith(t, died, `did not answer "stats"`)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := cs.Close(ctx); err != nil {
		t.Fatalf("close of the killed process: %v (its end was reported already)", err)
	}
}

// A process that never becomes ready, or exits first, fails the start with its exit status
// and stderr; a cancelled start does not wait for it.
func TestChildStartFails(t *testing.T) {
	_, died, err := fakeChildServer(t, context.Background(), "no-ready")
	if err == nil || !strings.Contains(err.Error(), "did not start") || !strings.Contains(err.Error(), "exit status 1") ||
		!strings.Contains(err.Error(), "cannot listen: fake reason") {
		t.Fatalf("start of a process that exits: %v", err)
	}
	select {
	case err := <-died:
		t.Logf("reported too (the process exited before the start gave up): %v", err)
	default:
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := fakeChildServer(t, ctx, "silent"); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("a cancelled start: %v", err)
	}
}

// In a run, a server process that dies is noticed at once: the run fails with the exit status
// and the stderr, long before its measured window would have ended.
func TestRunServerDies(t *testing.T) {
	t.Setenv(fakeChildEnv, "real-crash-at-mark")
	sc, err := scenarios.Parse("dies.yaml", []byte(`name: dies
duration: 60s
warmup: 500ms
transports: [websocket]
users: 2
link: {delay: 5ms}
`))
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	f, err := Run(context.Background(), sc, Options{ServerCommand: []string{os.Args[0]}})
	took := time.Since(began)
	if err == nil || !strings.Contains(err.Error(), "1 of 1 runs failed") {
		t.Fatalf("run: %v, want a failed run", err)
	}
	if len(f.Runs) != 1 || len(f.Runs[0].Warnings) == 0 {
		t.Fatalf("runs %+v", f.Runs)
	}
	w := strings.Join(f.Runs[0].Warnings, "\n")
	for _, want := range []string{"the run failed", "exited during the run (exit status 3)", "fake crash at mark"} {
		if !strings.Contains(w, want) {
			t.Errorf("the run's warnings do not say %q:\n%s", want, w)
		}
	}
	// Unnoticed, the run would have gone on for its 60 s window and the drain after it.
	if took > 30*time.Second {
		t.Errorf("the run took %v: the server's death was not noticed at once", took)
	}
}

func TestStderrTail(t *testing.T) {
	var s stderrTail
	s.Write([]byte("short"))
	if s.String() != "short" {
		t.Fatalf("%q", s.String())
	}
	head := strings.Repeat("h", stderrHead-len("short"))
	s.Write([]byte(head))
	for range 1000 {
		s.Write([]byte(strings.Repeat("m", 100)))
	}
	s.Write([]byte("the end"))
	got := s.String()
	if !strings.HasPrefix(got, "short"+head+"\n[... ") || !strings.HasSuffix(got, "mmm"+"the end") {
		t.Fatalf("head or tail lost: %.80q ... %.80q", got, got[len(got)-80:])
	}
	if dropped := 5 + len(head) + 1000*100 + len("the end") - stderrHead - stderrTailMax; !strings.Contains(got, fmt.Sprintf("[... %d bytes ...]", dropped)) {
		t.Errorf("the note of what was left out is not %d bytes: %.120q", dropped, got[stderrHead:])
	}
	if want := stderrHead + stderrTailMax; len(got) > want+40 {
		t.Fatalf("%d bytes kept, want about %d", len(got), want)
	}
	if n := strings.Count(got, "m"); n != stderrTailMax-len("the end") {
		t.Fatalf("the tail holds %d of the middle bytes, want %d", n, stderrTailMax-len("the end"))
	}
}
