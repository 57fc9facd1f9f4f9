package transports

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wirelab/wirelab/chat"
)

// ServerOptions configure the server side every transport shares. The zero value of a field
// means its default.
type ServerOptions struct {
	// Signer checks user tokens; nil runs the server open (any user id accepted).
	Signer *chat.Signer
	// AllowOrigins lists origins (scheme://host[:port]) accepted besides the server's own
	// (AddAddr), for WebSocket, WebTransport and lab demo's link controls. "*" accepts any.
	AllowOrigins []string
	// LongPollTimeout is how long a long poll is held without news (default 25 s).
	LongPollTimeout time.Duration
	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger
}

// Server is what the transports' server handlers share: the hub, authentication, origin checks,
// the /api/session and /api/send endpoints, counters, and the goroutines of connections that
// http.Server.Shutdown does not wait for (hijacked WebSockets, WebTransport sessions).
type Server struct {
	Hub  *chat.Hub
	opt  ServerOptions
	Log  *slog.Logger
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
	own  ownOrigins // where browsers reach the server (AddAddr)

	Requests atomic.Int64 // HTTP requests and WebTransport sessions served
}

// NewServer returns the shared server state for hub.
func NewServer(hub *chat.Hub, opt ServerOptions) *Server {
	if opt.LongPollTimeout <= 0 {
		opt.LongPollTimeout = 25 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{Hub: hub, opt: opt, Log: opt.Logger, ctx: ctx, stop: cancel}
}

// Options returns the options with defaults.
func (s *Server) Options() ServerOptions { return s.opt }

// Context is cancelled when the server shuts down; connection goroutines watch it.
func (s *Server) Context() context.Context { return s.ctx }

// Go runs f in a goroutine that Shutdown waits for.
func (s *Server) Go(f func(ctx context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f(s.ctx)
	}()
}

// Track registers one goroutine the caller runs itself (a hijacked connection's handler); call
// the returned func when it ends.
func (s *Server) Track() (done func()) {
	s.wg.Add(1)
	return s.wg.Done
}

// Shutdown cancels the server context and waits for every tracked goroutine, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Token returns the token a request carries: the token query parameter or an
// "Authorization: Bearer T" header. The scheme's name is case-insensitive and may be followed by
// more than one space (RFC 7235 section 2.1).
func Token(r *http.Request) string {
	if t := r.URL.Query().Get("token"); t != "" {
		return t
	}
	scheme, cred, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimLeft(cred, " ")
}

// Authenticate checks the request's user (query parameter user) and token.
func (s *Server) Authenticate(r *http.Request) (string, error) {
	user := r.URL.Query().Get("user")
	if user == "" {
		return "", chat.Errorf(chat.CodeMissingField, "the user query parameter is missing (?user=NAME)")
	}
	if !chat.ValidName(user) {
		return "", chat.Errorf(chat.CodeBadUser, "user %q is not a valid name (1-64 of A-Z a-z 0-9 _ . -)", chat.Clip(user))
	}
	if err := s.opt.Signer.Verify(user, Token(r), time.Now()); err != nil {
		return "", err
	}
	return user, nil
}

// SessionOf finds the session named by the request's session query parameter. The session id is
// the credential; a user parameter, if present, must match its owner.
func (s *Server) SessionOf(r *http.Request) (*chat.Session, error) {
	q := r.URL.Query()
	sid := q.Get("session")
	if sid == "" {
		return nil, chat.Errorf(chat.CodeMissingField, "the session query parameter is missing (?session=ID from POST /api/session)")
	}
	sess, err := s.Hub.Lookup(sid, q.Get("user"))
	if errors.Is(err, chat.ErrClosed) {
		return nil, chat.Errorf(chat.CodeShutdown, "the server is shutting down")
	}
	return sess, err
}

// SessionRequest starts a handler of a GET on an existing session (the polls and the HTTP
// streams): it counts the request, finds the session named by ?session=, and reads the resume
// point, after=N or the header named (Last-Event-ID), which wins. On an error it has answered
// the request (WriteError) and ok is false.
func (s *Server) SessionRequest(w http.ResponseWriter, r *http.Request, afterHeader string) (sess *chat.Session, after uint64, ok bool) {
	s.Requests.Add(1)
	sess, err := s.SessionOf(r)
	if err == nil {
		after, err = After(r, afterHeader)
	}
	if err != nil {
		WriteError(w, "", err)
		return nil, 0, false
	}
	return sess, after, true
}

// OpenOrResume serves a persistent transport's connect: with a session parameter it resumes that
// session (the user must be its owner), otherwise it authenticates the user and opens a new one.
func (s *Server) OpenOrResume(r *http.Request) (sess *chat.Session, after uint64, fresh bool, err error) {
	user, err := s.Authenticate(r)
	if err != nil {
		return nil, 0, false, err
	}
	after, err = After(r, "")
	if err != nil {
		return nil, 0, false, err
	}
	if sid := r.URL.Query().Get("session"); sid != "" {
		sess, err = s.Hub.Lookup(sid, user)
		if errors.Is(err, chat.ErrClosed) {
			err = chat.Errorf(chat.CodeShutdown, "the server is shutting down")
		}
		return sess, after, false, err
	}
	sess, err = s.Hub.Open(r.Context(), user)
	if errors.Is(err, chat.ErrClosed) {
		err = chat.Errorf(chat.CodeShutdown, "the server is shutting down")
	}
	return sess, 0, true, err
}

// After reads the after query parameter, or the header named (Last-Event-ID), which wins.
func After(r *http.Request, header string) (uint64, error) {
	v := r.URL.Query().Get("after")
	if header != "" {
		if h := r.Header.Get(header); h != "" {
			v = h
		}
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, chat.Errorf(chat.CodeBadAfter, "after=%q is not a seq (a whole number, 0 for everything)", chat.Clip(v))
	}
	return n, nil
}

// Status is the HTTP status for an error from the chat core.
func Status(err error) int {
	var ce *chat.Error
	if !errors.As(err, &ce) {
		return http.StatusInternalServerError
	}
	switch ce.Code {
	case chat.CodeUnauthorized:
		return http.StatusUnauthorized
	case chat.CodeUnknownSession, chat.CodeExpired:
		return http.StatusNotFound
	case chat.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case chat.CodeShutdown, chat.CodeUnavailable, chat.CodeServerFull:
		return http.StatusServiceUnavailable
	case chat.CodeTooManySessions, chat.CodeRateLimited:
		return http.StatusTooManyRequests
	case chat.CodeUnknownUser, chat.CodeNotMember:
		return http.StatusUnprocessableEntity
	case CodeBadMethod:
		return http.StatusMethodNotAllowed
	}
	return http.StatusBadRequest
}

// WriteError answers a request with an error envelope and the matching status.
func WriteError(w http.ResponseWriter, cid chat.CID, err error) {
	env := chat.ErrorEnvelope(cid, err)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(Status(err))
	_, _ = w.Write(append(chat.Marshal(&env), '\n'))
}

// WriteJSON answers with one envelope.
func WriteJSON(w http.ResponseWriter, env chat.Envelope) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(chat.Marshal(&env), '\n'))
}

