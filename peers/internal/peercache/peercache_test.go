package peercache

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestDir(t *testing.T) {
	t.Setenv(Env, "/somewhere/else")
	if d, err := Dir(); err != nil || d != "/somewhere/else" {
		t.Errorf("with %s set: %q, %v", Env, d, err)
	}
	t.Setenv(Env, "")
	t.Setenv("XDG_CACHE_HOME", "/cache")
	if d, err := Dir(); err != nil || d != filepath.Join("/cache", "wirelab", "peers") {
		t.Errorf("default: %q, %v", d, err)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "")
	if _, err := Dir(); err == nil || !strings.Contains(err.Error(), "set "+Env) {
		t.Errorf("no cache directory: %v", err)
	}
}
