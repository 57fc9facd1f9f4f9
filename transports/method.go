package transports

import (
	"net/http"
	"strings"

	"github.com/wirelab/wirelab/chat"
)

// CodeBadMethod is the error code of a request whose HTTP method its endpoint does not take
// (status 405, with an Allow header listing the ones it does). It is HTTP's, so it lives here
// and not with the chat core's codes.
const CodeBadMethod = "bad_method"

// MethodNotAllowed answers every request 405 with an Allow header listing allow and a
// bad_method error envelope. Mount it on a path without a method, beside the handler mounted for
// the methods it takes ("GET /api/poll" and "/api/poll"): http.ServeMux prefers the pattern with
// the method.
func MethodNotAllowed(allow ...string) http.Handler {
	list := strings.Join(allow, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteMethodNotAllowed(w, r, list, allow[0]+" "+r.URL.Path)
	})
}

// WriteMethodNotAllowed answers r 405 with "Allow: allow" and a bad_method error envelope that
// says how to call the endpoint (usage, e.g. "POST /api/send?session=ID").
func WriteMethodNotAllowed(w http.ResponseWriter, r *http.Request, allow, usage string) {
	w.Header().Set("Allow", allow)
	WriteError(w, "", chat.Errorf(CodeBadMethod, "%s is not a method of %s (allowed: %s); use %s", chat.Clip(r.Method), chat.Clip(r.URL.Path), allow, usage))
}
