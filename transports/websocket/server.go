package websocket

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// Name is the transport's name.
const Name = transports.WebSocket

// Path is where the handler is mounted.
const Path = "/ws"

// MaxBatch is the most outbox entries one socket write carries.
const MaxBatch = 256

// WriteTimeout bounds one socket write; a client that reads nothing for this long is cut off.
const WriteTimeout = 10 * time.Second

// closeWait is how long the server waits for the client's close frame after sending its own.
const closeWait = 2 * time.Second

// upgrader: a 1 KiB read buffer and no write buffer of gorilla's own (it writes only control
// frames; the writer goroutine encodes frames itself).
var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferPool: &sync.Pool{},
	// The handler checks the origin itself so that a refusal carries an error envelope.
	CheckOrigin: func(*http.Request) bool { return true },
}

// Handler serves GET /ws?user=U[&session=S&after=N] (token in ?token= or Authorization: Bearer).
func Handler(srv *transports.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.Requests.Add(1)
		if !srv.CheckOrigin(r) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			env := chat.ErrorEnvelope("", chat.Errorf(chat.CodeUnauthorized,
				"origin %q may not open WebSockets here; start the server with --allow-origin %s", r.Header.Get("Origin"), r.Header.Get("Origin")))
			_, _ = w.Write(append(chat.Marshal(&env), '\n'))
			return
		}
		if !websocket.IsWebSocketUpgrade(r) {
			w.Header().Set("Upgrade", "websocket")
			transports.WriteError(w, "", chat.Errorf(chat.CodeBadJSON,
				"GET /ws needs a WebSocket handshake (Connection: Upgrade, Upgrade: websocket)"))
			return
		}
		done := srv.Track()
		defer done()
		if srv.Context().Err() != nil {
			transports.WriteError(w, "", chat.Errorf(chat.CodeShutdown, "the server is shutting down"))
			return
		}
		sess, after, _, err := srv.OpenOrResume(r)
		if err != nil {
			transports.WriteError(w, "", err)
			return
		}
		cur, err := sess.Attach(chat.AttachOptions{After: after, Heartbeat: true})
		if err != nil {
			transports.WriteError(w, "", err)
			return
		}
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil { // gorilla has answered the request
			cur.Detach()
			return
		}
		serve(srv, sess, cur, ws)
	})
}

// serve runs one connection: this goroutine reads, a second one writes; it returns when both
// are done and the socket is closed.
func serve(srv *transports.Server, sess *chat.Session, cur *chat.Cursor, ws *websocket.Conn) {
	nc := ws.NetConn()
	ctx, cancel := context.WithCancel(srv.Context())
	lim := srv.Hub.Limits()
	ws.SetReadLimit(int64(lim.FrameLimit()))

	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		writeLoop(ctx, srv, sess, cur, nc)
	}()

	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			break // gorilla has sent 1009 for an oversize frame; otherwise the peer is gone
		}
		sess.Touch()
		env, err := chat.ParseEnvelope(msg, lim)
		if err != nil {
			cur.Send(chat.ErrorEnvelope(env.CID, err))
			continue
		}
		if _, err := sess.Handle(ctx, env); err != nil {
			cur.Send(chat.ErrorEnvelope(env.CID, err))
		}
	}
	cancel()
	<-wrote
	cur.Detach()
	_ = nc.Close()
}

// writeLoop writes the welcome, then every batch the cursor hands out, each batch in one write.
// When the cursor ends it writes the reason (an error envelope) and a close frame, and gives the
// reader closeWait to see the client's close.
func writeLoop(ctx context.Context, srv *transports.Server, sess *chat.Session, cur *chat.Cursor, nc net.Conn) {
	welcome := chat.Welcome(sess)
	bp := bufPool.Get().(*[]byte)
	buf := appendText((*bp)[:0], chat.Marshal(&welcome))
	err := write(nc, buf)
	*bp = buf[:0]
	bufPool.Put(bp)
	if err != nil {
		_ = nc.SetReadDeadline(time.Now()) // the reader stops too
		return
	}
	entries := make([]chat.Entry, 0, MaxBatch)
	for {
		b, err := cur.Next(ctx, entries)
		if err != nil {
			var ce *chat.Error
			if !errors.As(err, &ce) {
				if srv.Context().Err() == nil {
					return // the reader ended: the connection is gone
				}
				ce = chat.Errorf(chat.CodeShutdown, "the server is shutting down; reconnect later")
			}
			end(nc, ce)
			return
		}
		bp := bufPool.Get().(*[]byte)
		buf := (*bp)[:0]
		for i := range b.Direct {
			buf = appendText(buf, chat.Marshal(&b.Direct[i]))
		}
		for _, e := range b.Entries {
			buf = appendEntry(buf, e)
		}
		if b.Ping {
			buf = appendText(buf, pingJSON)
		}
		err = write(nc, buf)
		clear(b.Entries) // drop payload references while idle
		if cap(buf) <= 4*batchBufSize {
			*bp = buf[:0]
			bufPool.Put(bp)
		}
		if err != nil {
			_ = nc.SetReadDeadline(time.Now())
			return
		}
	}
}

var pingJSON = []byte(`{"type":"ping"}`)

func write(nc net.Conn, b []byte) error {
	if err := nc.SetWriteDeadline(time.Now().Add(WriteTimeout)); err != nil {
		return err
	}
	_, err := nc.Write(b)
	return err
}

// end writes why the connection ends and a close frame, then lets the reader wait closeWait for
// the client's close.
func end(nc net.Conn, why *chat.Error) {
	env := chat.ErrorEnvelope("", why)
	code := websocket.CloseNormalClosure
	switch why.Code {
	case chat.CodeShutdown:
		code = websocket.CloseGoingAway
	case chat.CodeSlowConsumer:
		code = websocket.CloseTryAgainLater
	}
	buf := appendText(make([]byte, 0, 256), chat.Marshal(&env))
	buf = appendClose(buf, code, why.Code)
	_ = write(nc, buf)
	_ = nc.SetReadDeadline(time.Now().Add(closeWait))
}
