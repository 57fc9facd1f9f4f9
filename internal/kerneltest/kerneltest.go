// Package kerneltest gates tests that need the lab's kernel stack (Linux network namespaces and
// TUN devices, so root): they skip where the machine cannot give it, unless WIRELAB_REQUIRE names
// kernel (CI sets it), and then they fail.
package kerneltest

import (
	"os"
	"strings"
	"testing"

	"github.com/wirelab/wirelab/netem"
)

// Need skips t, or fails it under WIRELAB_REQUIRE=kernel, when kernel hosts cannot be made here.
func Need(t testing.TB) {
	t.Helper()
	err := netem.KernelAvailable()
	if err == nil {
		return
	}
	if strings.Contains(os.Getenv("WIRELAB_REQUIRE"), "kernel") {
		t.Fatalf("WIRELAB_REQUIRE=%q needs the kernel stack: %v", os.Getenv("WIRELAB_REQUIRE"), err)
	}
	t.Skipf("skipping: %v (WIRELAB_REQUIRE=kernel makes this a failure)", err)
}
