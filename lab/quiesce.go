package lab

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/wirelab/wirelab/chat"
)

// quiesce waits until every session has received everything the set-up sent it, so that the
// set-up's traffic does not spill into the measured window. Joining costs presence: in a room
// of n users with events on (n up to the presence limit, 1,000) the joins alone queue about n²/2
// envelopes, which take seconds to cross the emulated links and would sit ahead of the first
// measured messages (seconds of head-of-line delay that belong to the set-up). Each session
// leaves a room it is not in (a no-op whose ok is queued in seq order like everything else) and
// waits until every seq up to the ok's has arrived; what arrives meanwhile is set-up traffic and
// is not recorded. Clients that do not say how far they have received
// (LastSeq) are not waited for.
func (pt *point) quiesce(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	n := len(pt.clients)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second+time.Duration(n)*10*time.Millisecond)
	defer cancel()
	err := parallel(ctx, n, 256, func(ctx context.Context, i int) error {
		c := pt.clients[i]
		m, ok := c.(interface{ LastSeq() uint64 })
		if !ok {
			return nil
		}
		done := make(chan struct{})
		var reader sync.WaitGroup
		reader.Go(func() { // set-up traffic: read and let go, so the client can go on
			for {
				select {
				case _, ok := <-c.Messages():
					if !ok {
						return
					}
				case <-done:
					return
				}
			}
		})
		defer func() { close(done); reader.Wait() }()
		// Not who: who lobby would queue 10,000 names to each of 10,000 sessions in
		// scale.yaml (and show in the server's memory), and who of a room the session is
		// not in is refused (not_member). On several nodes the ok does not wait for other
		// nodes' publications as who's answer does; the warmup covers those milliseconds.
		r, err := c.Send(ctx, chat.Envelope{Type: chat.TypeLeave, Room: "lab-quiesce"})
		if err != nil {
			return fmt.Errorf("session %d: the barrier (leave lab-quiesce): %w", i, err)
		}
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for m.LastSeq() < r.Seq {
			select {
			case <-t.C:
			case <-ctx.Done():
				return fmt.Errorf("session %d has received up to seq %d of %d", i, m.LastSeq(), r.Seq)
			}
		}
		return nil
	})
	return time.Since(start), err
}
