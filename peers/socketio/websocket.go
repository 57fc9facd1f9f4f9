package socketio

import (
	"fmt"
	"net/url"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wirelab/wirelab/transports"
)

// NewWebSocketClient returns a socketio/websocket client: it opens the session on polling and
// upgrades to a WebSocket as the browser client does (socket.io-client's default transports),
// staying on polling if the upgrade fails. Connect opens the session (on polling: the upgrade
// goes on behind it).
func NewWebSocketClient(opt transports.Options) *Client { return newClient(WebSocket, true, opt) }

// upgradeToWebSocket is engine.io-client's upgrade: open a WebSocket with the session's sid,
// probe it ("2probe", answered "3probe"), pause polling (the held GET comes back: the server
// answers it with a noop once probed; the POST in flight ends), then send "5" on the WebSocket,
// which carries the session from then on. Packets queued meanwhile go out on the WebSocket.
func (e *engineConn) upgradeToWebSocket() {
	defer e.wg.Done()
	u, err := e.c.endpoint(true, url.Values{"transport": {"websocket"}, "sid": {e.hs.SID}})
	if err != nil {
		return
	}
	ws, _, err := e.c.wsd.DialContext(e.ctx, u, nil)
	if err != nil {
		e.c.opt.Logger.Debug("websocket upgrade failed; staying on polling", "transport", e.c.name, "err", err)
		return
	}
	e.mu.Lock()
	if isClosed(e.done) {
		e.mu.Unlock()
		_ = ws.NetConn().Close()
		return
	}
	e.ws = ws // close closes it from now on
	e.mu.Unlock()
	ws.SetReadLimit(int64(e.hs.MaxPayload) + 64)
	probe := func() error {
		_ = ws.SetWriteDeadline(time.Now().Add(upgradeTimeout))
		if err := ws.WriteMessage(websocket.TextMessage, []byte("2probe")); err != nil {
			return err
		}
		_ = ws.SetReadDeadline(time.Now().Add(upgradeTimeout))
		typ, b, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		if typ != websocket.TextMessage || string(b) != "3probe" {
			return fmt.Errorf("the probe was answered %q, not 3probe", truncate(string(b), 40))
		}
		return nil
	}
	if err := probe(); err != nil {
		e.c.opt.Logger.Debug("websocket probe failed; staying on polling", "transport", e.c.name, "err", err)
		e.mu.Lock()
		e.ws = nil
		e.mu.Unlock()
		_ = ws.NetConn().Close()
		return
	}
	close(e.pause)
	for _, off := range []chan struct{}{e.readerOff, e.writerOff} {
		select {
		case <-off:
		case <-e.done:
			return
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	_ = ws.SetWriteDeadline(time.Time{})
	if err := ws.WriteMessage(websocket.TextMessage, []byte{eioUpgrade}); err != nil {
		e.close(fmt.Errorf("socket.io: websocket upgrade: %w", err))
		return
	}
	e.mu.Lock()
	e.upgraded = true
	close(e.upgradedCh)
	drop := e.dropWanted // Drop came while the poll GETs were ending
	e.mu.Unlock()
	if drop {
		e.close(errDropped)
		return
	}
	e.c.opt.Logger.Debug("upgraded to websocket", "transport", e.c.name)
	e.wg.Add(2)
	go e.wsReader(ws)
	go e.wsWriter(ws)
	select { // what the poll writer left
	case e.wake <- struct{}{}:
	default:
	}
}

// wsReader reads one Engine.IO packet per WebSocket message.
func (e *engineConn) wsReader(ws *websocket.Conn) {
	defer e.wg.Done()
	for {
		typ, b, err := ws.ReadMessage()
		at := time.Now()
		if err != nil {
			e.close(fmt.Errorf("socket.io: websocket: %w", err))
			return
		}
		if typ != websocket.TextMessage { // binary attachments: this chat sends none
			continue
		}
		p, err := parseEIOPacket(string(b))
		if err != nil {
			e.close(fmt.Errorf("socket.io: from the server: %w", err))
			return
		}
		e.handle([]eioPacket{p}, at)
		if isClosed(e.done) {
			return
		}
	}
}

// wsWriter writes the queued packets, one WebSocket message each.
func (e *engineConn) wsWriter(ws *websocket.Conn) {
	defer e.wg.Done()
	for {
		select {
		case <-e.done:
			return
		case <-e.wake:
		}
		e.mu.Lock()
		batch := e.queue
		e.queue = nil
		e.mu.Unlock()
		for _, p := range batch {
			if err := ws.WriteMessage(websocket.TextMessage, []byte(p)); err != nil {
				e.close(fmt.Errorf("socket.io: websocket: %w", err))
				return
			}
		}
	}
}
