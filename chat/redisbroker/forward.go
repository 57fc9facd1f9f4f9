package redisbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/wirelab/wirelab/chat"
)

// A command for a session held by another node travels on that node's channel:
//
//	c REQ FROM SID USER ENVELOPE    run ENVELOPE for session SID of USER ("-": any user)
//	a REQ ANSWER                    the answer, published on FROM's channel
//
// REQ is FROM's request number. ANSWER is JSON: {"env": ENVELOPE} or {"code": C, "error": T},
// or {"not_held": true} when the node no longer holds the session (the asking node claims it).

type forwardAnswer struct {
	Env     *chat.Envelope `json:"env,omitempty"`
	Code    string         `json:"code,omitempty"`
	Error   string         `json:"error,omitempty"`
	NotHeld bool           `json:"not_held,omitempty"`
}

// nodeMessage handles a message on this node's channel. Runs on the dispatcher: a forwarded
// command runs on a goroutine of its own, so that the dispatcher goes on delivering.
func (b *Broker) nodeMessage(payload string) {
	kind, rest, _ := strings.Cut(payload, " ")
	switch kind {
	case "r":
		b.hooks.Released(rest)
	case "c":
		cmd, err := parseCommand(rest)
		if err != nil {
			b.log.Warn("bad forwarded command", "err", err)
			return
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.runForwarded(cmd)
		}()
	case "a":
		req, ans, err := parseAnswer(rest)
		if err != nil {
			b.log.Warn("bad forwarded answer", "err", err)
			return
		}
		b.fwdMu.Lock()
		ch := b.fwd[req]
		delete(b.fwd, req)
		b.fwdMu.Unlock()
		if ch != nil {
			ch <- ans // buffered
		}
	}
}

type forwarded struct {
	req, from, sid, user string
	env                  chat.Envelope
}

// parseCommand parses "REQ FROM SID USER ENVELOPE".
func parseCommand(s string) (forwarded, error) {
	var f forwarded
	parts := strings.SplitN(s, " ", 5)
	if len(parts) != 5 {
		return f, fmt.Errorf("want REQ FROM SID USER ENVELOPE, got %d fields", len(parts))
	}
	f.req, f.from, f.sid, f.user = parts[0], parts[1], parts[2], parts[3]
	if f.user == "-" {
		f.user = ""
	}
	if f.req == "" || f.from == "" || f.sid == "" {
		return f, errors.New("empty request, node or session")
	}
	if err := json.Unmarshal([]byte(parts[4]), &f.env); err != nil {
		return f, fmt.Errorf("envelope: %w", err)
	}
	return f, nil
}

// parseAnswer parses "REQ ANSWER".
func parseAnswer(s string) (string, forwardAnswer, error) {
	var a forwardAnswer
	req, js, ok := strings.Cut(s, " ")
	if !ok || req == "" {
		return "", a, errors.New("want REQ ANSWER")
	}
	if err := json.Unmarshal([]byte(js), &a); err != nil {
		return "", a, fmt.Errorf("answer: %w", err)
	}
	return req, a, nil
}

func (b *Broker) runForwarded(f forwarded) {
	ctx, cancel := context.WithTimeout(b.fwdStop, 2*b.opt.OpTimeout)
	defer cancel()
	r, err := b.hooks.Command(ctx, f.sid, f.user, f.env)
	var a forwardAnswer
	var ce *chat.Error
	switch {
	case errors.Is(err, chat.ErrNotHeld):
		a.NotHeld = true
	case errors.As(err, &ce):
		a.Code, a.Error = ce.Code, ce.Text
	case err != nil:
		a.Code, a.Error = chat.CodeUnavailable, err.Error()
	default:
		a.Env = &r
	}
	js, _ := json.Marshal(a)
	if err := b.rdb.Publish(ctx, b.k("n:", f.from), "a "+f.req+" "+string(js)).Err(); err != nil {
		b.log.Warn("the answer to a forwarded command was not sent", "to", f.from, "err", b.wrap(err))
	}
}

// Forward runs env for session sid on the live node that holds it.
func (b *Broker) Forward(ctx context.Context, sid, user string, env chat.Envelope) (chat.Envelope, bool, error) {
	octx, cancel := b.op(ctx)
	defer cancel()
	holder, err := b.rdb.HGet(octx, b.k("s:", sid), "node").Result()
	if err != nil || holder == "" || holder == b.opt.Node {
		return chat.Envelope{}, false, nil // no such session, Redis trouble, or ours: claim says which
	}
	req := strconv.FormatUint(b.fwdSeq.Add(1), 36)
	ch := make(chan forwardAnswer, 1)
	b.fwdMu.Lock()
	b.fwd[req] = ch
	b.fwdMu.Unlock()
	defer func() {
		b.fwdMu.Lock()
		delete(b.fwd, req)
		b.fwdMu.Unlock()
	}()
	u := user
	if u == "" {
		u = "-"
	}
	msg := "c " + req + " " + b.opt.Node + " " + sid + " " + u + " " + string(chat.Marshal(&env))
	n, err := b.rdb.Publish(octx, b.k("n:", holder), msg).Result()
	if err != nil || n == 0 {
		return chat.Envelope{}, false, nil // the holder is gone: claim the session
	}
	select {
	case a := <-ch:
		switch {
		case a.NotHeld:
			return chat.Envelope{}, false, nil
		case a.Code != "":
			return chat.Envelope{}, true, &chat.Error{Code: a.Code, Text: a.Error}
		case a.Env != nil:
			return *a.Env, true, nil
		}
		return chat.Envelope{}, false, nil
	case <-octx.Done():
		// No answer in time (the holder hung or died): claim it. The command may have run
		// there; its cid makes running it again harmless.
		return chat.Envelope{}, false, nil
	}
}
