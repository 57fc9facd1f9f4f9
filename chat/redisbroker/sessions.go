package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wirelab/wirelab/chat"
)

// This file is the session store (chat.SessionStore): stored sessions, their outboxes and
// claims. Forwarding commands to the holder is in forward.go.

var _ chat.SessionStore = (*Broker)(nil)

func (b *Broker) sessionKeys(sid string) []string {
	return []string{b.k("s:", sid), b.k("o:", sid), b.k("sr:", sid), b.k("c:", sid)}
}

// CreateSession stores a new session held by this node.
func (b *Broker) CreateSession(ctx context.Context, sid, user string) error {
	ctx, cancel := b.op(ctx)
	defer cancel()
	return b.wrap(createScript.Run(ctx, b.rdb, []string{b.k("s:", sid)}, user, b.opt.Node, b.opt.SessionTTL.Milliseconds()).Err())
}

// Commit appends entries to the outboxes of sessions held here.
func (b *Broker) Commit(ctx context.Context, entries []chat.Commit) error {
	if len(entries) == 0 {
		return nil
	}
	ctx, cancel := b.op(ctx)
	defer cancel()
	keys := make([]string, 0, 2*len(entries))
	args := make([]any, 0, 4+3*len(entries))
	args = append(args, b.opt.Node, time.Now().UnixNano(), b.opt.Outbox, b.opt.SessionTTL.Milliseconds())
	for _, e := range entries {
		keys = append(keys, b.k("s:", e.SID), b.k("o:", e.SID))
		args = append(args, e.Topic, e.Pos, e.Data)
	}
	res, err := commitScript.Run(ctx, b.rdb, keys, args...).Int64Slice()
	if err != nil {
		return b.wrap(err)
	}
	if len(res) != len(entries) {
		return fmt.Errorf("redis at %s: commit answered %d results for %d entries", b.Addr(), len(res), len(entries))
	}
	for i, r := range res {
		entries[i].Skip = r < 0
		if r > 0 {
			entries[i].Seq = uint64(r)
		}
	}
	return nil
}

// Entries returns stored outbox entries of session sid with seqs from..to.
func (b *Broker) Entries(ctx context.Context, sid string, from, to uint64) ([]chat.StoredEntry, error) {
	ctx, cancel := b.op(ctx)
	defer cancel()
	end := "+"
	if to > 0 {
		end = strconv.FormatUint(to, 10) + "-0"
	}
	msgs, err := b.rdb.XRange(ctx, b.k("o:", sid), strconv.FormatUint(from, 10)+"-0", end).Result()
	if err != nil {
		return nil, b.wrap(err)
	}
	out := make([]chat.StoredEntry, 0, len(msgs))
	for _, m := range msgs {
		e := chat.StoredEntry{Seq: streamPos(m.ID)}
		d, _ := m.Values["d"].(string)
		e.Data = []byte(d)
		if t, ok := m.Values["t"].(string); ok {
			e.At, _ = strconv.ParseInt(t, 10, 64)
		}
		out = append(out, e)
	}
	return out, nil
}

// Claim makes this node the holder of session sid.
func (b *Broker) Claim(ctx context.Context, sid, user string) (*chat.SharedSession, error) {
	ctx, cancel := b.op(ctx)
	defer cancel()
	v, err := claimScript.Run(ctx, b.rdb, b.sessionKeys(sid), sid, b.opt.Node, user, b.opt.SessionTTL.Milliseconds(), b.opt.Prefix).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, b.wrap(err)
	}
	arr, ok := v.([]any)
	if !ok || len(arr) != 5 {
		return nil, fmt.Errorf("redis at %s: unexpected claim answer %T", b.Addr(), v)
	}
	st := &chat.SharedSession{Pos: map[string]uint64{}}
	h := strs(arr[0])
	for i := 0; i+1 < len(h); i += 2 {
		switch k, val := h[i], h[i+1]; {
		case k == "user":
			st.User = val
		case k == "seq":
			st.Seq, _ = strconv.ParseUint(val, 10, 64)
		case strings.HasPrefix(k, "pos:"):
			st.Pos[k[4:]], _ = strconv.ParseUint(val, 10, 64)
		}
	}
	if out, ok := arr[1].([]any); ok {
		for _, e := range out {
			ea, ok := e.([]any)
			if !ok || len(ea) != 2 {
				continue
			}
			id, _ := ea[0].(string)
			se := chat.StoredEntry{Seq: streamPos(id)}
			f := strs(ea[1])
			for i := 0; i+1 < len(f); i += 2 {
				switch f[i] {
				case "d":
					se.Data = []byte(f[i+1])
				case "t":
					se.At, _ = strconv.ParseInt(f[i+1], 10, 64)
				}
			}
			st.Outbox = append(st.Outbox, se)
		}
	}
	st.Rooms = strs(arr[2])
	for _, r := range strs(arr[3]) {
		p := chat.NewPayload(chat.Envelope{Type: chat.TypePresence, Room: r, User: st.User, Event: "join"})
		_ = b.Publish(ctx, "room:"+r, p.Bytes())
	}
	return st, nil
}

// Keep refreshes the TTL of stored sessions this node holds.
func (b *Broker) Keep(ctx context.Context, sids []string) error {
	ctx, cancel := b.op(ctx)
	defer cancel()
	const batch = 500
	for len(sids) > 0 {
		n := min(batch, len(sids))
		keys := make([]string, 0, 4*n)
		for _, sid := range sids[:n] {
			keys = append(keys, b.sessionKeys(sid)...)
		}
		if err := keepScript.Run(ctx, b.rdb, keys, b.opt.SessionTTL.Milliseconds(), b.opt.Node).Err(); err != nil {
			return b.wrap(err)
		}
		sids = sids[n:]
	}
	return nil
}

// DropSession deletes a stored session this node holds.
func (b *Broker) DropSession(ctx context.Context, sid string) error {
	ctx, cancel := b.op(ctx)
	defer cancel()
	return b.wrap(dropScript.Run(ctx, b.rdb, b.sessionKeys(sid), b.opt.Node).Err())
}
