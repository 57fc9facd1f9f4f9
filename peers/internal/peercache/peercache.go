// Package peercache is where the peer servers are installed, for every peer package alike. It
// imports nothing of wirelab.
package peercache

import (
	"fmt"
	"os"
	"path/filepath"
)

// Env names the environment variable that overrides Dir.
const Env = "WIRELAB_PEERS_CACHE"

// Dir is where peers are installed: $WIRELAB_PEERS_CACHE, else os.UserCacheDir()/wirelab/peers.
func Dir() (string, error) {
	if d := os.Getenv(Env); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for the peer servers (%v): set %s", err, Env)
	}
	return filepath.Join(d, "wirelab", "peers"), nil
}
