package lab

import (
	"fmt"
	"math"
	"time"
)

// System stalls: copies the machine delayed, not the network. When the server process (or the
// lab, which runs every client) is short of CPU, every session's copies are late together, with
// no packet of theirs dropped; attribution alone would call them head of line (collateral). The
// rule that sets them apart (docs/METRICS.md, "System stalls") must keep genuine head-of-line
// stalls where they are:
//   - downstream head of line delays one session's copies behind its own connection's loss:
//     copies of many messages, but in one session (or a few, independently);
//   - upstream head of line (a sender's connection lost an earlier command) delays every copy
//     of that sender's next few messages, in every session that receives them: many sessions,
//     but one sender.
//
// A starved server or lab delays many senders' messages in (nearly) all their recipients at
// once. So, with stalls that lost nothing of their own ("free" stalls):
//   - a message is wide when at least systemWideShare of its delivered copies, and at least
//     systemWideMin, are free stalls (independent downstream head of line in half of a room's
//     sessions at once is far out of reach: at a 10% head-of-line share, P(Binomial(20, 0.1) >=
//     10) is about 7e-6);
//   - copies are binned by arrival (systemBin); a window is two adjacent bins, so a burst that
//     straddles a bin edge is seen whole;
//   - a window is a system window when the wide messages with a free stall arriving in it come
//     from at least systemSenders different senders and are at least systemMsgShare of the
//     distinct messages arriving in it (one sender's upstream head of line is one sender; a few
//     senders' coincident upstream losses in a busy window are a small share of its messages);
//   - every free stall arriving in a system window is a system stall; own-loss stalls stay own.
//
// And when the link lost nothing at all in the measured window (no drop in a complete trace)
// and neither delays nor queues packets on its own (no jitter, no rate limit), no stall can be
// head of line: there was no loss to wait behind, so every free stall is a system stall (at 0%
// loss under a loaded CPU, one message late in every session of its room is otherwise one
// sender, which the window rule leaves to head of line).
const (
	systemBin       = 50 * time.Millisecond
	systemSenders   = 3
	systemWideShare = 0.5
	systemWideMin   = 3
	systemMsgShare  = 0.25
	systemWideP     = 1e-3 // a wide message's free stalls are this improbable at the run's rate
)

// arrival is one delivered copy as the system-stall rule sees it.
type arrival struct {
	session, msg, sender int32
	recv                 time.Duration // arrival, since t0
	stall                bool          // later than the stall threshold
	own                  bool          // a packet carrying its own bytes was dropped
}

func (a arrival) free() bool { return a.stall && !a.own }

// systemStalls says, for each copy, whether it is a system stall (always a free stall); lossless
// says the link lost nothing and neither delayed nor queued packets on its own (see above).
func systemStalls(as []arrival, lossless bool) []bool {
	out := make([]bool, len(as))
	if len(as) == 0 {
		return out
	}
	if lossless {
		for i, a := range as {
			out[i] = a.free()
		}
		return out
	}
	copies, free := map[int32]int{}, map[int32]int{}
	var last int
	for _, a := range as {
		copies[a.msg]++
		if a.free() {
			free[a.msg]++
		}
		last = max(last, bin(a.recv))
	}
	// The run's own rate of free stalls: a message is wide only if that many of its copies
	// being free stalls is improbable at that rate, copy by copy. Long polling at 5% loss has
	// about a quarter of its copies in head of line; in rooms of 6 sessions, 3 of a message's 6
	// copies are then free stalls by chance for one message in six, and its windows passed for
	// system ones with the machine idle (1,062 "system" stalls, scheduler p99s of 2 ms).
	var nCopies, nFree int
	for m, c := range copies {
		nCopies += c
		nFree += free[m]
	}
	rate := float64(nFree) / float64(max(1, nCopies))
	wide := func(m int32) bool {
		f, n := free[m], copies[m]
		return f >= systemWideMin && float64(f) >= systemWideShare*float64(n) && binomialTail(n, f, rate) < systemWideP
	}
	// Per bin: the messages arriving, and the wide messages with a free stall arriving (-> sender).
	msgs := make([]map[int32]bool, last+1)
	wides := make([]map[int32]int32, last+1)
	for _, a := range as {
		b := bin(a.recv)
		if msgs[b] == nil {
			msgs[b] = map[int32]bool{}
		}
		msgs[b][a.msg] = true
		if a.free() && wide(a.msg) {
			if wides[b] == nil {
				wides[b] = map[int32]int32{}
			}
			wides[b][a.msg] = a.sender
		}
	}
	// Window k is bins k and k+1.
	system := make([]bool, last+1)
	for k := range system {
		if len(wides[k]) == 0 && (k+1 > last || len(wides[k+1]) == 0) {
			continue
		}
		all, w, senders := map[int32]bool{}, map[int32]bool{}, map[int32]bool{}
		for _, b := range []int{k, k + 1} {
			if b > last {
				continue
			}
			for m := range msgs[b] {
				all[m] = true
			}
			for m, s := range wides[b] {
				w[m], senders[s] = true, true
			}
		}
		system[k] = len(senders) >= systemSenders && float64(len(w)) >= systemMsgShare*float64(len(all))
	}
	for i, a := range as {
		if !a.free() {
			continue
		}
		b := bin(a.recv)
		out[i] = system[b] || (b > 0 && system[b-1])
	}
	return out
}

