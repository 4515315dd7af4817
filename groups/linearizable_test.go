package groups

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// registers is a machine of a few integer registers.
type registers struct {
	mu sync.Mutex
	r  map[int]int
}

type regPut struct{ K, V int }

func (m *registers) Signature() string { return "test.registers.v1" }
func (m *registers) Apply(c regPut, _ rsm.ApplyContext) {
	m.mu.Lock()
	m.r[c.K] = c.V
	m.mu.Unlock()
}
func (m *registers) Query(k int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.r[k]
}

type regInput struct {
	put  bool
	k, v int
}

var registerModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[int][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(regInput).k
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return 0 },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.put {
			return true, in.v
		}
		return output.(int) == state.(int), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.put {
			return fmt.Sprintf("put(%d, %d)", in.k, in.v)
		}
		return fmt.Sprintf("get(%d) -> %v", in.k, output)
	},
}

// registerOp runs one random operation of client (its i-th) on g, a write
// (if writes) or a strong read of one of keys registers, and returns it for
// the history. A write that fails may take effect later: it stays open. A
// read that fails tells nothing: ok is false.
func registerOp(ctx context.Context, g *Group[regPut, int, int], rng *rand.Rand, client, i, keys int, writes bool, timeout time.Duration, now func() int64) (op porcupine.Operation, ok bool) {
	k := rng.IntN(keys)
	op = porcupine.Operation{ClientId: client, Call: now()}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if writes && rng.IntN(2) == 0 {
		v := client*1_000_000 + i + 1
		op.Input = regInput{put: true, k: k, v: v}
		_, err := g.Execute(ctx, regPut{K: k, V: v})
		op.Return = now()
		if err != nil {
			op.Return = math.MaxInt64 // it may take effect at any time later
		}
		return op, true
	}
	op.Input = regInput{k: k}
	r, err := g.Query(ctx, k, Strong)
	op.Return = now()
	if err != nil {
		return op, false
	}
	op.Output = r.Value
	return op, true
}

// TestLinearizableUnderFaults records a concurrent history of writes and
// strong reads from every member while the leader is cut off, the group
// partitioned, and then the leader crashes (its network closes under it,
// while followers answer their writes at their own apply; see
// selfcommit.go), and checks it with porcupine.
func TestLinearizableUnderFaults(t *testing.T) {
	c := newCluster(t)
	type member struct {
		nd *node
		g  *Group[regPut, int, int]
	}
	var ms []member
	for range 3 {
		f := transport.NewFaults()
		n, err := transport.New(context.Background(), transport.WithURL(c.url), transport.WithFaults(f))
		if err != nil {
			t.Fatal(err)
		}
		g, err := Join(n, c.key, &registers{r: map[int]int{}}, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		nd := &node{net: n, faults: f}
		t.Cleanup(func() { g.Close(); n.Close() })
		ms = append(ms, member{nd, g})
	}
	for _, m := range ms {
		if err := m.g.When().Online(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var mu sync.Mutex
	var history []porcupine.Operation
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var crashed atomic.Pointer[Group[regPut, int, int]] // its clients end with it
	for client := range 6 {
		m := ms[client%3]
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(client), 1))
			for i := 0; ctx.Err() == nil && crashed.Load() != m.g; i++ {
				op, ok := registerOp(ctx, m.g, rng, client, i, 3, true, time.Second, now)
				if !ok {
					continue
				}
				mu.Lock()
				history = append(history, op)
				mu.Unlock()
			}
		}()
	}
	leaderOf := func() member {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			for _, m := range ms {
				if m.g != crashed.Load() && m.g.IsLeader() {
					return m
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatal("no leader in 30 s")
		return member{}
	}
	pause := func(d time.Duration) { time.Sleep(d) } // let the clients run
	pause(500 * time.Millisecond)
	l := leaderOf()
	l.nd.faults.Isolate()
	pause(1500 * time.Millisecond)
	l.nd.faults.Heal()
	pause(500 * time.Millisecond)
	l = leaderOf()
	var other member
	for _, m := range ms {
		if m.g != l.g {
			other = m
			break
		}
	}
	l.nd.faults.Partition(other.nd.net.ID())
	other.nd.faults.Partition(l.nd.net.ID())
	pause(1500 * time.Millisecond)
	l.nd.faults.Heal()
	other.nd.faults.Heal()
	pause(500 * time.Millisecond)
	// The leader crashes: its connection closes with writes in flight.
	// The two left are still a majority of three, and each commits by
	// itself (with the new leader, a majority).
	l = leaderOf()
	crashed.Store(l.g)
	if err := l.nd.net.Close(); err != nil {
		t.Fatal(err)
	}
	pause(500 * time.Millisecond)
	leaderOf()
	pause(1000 * time.Millisecond)
	stop()
	wg.Wait()

	checkRegisters(t, history)
}

// checkRegisters fails t unless history, of at least 100 operations, is
// linearizable.
func checkRegisters(t *testing.T, history []porcupine.Operation) {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(registerModel, history, 60*time.Second)
	t.Logf("%d operations, result %s", len(history), res)
	if res == porcupine.Unknown {
		t.Fatal("porcupine ran out of time: the history proves nothing")
	}
	if res == porcupine.Illegal {
		path := t.TempDir() + "/history.html"
		if err := porcupine.VisualizePath(registerModel, info, path); err == nil {
			t.Logf("visualization: %s", path)
		}
		t.Fatal("history is not linearizable")
	}
	if len(history) < 100 {
		t.Fatalf("only %d operations recorded", len(history))
	}
}
