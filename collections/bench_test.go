package collections

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mosaik-go/mosaik/transport"
)

// benchKey is the i-th 16-byte key.
func benchKey(i int) string { return fmt.Sprintf("%016d", i) }

// benchValue is a 100-byte value.
func benchValue(i int) []byte {
	v := make([]byte, 100)
	copy(v, fmt.Sprint(i))
	return v
}

// bigMapMachine builds a machine holding n entries the way a caught-up
// replica gets them: by restoring a snapshot.
func bigMapMachine(tb testing.TB, n int) *mapMachine[string, []byte] {
	tb.Helper()
	var buf bytes.Buffer
	err := writeSnapshot(&buf, Version(n), n, func(sw *snapshotWriter) error {
		for i := range n {
			if err := writeField(sw, benchKey(i)); err != nil {
				return err
			}
			if err := writeField(sw, benchValue(i)); err != nil {
				return err
			}
			sw.records++
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	m := newMapMachine[string, []byte](1 << 16)
	if err := m.Restore(&buf); err != nil {
		tb.Fatal(err)
	}
	return m
}

// lookupKeys returns 65,536 keys drawn at random from the first n, for Gets.
func lookupKeys(n int) []string {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = benchKey(rng.IntN(n))
	}
	return keys
}

// heapAlloc is the live heap after a full collection.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMapGet is a reader's Get on a map of 1,000,000 entries.
func BenchmarkMapGet(b *testing.B) {
	const n = 1_000_000
	m := bigMapMachine(b, n)
	defer m.closeIndex()
	waitIndexed(b, m) // a settled replica has its hash index
	r := MapReader[string, []byte]{mapReads[string, []byte]{m: m}}
	keys := lookupKeys(n)
	runtime.GC() // collect the restore's garbage (and an earlier run's map) now, not while timing
	benchGets(b, keys, r.Get)
}

// benchGets times get over keys, every one of which must be present.
func benchGets[V any](b *testing.B, keys []string, get func(string) (V, bool)) {
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, ok := get(keys[i&(len(keys)-1)]); !ok {
			b.Fatal("missing key")
		}
		i++
	}
}

// BenchmarkMapGetParallel is Get from every CPU at once: reads share
// nothing but an atomic load.
func BenchmarkMapGetParallel(b *testing.B) {
	const n = 1_000_000
	m := bigMapMachine(b, n)
	defer m.closeIndex()
	waitIndexed(b, m) // a settled replica has its hash index
	r := MapReader[string, []byte]{mapReads[string, []byte]{m: m}}
	b.ReportAllocs()
	b.ResetTimer()
	var seed atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(seed.Add(1), 0))
		keys := make([]string, 1024)
		for i := range keys {
			keys[i] = benchKey(rng.IntN(n))
		}
		i := 0
		for pb.Next() {
			if _, ok := r.Get(keys[i&1023]); !ok {
				b.Fatal("missing key")
			}
			i++
		}
	})
}

