package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/chat/redisbroker"
	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/web"
)

func init() {
	commands["serve"] = command{summary: "run the chat server: every transport and the web page", run: runServe}
	commands["token"] = command{summary: "print a signed token for a user (for a server with --auth-secret)", run: runToken}
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "[--addr 127.0.0.1:8080] [flags]", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "TCP address for HTTP; WebTransport uses UDP on the same port (port 0 picks one)")
	secret := fs.String("auth-secret", os.Getenv("WIRELAB_AUTH_SECRET"), "require signed user tokens made with this secret (lab token USER); empty runs open")
	var origins listFlag
	fs.Var(&origins, "allow-origin", "an origin (https://host:port) allowed for WebSocket and WebTransport besides the server's own (http and https on the addresses it listens on, localhost for loopback; the Host header does not count); repeatable")
	cert := fs.String("cert", "", "WebTransport certificate (PEM); default: generated at start, valid 13 days")
	key := fs.String("key", "", "key for --cert (PEM)")
	heartbeat := fs.Duration("heartbeat", 25*time.Second, "ping interval on persistent transports (100ms to 10m)")
	ttl := fs.Duration("session-ttl", 60*time.Second, "how long a session without a connection lives (1s to 24h)")
	node := fs.String("node", "", "node name (prefixes message ids; 1-64 of A-Z a-z 0-9 _ . -); with --redis, unique per node")
	nodeTTL := fs.Duration("node-ttl", 10*time.Second, "with --redis: a node silent this long is dead and its sessions leave presence (they can resume on another node); 1s to 10m")
	redisURL := fs.String("redis", "", "run as one node of several on this Redis (redis://HOST:PORT/DB): sessions, rooms and fan-out are shared, any node serves any session; empty: a single node in memory")
	logLevel := fs.String("log", "info", "log level: debug, info, warn, error")
	maxSessions := fs.Int("max-sessions", 10_000, "most sessions this server holds (1 to 10,000,000); more are refused with server_full (HTTP 503)")
	maxPerUser := fs.Int("max-sessions-per-user", 64, "most sessions (tabs) of one user (1 to 1,000,000); more are refused with too_many_sessions (HTTP 429)")
	httpDef := server.HTTPLimits{}.WithDefaults()
	headerTimeout := fs.Duration("header-timeout", httpDef.HeaderTimeout, "a request's line and headers must arrive within this, or the connection is closed; also a new connection that sends nothing (100ms to 1h)")
	bodyTimeout := fs.Duration("body-timeout", httpDef.BodyTimeout, "a request's body must arrive within this after its headers, or the connection is closed (100ms to 1h)")
	idleTimeout := fs.Duration("idle-timeout", httpDef.IdleTimeout, "a keep-alive connection without a new request for this long is closed (100ms to 1h)")
	maxHeader := fs.Int("max-header-bytes", httpDef.MaxHeaderBytes, "most bytes of a request's line and headers (1024 to 1048576); a larger request gets 431 and is closed")
	base := fs.Usage
	fs.Usage = func() {
		base()
		fmt.Fprintf(stderr, serveLimits, httpDef.WriteTimeout, chat.MaxBatchBytes>>10)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkServeFlags(*heartbeat, *ttl, *nodeTTL, *node, origins); err != nil {
		return err
	}
	if err := checkServeLimits(*maxSessions, *maxPerUser, server.HTTPLimits{HeaderTimeout: *headerTimeout,
		BodyTimeout: *bodyTimeout, IdleTimeout: *idleTimeout, MaxHeaderBytes: *maxHeader}); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return badFlag("unexpected argument %q", fs.Arg(0))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return badFlag("--log %q is not a log level: use debug, info, warn or error", *logLevel)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	if (*cert == "") != (*key == "") {
		return badFlag("--cert and --key go together")
	}
	hubCfg := chat.Config{Node: *node, Heartbeat: *heartbeat, SessionTTL: *ttl,
		MaxSessions: *maxSessions, MaxSessionsPerUser: *maxPerUser}
	var broker *redisbroker.Broker
	if *redisURL != "" {
		if *node == "" {
			return badFlag("--redis needs --node NAME, a name unique among the nodes (node1, node2, ...)")
		}
		var err error
		broker, err = redisbroker.New(redisbroker.Options{URL: *redisURL, Node: *node, NodeTTL: *nodeTTL, SessionTTL: *ttl + *ttl/4, Logger: log})
		if err != nil {
			return err
		}
		defer broker.Close()
		hubCfg.Broker = broker
		log.Info("node of a cluster on redis", "node", *node, "redis", broker.Addr())
	}
	srv, err := server.New(server.Config{
		Hub:       hubCfg,
		Transport: transportsOptions(*secret, origins, log),
		CertFile:  *cert, KeyFile: *key,
		Web:    web.Handler(web.Options{}),
		Logger: log,
		HTTP: server.HTTPLimits{HeaderTimeout: *headerTimeout, BodyTimeout: *bodyTimeout,
			IdleTimeout: *idleTimeout, MaxHeaderBytes: *maxHeader},
	})
	if err != nil {
		return err
	}
	ln, pc, err := server.Listen(*addr)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return err
	}
	hp := ln.Addr().String()
	if host, _, err := net.SplitHostPort(*addr); err == nil {
		// The name --addr gave (Serve adds the address it resolved to): pages from
		// http://NAME:PORT are this server's own origin.
		_, port, _ := net.SplitHostPort(hp)
		if err := srv.T.AddAddr(net.JoinHostPort(host, port)); err != nil {
			log.Warn("--addr is not an origin", "err", err)
		}
	}
	fmt.Fprintf(stdout, "listening http://%s webtransport https://%s/wt\n", hp, hp)
	if f, ok := stdout.(*os.File); ok {
		_ = f.Sync()
	}
	if *secret == "" {
		log.Warn("running open: any user id is accepted (set --auth-secret to require tokens)")
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln, pc) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	serr := srv.Shutdown(sctx)
	if err := <-errc; err != nil {
		return err
	}
	return serr
}

