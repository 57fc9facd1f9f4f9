// Package needtest gates tests on something outside Go (a browser, redis-server, root for the
// kernel stack): without it a test skips on a developer's machine, unless WIRELAB_REQUIRE names
// it (CI sets chromium, redis, kernel), and then it fails instead.
//
// It imports no wirelab package; only tests and the test helpers import it.
package needtest

import (
	"os"
	"strings"
	"testing"
)

// Need does nothing when missing is nil. Otherwise it fails t when WIRELAB_REQUIRE names what,
// and skips it when not; fix says how to get what is missing.
func Need(t testing.TB, what string, missing error, fix string) {
	t.Helper()
	if missing == nil {
		return
	}
	if req := os.Getenv("WIRELAB_REQUIRE"); strings.Contains(req, what) {
		t.Fatalf("WIRELAB_REQUIRE=%q needs %s: %v (%s)", req, what, missing, fix)
	}
	t.Skipf("skipping: no %s (%v); %s, or WIRELAB_REQUIRE=%s to make this a failure", what, missing, fix, what)
}
