package socketio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wirelab/wirelab/transports"
)

// NewLongPollClient returns a socketio/longpoll client: Engine.IO's HTTP long-polling only
// (socket.io-client with transports: ["polling"]). Connect opens the session.
func NewLongPollClient(opt transports.Options) *Client { return newClient(LongPoll, false, opt) }

// engineConn is one Engine.IO session: it starts on polling (a held GET for what the server
// sends, one POST at a time for what the client sends, as engine.io-client does: the server
// refuses overlapping requests) and may move to a WebSocket (websocket.go).
//
// Goroutines, all waited for by wait: the poll reader, the poll writer and the ping watchdog;
// with an upgrade, the upgrader and then the WebSocket reader and writer. Packets are handled on
// whichever reader is current, one at a time, in the order they arrived.
type engineConn struct {
	c      *Client
	hs     handshake
	ctx    context.Context // ends with the connection: aborts its requests
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{}
	err    error // why it ended; set before done is closed
	once   sync.Once

	pinged    chan struct{} // a ping arrived (the watchdog restarts)
	connected chan error    // the server's CONNECT (nil) or CONNECT_ERROR
	wake      chan struct{} // packets queued for the writer

	// pause is closed when the upgrade starts: the poll reader and writer stop after the
	// request they are in and close readerOff and writerOff.
	pause                chan struct{}
	readerOff, writerOff chan struct{}

	mu       sync.Mutex
	queue    []string // encoded packets for the writer
	acks     map[int64]chan sioPacket
	ws       *websocket.Conn // the upgrade's WebSocket, from the probe on
	upgraded bool            // the WebSocket carries the session

	upgradedCh chan struct{} // closed with upgraded (tests wait on it)
	dropWanted bool          // Drop came: on polling its close packet is queued

	// Reader state (only the current reader touches it).
	isConnected bool
	early       []earlyEvent // events that came before CONNECT (a recovery sends them first)
}

type earlyEvent struct {
	args []json.RawMessage
	at   time.Time
}

// dialEngine does the Engine.IO handshake on polling and starts the connection's goroutines.
func (c *Client) dialEngine(ctx context.Context) (*engineConn, error) {
	u, err := c.endpoint(false, url.Values{"transport": {"polling"}})
	if err != nil {
		return nil, err
	}
	body, at, err := c.poll(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("socket.io: handshake: %w", err)
	}
	pkts, err := parsePayload(body)
	if err != nil {
		return nil, fmt.Errorf("socket.io: handshake: %w", err)
	}
	if pkts[0].Type != eioOpen {
		return nil, fmt.Errorf("socket.io: handshake: the first packet is type %q, not open (0)", pkts[0].Type)
	}
	hs, err := parseHandshake(pkts[0].Data)
	if err != nil {
		return nil, fmt.Errorf("socket.io: handshake: %w", err)
	}
	ectx, cancel := context.WithCancel(c.ctx)
	e := &engineConn{c: c, hs: hs, ctx: ectx, cancel: cancel, done: make(chan struct{}),
		pinged: make(chan struct{}, 1), connected: make(chan error, 1), wake: make(chan struct{}, 1),
		pause: make(chan struct{}), readerOff: make(chan struct{}), writerOff: make(chan struct{}),
		acks: map[int64]chan sioPacket{}, upgradedCh: make(chan struct{})}
	e.handle(pkts[1:], at)
	e.wg.Add(3)
	go e.pollReader()
	go e.pollWriter()
	go e.watchdog()
	if c.upgrade && slices.Contains(hs.Upgrades, "websocket") {
		e.wg.Add(1)
		go e.upgradeToWebSocket()
	}
	return e, nil
}

// pollURL is the polling endpoint of this session.
func (e *engineConn) pollURL() (string, error) {
	return e.c.endpoint(false, url.Values{"transport": {"polling"}, "sid": {e.hs.SID}})
}

