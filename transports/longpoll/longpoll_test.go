package longpoll_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wirelab/wirelab/transports"
	"github.com/wirelab/wirelab/transports/internal/httpclienttest"
	"github.com/wirelab/wirelab/transports/longpoll"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newClient(o transports.Options) transports.Client { return longpoll.NewClient(o) }

func TestTwoUsersThreeTabsOnce(t *testing.T) {
	httpclienttest.TwoUsersThreeTabsOnce(t, newClient)
}

func TestResumeAfterDropNothingLostOrDoubled(t *testing.T) {
	httpclienttest.ResumeAfterDropNothingLostOrDoubled(t, newClient)
}

// The shared helpers under the names this package's other tests use.
var (
	startServer = httpclienttest.StartServer
	post        = httpclienttest.Post
	openSession = httpclienttest.OpenSession
	rawGet      = httpclienttest.RawGet
	wantHeader  = httpclienttest.WantHeader
)
