package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wirelab/wirelab/chat"
)

// This file is the broker itself: its options and counters, connecting, starting and
// closing. The rest is by concern: pubsub.go, sessions.go, registry.go, liveness.go and
// forward.go (see doc.go).

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

var _ chat.SharedStore = (*Broker)(nil)

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

func streamPos(id string) uint64 {
	if i := strings.IndexByte(id, '-'); i >= 0 {
		id = id[:i]
	}
	p, _ := strconv.ParseUint(id, 10, 64)
	return p
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

// QuietLogger replaces go-redis's own logger, which prints every failed dial, with one that
// prints nothing: the broker reports a Redis that went away once, in its own words. go-redis
// has one logger for the whole process, so this is the command's choice, not the package's:
// call it once from main before the first New (cmd/lab does).
func QuietLogger() { redis.SetLogger(quiet{}) }

// quiet is a go-redis logger that prints nothing.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
