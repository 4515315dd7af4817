package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/mosaik-go/mosaik/internal/loadgen"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/storage"
	"github.com/mosaik-go/mosaik/transport"
	"github.com/nats-io/nats.go"
)

// node is one mosaik node: its network, connected over TCP to its own
// server, and its durable store in fsync mode. It owns both; close ends them.
type node struct {
	net *transport.Network
	db  *storage.DB // nil in memory
}

// debugLog, when MOSAIK_KVBENCH_LOG names a file, receives every group's
// debug log (Raft's included), to see where the time goes.
var debugLog *slog.Logger

func (n *node) opts() []collections.Option {
	o := []collections.Option{collections.WithGroupConfig(&groups.Config{BootstrapDelay: 500 * time.Millisecond, Logger: debugLog})}
	if n.db != nil {
		o = append(o, collections.WithStorage(n.db))
	}
	return o
}

func (n *node) close() {
	n.net.Close()
	if n.db != nil {
		n.db.Close()
	}
}

// newNode connects a node to server i of c (failing over to the others),
// with a Pebble store in dir when durable (fsync on every commit, the
// default).
func newNode(ctx context.Context, c *cluster, i int, dir string, durable bool) (*node, error) {
	n := &node{}
	opts := []transport.Option{
		transport.WithURL(c.URLs(i)...),
		transport.WithNATSOptions(nats.DontRandomize()),
	}
	if durable {
		d := filepath.Join(dir, fmt.Sprintf("node%d", i))
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
		db, err := storage.Open(d, nil)
		if err != nil {
			return nil, err
		}
		id, err := transport.IdentityFromSeed(db.NodeKey())
		if err != nil {
			db.Close()
			return nil, err
		}
		n.db = db
		opts = append(opts, transport.WithIdentity(id))
	}
	net, err := transport.New(ctx, opts...)
	if err != nil {
		if n.db != nil {
			n.db.Close()
		}
		return nil, err
	}
	n.net = net
	return n, nil
}

// mosaikSys is a Map[string, []byte] opened by a writer on each of three
// nodes, and the map the join workload fills when it runs. It owns the
// nodes and handles.
type mosaikSys struct {
	nodes []*node
	maps  []*collections.MapWriter[string, []byte]
	joins []*collections.MapWriter[string, []byte] // nil without the join workload
}

