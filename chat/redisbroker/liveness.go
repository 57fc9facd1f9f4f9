package redisbroker

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wirelab/wirelab/chat"
)

// This file is the nodes' liveness: each node keeps a heartbeat key alive, and reaps the
// registry entries of nodes whose heartbeat expired.

// heartbeat keeps this node's heartbeat key alive and reaps dead nodes.
func (b *Broker) heartbeat() {
	defer b.wg.Done()
	t := time.NewTicker(b.opt.NodeTTL / 3)
	defer t.Stop()
	b.beat()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.beat()
			b.reap()
		}
	}
}

func (b *Broker) beat() {
	ctx, cancel := b.op(context.Background())
	defer cancel()
	_, err := b.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, b.k("node:", b.opt.Node), time.Now().UnixMilli(), b.opt.NodeTTL)
		p.SAdd(ctx, b.k("nodes"), b.opt.Node)
		return nil
	})
	if err != nil {
		b.log.Warn("node heartbeat failed", "err", b.wrap(err))
	}
}

// reap removes the registry entries of nodes whose heartbeat expired and publishes the leave
// events of their users.
func (b *Broker) reap() {
	ctx, cancel := b.op(context.Background())
	defer cancel()
	nodes, err := b.rdb.SMembers(ctx, b.k("nodes")).Result()
	if err != nil {
		return
	}
	for _, n := range nodes {
		if n == b.opt.Node {
			continue
		}
		alive, err := b.rdb.Exists(ctx, b.k("node:", n)).Result()
		if err != nil || alive == 1 {
			continue
		}
		res, err := reapScript.Run(ctx, b.rdb, []string{b.k("node:", n), b.k("nx:", n), b.k("nodes")}, n, b.opt.Prefix).StringSlice()
		if err != nil {
			b.log.Warn("reaping a dead node failed", "dead", n, "err", b.wrap(err))
			continue
		}
		b.reaped.Add(1)
		b.log.Warn("node stopped renewing its heartbeat: its sessions left presence (they can resume on another node)", "dead", n, "room_leaves", len(res)/2)
		for i := 0; i+1 < len(res); i += 2 {
			p := chat.NewPayload(chat.Envelope{Type: chat.TypePresence, Room: res[i], User: res[i+1], Event: "leave"})
			_ = b.Publish(ctx, "room:"+res[i], p.Bytes())
		}
	}
}