// BenchmarkMapInsert inserts into a map replicated on three writers,
// through the leader's handle and through a follower's, one call at a time
// and from 64 goroutines at once, and reports inserts per second.
//
// Nodes of one process connect to the embedded server in process; the
// link=tcp cases connect through its loopback port instead, as nodes of
// different processes on one machine would.
func BenchmarkMapInsert(b *testing.B) {
	type bench struct {
		link   string // process or tcp
		via    string // leader or follower
		conc   int
		secret bool // sealed with a secret every node holds
	}
	cases := []bench{
		{"process", "leader", 1, false}, {"process", "leader", 64, false},
		{"process", "follower", 1, false}, {"process", "follower", 64, false},
		{"tcp", "leader", 1, false}, {"tcp", "leader", 64, false},
		{"process", "leader", 1, true}, {"process", "leader", 64, true},
		{"process", "follower", 1, true}, {"process", "follower", 64, true},
	}
	for _, bc := range cases {
		b.Run(fmt.Sprintf("replicas=3/link=%s/via=%s/concurrency=%d/secret=%v", bc.link, bc.via, bc.conc, bc.secret), func(b *testing.B) {
			tn := newTestNet(b)
			if bc.link == "tcp" {
				tn.opts = append(tn.opts, transport.WithNATSOptions(nats.InProcessServer(nil)))
			}
			if bc.secret {
				tn.opts = append(tn.opts, transport.WithSecret(transport.NewSecret()))
			}
			var nets []*transport.Network
			var ws []*MapWriter[string, []byte]
			for range 3 {
				n := tn.node()
				nets = append(nets, n)
				ws = append(ws, openMapW[string, []byte](b, n, "bench"))
			}
			online(b, ws[0], ws[1], ws[2])
			leader, _ := ws[0].Leader()
			w := ws[0]
			for i, n := range nets {
				if (n.ID() == leader) == (bc.via == "leader") {
					w = ws[i]
					break
				}
			}
			val := benchValue(0)
			var next atomic.Int64
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range bc.conc {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if _, err := w.Insert(ctx, benchKey(int(i)), val); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "inserts/s")
		})
	}
}

// BenchmarkMapHeap1M measures the heap a Map[string,[]byte] of 1,000,000
// entries (16-byte keys, 100-byte values) holds: restored from a snapshot
// (a reader that caught up), and applied command by command with the
// default watch history (a replica that followed every write). "empty" is
// the cost of a machine with nothing in it, with the default history.
func BenchmarkMapHeap1M(b *testing.B) {
	const n = 1_000_000
	b.Run("empty", func(b *testing.B) {
		const k = 16
		for range b.N {
			before := heapAlloc()
			ms := make([]*mapMachine[string, []byte], k)
			for i := range ms {
				ms[i] = newMapMachine[string, []byte](1 << 16)
			}
			after := heapAlloc()
			runtime.KeepAlive(ms)
			b.ReportMetric(float64(after-before)/k, "bytes/machine")
		}
	})
	b.Run("restored", func(b *testing.B) {
		for range b.N {
			before := heapAlloc()
			m := bigMapMachine(b, n)
			reportHeap(b, m, before)
			b.ReportMetric(float64(n*(16+100))/n, "payload-bytes/entry")
		}
	})
	b.Run("applied", func(b *testing.B) {
		for range b.N {
			before := heapAlloc()
			m := newMapMachine[string, []byte](1 << 16)
			for i := range n {
				v := benchValue(i)
				applied(m, mapCmd[string, []byte]{Op: mapInsert, Key: benchKey(i), Value: &v}, fakeCtx(i+1))
			}
			reportHeap(b, m, before)
		}
	})
}

// reportHeap reports the heap a map holds beyond before, first unread (no
// hash index), then read (with one), and closes it.
func reportHeap(b *testing.B, m *mapMachine[string, []byte], before uint64) {
	defer m.closeIndex()
	n := float64(m.load().m.Len())
	m.builds.Wait()
	unread := heapAlloc()
	waitIndexed(b, m)
	m.builds.Wait()
	read := heapAlloc()
	runtime.KeepAlive(m)
	b.ReportMetric(float64(unread-before)/n, "unread-bytes/entry")
	b.ReportMetric(float64(read-before)/n, "bytes/entry")
}