func startMosaik(ctx context.Context, c *cluster, dir string, durable, join bool) (*mosaikSys, error) {
	s := &mosaikSys{}
	for i := range 3 {
		n, err := newNode(ctx, c, i, dir, durable)
		if err != nil {
			s.close()
			return nil, err
		}
		s.nodes = append(s.nodes, n)
	}
	var wg sync.WaitGroup
	var err, jerr error
	wg.Go(func() { s.maps, err = openAll(ctx, s.nodes, "bench") })
	if join {
		wg.Go(func() { s.joins, jerr = openAll(ctx, s.nodes, "join") })
	}
	wg.Wait()
	if err := errors.Join(err, jerr); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// openAll opens a writer of the map name on every node and waits until
// all are online.
func openAll(ctx context.Context, nodes []*node, name string) ([]*collections.MapWriter[string, []byte], error) {
	var ms []*collections.MapWriter[string, []byte]
	closeAll := func() {
		for _, m := range ms {
			m.Close()
		}
	}
	for _, n := range nodes {
		m, err := collections.NewMapWriter[string, []byte](n.net, name, n.opts()...)
		if err != nil {
			closeAll()
			return nil, err
		}
		ms = append(ms, m)
	}
	for _, m := range ms {
		if err := m.When().Online(ctx); err != nil {
			closeAll()
			return nil, err
		}
	}
	return ms, nil
}

// leader returns the index of the node every writer agrees leads.
func leaderOf(ctx context.Context, nodes []*node, ms []*collections.MapWriter[string, []byte]) (int, error) {
	for {
		for i, n := range nodes {
			if agreed(ms, n.net.ID()) {
				return i, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, errors.New("mosaik: no agreed leader")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func agreed(ms []*collections.MapWriter[string, []byte], id transport.PeerID) bool {
	for _, m := range ms {
		if l, ok := m.Leader(); !ok || l != id {
			return false
		}
	}
	return true
}

func (s *mosaikSys) close() {
	for _, m := range append(s.maps, s.joins...) {
		m.Close()
	}
	for _, n := range s.nodes {
		n.close()
	}
}

// costed measures f with m and adds to its stat the messages the nodes
// sent and the process's CPU time, per call of f.
func (s *mosaikSys) costed(f op, m func(op) stat) stat {
	var calls atomic.Int64
	counted := func(ctx context.Context, w, i int) (int, error) {
		calls.Add(1)
		return f(ctx, w, i)
	}
	msgs := func() (n uint64) {
		for _, nd := range s.nodes {
			n += nd.net.Stats().MsgsOut
		}
		return n
	}
	cpu := func() time.Duration {
		d, _ := loadgen.CPUTime()
		return d
	}
	m0, c0 := msgs(), cpu()
	st := m(counted)
	if n := calls.Load(); n > 0 {
		st.msgsPerOp = float64(msgs()-m0) / float64(n)
		st.cpuPerOpUs = float64((cpu() - c0).Microseconds()) / float64(n)
	}
	return st
}

// client returns the writer at the leader or at a follower, and the
// leader's index.
func (s *mosaikSys) client(ctx context.Context, atLeader bool) (*collections.MapWriter[string, []byte], int, error) {
	l, err := s.leader(ctx)
	if err != nil {
		return nil, 0, err
	}
	if atLeader {
		return s.maps[l], l, nil
	}
	return s.maps[(l+1)%3], l, nil
}

func (s *mosaikSys) leader(ctx context.Context) (int, error) { return leaderOf(ctx, s.nodes, s.maps) }

func (s *mosaikSys) put(m *collections.MapWriter[string, []byte], prefix string) op {
	val := value(0)
	return func(ctx context.Context, w, i int) (int, error) {
		_, err := m.Insert(ctx, fmt.Sprintf("%s-%d-%d", prefix, w, i), val)
		return 0, err
	}
}

// cas reads a hot key locally and compare-exchanges it with a new value,
// again until one applies.
func (s *mosaikSys) cas(ctx context.Context, m *collections.MapWriter[string, []byte]) (op, error) {
	for k := range hotKeys {
		if _, err := m.Insert(ctx, hotKey(k), value(0)); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context, w, i int) (int, error) {
		key := hotKey((w*7919 + i*31) % hotKeys)
		for retries := 0; ; retries++ {
			old, ok := m.Get(key)
			var expected *[]byte
			if ok {
				expected = &old
			}
			nv := value(uint64(w)<<32 | uint64(i))
			_, applied, err := m.CompareExchange(ctx, key, expected, &nv)
			if err != nil || applied {
				return retries, err
			}
		}
	}, nil
}

// get reads one of getKeys keys locally, with no barrier.
func (s *mosaikSys) get(ctx context.Context, m *collections.MapWriter[string, []byte]) (op, error) {
	if _, err := m.Extend(ctx, func(yield func(string, []byte) bool) {
		for k := range getKeys {
			if !yield(getKey(k), value(uint64(k))) {
				return
			}
		}
	}); err != nil {
		return nil, err
	}
	return func(ctx context.Context, w, i int) (int, error) {
		if _, ok := m.Get(getKey(i % getKeys)); !ok {
			return 0, errors.New("get: key missing")
		}
		return 0, nil
	}, nil
}

// read is a linearizable read: Sync, then a local Get.
func (s *mosaikSys) read(ctx context.Context, m *collections.MapWriter[string, []byte]) (op, error) {
	return s.readAfter(ctx, m, func(ctx context.Context) error {
		_, err := m.Sync(ctx)
		return err
	})
}

// readWrite is the linearizable read there was before Sync: a write that
// changes nothing (removing a missing key) goes through the log, so once
// it returns this replica holds everything committed before it; then a
// local Get.
func (s *mosaikSys) readWrite(ctx context.Context, m *collections.MapWriter[string, []byte]) (op, error) {
	return s.readAfter(ctx, m, func(ctx context.Context) error {
		_, err := m.Remove(ctx, "read-absent")
		return err
	})
}

func (s *mosaikSys) readAfter(ctx context.Context, m *collections.MapWriter[string, []byte], barrier func(context.Context) error) (op, error) {
	if _, err := m.Insert(ctx, "read-key", value(0)); err != nil {
		return nil, err
	}
	return func(ctx context.Context, w, i int) (int, error) {
		if err := barrier(ctx); err != nil {
			return 0, err
		}
		if _, ok := m.Get("read-key"); !ok {
			return 0, errors.New("read-key missing")
		}
		return 0, nil
	}, nil
}

// join writes n keys into the map join, then times a reader opened on
// a new node on server srv until it holds them all.
func (s *mosaikSys) join(ctx context.Context, c *cluster, srv int, dir string, durable bool, n int) (time.Duration, error) {
	ms := s.joins
	l, err := leaderOf(ctx, s.nodes, ms)
	if err != nil {
		return 0, err
	}
	const batch = 10_000
	for from := 0; from < n; from += batch {
		if _, err := ms[l].Extend(ctx, func(yield func(string, []byte) bool) {
			for i := from; i < min(n, from+batch); i++ {
				if !yield(fmt.Sprintf("%016d", i), value(uint64(i))) {
					return
				}
			}
		}); err != nil {
			return 0, fmt.Errorf("mosaik join: writing: %w", err)
		}
	}
	nn, err := newNode(ctx, c, srv, dir, durable)
	if err != nil {
		return 0, fmt.Errorf("mosaik join: the new node: %w", err)
	}
	defer nn.close()
	start := time.Now()
	if debugLog != nil {
		debugLog.Info("JOIN START", "reader", nn.net.ID().Short())
		defer func() { debugLog.Info("JOIN DONE", "took", time.Since(start)) }()
	}
	r, err := collections.NewMapReader[string, []byte](nn.net, "join", nn.opts()...)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	for r.Len() < n {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("mosaik join: the reader holds %d of %d keys", r.Len(), n)
		case <-time.After(time.Millisecond):
		}
	}
	return time.Since(start), nil
}

const hotKeys = 16

const getKeys = 1000

func getKey(k int) string { return fmt.Sprintf("get-%04d", k) }

func hotKey(k int) string { return fmt.Sprintf("hot-%02d", k) }

// value is 100 bytes, the first 8 of them x.
func value(x uint64) []byte {
	v := make([]byte, 100)
	for i := range 8 {
		v[i] = byte(x >> (8 * i))
	}
	for i := 8; i < len(v); i++ {
		v[i] = byte('a' + i%26)
	}
	return v
}
