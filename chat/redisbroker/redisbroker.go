// Package redisbroker is the chat core's Broker for several server nodes: room and user fan-out
// over Redis pub/sub, the registry of who is where in Redis, and every session's outbox in
// Redis, so that any node can answer any request of any session (no sticky sessions).
//
// Every message published on a topic gets the next position of that topic (a Redis counter)
// and is kept in a Redis stream besides being published; a node that misses a pub/sub message
// (pub/sub is at most once: a reconnect, a Redis restart) sees the hole in the positions and
// fills it from the stream. Whatever the stream no longer keeps is counted (Stats.Lost) and
// logged, never silent. With Redis persistence (appendonly), a Redis restart loses nothing.
//
// Registry entries (a user's sessions, a room's members) belong to the node that holds the
// session; each node keeps a heartbeat key alive, and when it stops (the node crashed) any
// other node reaps its entries: its sessions leave presence within Options.NodeTTL. The stored
// sessions themselves stay until their TTL, so their clients can resume on another node.
package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wirelab/wirelab/chat"
)

// Options configure a Broker.
type Options struct {
	// URL is the Redis server, redis://HOST:PORT/DB (required).
	URL string
	// Node names this node; it must be unique among the nodes (required).
	Node string
	// Prefix is prepended to every Redis key and channel (default "wl:").
	Prefix string
	// NodeTTL: a node that has not renewed its heartbeat for this long is dead and its
	// registry entries are reaped (default 10 s; the heartbeat is renewed every third of it).
	NodeTTL time.Duration
	// SessionTTL is how long a stored session outlives the last refresh by its node (default
	// 75 s: the hub's 60 s session TTL and a margin).
	SessionTTL time.Duration
	// Outbox is about how many entries a stored outbox keeps (default 1024).
	Outbox int
	// TopicKeep is about how many messages a topic's stream keeps for nodes that missed them
	// (default 10,000).
	TopicKeep int
	// OpTimeout bounds every Redis operation (default 2 s).
	OpTimeout time.Duration
	// Logger receives warnings (default slog.Default()).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = "wl:"
	}
	if o.NodeTTL <= 0 {
		o.NodeTTL = 10 * time.Second
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 75 * time.Second
	}
	if o.Outbox <= 0 {
		o.Outbox = 1024
	}
	if o.TopicKeep <= 0 {
		o.TopicKeep = 10000
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Stats count what the broker did.
type Stats struct {
	Published  uint64 // messages this node published
	Delivered  uint64 // topic messages handed to the hub
	Filled     uint64 // of those, taken from a topic stream because pub/sub missed them
	Lost       uint64 // topic messages missed by pub/sub and no longer in the stream
	Reconnects uint64 // pub/sub connections lost and made again
	Resets     uint64 // topics whose positions went backwards: Redis lost its data
	Reaped     uint64 // dead nodes whose registry entries this node removed
}

// Broker is a chat.SharedStore on Redis.
type Broker struct {
	opt Options
	rdb *redis.Client
	ps  *redis.PubSub
	log *slog.Logger

	hooks chat.SharedHooks

	fwdMu   sync.Mutex
	fwd     map[string]chan forwardAnswer // forwarded commands waiting for their answer
	fwdSeq  atomic.Uint64
	fwdStop context.Context // cancelled by Close: forwarded commands running here stop
	fwdEnd  context.CancelFunc

	mu  sync.Mutex
	pos map[string]uint64 // topic -> last position delivered here (subscribed topics only)

	in   chan any          // from the pub/sub reader to the dispatcher
	excl chan *exclusiveFn // functions to run on the dispatcher

	stop    chan struct{}
	wg      sync.WaitGroup
	closing sync.Once
	down    atomic.Bool

	published, delivered, filled, lost, reconnects, resets, reaped atomic.Uint64
}

type exclusiveFn struct {
	fn   func() error
	err  error
	done chan struct{}
}

var _ chat.SharedStore = (*Broker)(nil)

// quiet replaces go-redis's own logger, which prints every failed dial: the broker reports a
// Redis that went away once, in its own words.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quiet{}) }

// New connects a broker to Redis. A Redis that is not reachable yet is not an error: the broker
// logs it, retries, and meanwhile every operation fails with an error that says so.
func New(opt Options) (*Broker, error) {
	opt = opt.withDefaults()
	if opt.URL == "" {
		return nil, errors.New("redisbroker: no Redis URL; give one like redis://127.0.0.1:6379/0")
	}
	if opt.Node == "" || strings.ContainsAny(opt.Node, " \t\r\n") {
		return nil, fmt.Errorf("redisbroker: node name %q is empty or has spaces; give each node a unique name like node1", opt.Node)
	}
	ro, err := redis.ParseURL(opt.URL)
	if err != nil {
		return nil, fmt.Errorf("redisbroker: bad Redis URL %q (want redis://HOST:PORT/DB): %w", opt.URL, err)
	}
	ro.DialTimeout = time.Second
	ro.ReadTimeout = opt.OpTimeout
	ro.WriteTimeout = opt.OpTimeout
	ro.MaxRetries = 1
	ro.ClientName = "wirelab-" + opt.Node
	b := &Broker{
		opt:  opt,
		rdb:  redis.NewClient(ro),
		log:  opt.Logger.With("redis", ro.Addr, "node", opt.Node),
		pos:  map[string]uint64{},
		in:   make(chan any, 4096),
		excl: make(chan *exclusiveFn),
		stop: make(chan struct{}),
		fwd:  map[string]chan forwardAnswer{},
	}
	b.fwdStop, b.fwdEnd = context.WithCancel(context.Background())
	return b, nil
}

// Addr is the Redis server's address.
func (b *Broker) Addr() string { return b.rdb.Options().Addr }

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	return Stats{
		Published: b.published.Load(), Delivered: b.delivered.Load(), Filled: b.filled.Load(),
		Lost: b.lost.Load(), Reconnects: b.reconnects.Load(), Resets: b.resets.Load(), Reaped: b.reaped.Load(),
	}
}

