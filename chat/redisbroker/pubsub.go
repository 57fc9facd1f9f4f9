package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wirelab/wirelab/chat"
)

// This file is the pub/sub with positions (chat.PubSub and chat.TopicLog): publishing with
// the next position of a topic, the pub/sub reader and the dispatcher that delivers in
// position order, filling holes from the topic streams, and Exclusive and Sync.

var (
	_ chat.PubSub   = (*Broker)(nil)
	_ chat.TopicLog = (*Broker)(nil)
)

// subscription is the reader's note that a channel subscription took effect (again).
type subscription struct{ channel string }

// reader receives pub/sub messages and hands them to the dispatcher. go-redis reconnects and
// subscribes again after a lost connection; the confirmations make the dispatcher catch up.
func (b *Broker) reader() {
	defer b.wg.Done()
	ctx := context.Background()
	wait := 50 * time.Millisecond
	for {
		select {
		case <-b.stop:
			return
		default:
		}
		m, err := b.ps.ReceiveTimeout(ctx, time.Second)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			select {
			case <-b.stop:
				return
			default:
			}
			if !b.down.Swap(true) {
				b.reconnects.Add(1)
				b.log.Error("redis pub/sub connection lost; reconnecting (missed messages are filled from the topic streams)", "err", b.wrap(err))
			}
			t := time.NewTimer(wait)
			select {
			case <-b.stop:
				t.Stop()
				return
			case <-t.C:
			}
			if wait < time.Second {
				wait *= 2
			}
			continue
		}
		wait = 50 * time.Millisecond
		if b.down.Swap(false) {
			b.log.Info("redis reachable again")
		}
		var v any
		switch m := m.(type) {
		case *redis.Message:
			v = m
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			v = subscription{m.Channel}
		default:
			continue
		}
		select {
		case b.in <- v:
		case <-b.stop:
			return
		}
	}
}

// dispatcher delivers topic messages in position order and runs Exclusive functions between
// them.
func (b *Broker) dispatcher() {
	defer b.wg.Done()
	nodeCh := b.k("n:", b.opt.Node)
	topicPrefix := b.k("p:")
	for {
		select {
		case <-b.stop:
			return
		case f := <-b.excl:
			f.err = f.fn()
			close(f.done)
		case v := <-b.in:
			switch v := v.(type) {
			case subscription:
				if strings.HasPrefix(v.channel, topicPrefix) {
					b.catchUp(v.channel[len(topicPrefix):], 0)
				}
			case *redis.Message:
				switch {
				case v.Channel == nodeCh:
					b.nodeMessage(v.Payload)
				case strings.HasPrefix(v.Channel, topicPrefix):
					pos, data, err := parseTopicMessage(v.Payload)
					if err != nil {
						b.log.Warn("bad topic message", "channel", v.Channel, "err", err)
						continue
					}
					b.handle(v.Channel[len(topicPrefix):], pos, data)
				}
			}
		}
	}
}

// handle delivers one pub/sub message, after filling any hole before it from the stream.
func (b *Broker) handle(topic string, pos uint64, data []byte) {
	b.mu.Lock()
	last, ok := b.pos[topic]
	b.mu.Unlock()
	if !ok || pos <= last {
		return // not subscribed (any more), or delivered already
	}
	if pos > last+1 {
		b.catchUp(topic, pos-1)
		b.mu.Lock()
		last, ok = b.pos[topic]
		b.mu.Unlock()
		if !ok || pos <= last {
			return
		}
	}
	b.set(topic, pos)
	b.delivered.Add(1)
	b.hooks.Deliver(topic, pos, data)
}

// set records pos as delivered for topic, if still subscribed.
func (b *Broker) set(topic string, pos uint64) {
	b.mu.Lock()
	if _, ok := b.pos[topic]; ok {
		b.pos[topic] = pos
	}
	b.mu.Unlock()
}

// catchUp delivers what topic carried after this node's position, up to `to` (0: up to the
// topic's last position), from the topic's stream. Runs on the dispatcher.
func (b *Broker) catchUp(topic string, to uint64) {
	b.mu.Lock()
	last, ok := b.pos[topic]
	b.mu.Unlock()
	if !ok {
		return
	}
	ctx, cancel := b.op(context.Background())
	defer cancel()
	if to == 0 {
		n, err := b.rdb.Get(ctx, b.k("tn:", topic)).Uint64()
		if err != nil && !errors.Is(err, redis.Nil) {
			b.log.Warn("catching up a topic failed; it is tried again with its next message", "topic", topic, "err", b.wrap(err))
			return
		}
		if n < last {
			b.resets.Add(1)
			b.log.Error("a topic's position went backwards: Redis lost its data (restarted without appendonly?); messages published before may be lost", "topic", topic, "had", last, "now", n)
			b.mu.Lock()
			if _, ok := b.pos[topic]; ok {
				b.pos[topic] = n
			}
			b.mu.Unlock()
			return
		}
		to = n
	}
	if to <= last {
		return
	}
	msgs, err := b.topicRange(ctx, topic, last+1, to)
	if err != nil {
		b.log.Warn("catching up a topic failed; it is tried again with its next message", "topic", topic, "err", err)
		return
	}
	next := last + 1
	for _, m := range msgs {
		p := m.Pos
		if p < next {
			continue
		}
		if p > next {
			b.lost.Add(p - next)
			b.log.Error("pub/sub missed messages that the topic stream no longer keeps", "topic", topic, "lost", p-next)
		}
		b.set(topic, p)
		b.delivered.Add(1)
		b.filled.Add(1)
		b.hooks.Deliver(topic, p, m.Data)
		next = p + 1
	}
	if next <= to {
		b.lost.Add(to - next + 1)
		b.log.Error("pub/sub missed messages that the topic stream no longer keeps", "topic", topic, "lost", to-next+1)
		b.set(topic, to)
	}
}

