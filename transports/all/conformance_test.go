package all_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wirelab/wirelab/transports/all"
	"github.com/wirelab/wirelab/transports/transporttest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestConformance runs the conformance suite for every transport that has a client in all.go,
// each against its own in-process server on loopback.
func TestConformance(t *testing.T) {
	for _, name := range all.Names() {
		t.Run(name, func(t *testing.T) {
			env := transporttest.Env{Start: loopback, Traits: traitsOf(name)}
			if raceEnabled && !testing.Short() {
				env.Scale = 0.2 // the full 10,000 messages run in the second, race-free pass
			}
			transporttest.Run(t, name, env)
		})
	}
}