// BenchmarkMapRestore1M times restoring a 1,000,000-entry map from a
// snapshot in memory: the part of a catch-up after the transfer.
func BenchmarkMapRestore1M(b *testing.B) {
	const n = 1_000_000
	src := bigMapMachine(b, n)
	defer src.closeIndex()
	snap, err := src.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.Persist(&buf); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ResetTimer()
	for range b.N {
		m := newMapMachine[string, []byte](1 << 16)
		if err := m.Restore(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if m.load().m.Len() != n {
			b.Fatalf("restored %d entries", m.load().m.Len())
		}
		m.closeIndex()
		b.StartTimer()
	}
}

// BenchmarkMapCatchUp1M times a new reader catching up a map of 1,000,000
// entries over the network, from opening it to holding the writer's
// version, and reports keys per second.
func BenchmarkMapCatchUp1M(b *testing.B) {
	const n = 1_000_000
	tn := newTestNet(b)
	w := openMapW[string, []byte](b, tn.node(), "big", snapshotOpts()...)
	online(b, w)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	fillBench(b, ctx, w, n)
	b.Logf("writing %d entries took %v (%.0f inserts/s through Extend)", n, time.Since(start), n/time.Since(start).Seconds())
	v := w.Version()
	b.ResetTimer()
	var total time.Duration
	for i := range b.N {
		b.StopTimer()
		v = settleForCatchUp(b, ctx, w)
		b.StartTimer()
		start := time.Now()
		r, err := NewMapReader[string, []byte](tn.node(), "big", snapshotOpts()...)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.When().Reaches(ctx, v); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		total += took
		b.Logf("catch-up %d took %v", i, took)
		if r.Len() != n {
			b.Fatalf("reader %d holds %d entries", i, r.Len())
		}
		b.StopTimer()
		r.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N)*n/total.Seconds(), "keys/s")
	b.ReportMetric(total.Seconds()/float64(b.N), "s/catch-up")
}

// fillBench writes the n entries benchKey(i): benchValue(i) with Extend.
func fillBench(b *testing.B, ctx context.Context, w *MapWriter[string, []byte], n int) {
	if _, err := w.Extend(ctx, func(yield func(string, []byte) bool) {
		for i := range n {
			if !yield(benchKey(i), benchValue(i)) {
				return
			}
		}
	}); err != nil {
		b.Fatal(err)
	}
}

// settleForCatchUp brings the writer to rest before a reader is timed, and
// returns its version: its index built, the garbage of writing and of
// earlier readers collected, and a snapshot so recent that the reader's
// joining does not make another one due while it catches up (the tiny
// snapshotThreshold would, every few readers). To get there it rewrites
// an entry with its own value until the writer takes a snapshot.
func settleForCatchUp(b *testing.B, ctx context.Context, w *MapWriter[string, []byte]) Version {
	b.Helper()
	for st := w.g.Status(); st.LogSnapshot == 0 || st.LogApplied-st.LogSnapshot > snapshotThreshold-3; st = w.g.Status() {
		if st.LogApplied-st.LogSnapshot < snapshotThreshold {
			if _, err := w.Insert(ctx, benchKey(0), benchValue(0)); err != nil {
				b.Fatal(err)
			}
			continue
		}
		select { // a snapshot is due: wait for it
		case <-ctx.Done():
			b.Fatal("the writer takes no snapshot")
		case <-time.After(10 * time.Millisecond):
		}
	}
	w.m.builds.Wait()
	runtime.GC()
	return w.Version()
}

