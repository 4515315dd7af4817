package groups

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// counter is the seed's counter: commands add to a value; it also records
// every command in the order applied, to compare orders across members.
type counter struct {
	mu    sync.Mutex
	value int64
	log   []int64
	sig   string
	gate  chan struct{} // if set, each command adding gatedAdd takes one token from it first
}

// gatedAdd is the command a counter's gate holds back.
const gatedAdd = 1000

type counterCmd struct {
	Add int64
}

func (c *counter) Signature() string {
	if c.sig != "" {
		return c.sig
	}
	return "test.counter.v1"
}

func (c *counter) Apply(cmd counterCmd, _ rsm.ApplyContext) {
	c.mu.Lock()
	gate := c.gate
	c.mu.Unlock()
	if gate != nil && cmd.Add == gatedAdd {
		<-gate
	}
	c.mu.Lock()
	c.value += cmd.Add
	c.log = append(c.log, cmd.Add)
	c.mu.Unlock()
}

func (c *counter) Query(struct{}) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.value
}

func (c *counter) history() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

func testConfig() *Config {
	return &Config{
		HeartbeatInterval: 20 * time.Millisecond,
		ElectionTimeout:   400 * time.Millisecond, // Raft waits 200 to 400 ms
		BootstrapDelay:    300 * time.Millisecond,
		DeadMemberTimeout: 2 * time.Second,
		ForwardTimeout:    2 * time.Second,
		QueryTimeout:      2 * time.Second,
		Logger:            testLogger(),
	}
}

// testLogger is quiet unless MOSAIK_TEST_LOG is set, for debugging a test.
func testLogger() *slog.Logger {
	if os.Getenv("MOSAIK_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// node is one process-like member: its own network connection and faults.
type node struct {
	net    *transport.Network
	faults *transport.Faults
	sm     *counter
	g      *Group[counterCmd, struct{}, int64]
}

// cluster shares one embedded NATS server between its nodes.
type cluster struct {
	t     testing.TB
	key   Key
	url   string
	first *transport.Network
	nodes []*node
	opts  []transport.Option // for every member's network
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	c := &cluster{t: t, key: NewKey()}
	n, err := transport.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.first = n
	c.url = n.URL()
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			nd.close()
		}
		c.first.Close()
	})
	return c
}

func (c *cluster) add(cfg *Config) *node {
	c.t.Helper()
	nd, err := c.join(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	return nd
}

func (c *cluster) join(cfg *Config) (*node, error) { return c.joinWith(cfg, transport.NewFaults()) }

// joinWith joins a member whose network has faults f (set before it starts)
// and the extra options.
func (c *cluster) joinWith(cfg *Config, f *transport.Faults, opts ...transport.Option) (*node, error) {
	all := append([]transport.Option{transport.WithURL(c.url), transport.WithFaults(f)}, c.opts...)
	n, err := transport.New(context.Background(), append(all, opts...)...)
	if err != nil {
		return nil, err
	}
	nd := &node{net: n, faults: f, sm: &counter{}}
	if cfg == nil {
		cfg = testConfig()
	}
	nd.g, err = Join(n, c.key, nd.sm, cfg)
	if err != nil {
		n.Close()
		return nil, err
	}
	c.nodes = append(c.nodes, nd)
	return nd, nil
}

func (nd *node) close() {
	if nd.g != nil {
		nd.g.Close()
	}
	nd.net.Close()
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// leader waits until every live node agrees on one ready leader.
func (c *cluster) leader(nodes ...*node) *node {
	c.t.Helper()
	var found *node
	waitFor(c.t, 10*time.Second, "an agreed leader", func() bool {
		found = c.agreed(nodes...)
		return found != nil
	})
	return found
}

// agreed returns the ready leader every node (all, if none given) agrees
// on, or nil.
func (c *cluster) agreed(nodes ...*node) *node {
	if len(nodes) == 0 {
		nodes = c.nodes
	}
	var id transport.PeerID
	for _, nd := range nodes {
		l, ok := nd.g.Leader()
		if !ok || (!id.IsZero() && l != id) {
			return nil
		}
		id = l
	}
	for _, nd := range nodes {
		if nd.net.ID() == id && nd.g.IsLeader() {
			return nd
		}
	}
	return nil
}
