package netem

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(bridgeChildEnv) != "" {
		os.Exit(bridgeChild())
	}
	maybeKernelKillChild()
	goleak.VerifyTestMain(m)
}
