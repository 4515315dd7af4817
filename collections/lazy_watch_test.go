package collections

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Watches started at any moment, with WithInitial or FromVersion the
// version of a state just read, while readers freeze the working tree
// after a Publish nobody read, or wait for the batch's end when a batch is
// applying: the initial state plus the changes after it rebuild the final
// map exactly, each change once, in version order, and no read sees a
// state from the middle of a batch.
func TestLazyWatchRebuildsState(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 5))
			m := newMapMachine[string, int](1 << 16)
			defer m.closeIndex()
			const total, keys = 4000, 50
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			var bad atomic.Value
			fail := func(f string, a ...any) { bad.CompareAndSwap(nil, fmt.Sprintf(f, a...)) }
			var last atomic.Uint64 // the final version, once known
			finals := make(chan map[string]int, 64)
			// The versions Publish ended batches at, and the reads that
			// saw a state between them: frozen in the middle of a batch.
			var published sync.Map
			var midBatch atomic.Int64

			// A watcher replays its start and the changes after it.
			watcher := func(initial bool) {
				defer wg.Done()
				got := map[string]int{}
				var opts []WatchOption
				var from Version
				if initial {
					opts = append(opts, WithInitial())
				} else {
					st := m.load()
					from = st.v
					for k, v := range st.m.All() {
						got[k] = v
					}
					opts = append(opts, FromVersion(from))
				}
				caught := !initial
				prev := from
				done := func() bool {
					if l := last.Load(); l != 0 && uint64(prev) >= l {
						finals <- got
						return true
					}
					return false
				}
				if caught && done() {
					return
				}
				for ev, err := range watch(ctx, nil, m.hist, m.version, m.state, opts) {
					if err != nil {
						fail("watch: %v", err)
						return
					}
					switch ev.Kind {
					case Initial:
						for _, c := range ev.Changes {
							got[c.Key] = c.Value
						}
						prev = ev.Version
						continue
					case CaughtUp:
						if caught, prev = true, ev.Version; done() {
							return
						}
						continue
					}
					if !caught || ev.Version <= prev {
						fail("event at %d after %d (caught up %v)", ev.Version, prev, caught)
						return
					}
					prev = ev.Version
					replayMap(got, []Event[MapChange[string, int]]{ev})
					if done() {
						return
					}
				}
			}
			// Readers freeze at random moments.
			stop := make(chan struct{})
			for r := range 2 {
				wg.Go(func() {
					rr := rand.New(rand.NewPCG(seed, uint64(r)))
					for {
						select {
						case <-stop:
							return
						default:
						}
						m.get(fmt.Sprint("k", rr.IntN(keys)))
						if v := m.load().v; v > 0 {
							if _, ok := published.Load(v); !ok {
								midBatch.Add(1)
							}
						}
						for range rr.IntN(2000) {
						}
					}
				})
			}
			watchers := 0
			for i := 1; i <= total; i++ {
				k := fmt.Sprint("k", rng.IntN(keys))
				if i == total {
					last.Store(uint64(i)) // before a reader can flush it
				}
				switch {
				case i == total || rng.IntN(3) > 0:
					v := i
					m.ApplyReply(mapCmd[string, int]{Op: mapInsert, Key: k, Value: &v}, fakeCtx(i))
				case rng.IntN(50) == 0:
					m.ApplyReply(mapCmd[string, int]{Op: mapClear}, fakeCtx(i))
				default:
					m.ApplyReply(mapCmd[string, int]{Op: mapRemove, Key: k}, fakeCtx(i))
				}
				if rng.IntN(8) == 0 || i == total {
					published.Store(Version(i), true)
					m.Publish()
				}
				if i%97 == 0 {
					watchers++
					wg.Add(1)
					go watcher(watchers%2 == 0)
				}
			}
			want := map[string]int{}
			for k, v := range m.load().m.All() {
				want[k] = v
			}
			for range watchers {
				select {
				case got := <-finals:
					if !maps.Equal(got, want) {
						fail("a watcher rebuilt %d entries, the map holds %d", len(got), len(want))
					}
				case <-ctx.Done():
					fail("a watcher did not reach the final version")
				}
				if bad.Load() != nil {
					break
				}
			}
			close(stop)
			cancel()
			wg.Wait()
			if b := bad.Load(); b != nil {
				t.Fatal(b)
			}
			if n := midBatch.Load(); n != 0 {
				t.Fatalf("%d reads saw a state frozen in the middle of a batch", n)
			}
			t.Logf("%d watchers", watchers)
		})
	}
}
