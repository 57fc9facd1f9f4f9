//go:build race

package all_test

// raceEnabled: under the race detector (make test's first pass) the suite runs its load case at a
// fifth of its size and leaves the emulated-link run to the second pass, which runs without the
// detector at full size (see the Makefile's test target).
const raceEnabled = true
