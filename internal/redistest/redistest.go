// Package redistest starts a real redis-server (the Debian package) for tests: on a free
// loopback port, in a temporary directory, with append-only persistence so that a restart
// keeps its data, and stopped when the test ends.
//
// It imports needtest only, nothing else of wirelab; only tests import it.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirelab/wirelab/internal/needtest"
)

// Server is a running redis-server.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	Port int
	cmd  *exec.Cmd
	done chan struct{}
}

// Binary finds redis-server. Without it the test is skipped, unless WIRELAB_REQUIRE names
// redis: then it fails.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	needtest.Need(t, "redis", err, "apt-get install -y redis-server")
	return bin
}

// Start runs a redis-server for the test.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), dir: t.TempDir()}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port) }

// Addr is HOST:PORT.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

func (s *Server) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin,
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--protected-mode", "no", "--daemonize", "no", "--loglevel", "notice")
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd.Stderr = s.cmd.Stdout
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	s.done = make(chan struct{})
	ready := make(chan struct{})
	var log strings.Builder
	go func() { // owned by the process: ends when its output closes; Stop waits for done
		defer close(s.done)
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			if log.Len() < 1<<16 && !seen {
				log.WriteString(sc.Text() + "\n")
			}
			if !seen && strings.Contains(sc.Text(), "Ready to accept connections") {
				seen = true
				close(ready)
			}
		}
		_ = s.cmd.Wait()
	}()
	select {
	case <-ready:
	case <-s.done:
		s.t.Fatalf("redis-server exited before it was ready:\n%s", log.String())
	case <-time.After(15 * time.Second):
		s.t.Fatalf("redis-server on %s was not ready in 15 s", s.Addr())
	}
}

// Stop kills the server (SIGKILL: nothing is flushed beyond what appendfsync always wrote) and
// waits for it.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// Restart kills the server and starts it again on the same port with the same data.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}
