package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wirelab/wirelab/results/resultstest"
)

// Zero, negative and absurd values are refused, not taken as defaults: each exits 2 with a
// message that names the flag or field and what it accepts (issue 12, item 11).
func TestBadValuesExit2(t *testing.T) {
	t.Setenv("WIRELAB_AUTH_SECRET", "")
	dir := t.TempDir()
	scenario := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	farDelay := scenario("far.yaml", "name: far\ntransports: [websocket]\nlink:\n  delay: 100h\n")
	longRun := scenario("long.yaml", "name: long\nduration: 100h\n")
	fine := scenario("fine.yaml", "name: fine\n")
	for _, tc := range []struct {
		name string
		args []string
		want []string // in stderr
	}{
		{"compare alpha 0", []string{"compare", "a.json", "b.json", "--alpha", "0"}, []string{"--alpha 0 is out of range (above 0, at most 0.5"}},
		{"compare alpha 1", []string{"compare", "a.json", "b.json", "--alpha", "1"}, []string{"--alpha 1 is out of range"}},
		{"compare alpha NaN", []string{"compare", "a.json", "b.json", "--alpha", "NaN"}, []string{"--alpha NaN is out of range"}},
		{"compare negative threshold", []string{"compare", "a.json", "b.json", "--threshold", "-5%"}, []string{"--threshold: -5% is out of range (0% to 1000%)"}},
		{"compare huge threshold", []string{"compare", "a.json", "b.json", "--threshold", "5000%"}, []string{"--threshold: 5000% is out of range (0% to 1000%)"}},
		{"compare NaN threshold", []string{"compare", "a.json", "b.json", "--threshold", "NaN%"}, []string{`--threshold: "NaN%" is not a percentage`}},
		{"compare stall floor over 100", []string{"compare", "a.json", "b.json", "--stall-floor", "200%"}, []string{"--stall-floor: 200% is out of range (0% to 100%)"}},
		{"compare bad flag value", []string{"compare", "a.json", "b.json", "--alpha", "x"}, []string{`invalid value "x" for flag -alpha`}},

		{"probe packets 0", []string{"probe", "--packets", "0"}, []string{"--packets 0 is out of range (1 to 1000000)"}},
		{"probe packets negative", []string{"probe", "--packets", "-3"}, []string{"--packets -3 is out of range"}},
		{"probe size 0", []string{"probe", "--size", "0"}, []string{"--size 0 is out of range (16 to 1400)"}},
		{"probe size 9000", []string{"probe", "--size", "9000"}, []string{"--size 9000 is out of range (16 to 1400)"}},
		{"probe delay 100h", []string{"probe", "--delay", "100h"}, []string{`--delay "100h" is out of range (use 0 to 10s one way`}},
		{"probe jitter 11s", []string{"probe", "--jitter", "11s"}, []string{`--jitter "11s" is out of range (use 0 to 10s`}},
		{"probe negative delay", []string{"probe", "--delay", "-1ms"}, []string{`--delay "-1ms" is negative`}},
		{"probe loss without percent", []string{"probe", "--loss", "12"}, []string{`--loss "12" is not a percentage (try 12%)`}},
		{"probe tcp 2h", []string{"probe", "--tcp", "2h"}, []string{"--tcp 2h is out of range (up to 1m"}},
		{"probe stack", []string{"probe", "--stack", "bsd"}, []string{`--stack "bsd" is not a stack: use gvisor or kernel`}},

		{"serve negative heartbeat", []string{"serve", "--heartbeat", "-5s"}, []string{"--heartbeat -5s is out of range (100ms to 10m)"}},
		{"serve heartbeat 100h", []string{"serve", "--heartbeat", "100h"}, []string{"--heartbeat 100h is out of range (100ms to 10m)"}},
		{"serve session ttl 0", []string{"serve", "--session-ttl", "0"}, []string{"--session-ttl 0s is out of range (1s to 24h)"}},
		{"serve node ttl 0", []string{"serve", "--node-ttl", "0"}, []string{"--node-ttl 0s is out of range (1s to 10m)"}},
		{"serve origin not a url", []string{"serve", "--allow-origin", "not a url"}, []string{`--allow-origin "not a url"`, "scheme://host[:port]"}},
		{"serve origin with a path", []string{"serve", "--allow-origin", "https://ok.example", "--allow-origin", "https://chat.example/app"}, []string{`--allow-origin "https://chat.example/app" has more than a scheme, a host and a port`}},
		{"serve node name", []string{"serve", "--node", "a b/c"}, []string{`--node "a b/c" is not a valid node name (1-64 of A-Z a-z 0-9 _ . -)`}},
		{"serve log level", []string{"serve", "--log", "loud"}, []string{`--log "loud" is not a log level`}},
		{"serve bad duration", []string{"serve", "--heartbeat", "often"}, []string{`invalid value "often" for flag -heartbeat`}},
		{"serve redis without node", []string{"serve", "--redis", "redis://127.0.0.1:1/0"}, []string{"--redis needs --node NAME"}},

		{"token negative ttl", []string{"token", "--auth-secret", "s", "--ttl", "-1h", "alice"}, []string{"--ttl -1h is out of range (1s to 8760h)"}},
		{"token ttl 0", []string{"token", "--auth-secret", "s", "--ttl", "0", "alice"}, []string{"--ttl 0s is out of range"}},
		{"token without secret", []string{"token", "alice"}, []string{"no secret"}},
		{"token bad user", []string{"token", "--auth-secret", "s", "a b"}, []string{`user "a b" is not a valid name`}},

		{"run delay 100h", []string{"run", farDelay}, []string{"far.yaml:4: link.delay", `"100h" is out of range (0 to 10s one way`}},
		{"run duration 100h", []string{"run", longRun}, []string{"long.yaml:2: duration", `"100h" is out of range (more than 0 up to 24h)`}},
		{"run seed", []string{"run", fine, "--seed", "-1"}, []string{`--seed "-1" is not a non-negative integer`}},

		{"demo rtt 5s", []string{"demo", "--rtt", "5s"}, []string{"--rtt 5s is more than the page's slider allows (at most 2s)"}},
		{"demo poll 0", []string{"demo", "--poll", "0"}, []string{"--poll 0s is out of range (100ms to 1m)"}},
		{"demo loss", []string{"demo", "--loss", "100%"}, []string{`--loss "100%" is out of range`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runLab(tc.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not say %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// --threshold 0% is allowed: every change beyond noise counts, and the summary says 0%.
func TestCompareThresholdZero(t *testing.T) {
	dir := t.TempDir()
	opt := resultstest.Options{Seed: 1, Repeats: 6, Transports: []string{"websocket"}, Losses: []float64{0}, Samples: 100}
	base := writeResults(t, dir, "base.json", resultstest.File(opt))
	opt.Scale = 1.05 // 5% slower: within the default 10%, beyond 0%
	slow := writeResults(t, dir, "slow.json", resultstest.File(opt))
	code, out, errOut := runLab("compare", base, slow, "--metric", "p50", "--threshold", "0%")
	if code != 1 || !strings.Contains(out, "threshold 0%,") || strings.Contains(out+errOut, "1e-") {
		t.Errorf("exit %d, want 1 (a 5%% rise is one at 0%%)\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "beyond noise and the 0% threshold") {
		t.Errorf("stderr:\n%s", errOut)
	}
	if code, out, _ := runLab("compare", base, slow, "--metric", "p50"); code != 0 || !strings.Contains(out, "threshold 10%,") {
		t.Errorf("at the default threshold: exit %d\n%s", code, out)
	}
}

func TestCheckOrigin(t *testing.T) {
	for _, ok := range []string{"*", "https://ok.example", "http://127.0.0.1:8080", "https://ok.example/", "http://[::1]:80", "HTTPS://Ok.Example:443"} {
		if err := checkOrigin(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"not a url", "ok.example", "ftp://ok.example", "https://", "https://ok.example/app", "https://u@ok.example",
		"http://ok.example:0", "http://ok.example:", "http://ok.example:99999", "http://ok.example?q=1", "http://ok.example#f", "mailto:a@b", ""} {
		if err := checkOrigin(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
