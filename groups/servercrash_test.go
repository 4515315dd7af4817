package groups

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/internal/natstest"
	"github.com/mosaik-go/mosaik/transport"
)

// crashCluster is three members, member i connected over TCP to server i
// of a cluster of three NATS servers, failing over to the others, as
// members of separate processes on a cluster of nats-server processes.
type crashCluster struct {
	*cluster
	nats    *natstest.Cluster
	dialers []*natstest.Dialer
}

func newCrashCluster(t *testing.T, cfg *Config) *crashCluster {
	t.Helper()
	nc, err := natstest.Start(3)
	if err != nil {
		t.Fatal(err)
	}
	cc := &crashCluster{cluster: &cluster{t: t, key: NewKey()}, nats: nc}
	t.Cleanup(func() {
		for _, nd := range cc.nodes {
			nd.close()
		}
		nc.Shutdown()
	})
	for i := range 3 {
		d := &natstest.Dialer{}
		f := transport.NewFaults()
		n, err := transport.New(ctxT(t, 20*time.Second), transport.WithURL(nc.URLs(i)...),
			transport.WithNATSOptions(d.Options()...), transport.WithFaults(f))
		if err != nil {
			t.Fatal(err)
		}
		nd := &node{net: n, faults: f, sm: &counter{}}
		c := *cfg
		if nd.g, err = Join(n, cc.key, nd.sm, &c); err != nil {
			n.Close()
			t.Fatal(err)
		}
		cc.nodes = append(cc.nodes, nd)
		cc.dialers = append(cc.dialers, d)
	}
	online(t, cc.nodes...)
	return cc
}

func (cc *crashCluster) index(nd *node) int {
	for i, x := range cc.nodes {
		if x == nd {
			return i
		}
	}
	cc.t.Fatal("not a member")
	return -1
}

// crashConfig has the default timings; only BootstrapDelay is short, as it
// plays no part once the group formed.
func crashConfig() *Config {
	return &Config{BootstrapDelay: 300 * time.Millisecond, Logger: testLogger()}
}

// TestServerCrashResendsForward: a member's server dies while a write it
// forwarded waits for the leader's answer, and the answer is lost with it.
// The member reconnects to another server and sends the write again at
// once, instead of after ForwardTimeout. (The leader's sends are delayed
// and the member's reconnect is slow, so the answer surely comes while the
// member has no server: without that the loss happens only by chance.)
func TestServerCrashResendsForward(t *testing.T) {
	cfg := crashConfig()
	cc := newCrashCluster(t, cfg)
	leader := cc.leader()
	var f *node
	for _, nd := range cc.nodes {
		if nd != leader {
			f = nd
			break
		}
	}
	if _, err := f.g.Execute(ctxT(t, 10*time.Second), counterCmd{Add: 1}); err != nil {
		t.Fatal(err)
	}
	last := leader.g.raft.Load().LastIndex()
	leader.faults.Delay(100 * time.Millisecond)
	cc.dialers[cc.index(f)].SetSlow(600 * time.Millisecond)

	type result struct {
		took time.Duration
		err  error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		_, err := f.g.Execute(context.Background(), counterCmd{Add: 2})
		done <- result{time.Since(start), err}
	}()
	// The forward reached the leader: its log grew.
	waitFor(t, 10*time.Second, "the forward at the leader", func() bool { return leader.g.raft.Load().LastIndex() > last })
	cc.nats.Crash(cc.index(f))

	var r result
	select {
	case r = <-done:
	case <-time.After(3 * defaultForwardTimeout):
		t.Fatal("the write never completed")
	}
	cc.dialers[cc.index(f)].SetSlow(0)
	leader.faults.Heal()
	if r.err != nil {
		t.Fatalf("write: %v", r.err)
	}
	if r.took > defaultForwardTimeout/2 {
		t.Fatalf("the write took %v after its member's server crashed; want well under ForwardTimeout (%v)", r.took, defaultForwardTimeout)
	}
	t.Logf("the write took %v across the crash", r.took)
	converge(t, cc.nodes...)
	sameHistory(t, cc.nodes...)
}

const defaultForwardTimeout = 5 * time.Second

// TestLeaderServerCrashShortStall: the leader's server dies with pipelined
// AppendEntries and heartbeats in flight, and their answers are lost. The
// leader reconnects to another server and goes on at once: writes stall
// about as long as the reconnect, not an RPC timeout, and the leader keeps
// its place. (Followers answer late and the leader's reconnect is slow, so
// answers surely come while it has no server.)
func TestLeaderServerCrashShortStall(t *testing.T) {
	cfg := crashConfig()
	// Longer timings than the default keep the leader's lease clear of a
	// busy machine; the RPC timeout (4 s) is what a lost answer costs.
	cfg.HeartbeatInterval, cfg.ElectionTimeout = 200*time.Millisecond, 2*time.Second
	cc := newCrashCluster(t, cfg)
	leader := cc.leader()
	for _, nd := range cc.nodes {
		if nd != leader {
			nd.faults.Delay(50 * time.Millisecond)
		}
	}
	cc.dialers[cc.index(leader)].SetSlow(200 * time.Millisecond)

	var mu sync.Mutex
	var worst time.Duration
	var writes int
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			start := time.Now()
			_, err := leader.g.Execute(ctx, counterCmd{Add: 1})
			took := time.Since(start)
			mu.Lock()
			if err == nil {
				writes++
			}
			worst = max(worst, took)
			mu.Unlock()
		}
	}()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return writes
	}
	waitFor(t, 10*time.Second, "writes before the crash", func() bool { return count() > 20 })
	mu.Lock()
	worst = 0
	mu.Unlock()
	at := count()
	cc.nats.Crash(cc.index(leader))
	waitFor(t, 30*time.Second, "writes after the crash", func() bool { return count() > at+20 })
	stop()
	wg.Wait()
	cc.dialers[cc.index(leader)].SetSlow(0)
	for _, nd := range cc.nodes {
		nd.faults.Heal()
	}
	if worst > 2*time.Second {
		t.Fatalf("a write stalled %v after the leader's server crashed; want about the reconnect (200ms), far below the RPC timeout (4s)", worst)
	}
	if !leader.g.IsLeader() {
		t.Fatal("the leader lost its place")
	}
	t.Logf("worst write across the crash: %v", worst)
}
