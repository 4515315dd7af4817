package collections_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/storage"
	"github.com/mosaik-go/mosaik/transport"
)

// fast shortens the group timings so that the examples come online in a
// fraction of a second; the defaults (a 3 s bootstrap delay, a 1 s election
// timeout) suit real networks. Every handle of a collection must use the
// same HeartbeatInterval and ElectionTimeout: they are part of its identity.
func fast(cfg *groups.Config) collections.Option {
	if cfg == nil {
		cfg = &groups.Config{}
	}
	cfg.BootstrapDelay = 100 * time.Millisecond
	cfg.HeartbeatInterval = 20 * time.Millisecond
	return collections.WithGroupConfig(cfg)
}

// A writer and a reader of one map, each on its own node. The first node
// starts an embedded NATS server; the second connects to it, as a node in
// another process would with the server's URL.
func ExampleNewMapWriter() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	n1, err := transport.New(ctx) // embedded NATS server on a free loopback port
	if err != nil {
		panic(err)
	}
	defer n1.Close()
	n2, err := transport.New(ctx, transport.WithURL(n1.URL()))
	if err != nil {
		panic(err)
	}
	defer n2.Close()

	// Real services seal their collections with a secret they load
	// (transport.ParseSecret); both sides must hold the same one.
	secret := transport.NewSecret()
	w, err := collections.NewMapWriter[string, float64](n1, "prices", fast(nil), collections.WithSecret(secret))
	if err != nil {
		panic(err)
	}
	defer w.Close()
	r, err := collections.NewMapReader[string, float64](n2, "prices", fast(nil), collections.WithSecret(secret))
	if err != nil {
		panic(err)
	}
	defer r.Close()

	// Online: a leader is known and the handle has caught up with it.
	if err := w.When().Online(ctx); err != nil {
		panic(err)
	}
	if _, err := w.Insert(ctx, "ETH", 3812.5); err != nil {
		panic(err)
	}
	v, err := w.Insert(ctx, "BTC", 97000)
	if err != nil {
		panic(err)
	}
	// The writer reads its own writes at once. The reader replicates them:
	// wait until it has applied the version the last write committed at.
	if err := r.When().Reaches(ctx, v); err != nil {
		panic(err)
	}
	eth, ok := r.Get("ETH")
	fmt.Println("ETH:", eth, ok)
	for k, p := range r.All() { // key order, the same on every replica
		fmt.Println(k, p)
	}
	// Output:
	// ETH: 3812.5 true
	// BTC 97000
	// ETH 3812.5
}

// Watch yields every change, in version order, all changes of one write in
// one event. WithInitial starts with the current state.
func ExampleMapWriter_Watch() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	net, err := transport.New(ctx)
	if err != nil {
		panic(err)
	}
	defer net.Close()
	m, err := collections.NewMapWriter[string, int](net, "stock", fast(nil))
	if err != nil {
		panic(err)
	}
	defer m.Close()
	if err := m.When().Online(ctx); err != nil {
		panic(err)
	}
	if _, err := m.Insert(ctx, "apples", 3); err != nil {
		panic(err)
	}

	writes := make(chan struct{})
	for ev, err := range m.Watch(ctx, collections.WithInitial()) {
		if err != nil {
			panic(err)
		}
		fmt.Print(ev.Kind)
		for _, c := range ev.Changes {
			fmt.Print(" ", c.Op, " ", c.Key)
			if c.Op == collections.OpInsert {
				fmt.Print("=", c.Value)
			}
		}
		fmt.Println()
		if ev.Kind == collections.CaughtUp {
			// The watcher holds the state; write while it follows.
			go func() {
				defer close(writes)
				m.Insert(ctx, "pears", 5)
				m.Remove(ctx, "apples")
				m.Remove(ctx, "plums") // changes nothing: no event
				m.Insert(ctx, "done", 1)
			}()
		} else if ev.Changes[0].Key == "done" {
			break // ends the watch
		}
	}
	<-writes
	// Output:
	// initial insert apples=3
	// caught-up
	// changed insert pears=5
	// changed remove apples
	// changed insert done=1
}

