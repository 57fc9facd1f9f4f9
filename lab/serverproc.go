package lab

import (
	"fmt"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
)

// serverProc follows a server process from its start, the lab's own (childServer) or a peer's
// (peerServer): a watcher goroutine waits for it, and when it exits before the lab asks it to
// (a crash, a kill from outside), died (Options.serverDied) hears at once, once, with the exit
// status and the end of its stderr (childError). kill and the handles' Close wait for the
// watcher, so no goroutine outlives the handle.
type serverProc struct {
	cmd    *exec.Cmd
	stderr *stderrTail
	ended  string // "the server process exited during the run": how exitError starts
	group  bool   // the process leads its own group (Setpgid): kill ends the group
	after  func() // runs once the process has exited (a peer's config removed); may be nil

	exited   chan struct{} // closed by the watcher once the process has exited
	waitErr  error         // cmd.Wait's error, once exited is closed
	stopping atomic.Bool   // the lab ends the process (Close, a failed start, a hang)
	died     func(error)   // Options.serverDied, told once
	diedOnce sync.Once
	reported atomic.Bool // died has heard why the process is gone
}

func newServerProc(cmd *exec.Cmd, ended string, died func(error)) serverProc {
	return serverProc{cmd: cmd, stderr: &stderrTail{}, ended: ended, exited: make(chan struct{}), died: died}
}

// watch waits for the process. An exit the lab did not ask for is reported at once.
func (p *serverProc) watch() {
	p.waitErr = p.cmd.Wait()
	close(p.exited)
	if p.after != nil {
		p.after()
	}
	if !p.stopping.Load() {
		p.report(p.exitError())
	}
}

// exitError says how the process ended; call it once exited is closed.
func (p *serverProc) exitError() error {
	return &childError{what: fmt.Sprintf("%s (%s)", p.ended, p.cmd.ProcessState), stderr: p.stderr.String()}
}

// report tells died why the process is gone, once.
func (p *serverProc) report(err error) {
	p.diedOnce.Do(func() {
		if p.died != nil {
			p.reported.Store(true)
			p.died(err)
		}
	})
}

// kill ends the process (its group, for a group leader) and waits for the watcher.
func (p *serverProc) kill() {
	p.stopping.Store(true)
	if p.group {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	} else {
		_ = p.cmd.Process.Kill()
	}
	<-p.exited
}
