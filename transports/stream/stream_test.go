package stream_test

import (
	"log/slog"
	"testing"

	"go.uber.org/goleak"

	"github.com/wirelab/wirelab/server"
	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/internal/httpclienttest"
	"github.com/wirelab/wirelab/transports/stream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newClient(o transports.Options) transports.Client { return stream.NewClient(o) }

func TestTwoUsersThreeTabsOnce(t *testing.T) {
	httpclienttest.TwoUsersThreeTabsOnce(t, newClient, startDefault)
}

func TestResumeAfterDropNothingLostOrDoubled(t *testing.T) {
	httpclienttest.ResumeAfterDropNothingLostOrDoubled(t, newClient, startDefault)
}

// startServer runs a real server with cfg on loopback (HTTP only) until t's cleanup and
// returns its base URL. It is here, not in httpclienttest: under transports/ only test files
// import server (internal/archtest).
func startServer(t *testing.T, cfg server.Config) (string, *server.Server) {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return httpclienttest.Serve(t, srv), srv
}

// startDefault is startServer with the default configuration, for the shared cases.
func startDefault(t *testing.T) string {
	url, _ := startServer(t, server.Config{})
	return url
}

// The shared helpers under the names this package's other tests use.
var (
	post        = httpclienttest.Post
	openSession = httpclienttest.OpenSession
	rawGet      = httpclienttest.RawGet
	wantHeader  = httpclienttest.WantHeader
)