func (b *Broker) k(parts ...string) string {
	return b.opt.Prefix + strings.Join(parts, "")
}

func (b *Broker) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.opt.OpTimeout)
}

// wrap makes a Redis error say which Redis it was and what to do.
func (b *Broker) wrap(err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("redis at %s is unreachable (%v); is redis-server running?", b.Addr(), err)
	}
	return fmt.Errorf("redis at %s: %w", b.Addr(), err)
}

// Start is not used: the hub calls StartShared.
func (b *Broker) Start(deliver func(topic string, data []byte)) error {
	return b.StartShared(chat.SharedHooks{Deliver: func(topic string, _ uint64, data []byte) { deliver(topic, data) }})
}

// StartShared starts the pub/sub reader, the dispatcher and the heartbeat.
func (b *Broker) StartShared(hooks chat.SharedHooks) error {
	if hooks.Released == nil {
		hooks.Released = func(string) {}
	}
	if hooks.Command == nil {
		hooks.Command = func(context.Context, string, string, chat.Envelope) (chat.Envelope, error) {
			return chat.Envelope{}, chat.ErrNotHeld
		}
	}
	b.hooks = hooks
	ctx, cancel := b.op(context.Background())
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		b.down.Store(true)
		b.log.Error("redis is not reachable; the node retries and answers errors until it is", "err", b.wrap(err))
	}
	cancel()
	b.ps = b.rdb.Subscribe(context.Background(), b.k("n:", b.opt.Node))
	b.wg.Add(3)
	go b.reader()
	go b.dispatcher()
	go b.heartbeat()
	return nil
}

// Close stops the broker's goroutines and closes its connections. The node's heartbeat key is
// deleted, so other nodes reap its registry entries at once.
func (b *Broker) Close() error {
	b.closing.Do(func() {
		close(b.stop)
		b.fwdEnd()
		if b.ps != nil {
			_ = b.ps.Close()
		}
		b.wg.Wait()
		ctx, cancel := b.op(context.Background())
		_ = b.rdb.Del(ctx, b.k("node:", b.opt.Node)).Err()
		cancel()
		_ = b.rdb.Close()
	})
	return nil
}

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

func streamPos(id string) uint64 {
	if i := strings.IndexByte(id, '-'); i >= 0 {
		id = id[:i]
	}
	p, _ := strconv.ParseUint(id, 10, 64)
	return p
}

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

func strs(v any) []string {
	a, _ := v.([]any)
	out := make([]string, 0, len(a))
	for _, x := range a {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
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