// A Vec is a replicated list: pushes and pops at both ends, access by index.
func ExampleNewVecWriter() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	net, err := transport.New(ctx)
	if err != nil {
		panic(err)
	}
	defer net.Close()
	q, err := collections.NewVecWriter[string](net, "jobs", fast(nil))
	if err != nil {
		panic(err)
	}
	defer q.Close()
	if err := q.When().Online(ctx); err != nil {
		panic(err)
	}
	for _, job := range []string{"build", "test", "deploy"} {
		if _, err := q.PushBack(ctx, job); err != nil {
			panic(err)
		}
	}
	// A pop returns the value it removed: exactly one caller gets each.
	job, _, err := q.PopFront(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("took", job)
	for i, j := range q.All() {
		fmt.Println(i, j)
	}
	if _, _, err := q.PopFront(ctx); err != nil {
		panic(err)
	}
	if _, _, err := q.PopFront(ctx); err != nil {
		panic(err)
	}
	_, _, err = q.PopFront(ctx)
	fmt.Println(err)
	// Output:
	// took build
	// 0 test
	// 1 deploy
	// collections: empty
}

// A Set holds each element once.
func ExampleNewSetWriter() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	net, err := transport.New(ctx)
	if err != nil {
		panic(err)
	}
	defer net.Close()
	s, err := collections.NewSetWriter[string](net, "banned", fast(nil))
	if err != nil {
		panic(err)
	}
	defer s.Close()
	if err := s.When().Online(ctx); err != nil {
		panic(err)
	}
	if _, err := s.Extend(ctx, slices.Values([]string{"mallory", "eve", "mallory"})); err != nil {
		panic(err)
	}
	fmt.Println(s.Len(), s.Contains("eve"), s.Contains("alice"))
	for x := range s.All() {
		fmt.Println(x)
	}
	// Output:
	// 2 true false
	// eve
	// mallory
}

// With a data directory a node keeps its identity and its collections across
// restarts. Here one node writes, stops, and starts again from the directory.
func Example_durable() {
	dir, err := os.MkdirTemp("", "mosaik-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	// run is one life of the node: open the directory, join, do, close.
	run := func(do func(ctx context.Context, m *collections.MapWriter[string, string])) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := storage.Open(dir, nil) // nil: defaults, fsync on every commit
		if err != nil {
			panic(err)
		}
		defer db.Close()                                    // after the network and the map: defers run in reverse
		id, err := transport.IdentityFromSeed(db.NodeKey()) // the node's key, kept in dir
		if err != nil {
			panic(err)
		}
		net, err := transport.New(ctx, transport.WithIdentity(id))
		if err != nil {
			panic(err)
		}
		defer net.Close()
		m, err := collections.NewMapWriter[string, string](net, "config", fast(nil), collections.WithStorage(db))
		if err != nil {
			panic(err)
		}
		defer m.Close()
		if err := m.When().Online(ctx); err != nil {
			panic(err)
		}
		do(ctx, m)
	}

	run(func(ctx context.Context, m *collections.MapWriter[string, string]) {
		if _, err := m.Insert(ctx, "mode", "blue"); err != nil {
			panic(err)
		}
		fmt.Println("first run wrote mode=blue")
	})
	run(func(ctx context.Context, m *collections.MapWriter[string, string]) {
		mode, _ := m.Get("mode") // online: it holds what it held, and has caught up
		fmt.Println("second run reads mode=" + mode)
	})
	// Output:
	// first run wrote mode=blue
	// second run reads mode=blue
}