// bigPQMachine builds a queue of n entries (benchKey(i) at priority i,
// benchValue(i)) the way a caught-up replica gets them: by restoring a
// snapshot.
func bigPQMachine(tb testing.TB, n int) *pqMachine[uint64, string, []byte] {
	tb.Helper()
	var buf bytes.Buffer
	err := writeSnapshotAs(&buf, pqSnapshotMagic, Version(n), n, func(sw *snapshotWriter) error {
		for i := range n {
			for _, f := range []func() error{
				func() error { return writeField(sw, uint64(i)) },
				func() error { return writeField(sw, benchKey(i)) },
				func() error { return writeField(sw, benchValue(i)) },
			} {
				if err := f(); err != nil {
					return err
				}
			}
			sw.records++
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	m := newPQMachine[uint64, string, []byte](1<<16, 0)
	if err := m.Restore(&buf); err != nil {
		tb.Fatal(err)
	}
	return m
}

// BenchmarkPQGet is a reader's Get and Min on a queue of 1,000,000
// entries: Get through the key index (its hash index, as a settled
// replica has it), Min down the left edge of the ordered tree.
func BenchmarkPQGet(b *testing.B) {
	const n = 1_000_000
	m := bigPQMachine(b, n)
	defer m.closeIndex()
	waitIndexed(b, m.keys)
	r := PriorityQueueReader[uint64, string, []byte]{pqReads[uint64, string, []byte]{m: m}}
	keys := lookupKeys(n)
	runtime.GC()
	b.Run("Get", func(b *testing.B) {
		benchGets(b, keys, func(k string) ([]byte, bool) {
			v, _, ok := r.Get(k)
			return v, ok
		})
	})
	b.Run("Min", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if e, ok := r.Min(); !ok || e.Priority != 0 {
				b.Fatal("no min")
			}
		}
	})
}

// BenchmarkPQWrite is PriorityQueue.Insert and PopMin through the leader
// of three replicas in one process, one call at a time and from 64
// goroutines at once, next to Map.Insert and Set.Insert in the same
// setting (a Set's tree is still frozen after every batch, a Map's only
// when read), and reports writes per second. PopMin's queue is filled with
// enough entries first.
func BenchmarkPQWrite(b *testing.B) {
	for _, conc := range []int{1, 64} {
		for _, what := range []string{"pqueue.Insert", "pqueue.PopMin", "map.Insert", "set.Insert"} {
			b.Run(fmt.Sprintf("replicas=3/link=process/via=leader/concurrency=%d/%s", conc, what), func(b *testing.B) {
				tn := newTestNet(b)
				nets := []*transport.Network{tn.node(), tn.node(), tn.node()}
				var ws []waiter
				var leaderOf func() (transport.PeerID, bool)
				writes := make([]func(ctx context.Context, i int) error, 3)
				var fill func(ctx context.Context, n int) error
				for i, n := range nets {
					if what == "map.Insert" {
						w := openMapW[string, []byte](b, n, "bench")
						ws, leaderOf = append(ws, w), w.Leader
						writes[i] = func(ctx context.Context, i int) error {
							_, err := w.Insert(ctx, benchKey(i), benchValue(i))
							return err
						}
						continue
					}
					if what == "set.Insert" {
						w := openSetW[string](b, n, "bench")
						ws, leaderOf = append(ws, w), w.Leader
						writes[i] = func(ctx context.Context, i int) error {
							_, err := w.Insert(ctx, benchKey(i))
							return err
						}
						continue
					}
					w := openPQW[uint64, string, []byte](b, n, "bench")
					ws, leaderOf = append(ws, w), w.Leader
					writes[i] = func(ctx context.Context, i int) error {
						_, _, err := w.Insert(ctx, uint64(i*7919%1_000_003), benchKey(i), benchValue(i))
						return err
					}
					if what == "pqueue.PopMin" {
						writes[i] = func(ctx context.Context, i int) error {
							_, _, err := w.PopMin(ctx)
							return err
						}
						fill = func(ctx context.Context, n int) error {
							_, _, err := w.Extend(ctx, func(yield func(PQEntry[uint64, string, []byte]) bool) {
								for i := range n {
									if !yield(PQEntry[uint64, string, []byte]{Priority: uint64(i * 7919 % 1_000_003), Key: benchKey(i), Value: benchValue(i)}) {
										return
									}
								}
							})
							return err
						}
					}
				}
				online(b, ws...)
				write := atLeader(b, nets, leaderOf, writes)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				if fill != nil {
					if err := fill(ctx, b.N); err != nil {
						b.Fatal(err)
					}
				}
				var next atomic.Int64
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for range conc {
					wg.Go(func() {
						for {
							i := next.Add(1)
							if i > int64(b.N) {
								return
							}
							if err := write(ctx, int(i)); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
			})
		}
	}
}

// atLeader returns the write of the node, of nets, that leads now.
func atLeader(tb testing.TB, nets []*transport.Network, leaderOf func() (transport.PeerID, bool), writes []func(context.Context, int) error) func(context.Context, int) error {
	tb.Helper()
	leader, _ := leaderOf()
	for i, n := range nets {
		if n.ID() == leader {
			return writes[i]
		}
	}
	tb.Fatal("no leader among the writers")
	return nil
}