// serveLimits ends lab serve -h: the limits that have no flag, and where the memory goes.
const serveLimits = `
Fixed limits:
  every answer, and every write to a stream or a WebSocket, is written within %v
    or the connection is closed
  one poll answer or stream write carries at most %d KiB of envelopes (and one more);
    the client asks again from where it got to
  a session keeps at most 1,024 envelopes, at most 1 MiB of them, for 2 minutes, to resume
Worst case in memory: a session 1.6 MiB; an HTTP connection 1.3 MiB while it reads a body,
0.8 MiB while it writes an answer, about 20 KiB otherwise (docs/PROTOCOL.md, "Memory").
`

// checkServeLimits refuses session caps and HTTP limits out of range (each names its range).
func checkServeLimits(maxSessions, maxPerUser int, l server.HTTPLimits) error {
	for _, err := range []error{
		intIn("max-sessions", maxSessions, 1, 10_000_000),
		intIn("max-sessions-per-user", maxPerUser, 1, 1_000_000),
		durationIn("header-timeout", l.HeaderTimeout, 100*time.Millisecond, time.Hour),
		durationIn("body-timeout", l.BodyTimeout, 100*time.Millisecond, time.Hour),
		durationIn("idle-timeout", l.IdleTimeout, 100*time.Millisecond, time.Hour),
		intIn("max-header-bytes", l.MaxHeaderBytes, 1024, 1<<20),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkServeFlags refuses lab serve's values that are out of range (each names its range).
func checkServeFlags(heartbeat, ttl, nodeTTL time.Duration, node string, origins []string) error {
	if err := durationIn("heartbeat", heartbeat, 100*time.Millisecond, 10*time.Minute); err != nil {
		return err
	}
	if err := durationIn("session-ttl", ttl, time.Second, 24*time.Hour); err != nil {
		return err
	}
	if err := durationIn("node-ttl", nodeTTL, time.Second, 10*time.Minute); err != nil {
		return err
	}
	if node != "" && !chat.ValidName(node) {
		return badFlag("--node %q is not a valid node name (1-64 of A-Z a-z 0-9 _ . -)", chat.Clip(node))
	}
	for _, o := range origins {
		if err := checkOrigin(o); err != nil {
			return err
		}
	}
	return nil
}

// maxTokenTTL is the longest a token lab token makes is valid: a year.
const maxTokenTTL = 365 * 24 * time.Hour

func runToken(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token", "[--auth-secret S] [--ttl 24h] USER", stderr)
	secret := fs.String("auth-secret", os.Getenv("WIRELAB_AUTH_SECRET"), "the server's --auth-secret")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid (1s to 8760h, a year)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	if err := durationIn("ttl", *ttl, time.Second, maxTokenTTL); err != nil {
		return err
	}
	if *secret == "" {
		return badFlag("no secret: pass --auth-secret or set WIRELAB_AUTH_SECRET, the same as the server's")
	}
	user := fs.Arg(0)
	if !chat.ValidName(user) {
		return badFlag("user %q is not a valid name (1-64 of A-Z a-z 0-9 _ . -)", chat.Clip(user))
	}
	fmt.Fprintln(stdout, chat.NewSigner(*secret).Token(user, *ttl, time.Now()))
	return nil
}
