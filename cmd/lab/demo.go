package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"runtime"
	"time"

	"github.com/wirelab/wirelab/lab"
	"github.com/wirelab/wirelab/netem"
	"github.com/wirelab/wirelab/scenarios"
	"github.com/wirelab/wirelab/web"
)

func init() {
	commands["demo"] = command{summary: "the teaching demo: the chat page behind an emulated lossy link, sliders to change it", run: runDemo}
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "[--rtt 80ms] [--loss 2%] [--addr 127.0.0.1:8080] [--open]", stderr)
	rttS := fs.String("rtt", "80ms", "round-trip time of the emulated link (half of it each way)")
	lossS := fs.String("loss", "2%", "random packet loss, each direction")
	addr := fs.String("addr", "127.0.0.1:8080", "where the browser connects: TCP for HTTP, UDP on the same port for WebTransport (port 0 picks one)")
	open := fs.Bool("open", false, "open the page in the default browser (xdg-open)")
	poll := fs.Duration("poll", 2*time.Second, "the page's short-polling interval (100ms to 1m)")
	seed := fs.Uint64("seed", 1, "seed of the link's loss process")
	logLevel := fs.String("log", "warn", "log level: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return badFlag("unexpected argument %q", fs.Arg(0))
	}
	rtt, err := netem.ParseDuration("rtt", *rttS)
	if err != nil {
		return linkFlag(err)
	}
	loss, err := netem.ParsePercent("loss", *lossS)
	if err != nil {
		return linkFlag(err)
	}
	if rtt > web.MaxRTT {
		return badFlag("--rtt %s is more than the page's slider allows (at most %s)", scenarios.ShortDuration(rtt), scenarios.ShortDuration(web.MaxRTT))
	}
	if err := durationIn("poll", *poll, 100*time.Millisecond, time.Minute); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return badFlag("--log %q is not a log level: use debug, info, warn or error", *logLevel)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))

	d, err := lab.StartDemo(lab.DemoConfig{Listen: *addr, RTT: rtt, Loss: loss, PollInterval: *poll, Seed: *seed, Logger: log})
	if err != nil {
		return err
	}
	hp := d.Addr()
	fmt.Fprintf(stdout, "listening http://%s webtransport https://%s/wt\n", hp, hp)
	fmt.Fprintf(stdout, "open http://%s/ in two tabs (or http://%s/?compare=websocket,longpoll); the link: %s round trip, %.3g%% loss each way; Ctrl-C stops\n",
		hp, hp, rtt, loss*100)
	if *open {
		if err := openBrowser("http://" + hp + "/"); err != nil {
			fmt.Fprintf(stderr, "lab demo: could not open a browser (%v); open the URL above yourself\n", err)
		}
	}
	select {
	case <-d.Done():
	case <-ctx.Done():
	}
	return d.Close()
}

func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }() // reap it; the browser outlives the opener
	return nil
}
