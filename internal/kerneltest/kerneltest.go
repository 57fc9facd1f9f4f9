// Package kerneltest gates tests that need the lab's kernel stack (Linux network namespaces and
// TUN devices, so root): they skip where the machine cannot give it, unless WIRELAB_REQUIRE names
// kernel (CI sets it), and then they fail.
//
// It imports needtest and netem (to try a kernel host), nothing else of wirelab; only tests
// import it.
package kerneltest

import (
	"testing"

	"github.com/wirelab/wirelab/internal/needtest"
	"github.com/wirelab/wirelab/netem"
)

// Fix is how to get the kernel stack.
const Fix = "run as root on Linux with /dev/net/tun"

// Need skips t, or fails it under WIRELAB_REQUIRE=kernel, when kernel hosts cannot be made here.
func Need(t testing.TB) {
	t.Helper()
	needtest.Need(t, "kernel", netem.KernelAvailable(), Fix)
}