// A space of maps, one per tenant, in one Raft group: opening a tenant's
// map costs no group join, and a node holds every tenant's map whether or
// not it opened it.
func ExampleNewMapSpace() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n1, err := transport.New(ctx)
	if err != nil {
		panic(err)
	}
	defer n1.Close()
	n2, err := transport.New(ctx, transport.WithURL(n1.URL()))
	if err != nil {
		panic(err)
	}
	defer n2.Close()

	tenants, err := collections.NewMapSpace[string, int](n1, "tenants", fast(nil))
	if err != nil {
		panic(err)
	}
	defer tenants.Close()
	follower, err := collections.NewMapSpaceReader[string, int](n2, "tenants", fast(nil))
	if err != nil {
		panic(err)
	}
	defer follower.Close()
	if err := tenants.When().Online(ctx); err != nil {
		panic(err)
	}
	for _, name := range []string{"acme", "globex"} {
		m, err := tenants.Writer(name)
		if err != nil {
			panic(err)
		}
		if _, err := m.Insert(ctx, "seats", len(name)); err != nil {
			panic(err)
		}
	}
	if err := follower.When().Reaches(ctx, tenants.Version()); err != nil {
		panic(err)
	}
	acme, err := follower.Reader("acme")
	if err != nil {
		panic(err)
	}
	seats, _ := acme.Get("seats")
	fmt.Println(follower.Maps(), seats)
	// Output: [acme globex] 4
}

// A Cell holding one shared value, and a Once deciding a value for good.
func ExampleNewCellWriter() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := transport.New(ctx)
	if err != nil {
		panic(err)
	}
	defer n.Close()

	mode, err := collections.NewCellWriter[string](n, "mode", fast(nil))
	if err != nil {
		panic(err)
	}
	defer mode.Close()
	if err := mode.When().Online(ctx); err != nil {
		panic(err)
	}
	if _, err := mode.Set(ctx, "blue"); err != nil {
		panic(err)
	}
	green, old := "green", "red"
	_, applied, err := mode.CompareExchange(ctx, &old, &green) // only if it still holds "red"
	if err != nil {
		panic(err)
	}
	v, _ := mode.Get()
	fmt.Println(v, applied)

	genesis, err := collections.NewOnceWriter[string](n, "genesis", fast(nil))
	if err != nil {
		panic(err)
	}
	defer genesis.Close()
	if err := genesis.When().Online(ctx); err != nil {
		panic(err)
	}
	_, first, err := genesis.Set(ctx, "block-0")
	if err != nil {
		panic(err)
	}
	_, second, err := genesis.Set(ctx, "block-1") // too late: block-0 was decided
	if err != nil {
		panic(err)
	}
	g, err := genesis.Wait(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(g, first, second)
	// Output:
	// blue false
	// block-0 true false
}

// A work queue: producers insert jobs by priority (here, a deadline),
// and workers on any node take the most urgent with PopMin, each job
// once. A bounded queue would drop the least urgent jobs when full.
func ExampleNewPriorityQueueWriter() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := transport.New(ctx)
	if err != nil {
		panic(err)
	}
	defer n.Close()

	jobs, err := collections.NewPriorityQueueWriter[int, string, string](n, "jobs", fast(nil))
	if err != nil {
		panic(err)
	}
	defer jobs.Close()
	if err := jobs.When().Online(ctx); err != nil {
		panic(err)
	}
	for _, j := range []collections.PQEntry[int, string, string]{
		{Priority: 30, Key: "report", Value: "monthly report"},
		{Priority: 10, Key: "invoice-7", Value: "send invoice 7"},
		{Priority: 20, Key: "backup", Value: "nightly backup"},
	} {
		if _, _, err := jobs.Insert(ctx, j.Priority, j.Key, j.Value); err != nil {
			panic(err)
		}
	}
	if _, _, err := jobs.UpdatePriority(ctx, "report", 5); err != nil { // now urgent
		panic(err)
	}
	for {
		job, _, err := jobs.PopMin(ctx)
		if errors.Is(err, collections.ErrEmpty) {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Println(job.Priority, job.Key, job.Value)
	}
	// Output:
	// 5 report monthly report
	// 10 invoice-7 send invoice 7
	// 20 backup nightly backup
}
