package socketio

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/wirelab/wirelab/peers/internal/peercache"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wirelab/wirelab/transports"
)

// The pinned peer.
const (
	Name    = "socket.io"
	Version = "4.8.4"
)

// CacheEnv names the environment variable that overrides DefaultCacheDir.
const CacheEnv = peercache.Env

// NodeFix says how to get what the peer needs.
const NodeFix = "apt-get install -y nodejs npm"

// files are written into the install dir: package.json and package-lock.json pin socket.io and
// every package under it (npm ci installs exactly those), server.js is the chat server.
//
//go:embed server.js package.json package-lock.json
var files embed.FS

// Install is the peer installed in a cache dir.
type Install struct {
	Name    string // "socket.io"
	Version string // the installed socket.io's own version ("4.8.4")
	Dir     string // the install dir: server.js and node_modules
	Node    string // the node executable
}

// DefaultCacheDir is where peers are installed: $WIRELAB_PEERS_CACHE, else
// os.UserCacheDir()/wirelab/peers.
func DefaultCacheDir() (string, error) { return peercache.Dir() }

// ErrNoNode is wrapped by Ensure's error when node or npm is not on PATH.
var ErrNoNode = errors.New("the socket.io peer needs node and npm (" + NodeFix + ")")

// Ensure installs the pinned socket.io into cacheDir/socket.io@VERSION on first use (npm ci
// with the embedded lock file, into a temp dir renamed into place, so that processes installing
// at once do not see a half-done one; the first rename wins) and writes server.js there. It
// prints one line to progress while npm runs. Once installed it takes a few file reads: npm is
// then not needed, node is.
func Ensure(ctx context.Context, cacheDir string, progress io.Writer) (Install, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return Install{}, fmt.Errorf("%w: node is not on PATH", ErrNoNode)
	}
	dir := filepath.Join(cacheDir, "socket.io@"+Version)
	in := Install{Name: Name, Dir: dir, Node: node}
	if v, err := installedVersion(dir); err == nil {
		in.Version = v
		return in, writeServer(dir)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return Install{}, fmt.Errorf("%w: npm is not on PATH (socket.io %s is not installed in %s yet)", ErrNoNode, Version, dir)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Install{}, fmt.Errorf("socket.io peer: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, ".socket.io@"+Version+"-installing-")
	if err != nil {
		return Install{}, fmt.Errorf("socket.io peer: %w", err)
	}
	defer os.RemoveAll(tmp) // nothing left after the rename
	// MkdirTemp makes it 0700; the cache may be shared.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Install{}, fmt.Errorf("socket.io peer: %w", err)
	}
	for _, name := range []string{"package.json", "package-lock.json", "server.js"} {
		b, _ := files.ReadFile(name) // embedded
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			return Install{}, fmt.Errorf("socket.io peer: %w", err)
		}
	}
	if progress != nil {
		fmt.Fprintf(progress, "installing socket.io %s into %s (npm ci, once)\n", Version, dir)
	}
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--prefix", tmp)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return Install{}, fmt.Errorf("socket.io peer: npm ci (socket.io %s) failed: %v\n%s\nit needs the npm registry once; or copy %s from a machine that has it (%s names the cache dir)",
			Version, err, tail(out, 2000), dir, CacheEnv)
	}
	if _, err := installedVersion(tmp); err != nil {
		return Install{}, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, err2 := installedVersion(dir); err2 != nil { // not another process's install
			return Install{}, fmt.Errorf("socket.io peer: %w", err)
		}
	}
	v, err := installedVersion(dir)
	if err != nil {
		return Install{}, err
	}
	in.Version = v
	return in, writeServer(dir)
}

// installedVersion reads the version of the socket.io installed in dir and checks it is the
// pinned one.
func installedVersion(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "socket.io", "package.json"))
	if err != nil {
		return "", fmt.Errorf("socket.io peer: not installed in %s: %w", dir, err)
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return "", fmt.Errorf("socket.io peer: %s/node_modules/socket.io/package.json: %w", dir, err)
	}
	if pkg.Version != Version {
		return "", fmt.Errorf("socket.io peer: %s holds socket.io %q, not %s", dir, pkg.Version, Version)
	}
	return pkg.Version, nil
}

