package shortpoll

import (
	"net/http"

	"github.com/wirelab/wirelab/transports"
)

// Name is the transport's name.
const Name = "shortpoll"

// Path is the poll's endpoint.
const Path = "/api/poll"

// MaxBatch is the most envelopes one poll answer carries; it carries at most
// chat.MaxBatchBytes of them plus one, too. The client asks again from where it got to.
//
// The answer is written under the server's write deadline (server.HTTPLimits.WriteTimeout, 10 s
// by default): a client that does not read it is cut off and the answer's memory goes back; the
// envelopes stay in the outbox for its next poll.
const MaxBatch = 512

// Mount mounts the transport's endpoint (GET Path) on m.
func Mount(m transports.Mux, srv *transports.Server) error {
	m.HandleGet(Path, Handler(srv))
	return nil
}

// Handler serves GET /api/poll?session=S&after=N.
func Handler(srv *transports.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, after, ok := srv.SessionRequest(w, r, "")
		if !ok {
			return
		}
		direct, entries, err := sess.Read(after, MaxBatch)
		if err != nil {
			transports.WriteError(w, "", err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(transports.AppendArray(make([]byte, 0, 512), direct, entries))
	})
}
