package groups

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/transport"
)

// TestQuickReadUnderFaults aims at the window a read index without a
// heartbeat round opens: a leader cut off with one follower, which keeps
// asking it for read indexes, while the other side may elect a leader of
// its own and commit. With four voters or fewer the other side cannot (the
// pair is in each of its majorities) and the reads stay quick; with five it
// can, and the leader must confirm its leadership first. Writes go to the
// other side meanwhile; porcupine checks the history.
func TestQuickReadUnderFaults(t *testing.T) {
	for _, n := range []int{3, 4, 5} {
		t.Run(string(rune('0'+n))+" voters", func(t *testing.T) { quickReadUnderFaults(t, n) })
	}
}

func quickReadUnderFaults(t *testing.T, nvoters int) {
	c := newCluster(t)
	type member struct {
		nd *node
		g  *Group[regPut, int, int]
	}
	var ms []member
	for i := range nvoters {
		f := transport.NewFaults()
		n, err := transport.New(context.Background(), transport.WithURL(c.url), transport.WithFaults(f))
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig()
		// The first member, the leader when the group is cut, keeps leading
		// for a long lease (a reluctant member's timeouts are longer) while
		// the others elect one of their own at once; none hands leadership
		// over (a reluctant leader hands it to normal members only).
		cfg.Preference = Reluctant(1)
		if i == 0 {
			cfg.Preference = Reluctant(8)
		}
		g, err := Join(n, c.key, &registers{r: map[int]int{}}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close(); n.Close() })
		ms = append(ms, member{&node{net: n, faults: f}, g})
	}
	waitFor(t, 30*time.Second, "every member a voter", func() bool {
		for _, m := range ms {
			if m.g.IsLeader() {
				v, _ := voters(m.g.Members())
				return v == len(ms)
			}
		}
		return false
	})
	for _, m := range ms {
		if err := m.g.When().Online(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	// lead makes the first member leader again.
	lead := func() {
		first := ms[0]
		id := raft.ServerID(first.nd.net.ID().String())
		waitFor(t, 30*time.Second, "the first member leading", func() bool {
			if first.g.IsLeader() {
				return true
			}
			for _, m := range ms {
				if m.g.IsLeader() {
					_ = m.g.raft.Load().LeadershipTransferToServer(id, raft.ServerAddress(id)).Error()
				}
			}
			time.Sleep(50 * time.Millisecond)
			return first.g.IsLeader()
		})
	}

	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var mu sync.Mutex
	var history []porcupine.Operation
	record := func(op porcupine.Operation) {
		mu.Lock()
		history = append(history, op)
		mu.Unlock()
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	// Two clients per member. Only the members cut off from the leader
	// write: a write on the leader's side, appended but never committed,
	// would hold a read there until it fails, and hide a stale answer.
	for client := range 2 * len(ms) {
		m := ms[client%len(ms)]
		writes := client < len(ms) && client >= 2
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(client), 7))
			for i := 0; ctx.Err() == nil; i++ {
				op, ok := registerOp(ctx, m.g, rng, client, i, 2, writes, 300*time.Millisecond, now)
				if !ok {
					continue
				}
				record(op)
				time.Sleep(2 * time.Millisecond) // keep the history small enough to check
			}
		}()
	}
	var quickBefore uint64
	for _, m := range ms {
		quickBefore += m.g.quickReads.Load()
	}
	pause := func(d time.Duration) { time.Sleep(d) } // let the clients run
	cut := func(left, right []member) {
		for _, a := range left {
			for _, b := range right {
				a.nd.faults.Partition(b.nd.net.ID())
				b.nd.faults.Partition(a.nd.net.ID())
			}
		}
	}
	heal := func() {
		for _, m := range ms {
			m.nd.faults.Heal()
		}
	}
	pause(300 * time.Millisecond)
	for range 3 {
		// The leader and one follower on one side, the rest on the other.
		lead()
		cut(ms[:2], ms[2:])
		pause(2 * time.Second)
		heal()
		pause(300 * time.Millisecond)
	}
	stop()
	wg.Wait()
	var quick uint64
	for _, m := range ms {
		quick += m.g.quickReads.Load()
	}
	quick -= quickBefore
	t.Logf("%d voters: %d quick read indexes", nvoters, quick)
	if nvoters <= 4 && quick == 0 {
		t.Error("no read index was quick")
	}
	if nvoters > 4 && quick != 0 {
		t.Errorf("%d read indexes were quick with %d voters", quick, nvoters)
	}

	checkRegisters(t, history)
}
