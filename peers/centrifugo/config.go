package centrifugo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Channels, as a chat application lays them out on Centrifugo.
const (
	// RoomNamespace holds one channel per room, "room:NAME": members subscribe (join) and
	// publish (say); history and recovery are on.
	RoomNamespace = "room"
	// DMNamespace holds one user-limited channel per user, "dm:#USER": only USER may
	// subscribe (every tab of USER does), any connected user may publish (a dm); history and
	// recovery are on. The sender publishes a copy into its own channel so its other tabs see
	// the dm too.
	DMNamespace = "dm"
	// Lobby is the room every session is in (wirelab's chat.Lobby): clients subscribe to
	// "room:lobby" on connect.
	Lobby = "lobby"
)

// History, sized for a run of a few thousand messages a minute in one channel with a
// reconnect of up to half a minute: recovery can bring back at most HistorySize publications,
// none older than HistoryTTL.
const (
	HistorySize = 5000
	HistoryTTL  = "600s"
)

// RoomChannel is the channel of room.
func RoomChannel(room string) string { return RoomNamespace + ":" + room }

// DMChannel is user's personal channel.
func DMChannel(user string) string { return DMNamespace + ":#" + user }

// Config is one server's configuration: the file Centrifugo reads (Dir/config.json) and the
// HS256 secret its connection tokens are signed with.
type Config struct {
	Dir    string // a temporary directory holding config.json; Remove deletes it
	Host   string
	Port   int
	secret []byte
}

// File is the path of config.json.
func (c *Config) File() string { return filepath.Join(c.Dir, "config.json") }

// Token signs a connection token for user (HS256, sub = user, no expiry).
func (c *Config) Token(user string) string { return signHS256(c.secret, user) }

// Remove deletes the configuration's directory.
func (c *Config) Remove() error { return os.RemoveAll(c.Dir) }

// WriteConfig writes a configuration for a server listening on host:port into a new temporary
// directory, with a fresh random token secret.
func WriteConfig(host string, port int) (*Config, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	secret := []byte(hex.EncodeToString(key)) // Centrifugo uses the string's bytes as the key
	dir, err := os.MkdirTemp("", "wirelab-centrifugo-")
	if err != nil {
		return nil, fmt.Errorf("centrifugo: a directory for its config: %w", err)
	}
	c := &Config{Dir: dir, Host: host, Port: port, secret: secret}
	b, err := json.MarshalIndent(serverConfig(host, port, secret), "", "  ")
	if err == nil {
		err = os.WriteFile(c.File(), b, 0o600)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("centrifugo: writing its config: %w", err)
	}
	return c, nil
}

// serverConfig is Centrifugo v6's configuration (the v6 layout: http_server, client,
// channel.namespaces, ...) for the chat: connections authenticate with an HS256 token whose
// sub is the user; HTTP on host:port carries WebSocket (/connection/websocket), SSE
// (/connection/sse) and HTTP streaming (/connection/http_stream) with the emulation endpoint
// (/emulation) for their upstream, and /health. Everything else (admin, API key, metrics,
// usage stats) is off.
func serverConfig(host string, port int, secret []byte) map[string]any {
	history := map[string]any{
		"history_size":   HistorySize,
		"history_ttl":    HistoryTTL,
		"force_recovery": true,
	}
	room := map[string]any{
		"name":                         RoomNamespace,
		"allow_subscribe_for_client":   true,
		"allow_publish_for_subscriber": true, // say needs membership, as wirelab's not_member
	}
	dm := map[string]any{
		"name":                        DMNamespace,
		"allow_user_limited_channels": true, // dm:#U: only U may subscribe
		"allow_publish_for_client":    true, // anyone connected may write to U
	}
	for k, v := range history {
		room[k], dm[k] = v, v
	}
	return map[string]any{
		"http_server": map[string]any{"address": host, "port": port},
		"log":         map[string]any{"level": "info"},
		"client": map[string]any{
			"token": map[string]any{"hmac_secret_key": string(secret)},
			// A recovery may bring back as much as the history holds (the default, 300,
			// would fail recoveries after a few seconds at a few thousand messages a minute).
			"recovery_max_publication_limit": HistorySize,
			"history_max_publication_limit":  HistorySize,
		},
		"channel":      map[string]any{"namespaces": []any{room, dm}},
		"sse":          map[string]any{"enabled": true},
		"http_stream":  map[string]any{"enabled": true},
		"health":       map[string]any{"enabled": true},
		"http_api":     map[string]any{"disabled": true},
		"usage_stats":  map[string]any{"disabled": true},
		"admin":        map[string]any{"enabled": false},
		"prometheus":   map[string]any{"enabled": false},
		"webtransport": map[string]any{"enabled": false},
	}
}

// Command writes a configuration for listenHost:port (WriteConfig) and returns the command that
// runs the server with it. The caller starts the command (the lab, inside the server's network
// namespace), kills it when done, and calls cfg.Remove. The server logs JSON-ish lines to
// stderr; it listens on TCP port only (no UDP).
func (in Install) Command(listenHost string, port int) (*exec.Cmd, *Config, error) {
	cfg, err := WriteConfig(listenHost, port)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(in.Binary, "--config", cfg.File())
	cmd.Dir = cfg.Dir
	return cmd, cfg, nil
}

// WaitReady waits until the server at addr (HOST:PORT) answers GET /health with 200 and its JSON
// body "{}", dialing with dial (the lab's network) every 50 ms until ctx ends.
func WaitReady(ctx context.Context, addr string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) error {
	tr := &http.Transport{DialContext: dial, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/health", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(b)) == "{}" {
				return nil
			}
			err = fmt.Errorf("GET /health answered %s %q", resp.Status, b)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("centrifugo at %s is not ready: %w (last: %v)", addr, ctx.Err(), last)
		case <-t.C:
		}
	}
}
