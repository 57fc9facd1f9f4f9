package websocket

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// Name is the transport's name.
const Name = "websocket"

// Path is where the handler is mounted.
const Path = "/ws"

// MaxBatch is the most outbox entries one socket write carries.
const MaxBatch = 256

// smallBatch is the batch size of a connection that keeps up.
const smallBatch = 16

var entryPool = sync.Pool{New: func() any { e := make([]chat.Entry, 0, MaxBatch); return &e }}

// WriteTimeout bounds one socket write; a client that reads nothing for this long is cut off.
const WriteTimeout = 10 * time.Second

// closeWait is how long the server waits for the client's close frame after sending its own.
const closeWait = 2 * time.Second

// upgrader does the handshake only: gorilla reuses net/http's buffers for it and allocates
// none of its own (the connection's frames are read by frameReader and written by writeLoop).
var upgrader = websocket.Upgrader{
	WriteBufferPool: &sync.Pool{},
	// The handler checks the origin itself so that a refusal carries an error envelope.
	CheckOrigin: func(*http.Request) bool { return true },
}

// Mount mounts the transport's endpoint (GET Path, the upgrade) on m.
func Mount(m transports.Mux, srv *transports.Server) error {
	m.HandleGet(Path, Handler(srv))
	return nil
}

// Handler serves GET /ws?user=U[&session=S&after=N] (token in ?token= or Authorization: Bearer).
func Handler(srv *transports.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.Requests.Add(1)
		if !srv.CheckOrigin(r) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			origin := chat.Clip(r.Header.Get("Origin"))
			env := chat.ErrorEnvelope("", chat.Errorf(chat.CodeUnauthorized,
				"origin %q may not open WebSockets here (pages from the server's own addresses may); start the server with --allow-origin %s to allow it", origin, origin))
			_, _ = w.Write(append(chat.Marshal(&env), '\n'))
			return
		}
		if !websocket.IsWebSocketUpgrade(r) {
			w.Header().Set("Upgrade", "websocket")
			transports.WriteError(w, "", chat.Errorf(chat.CodeMissingField,
				"GET /ws needs a WebSocket handshake (Connection: Upgrade, Upgrade: websocket); see docs/PROTOCOL.md"))
			return
		}
		// Held until the connection's goroutines are registered with srv.Go, so that a server
		// shutdown that starts meanwhile waits for them too.
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
		// The welcome is written here, on a stack that is deep already, so that the writer's
		// stays small. Then the handler returns, so that net/http lets go of the request's
		// buffers; the connection lives on in two goroutines that server shutdown waits for.
		nc := ws.NetConn()
		w0 := chat.Welcome(sess)
		if err := write(nc, appendText(make([]byte, 0, 128), chat.Marshal(&w0))); err != nil {
			cur.Detach()
			_ = nc.Close()
			return
		}
		c := newServerConn(srv, sess, cur, nc)
		srv.Go(func(context.Context) { c.serve() })
	})
}

// serverConn is one connection: its socket, its session and cursor, and whether a close frame
// has gone out on it (after which nothing else may: RFC 6455 section 5.5.1).
type serverConn struct {
	srv    *transports.Server
	sess   *chat.Session
	cur    *chat.Cursor
	nc     net.Conn
	ctx    context.Context // ends when the reader ends or the server shuts down
	cancel context.CancelFunc
	lim    chat.Limits
	fr     frameReader
	wrote  chan struct{} // closed when the writer is done
	small  [smallBatch]chat.Entry

	wmu       sync.Mutex // held for every write, by the reader (pongs, close) and the writer
	closeSent bool       // under wmu
}

// errCloseSent is send's error once a close frame has gone out.
var errCloseSent = errors.New("websocket: a close frame has been sent")

// newServerConn allocates everything the connection's goroutines need up front, on the
// handler's stack: a goroutine that allocates can run into the allocator's slow path and grow
// its stack to 4 KiB, where it then waits for the connection's lifetime. Without it both wait
// on 2 KiB stacks.
func newServerConn(srv *transports.Server, sess *chat.Session, cur *chat.Cursor, nc net.Conn) *serverConn {
	ctx, cancel := context.WithCancel(srv.Context())
	c := &serverConn{srv: srv, sess: sess, cur: cur, nc: nc, ctx: ctx, cancel: cancel,
		lim: srv.Hub.Limits(), wrote: make(chan struct{})}
	c.fr = frameReader{r: nc, limit: c.lim.FrameLimit(), pong: c.pong}
	_ = ctx.Done() // made now, not in the writer
	return c
}

func (c *serverConn) pong(p []byte) error {
	c.sess.Touch() // anything the client sends is a sign of life
	return c.control(appendPong(make([]byte, 0, 2+len(p)), p))
}

// serve runs the connection: this goroutine reads, a second one writes; it returns when both
// are done and the socket is closed.
func (c *serverConn) serve() {
	go c.writeLoop()
	nc, fr := c.nc, &c.fr
	for {
		msg, err := fr.readMessage()
		if err != nil {
			var pe *protocolError
			if errors.As(err, &pe) {
				// Too big, not UTF-8 or not WebSocket: say why and stop handling messages.
				_ = c.control(appendClose(make([]byte, 0, 128), pe.code, pe.text))
				// Read on until the client answers with its close frame (when the bad frame
				// was read whole, frames can still be told apart) or closes the connection,
				// so that closing the socket does not reset it before the client has read
				// the close frame.
				_ = nc.SetReadDeadline(time.Now().Add(closeWait))
				if pe.whole {
					for { // messages are dropped now
						if _, err := fr.readMessage(); err != nil {
							break
						}
					}
				} else {
					_, _ = io.Copy(io.Discard, nc)
				}
			} else if errors.Is(err, errClosed) {
				// Echo the client's status code, as RFC 6455 section 5.5.1 suggests.
				_ = c.control(appendClose(make([]byte, 0, 16), fr.closeCode, ""))
			}
			break
		}
		handle(c.ctx, c.sess, c.cur, msg, c.lim)
	}
	c.cancel()
	<-c.wrote
	c.cur.Detach()
	_ = nc.Close()
}

