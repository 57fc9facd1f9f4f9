package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var listenLine = regexp.MustCompile(`^listening http://(127\.0\.0\.1:\d+) webtransport https://(127\.0\.0\.1:\d+)/wt$`)

// TestServeBinary runs the real lab binary: the first stdout line is the contract, a session can
// be opened, and SIGINT shuts it down cleanly (exit 0).
func TestServeBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: skips building the lab binary")
	}
	bin := buildLab(t)
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the first line: %v (stderr: %s)", err, stderr.String())
	}
	m := listenLine.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil || m[1] != m[2] {
		t.Fatalf("first line %q does not match %v with one port", line, listenLine)
	}
	resp, err := http.Post("http://"+m[1]+"/api/session?user=alice", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var w struct{ Type, Session, User string }
	err = json.NewDecoder(resp.Body).Decode(&w)
	resp.Body.Close()
	if err != nil || w.Type != "welcome" || len(w.Session) != 32 || w.User != "alice" {
		t.Fatalf("session answer %+v, %v", w, err)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, _ = io.Copy(io.Discard, stdout); done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("lab serve after SIGINT: %v\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("lab serve did not exit within 20s of SIGINT\nstderr:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "running open") {
		t.Errorf("an open server should say so at start; stderr:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), w.Session) {
		t.Errorf("the log contains a session id (a credential)")
	}
}

func TestServeBadFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad addr", []string{"serve", "--addr", "nonsense"}, "--addr"},
		{"cert without key", []string{"serve", "--cert", "x.pem"}, "--cert and --key go together"},
		{"unknown command", []string{"serv"}, "unknown command"},
		{"token without secret", []string{"token", "alice"}, "no secret"},
		{"token bad user", []string{"token", "--auth-secret", "s", "a b"}, "not a valid name"},
		{"idle timeout 0", []string{"serve", "--idle-timeout", "0"}, "--idle-timeout 0s is out of range (100ms to 1h)"},
		{"body timeout huge", []string{"serve", "--body-timeout", "100h"}, "--body-timeout 100h is out of range"},
		{"header timeout negative", []string{"serve", "--header-timeout", "-1s"}, "--header-timeout -1s is out of range"},
		{"no sessions", []string{"serve", "--max-sessions", "0"}, "--max-sessions 0 is out of range (1 to 10000000)"},
		{"no sessions per user", []string{"serve", "--max-sessions-per-user", "-3"}, "--max-sessions-per-user -3 is out of range"},
		{"tiny headers", []string{"serve", "--max-header-bytes", "10"}, "--max-header-bytes 10 is out of range (1024 to 1048576)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WIRELAB_AUTH_SECRET", "")
			var out, errb strings.Builder
			if code := dispatch(tc.args, &out, &errb); code == 0 {
				t.Fatalf("exit 0, want an error")
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("stderr %q does not say %q", errb.String(), tc.want)
			}
		})
	}
}

// lab serve -h says every limit on a connection and a session, with its value.
func TestServeHelpLimits(t *testing.T) {
	var out, errb strings.Builder
	dispatch([]string{"serve", "-h"}, &out, &errb)
	for _, want := range []string{
		"-idle-timeout duration", "(default 30s)", "-body-timeout duration", "-header-timeout duration",
		"(default 10s)", "-max-header-bytes int", "(default 32768)", "-max-sessions int", "(default 10000)",
		"-max-sessions-per-user int", "(default 64)", "written within 10s", "at most 256 KiB", "at most 1 MiB",
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("lab serve -h does not say %q:\n%s", want, errb.String())
		}
	}
}

func TestToken(t *testing.T) {
	var out, errb strings.Builder
	if code := dispatch([]string{"token", "--auth-secret", "s3cret", "alice"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	tok := strings.TrimSpace(out.String())
	if !strings.HasPrefix(tok, "alice.") || strings.Count(tok, ".") != 2 {
		t.Fatalf("token %q is not USER.EXPIRY.MAC", tok)
	}
}

var (
	labOnce sync.Once
	labDir  string
	labBin  string
	labErr  error
)

// buildLab builds the lab binary once for the package's tests.
func buildLab(t *testing.T) string {
	t.Helper()
	labOnce.Do(func() {
		labDir, labErr = os.MkdirTemp("", "wirelab-lab-")
		if labErr != nil {
			return
		}
		labBin = filepath.Join(labDir, "lab")
		out, err := exec.Command("go", "build", "-o", labBin, ".").CombinedOutput()
		if err != nil {
			labErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if labErr != nil {
		t.Fatal(labErr)
	}
	return labBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if labDir != "" {
		os.RemoveAll(labDir)
	}
	os.Exit(code)
}
