package redisbroker

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/wirelab/wirelab/chat"
)

// This file is the presence registry (chat.Presence): a user's sessions and a room's members
// on every node, and JoinRoom, a join that also queues the member list in the stored outbox.

var _ chat.Presence = (*Broker)(nil)

// AddSession records that session sid of user lives on this node.
func (b *Broker) AddSession(ctx context.Context, user, sid string) error {
	ctx, cancel := b.op(ctx)
	defer cancel()
	keys := []string{b.k("u:", user), b.k("nx:", b.opt.Node), b.k("s:", sid)}
	return b.wrap(addSessionScript.Run(ctx, b.rdb, keys, user, sid, b.opt.Node, b.nodePos("user:"+user)).Err())
}

// RemoveSession removes session sid of user from the registry, if this node owns it.
func (b *Broker) RemoveSession(ctx context.Context, user, sid string) error {
	ctx, cancel := b.op(ctx)
	defer cancel()
	return b.wrap(removeSessionScript.Run(ctx, b.rdb, []string{b.k("u:", user), b.k("nx:", b.opt.Node)}, user, sid, b.opt.Node).Err())
}

// UserSessions counts user's sessions on every node.
func (b *Broker) UserSessions(ctx context.Context, user string) (int, error) {
	ctx, cancel := b.op(ctx)
	defer cancel()
	n, err := b.rdb.HLen(ctx, b.k("u:", user)).Result()
	return int(n), b.wrap(err)
}

func (b *Broker) roomKeys(room, sid string) []string {
	return []string{b.k("r:", room), b.k("ru:", room), b.k("sr:", sid), b.k("nx:", b.opt.Node), b.k("s:", sid)}
}

// RoomJoin records that session sid of user is in room.
func (b *Broker) RoomJoin(ctx context.Context, room, user, sid string) (bool, error) {
	r, err := b.JoinRoom(ctx, room, user, sid, -1)
	return r.First, err
}

// JoinRoom records that session sid of user is in room and queues the member list.
func (b *Broker) JoinRoom(ctx context.Context, room, user, sid string, limit int) (chat.JoinResult, error) {
	ctx, cancel := b.op(ctx)
	defer cancel()
	keys := append(b.roomKeys(room, sid), b.k("o:", sid))
	v, err := roomJoinScript.Run(ctx, b.rdb, keys, room, user, sid, b.opt.Node, b.nodePos("room:"+room),
		b.opt.SessionTTL.Milliseconds(), limit, time.Now().UnixNano(), b.opt.Outbox).Slice()
	if err != nil {
		return chat.JoinResult{}, b.wrap(err)
	}
	if len(v) != 3 {
		return chat.JoinResult{}, fmt.Errorf("redis at %s: unexpected join answer %v", b.Addr(), v)
	}
	first, _ := v[0].(int64)
	seq, _ := v[1].(int64)
	data, _ := v[2].(string)
	r := chat.JoinResult{Held: first >= 0, First: first == 1}
	if seq > 0 {
		r.List = chat.Commit{SID: sid, Seq: uint64(seq), Data: []byte(data)}
	}
	return r, nil
}

// RoomLeave records that session sid of user left room.
func (b *Broker) RoomLeave(ctx context.Context, room, user, sid string) (bool, error) {
	ctx, cancel := b.op(ctx)
	defer cancel()
	r, err := roomLeaveScript.Run(ctx, b.rdb, b.roomKeys(room, sid), room, user, sid, b.opt.Node).Int()
	return r == 1, b.wrap(err)
}

// RoomUsers lists the users in room, on every node.
func (b *Broker) RoomUsers(ctx context.Context, room string) ([]string, error) {
	ctx, cancel := b.op(ctx)
	defer cancel()
	users, err := b.rdb.HKeys(ctx, b.k("ru:", room)).Result()
	if err != nil {
		return nil, b.wrap(err)
	}
	slices.Sort(users)
	return users, nil
}

// RoomCount counts the users in room, on every node.
func (b *Broker) RoomCount(ctx context.Context, room string) (int, error) {
	ctx, cancel := b.op(ctx)
	defer cancel()
	n, err := b.rdb.HLen(ctx, b.k("ru:", room)).Result()
	return int(n), b.wrap(err)
}