// handle executes one client envelope. It is a function of its own so that the envelopes on its
// stack are not part of the reader's stack while it waits for the next frame.
//
//go:noinline
func handle(ctx context.Context, sess *chat.Session, cur *chat.Cursor, msg []byte, lim chat.Limits) {
	sess.Touch()
	env, err := chat.ParseEnvelope(msg, lim)
	if err != nil {
		cur.Send(chat.ErrorEnvelope(env.CID, err))
		return
	}
	// The answer (ok, or who's presence) is in the outbox, on its way down; an error goes
	// down on this connection only.
	if _, err := sess.Handle(ctx, env); err != nil {
		cur.Send(chat.ErrorEnvelope(env.CID, err))
	}
}

// writeLoop writes every batch the cursor hands out, each batch in one write.
// When the cursor ends it writes the reason (an error envelope) and a close frame, and gives the
// reader closeWait to see the client's close.
func (c *serverConn) writeLoop() {
	defer close(c.wrote)
	// While the connection keeps up, a small entry slice is enough; a full batch switches to a
	// pooled big one until the connection has caught up. The goroutine waits in Next on the
	// smallest stack (2 KiB): the work is done in functions of their own.
	small := c.small[:0]
	var big *[]chat.Entry
	for {
		entries := small
		if big != nil {
			entries = *big
		}
		b, err := c.cur.Next(c.ctx, entries)
		if err != nil {
			if big != nil {
				entryPool.Put(big)
			}
			c.stop(err)
			return
		}
		full := len(b.Entries) == cap(entries)
		if err := c.writeBatch(&b); err != nil {
			if !errors.Is(err, errCloseSent) {
				// The socket failed: the reader stops too. (After a close frame the reader
				// ends the connection itself, once the client has answered it.)
				_ = c.nc.SetReadDeadline(time.Now())
			}
			if big != nil {
				entryPool.Put(big)
			}
			return
		}
		switch {
		case full && big == nil:
			big = entryPool.Get().(*[]chat.Entry)
		case !full && big != nil:
			entryPool.Put(big)
			big = nil
		}
		// Let the other connections' writers go first. With more runnable writers than the
		// scheduler's local run queue holds (256), Go runs the ones it readied last again and
		// again while the rest wait in the global queue: some connections then lag by
		// hundreds of milliseconds. Yielding sends this writer to the back of the line, so
		// every connection gets its turn in order and finds a bigger batch waiting.
		runtime.Gosched()
	}
}

// writeBatch encodes a batch, one frame per envelope, into a pooled buffer and writes it with
// one system call.
//
//go:noinline
func (c *serverConn) writeBatch(b *chat.Batch) error {
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
	err := c.send(buf, false)
	clear(b.Entries) // drop payload references while idle
	if cap(buf) <= 4*batchBufSize {
		*bp = buf[:0]
		bufPool.Put(bp)
	}
	return err
}

// stop ends the writer after Next failed: the cursor's end reason goes to the client; a
// cancelled context means the reader ended (nothing to say) or the server is shutting down.
//
//go:noinline
func (c *serverConn) stop(err error) {
	var ce *chat.Error
	if !errors.As(err, &ce) {
		if c.srv.Context().Err() == nil {
			return // the reader ended: the connection is gone
		}
		ce = chat.Errorf(chat.CodeShutdown, "the server is shutting down; reconnect later")
	}
	c.end(ce)
}

var pingJSON = []byte(`{"type":"ping"}`)

func write(nc net.Conn, b []byte) error {
	if err := nc.SetWriteDeadline(time.Now().Add(WriteTimeout)); err != nil {
		return err
	}
	_, err := nc.Write(b)
	return err
}

// send writes frames unless a close frame has gone out (then errCloseSent); closing says that
// they end with one. The check and the write are one step under wmu, so that nothing the
// writer had ready can follow the reader's close frame on the wire.
func (c *serverConn) send(frames []byte, closing bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return errCloseSent
	}
	c.closeSent = closing
	return write(c.nc, frames)
}

// control writes a pong or a close frame from the reader, unless a close frame has gone out.
func (c *serverConn) control(frame []byte) error {
	if err := c.send(frame, frame[0]&0x0f == opClose); err != errCloseSent {
		return err
	}
	return nil
}

// end writes why the connection ends and a close frame, then lets the reader wait closeWait for
// the client's close.
func (c *serverConn) end(why *chat.Error) {
	env := chat.ErrorEnvelope("", why)
	code := closeNormal
	switch why.Code {
	case chat.CodeShutdown:
		code = closeGoingAway
	case chat.CodeSlowConsumer:
		code = closeTryAgainLater
	}
	buf := appendText(make([]byte, 0, 256), chat.Marshal(&env))
	buf = appendClose(buf, code, why.Code)
	if c.send(buf, true) == errCloseSent {
		return
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(closeWait))
}
