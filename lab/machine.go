package lab

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wirelab/wirelab/results"
)

// machineInfo describes this machine for the results file.
func machineInfo() results.Machine {
	m := results.Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU()}
	m.Hostname, _ = os.Hostname()
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseUint(f[1], 10, 64)
				m.MemBytes = kb << 10
				break
			}
		}
		f.Close()
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		m.Kernel = utsString(u.Release[:])
	}
	return m
}

func utsString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

// BuildCommit is the commit the binary was built from, stamped by `make build` with
// -ldflags "-X github.com/wirelab/wirelab/lab.BuildCommit=..." for builds without VCS
// information (-buildvcs=false, as this machine's go env sets).
var BuildCommit string

// versions reads the module versions this binary was built with, and its commit: the build's
// VCS stamp, else BuildCommit, else the commit of the repository in the working directory.
func versions() (results.Versions, string) {
	var v results.Versions
	commit := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		v.Wirelab = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
			if s.Key == "vcs.modified" && s.Value == "true" && commit != "" {
				commit += "-dirty"
			}
		}
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/quic-go/quic-go":
				v.QuicGo = d.Version
			case "github.com/quic-go/webtransport-go":
				v.WebTrans = d.Version
			case "github.com/gorilla/websocket":
				v.Gorilla = d.Version
			case "gvisor.dev/gvisor":
				v.GVisor = d.Version
			case "gonum.org/v1/plot":
				v.GonumPlot = d.Version
			}
		}
	}
	if commit == "" {
		commit = BuildCommit
	}
	if commit == "" {
		if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
			commit = strings.TrimSpace(string(out))
			if err := exec.Command("git", "diff", "--quiet", "HEAD").Run(); err != nil {
				commit += "-dirty"
			}
		}
	}
	return v, commit
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU reads a process's utime+stime from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces: fields start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, os.ErrInvalid
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100