func bin(recv time.Duration) int { return int(max(0, recv/systemBin)) }

// binomialTail is P(X >= k) for X ~ Binomial(n, p).
func binomialTail(n, k int, p float64) float64 {
	if k <= 0 {
		return 1
	}
	if p <= 0 {
		return 0
	}
	if p >= 1 {
		return 1
	}
	var sum float64
	lp, lq := math.Log(p), math.Log1p(-p)
	for i := k; i <= n; i++ {
		lg1, _ := math.Lgamma(float64(n + 1))
		lg2, _ := math.Lgamma(float64(i + 1))
		lg3, _ := math.Lgamma(float64(n - i + 1))
		sum += math.Exp(lg1 - lg2 - lg3 + float64(i)*lp + float64(n-i)*lq)
	}
	return sum
}

// systemWarnShare is the share of a run's delivered copies that must be system stalls before the
// run gets a warning. They are counted however few they are; but a few dozen copies in 48,000
// late past the no-loss p99 plus an RTT (15 in a quiet make bench's long polling at 0%, where a
// copy that just missed a poll's answer waits for the next poll) say nothing about the
// machine falling behind, and a warning must mean something. A starved server delays thousands
// (8,838 stalls in a loaded wt-uni run, 7,814 of them system); a 200 ms freeze of the server
// delays every copy in flight (about 5% of TestRunSystemStalls' copies).
const systemWarnShare = 0.002

// systemWarning is the run's warning when some of its stalls were system stalls: n copies in
// sessions sessions, the first and last arriving from and to seconds into the measured window;
// lossless when the link lost nothing (every free stall is then a system stall).
func systemWarning(n, sessions int, from, to float64, serverSched, labSched float64, lossless bool) string {
	sched := fmt.Sprintf("the lab's scheduler p99 %.1f ms", labSched)
	if serverSched > 0 {
		sched = fmt.Sprintf("the server process's scheduler p99 %.1f ms, %s", serverSched, sched)
	}
	why := "late together across %d sessions with no loss of their own"
	if lossless {
		why = "late across %d sessions on a link that lost nothing in this run (none could wait behind a loss)"
	}
	return fmt.Sprintf("%d copies were "+why+" (arriving %.1f-%.1f s into the window): the machine, not the network, delayed them (the server process or the lab fell behind; %s); they are counted as system stalls, not head-of-line", n, sessions, from, to, sched)
}

// stallKind is what delayed a stalled copy.
type stallKind uint8

const (
	stallOwn    stallKind = iota // some of its own bytes were dropped
	stallHOL                     // it waited behind another's loss (collateral)
	stallSystem                  // the machine (system.go)
)