// poll does one polling GET and returns its payload.
func (c *Client) poll(ctx context.Context, u string) (string, time.Time, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", time.Time{}, err
	}
	resp, err := c.httpc.Do(req)
	if err != nil {
		return "", time.Time{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	at := time.Now()
	if err != nil {
		return "", at, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", at, fmt.Errorf("GET %s answered %s: %s", Path, resp.Status, truncate(string(b), 200))
	}
	if len(b) > maxBody {
		return "", at, fmt.Errorf("GET %s answered over %d bytes", Path, maxBody)
	}
	return string(b), at, nil
}

// pollReader holds a GET at a time and handles what it brings, until the upgrade pauses it.
func (e *engineConn) pollReader() {
	defer e.wg.Done()
	u, err := e.pollURL()
	if err != nil {
		e.close(err)
		return
	}
	for {
		select {
		case <-e.pause:
			close(e.readerOff)
			return
		case <-e.done:
			return
		default:
		}
		body, at, err := e.c.poll(e.ctx, u)
		if err != nil {
			e.close(fmt.Errorf("socket.io: polling: %w", err))
			return
		}
		pkts, err := parsePayload(body)
		if err != nil {
			e.close(err)
			return
		}
		e.handle(pkts, at)
	}
}

// pollWriter POSTs the queued packets, one request at a time, each at most maxPayload bytes
// (engine.io-client's batching), until the upgrade pauses it.
func (e *engineConn) pollWriter() {
	defer e.wg.Done()
	u, err := e.pollURL()
	if err != nil {
		e.close(err)
		return
	}
	for {
		select {
		case <-e.pause:
			close(e.writerOff)
			return
		case <-e.done:
			return
		case <-e.wake:
		}
		for {
			e.mu.Lock()
			if e.upgraded || isClosed(e.pause) {
				e.mu.Unlock()
				break
			}
			batch := e.take(e.hs.MaxPayload)
			e.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			if err := e.post(u, encodePayload(batch)); err != nil {
				e.close(fmt.Errorf("socket.io: polling: %w", err))
				return
			}
			if batch[len(batch)-1] == closePacket { // Drop's: the server has closed the transport
				e.close(errDropped)
				return
			}
		}
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// take removes queued packets from the front, at least one and at most max bytes (with their
// separators) when there are several; a batch ends at a close packet. The caller holds e.mu.
func (e *engineConn) take(max int) []string {
	n, size := 0, 0
	for n < len(e.queue) {
		size += len(e.queue[n]) + 1
		if n > 0 && size > max {
			break
		}
		n++
		if e.queue[n-1] == closePacket {
			break
		}
	}
	batch := slices.Clone(e.queue[:n])
	e.queue = e.queue[n:]
	if len(e.queue) == 0 {
		e.queue = nil
	}
	return batch
}

func (e *engineConn) post(u, body string) error {
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, u, bytes.NewReader([]byte(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := e.c.httpc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s answered %s: %s", Path, resp.Status, truncate(string(b), 200))
	}
	return nil
}

// watchdog ends the connection when no ping comes for pingInterval + pingTimeout (the server
// pings in Engine.IO v4; engine.io-client waits as long).
func (e *engineConn) watchdog() {
	defer e.wg.Done()
	limit := time.Duration(e.hs.PingInterval+e.hs.PingTimeout) * time.Millisecond
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		select {
		case <-e.pinged:
			t.Reset(limit)
		case <-t.C:
			e.close(fmt.Errorf("socket.io: ping timeout: no ping from the server for %v", limit))
			return
		case <-e.done:
			return
		}
	}
}

// write queues one encoded Engine.IO packet for the current writer.
func (e *engineConn) write(pkt string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-e.done:
		return e.err
	default:
	}
	e.queue = append(e.queue, pkt)
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return nil
}

// expect registers a Send waiting for ack id.
func (e *engineConn) expect(id int64) (chan sioPacket, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-e.done:
		return nil, e.err
	default:
	}
	ch := make(chan sioPacket, 1)
	e.acks[id] = ch
	return ch, nil
}

func (e *engineConn) forget(id int64) {
	e.mu.Lock()
	delete(e.acks, id)
	e.mu.Unlock()
}

// close ends the connection with err (the first reason wins): its requests are aborted and its
// WebSocket closed, which ends its goroutines.
func (e *engineConn) close(err error) {
	e.once.Do(func() {
		e.mu.Lock()
		e.err = err
		ws := e.ws
		close(e.done)
		e.mu.Unlock()
		e.cancel()
		if ws != nil {
			_ = ws.NetConn().Close()
		}
	})
}

// closePacket is Engine.IO's close packet, as the client sends it.
const closePacket = string(eioClose)

// drop ends the connection so that the server sees the transport end at once and keeps the
// socket's state for recovery ("transport close"). On a WebSocket it closes the connection: the
// server reads its end. On polling it POSTs Engine.IO's close packet, as engine.io-client's
// polling transport does when it closes (on the browser's offline event, for one), and ends the
// connection once the server has answered that POST: the server closed the transport before
// answering. A cut of the connections alone is seen by the server only if it comes while the
// server holds a poll GET and after it has read that GET, which a client cannot time (cut
// sooner, the server keeps the socket until its ping timeout and the reconnect is not
// recovered, as after a silent network failure: TestSilentCut).
func (e *engineConn) drop() {
	e.mu.Lock()
	now := e.upgraded
	if !e.dropWanted && !now && !isClosed(e.pause) {
		e.queue = append(e.queue, closePacket)
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
	e.dropWanted = true // an upgrade under way closes its WebSocket once it is done
	e.mu.Unlock()
	if now {
		e.close(errDropped)
	}
}

// wait waits for the connection's goroutines.
func (e *engineConn) wait() { e.wg.Wait() }

// transport is the Engine.IO transport carrying the session.
func (e *engineConn) transport() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.upgraded {
		return "websocket"
	}
	return "polling"
}

// handle processes packets from the server, on the current reader.
func (e *engineConn) handle(pkts []eioPacket, at time.Time) {
	for _, p := range pkts {
		switch p.Type {
		case eioPing:
			select {
			case e.pinged <- struct{}{}:
			default:
			}
			if !e.c.opt.NoPong {
				_ = e.write(string(eioPong))
			}
		case eioClose:
			e.close(errors.New("socket.io: the server closed the Engine.IO session"))
		case eioMessage:
			if p.Binary {
				e.c.opt.Logger.Debug("binary Engine.IO message ignored", "transport", e.c.name)
				continue
			}
			sp, err := parseSIOPacket(p.Data)
			if err != nil {
				e.close(fmt.Errorf("socket.io: from the server: %w", err))
				return
			}
			e.handleSIO(sp, at)
		case eioOpen, eioPong, eioUpgrade, eioNoop:
		}
	}
}

// handleSIO processes one Socket.IO packet of the main namespace.
func (e *engineConn) handleSIO(p sioPacket, at time.Time) {
	if p.Namespace != "/" {
		return
	}
	switch p.Type {
	case sioConnect:
		e.c.onConnect(p.Data, len(e.early))
		e.isConnected = true
		for _, ev := range e.early {
			e.c.deliver(ev.args, ev.at)
		}
		e.early = nil
		select {
		case e.connected <- nil:
		default: // a second CONNECT: nobody waits for it
		}
	case sioConnectError:
		var v struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(p.Data, &v)
		err := &connectError{msg: v.Message}
		select {
		case e.connected <- err:
		default:
		}
		e.close(err)
	case sioDisconnect: // the server disconnected the socket: socket.io-client does not reconnect
		err := errors.New("socket.io: the server disconnected the socket (io server disconnect)")
		e.c.setGone(err)
		e.close(err)
	case sioEvent:
		name, args, err := eventArgs(p.Data)
		if err != nil {
			e.close(fmt.Errorf("socket.io: from the server: %w", err))
			return
		}
		if name != "msg" {
			e.c.opt.Logger.Debug("event ignored", "transport", e.c.name, "event", name)
			return
		}
		if !e.isConnected {
			e.early = append(e.early, earlyEvent{args: args, at: at})
			return
		}
		e.c.deliver(args, at)
	case sioAck:
		e.mu.Lock()
		ch := e.acks[p.ID]
		delete(e.acks, p.ID)
		e.mu.Unlock()
		if ch != nil {
			ch <- p
		}
	case sioBinaryEvent, sioBinaryAck:
		e.c.opt.Logger.Debug("binary Socket.IO packet ignored", "transport", e.c.name)
	}
}
