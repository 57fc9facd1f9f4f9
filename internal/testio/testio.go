// Package testio holds the writers tests hand to servers and loggers: a buffer safe to write
// from another goroutine (a child process's stderr) and a writer into the test's log. It is
// imported by tests only and imports nothing of wirelab.
package testio

import (
	"bytes"
	"io"
	"sync"
	"testing"
)

// LockedBuffer collects writes from any goroutine (a process's stderr, shown when a test fails).
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is what was written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// LogWriter writes each write as one line of t's log (its trailing newline dropped): for
// slog handlers and install progress.
func LogWriter(t testing.TB) io.Writer { return logWriter{t} }

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