// AppendArray appends a JSON array of the direct envelopes then the entries.
func AppendArray(b []byte, direct []chat.Envelope, entries []chat.Entry) []byte {
	b = append(b, '[')
	n := 0
	for i := range direct {
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, chat.Marshal(&direct[i])...)
		n++
	}
	for _, e := range entries {
		if n > 0 {
			b = append(b, ',')
		}
		b = e.AppendJSON(b)
		n++
	}
	return append(b, ']', '\n')
}

// HandleSession serves POST /api/session?user=U: it opens a session and answers its welcome
// envelope, {"type":"welcome","session":S,"user":U}.
func (s *Server) HandleSession(w http.ResponseWriter, r *http.Request) {
	s.Requests.Add(1)
	if r.Method != http.MethodPost {
		WriteMethodNotAllowed(w, r, http.MethodPost, "POST /api/session?user=NAME")
		return
	}
	user, err := s.Authenticate(r)
	if err != nil {
		WriteError(w, "", err)
		return
	}
	sess, err := s.Hub.Open(r.Context(), user)
	if err != nil {
		if errors.Is(err, chat.ErrClosed) {
			err = chat.Errorf(chat.CodeShutdown, "the server is shutting down")
		}
		WriteError(w, "", err)
		return
	}
	WriteJSON(w, chat.Welcome(sess))
}

// HandleSend serves POST /api/send?session=S: one envelope as the body; the answer is its ok (or
// who's presence) or an error envelope. The ok is also queued downstream.
func (s *Server) HandleSend(w http.ResponseWriter, r *http.Request) {
	s.Requests.Add(1)
	if r.Method != http.MethodPost {
		WriteMethodNotAllowed(w, r, http.MethodPost, "POST /api/send?session=ID with one envelope as the body")
		return
	}
	sid := r.URL.Query().Get("session")
	if sid == "" {
		WriteError(w, "", chat.Errorf(chat.CodeMissingField, "the session query parameter is missing (?session=ID from POST /api/session)"))
		return
	}
	lim := s.Hub.Limits()
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(lim.FrameLimit())+1))
	if err != nil {
		WriteError(w, "", chat.Errorf(chat.CodeBadJSON, "reading the body: %v", err))
		return
	}
	if len(body) > lim.FrameLimit() {
		WriteError(w, "", chat.Errorf(chat.CodeTooLarge, "the body is over %d bytes, the envelope limit is %d", lim.FrameLimit(), lim.MaxEnvelope))
		return
	}
	env, err := chat.ParseEnvelope(trimSpace(body), lim)
	if err != nil {
		WriteError(w, env.CID, err)
		return
	}
	// The session may be held by another node of a cluster: the hub forwards the command
	// there rather than moving the session away from the connection streaming to it.
	reply, err := s.Hub.Command(r.Context(), sid, r.URL.Query().Get("user"), env)
	if errors.Is(err, chat.ErrClosed) {
		err = chat.Errorf(chat.CodeShutdown, "the server is shutting down")
	}
	if err != nil {
		WriteError(w, env.CID, err)
		return
	}
	if reply.Type == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	WriteJSON(w, reply)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// DecodeError reads an error envelope from a non-2xx HTTP answer as a *chat.Error.
func DecodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var env chat.Envelope
	if json.Unmarshal(b, &env) == nil && env.Type == chat.TypeError {
		return &chat.Error{Code: env.Code, Text: env.Error}
	}
	if resp.StatusCode >= 500 {
		return chat.Errorf(chat.CodeUnavailable, "server answered %s", resp.Status)
	}
	return chat.Errorf(chat.CodeBadJSON, "server answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
}
