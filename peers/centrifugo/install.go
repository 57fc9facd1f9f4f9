package centrifugo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/wirelab/wirelab/peers/internal/peercache"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The pinned peer.
const (
	// Name is the server's name as results spell it.
	Name = "centrifugo"
	// Version is the Centrifugo release Ensure installs.
	Version = "6.9.1"
	// module is the Go module Centrifugo is built from.
	module = "github.com/centrifugal/centrifugo/v6"
	// versionVar is the variable the release build sets (internal/build.Version); without it
	// the binary calls itself v0.0.0.
	versionVar = module + "/internal/build.Version"
)

// Install is an installed Centrifugo.
type Install struct {
	Name    string // "centrifugo"
	Version string // "6.9.1"
	Binary  string // the executable
}

// DefaultCacheDir is where peers are installed: $WIRELAB_PEERS_CACHE when set, else
// os.UserCacheDir()/wirelab/peers.
func DefaultCacheDir() (string, error) { return peercache.Dir() }

// Lookup returns the Centrifugo installed in cacheDir, if Ensure has installed it.
func Lookup(cacheDir string) (Install, bool) {
	in := Install{Name: Name, Version: Version, Binary: filepath.Join(cacheDir, "centrifugo-v"+Version, "centrifugo")}
	fi, err := os.Stat(in.Binary)
	return in, err == nil && fi.Mode().IsRegular()
}

// ErrNoGo is returned by Ensure when Centrifugo is not installed yet and there is no go
// command to build it with.
var ErrNoGo = errors.New("the centrifugo peer is built from its Go module and needs the go command (Go 1.26 or newer: https://go.dev/dl/ or apt-get install -y golang-go)")

// Ensure returns the Centrifugo installed in cacheDir, building it there first if it is not
// (go install of the pinned module, about two minutes and 122 modules on first use; one line on
// progress says so). A second call is instant. Two processes may call it at once: each builds
// into a temporary directory and renames it into place, and the loser uses the winner's.
func Ensure(ctx context.Context, cacheDir string, progress io.Writer) (Install, error) {
	in, ok := Lookup(cacheDir)
	if ok {
		return in, nil
	}
	final := filepath.Dir(in.Binary)
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return Install{}, fmt.Errorf("centrifugo v%s is not in %s: %w", Version, cacheDir, ErrNoGo)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Install{}, fmt.Errorf("centrifugo: the peers' cache: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, ".centrifugo-build-")
	if err != nil {
		return Install{}, fmt.Errorf("centrifugo: the peers' cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	bin, work := filepath.Join(tmp, "bin"), filepath.Join(tmp, "work")
	for _, d := range []string{bin, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return Install{}, fmt.Errorf("centrifugo: %w", err)
		}
	}
	if progress != nil {
		fmt.Fprintf(progress, "installing Centrifugo v%s into %s (go install of %s: about 2 minutes, first use only)\n", Version, final, module)
	}
	// Built outside any module (cmd.Dir is an empty directory, GOWORK off) so that no
	// go.mod around the caller is read or changed; -mod=mod lets go install resolve the
	// module's own requirements.
	cmd := exec.CommandContext(ctx, goCmd, "install", "-ldflags", "-X "+versionVar+"="+Version, module+"@v"+Version)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=-mod=mod", "GOWORK=off")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return Install{}, fmt.Errorf("centrifugo: go install %s@v%s: %w\n%s", module, Version, err, tail(out.String(), 2000))
	}
	built := filepath.Join(bin, "centrifugo")
	if v, err := binaryVersion(ctx, built); err != nil {
		return Install{}, err
	} else if v != Version {
		return Install{}, fmt.Errorf("centrifugo: the binary built from %s@v%s says it is v%s (the -X %s flag did not take)", module, Version, v, versionVar)
	}
	if err := os.Rename(bin, final); err != nil {
		// Another process may have won the race; its install is as good as ours.
		if in, ok := Lookup(cacheDir); ok {
			return in, nil
		}
		return Install{}, fmt.Errorf("centrifugo: moving the build into place: %w", err)
	}
	return in, nil
}

// binaryVersion runs `centrifugo version`, which prints "Centrifugo v6.9.1 (Go version: ...)".
func binaryVersion(ctx context.Context, binary string) (string, error) {
	out, err := exec.CommandContext(ctx, binary, "version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("centrifugo: %s version: %w: %s", binary, err, tail(string(out), 500))
	}
	f := strings.Fields(string(out))
	for i, w := range f {
		if w == "Centrifugo" && i+1 < len(f) {
			return strings.TrimPrefix(f[i+1], "v"), nil
		}
	}
	return "", fmt.Errorf("centrifugo: %s version printed %q, not \"Centrifugo vX.Y.Z\"", binary, tail(string(out), 200))
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