// parseTopicMessage parses a topic channel's "POS DATA".
func parseTopicMessage(p string) (uint64, []byte, error) {
	ps, data, ok := strings.Cut(p, " ")
	if !ok {
		return 0, nil, errors.New(`want "POS DATA"`)
	}
	pos, err := strconv.ParseUint(ps, 10, 64)
	if err != nil || pos == 0 {
		return 0, nil, fmt.Errorf("position %q is not a number from 1 on", ps)
	}
	return pos, []byte(data), nil
}

type exclusiveFn struct {
	fn   func() error
	err  error
	done chan struct{}
}

// Exclusive runs fn on the dispatcher, between two deliveries.
func (b *Broker) Exclusive(ctx context.Context, fn func() error) error {
	ctx, cancel := context.WithTimeout(ctx, 2*b.opt.OpTimeout)
	defer cancel()
	f := &exclusiveFn{fn: fn, done: make(chan struct{})}
	select {
	case b.excl <- f:
	case <-ctx.Done():
		return fmt.Errorf("this node is busy delivering (redis at %s slow or down?): %w", b.Addr(), ctx.Err())
	case <-b.stop:
		return chat.ErrClosed
	}
	<-f.done
	return f.err
}

// CatchUp returns topic's messages after position from, up to what this node has delivered.
func (b *Broker) CatchUp(ctx context.Context, topic string, from uint64) ([]chat.TopicMessage, uint64, error) {
	b.mu.Lock()
	to, ok := b.pos[topic]
	b.mu.Unlock()
	if !ok || to <= from {
		return nil, 0, nil
	}
	out, err := b.topicRange(ctx, topic, from+1, to)
	if err != nil {
		return nil, 0, err
	}
	return out, to - from - uint64(len(out)), nil
}

// topicRange reads the messages of topic's stream with positions from..to that it still keeps.
func (b *Broker) topicRange(ctx context.Context, topic string, from, to uint64) ([]chat.TopicMessage, error) {
	ctx, cancel := b.op(ctx)
	defer cancel()
	msgs, err := b.rdb.XRange(ctx, b.k("t:", topic), strconv.FormatUint(from, 10)+"-0", strconv.FormatUint(to, 10)+"-0").Result()
	if err != nil {
		return nil, b.wrap(err)
	}
	out := make([]chat.TopicMessage, 0, len(msgs))
	for _, m := range msgs {
		d, _ := m.Values["d"].(string)
		out = append(out, chat.TopicMessage{Pos: streamPos(m.ID), Data: []byte(d)})
	}
	return out, nil
}

// Sync returns once this node has delivered what topics carried before the call.
func (b *Broker) Sync(ctx context.Context, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	keys := make([]string, len(topics))
	for i, t := range topics {
		keys[i] = b.k("tn:", t)
	}
	octx, cancel := b.op(ctx)
	vals, err := b.rdb.MGet(octx, keys...).Result()
	cancel()
	if err != nil {
		return b.wrap(err)
	}
	return b.Exclusive(ctx, func() error {
		for i, t := range topics {
			s, _ := vals[i].(string)
			if n, err := strconv.ParseUint(s, 10, 64); err == nil && n > 0 {
				b.catchUp(t, n)
			}
		}
		return nil
	})
}

// Publish sends data to every node subscribed to topic.
func (b *Broker) Publish(ctx context.Context, topic string, data []byte) error {
	_, err := b.PublishOnce(ctx, "", "", "", data, topic)
	return err
}

// PublishOnce publishes data on topics unless session sid already published under cid.
func (b *Broker) PublishOnce(ctx context.Context, sid string, cid chat.CID, id string, data []byte, topics ...string) (string, error) {
	ctx, cancel := b.op(ctx)
	defer cancel()
	keys := make([]string, 0, 1+2*len(topics))
	c := string(cid)
	if sid == "" {
		c = ""
	}
	keys = append(keys, b.k("c:", sid))
	args := make([]any, 0, 5+len(topics))
	args = append(args, c, id, data, b.opt.TopicKeep, b.opt.SessionTTL.Milliseconds())
	for _, t := range topics {
		keys = append(keys, b.k("tn:", t), b.k("t:", t))
		args = append(args, b.k("p:", t))
	}
	prev, err := publishScript.Run(ctx, b.rdb, keys, args...).Text()
	if err != nil {
		return "", b.wrap(err)
	}
	if prev == "" {
		b.published.Add(1)
	}
	return prev, nil
}

// Subscribe starts delivering topic to this node: from its current position on, and whatever
// is published while the subscription takes effect is caught up when Redis confirms it.
func (b *Broker) Subscribe(ctx context.Context, topic string) error {
	b.mu.Lock()
	_, ok := b.pos[topic]
	b.mu.Unlock()
	if ok {
		return nil
	}
	ctx, cancel := b.op(ctx)
	defer cancel()
	n, err := b.rdb.Get(ctx, b.k("tn:", topic)).Uint64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return b.wrap(err)
	}
	b.mu.Lock()
	if _, ok := b.pos[topic]; !ok {
		b.pos[topic] = n
	}
	b.mu.Unlock()
	return b.wrap(b.ps.Subscribe(ctx, b.k("p:", topic)))
}

// Unsubscribe stops delivering topic to this node.
func (b *Broker) Unsubscribe(ctx context.Context, topic string) error {
	b.mu.Lock()
	delete(b.pos, topic)
	b.mu.Unlock()
	ctx, cancel := b.op(ctx)
	defer cancel()
	return b.wrap(b.ps.Unsubscribe(ctx, b.k("p:", topic)))
}

func (b *Broker) nodePos(topic string) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pos[topic]
}