// writeServer puts this build's server.js into dir unless it is there already (a temp file
// renamed over the old one: a server starting meanwhile reads one whole file).
func writeServer(dir string) error {
	want, _ := files.ReadFile("server.js") // embedded
	path := filepath.Join(dir, "server.js")
	if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, want) {
		return nil
	}
	f, err := os.CreateTemp(dir, ".server.js-")
	if err != nil {
		return fmt.Errorf("socket.io peer: %w", err)
	}
	_, err = f.Write(want)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("socket.io peer: %w", err)
	}
	return nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// Command is the peer's server process, listening on listenHost:port (port 0: a free one). It
// prints "ready PORT" on stdout once it listens (ReadReady reads it), errors on stderr, and
// ends on SIGTERM or SIGINT (closing its sockets) or SIGKILL. The caller starts it.
func (in Install) Command(listenHost string, port int) *exec.Cmd {
	cmd := exec.Command(in.Node, filepath.Join(in.Dir, "server.js"), "--host", listenHost, "--port", strconv.Itoa(port))
	cmd.Dir = in.Dir
	cmd.Env = append(os.Environ(), "NODE_ENV=production")
	return cmd
}

// ParseReady reads the server's ready line, "ready PORT".
func ParseReady(line string) (int, error) {
	rest, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "ready ")
	if !ok {
		return 0, fmt.Errorf("socket.io peer: %q is not \"ready PORT\"", truncate(line, 80))
	}
	port, err := strconv.Atoi(rest)
	if err != nil || port <= 0 || port > 65535 || rest[0] == '+' || rest[0] == '0' {
		return 0, fmt.Errorf("socket.io peer: %q is not \"ready PORT\"", truncate(line, 80))
	}
	return port, nil
}

// ReadReady reads the server's stdout up to its ready line and returns the port.
func ReadReady(stdout io.Reader) (int, error) {
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("socket.io peer: no ready line (%w)", err)
	}
	return ParseReady(line)
}

// WaitReady dials addr (host:port) with dial until the peer answers an Engine.IO handshake
// (GET /socket.io/?EIO=4&transport=polling: 200 and an open packet offering the websocket
// upgrade), then closes that session; it tries every 50 ms until ctx ends.
func WaitReady(ctx context.Context, addr string, dial transports.DialFunc) error {
	htr := &http.Transport{DialContext: dial, DisableKeepAlives: true}
	defer htr.CloseIdleConnections()
	hc := &http.Client{Transport: htr, Timeout: 5 * time.Second}
	base := "http://" + addr + Path + "?EIO=4&transport=polling"
	try := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s answered %s", Path, resp.Status)
		}
		pkts, err := parsePayload(string(b))
		if err != nil {
			return err
		}
		if pkts[0].Type != eioOpen {
			return fmt.Errorf("GET %s answered %q, not an open packet", Path, truncate(string(b), 80))
		}
		hs, err := parseHandshake(pkts[0].Data)
		if err != nil {
			return err
		}
		if !slices.Contains(hs.Upgrades, "websocket") {
			return fmt.Errorf("the handshake offers upgrades %q, not websocket", hs.Upgrades)
		}
		// Close the probe's session at once (a close packet) rather than leave it to time out.
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+"&sid="+url.QueryEscape(hs.SID), strings.NewReader("1"))
		if err == nil {
			req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
			if resp, err := hc.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		return nil
	}
	t := time.NewTimer(0)
	defer t.Stop()
	var last error
	for {
		select {
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return fmt.Errorf("socket.io peer at %s is not ready: %w", addr, last)
		case <-t.C:
		}
		if last = try(); last == nil {
			return nil
		}
		t.Reset(50 * time.Millisecond)
	}
}
