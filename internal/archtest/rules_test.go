package archtest

import (
	"slices"
	"testing"
)

// The checker itself: a forbidden package reached directly or through others is reported once
// per importer with its chain; a package outside the rule's From, or one the rule allows, is not.
func TestViolationsFindsChains(t *testing.T) {
	const m = "example.com/x"
	g := map[string][]string{
		m + "/chat":            {"strings", m + "/chat/inner"},
		m + "/chat/inner":      {m + "/scenarios"},
		m + "/chat/redis":      {m + "/netem/sub"},
		m + "/chatter":         {m + "/netem"}, // not below chat/
		m + "/scenarios":       {m + "/netem"},
		m + "/netem":           nil,
		m + "/netem/sub":       nil,
		m + "/results":         nil,
		m + "/transports":      {m + "/chat"},
		m + "/transports/tt":   {m + "/transports", m + "/server"},
		m + "/server":          {m + "/transports", m + "/chat"},
		"example.com/y/netem":  nil, // another module's netem
		"example.com/y/client": {"example.com/y/netem"},
	}
	g[m+"/results"] = []string{"example.com/y/client"}
	got := rule{From: "chat", Never: []string{"netem", "lab"}}.violations(m, g)
	want := []string{
		"chat imports netem: chat -> chat/inner -> scenarios -> netem",
		"chat/inner imports netem: chat/inner -> scenarios -> netem",
		"chat/redis imports netem/sub: chat/redis -> netem/sub",
	}
	if !slices.Equal(got, want) {
		t.Errorf("violations:\n got %q\nwant %q", got, want)
	}
	if got := (rule{From: "transports/tt", Never: []string{"server"}}).violations(m, g); len(got) != 1 {
		t.Errorf("transports/tt importing server: %q, want one violation", got)
	}
	if got := (rule{From: "results", Never: []string{"netem"}}).violations(m, g); len(got) != 0 {
		t.Errorf("another module's netem is not ours: %q", got)
	}
}

func TestCmdViolations(t *testing.T) {
	const m = "example.com/x"
	pkgs := []pkg{
		{ImportPath: m + "/cmd/lab", Imports: []string{m + "/lab", m + "/cmd/lab/internal/flags"}},
		{ImportPath: m + "/cmd/lab.test", Imports: []string{m + "/cmd/lab [" + m + "/cmd/lab.test]"}},
		{ImportPath: m + "/lab", Imports: []string{"strings"}},
		{ImportPath: m + "/web_test [" + m + "/web.test]", ForTest: m + "/web", Imports: []string{m + "/cmd/lab/internal/flags"}},
	}
	got := cmdViolations(m, pkgs)
	want := []string{"web_test imports cmd/lab/internal/flags: nothing imports cmd/ (move what both need into a package)"}
	if !slices.Equal(got, want) {
		t.Errorf("cmd violations:\n got %q\nwant %q", got, want)
	}
}
