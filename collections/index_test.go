package collections

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitIndexed reads the machine, so that it wants a hash index, and waits
// until its current state has one.
func waitIndexed[K comparable, V any](t testing.TB, m *mapMachine[K, V]) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var zero K
	for m.get(zero); m.load().idx == nil; m.get(zero) {
		if time.Now().After(deadline) {
			t.Fatal("the map was not indexed")
		}
		time.Sleep(time.Millisecond)
	}
}

// The indexed Get agrees with the sorted tree and with a plain model through
// random inserts, removes, compare-exchanges and clears, across background
// rebuilds, while readers read concurrently. Seeded; the seed is printed
// on failure.
func TestMapIndexAgreesWithModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			m := newMapMachine[string, int](64)
			defer m.closeIndex()
			model := map[string]int{}
			keys := 3 * indexMinEntries
			key := func() string { return fmt.Sprintf("k%06d", rng.IntN(keys)) }

			// Readers check that whatever state they load answers like its tree.
			var stop atomic.Bool
			var wg sync.WaitGroup
			var bad atomic.Value
			for r := range 1 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rr := rand.New(rand.NewPCG(seed, uint64(r)))
					for i := 0; !stop.Load(); i++ {
						if i%64 == 0 {
							runtime.Gosched() // share the CPUs with Apply
						}
						st := m.load()
						if st.idx == nil {
							time.Sleep(time.Millisecond)
							continue
						}
						k := fmt.Sprintf("k%06d", rr.IntN(keys))
						v1, ok1 := st.idx.get(k, m.ix.hasher)
						v2, ok2 := st.m.Get(k)
						if v1 != v2 || ok1 != ok2 {
							bad.Store(fmt.Sprintf("state %d: %s index=(%d,%v) tree=(%d,%v)", st.v, k, v1, ok1, v2, ok2))
						}
					}
				}()
			}
			idx := 0
			// Commands apply in batches of random length, as Raft hands them.
			apply := func(c mapCmd[string, int]) reply {
				idx++
				r := m.ApplyReply(c, fakeCtx(idx)).(reply)
				if rng.IntN(16) == 0 {
					m.Publish()
				}
				return r
			}
			fill := func(n int) {
				for range n {
					k, v := key(), rng.IntN(1000)
					apply(mapCmd[string, int]{Op: mapInsert, Key: k, Value: &v})
					model[k] = v
				}
			}
			fill(2 * indexMinEntries)
			m.Publish()
			waitIndexed(t, m)
			for step := range 60_000 {
				k := key()
				switch op := rng.IntN(100); {
				case step == 20_000:
					apply(mapCmd[string, int]{Op: mapClear})
					clear(model)
					fill(2 * indexMinEntries)
				case op < 60:
					v := rng.IntN(1000)
					apply(mapCmd[string, int]{Op: mapInsert, Key: k, Value: &v})
					model[k] = v
				case op < 90:
					apply(mapCmd[string, int]{Op: mapRemove, Key: k})
					delete(model, k)
				default:
					cur, present := model[k]
					v := rng.IntN(1000)
					var exp *int
					if present && rng.IntN(2) == 0 {
						exp = &cur
					}
					r := apply(mapCmd[string, int]{Op: mapCAS, Key: k, Expected: exp, Value: &v})
					if want := (exp == nil && !present) || (exp != nil && present); r.Applied != want {
						t.Fatalf("seed %d step %d: CAS applied=%v, want %v", seed, step, r.Applied, want)
					}
					if r.Applied {
						model[k] = v
					}
				}
				if step%5000 == 0 {
					time.Sleep(time.Millisecond) // let a build finish now and then
				}
				if step%97 == 0 {
					m.Publish()
					for range 20 {
						k := key()
						v1, ok1 := m.get(k)
						v2, ok2 := model[k]
						if v1 != v2 || ok1 != ok2 {
							t.Fatalf("seed %d step %d: Get(%s) = (%d,%v), model (%d,%v)", seed, step, k, v1, ok1, v2, ok2)
						}
					}
				}
			}
			m.Publish()
			waitIndexed(t, m)
			stop.Store(true)
			wg.Wait()
			if b := bad.Load(); b != nil {
				t.Fatalf("seed %d: %s", seed, b)
			}
			for i := range keys {
				k := fmt.Sprintf("k%06d", i)
				v1, ok1 := m.get(k)
				v2, ok2 := model[k]
				if v1 != v2 || ok1 != ok2 {
					t.Fatalf("seed %d at the end: Get(%s) = (%d,%v), model (%d,%v)", seed, k, v1, ok1, v2, ok2)
				}
			}
		})
	}
}

// A restored map gets its index in the background; keys of kinds whose ==
// disagrees with the order (floats) are never indexed.
func TestMapIndexAfterRestoreAndKinds(t *testing.T) {
	m := bigMapMachine(t, 2*indexMinEntries)
	defer m.closeIndex()
	waitIndexed(t, m)
	for i := range 2 * indexMinEntries {
		if v, ok := m.get(benchKey(i)); !ok || string(v[:len(fmt.Sprint(i))]) != fmt.Sprint(i) {
			t.Fatalf("key %d: %q %v", i, v, ok)
		}
	}
	if _, ok := m.get("absent"); ok {
		t.Fatal("an absent key is found")
	}
	f := newMapMachine[float64, int](8)
	defer f.closeIndex()
	if f.ix.on {
		t.Fatal("float keys are indexed")
	}
}

// A map that is only written keeps no index: none is built as it grows,
// one is built in the background once a Get asks (with no write to carry
// the build), and one nobody reads since it was built is dropped when a
// rebuild falls due, until a Get asks again.
func TestMapIndexOnlyWhenRead(t *testing.T) {
	m := newMapMachine[string, int](64)
	defer m.closeIndex()
	write := newKeysWriter(m)
	write(4 * indexMinEntries)
	m.builds.Wait()
	if m.load().idx != nil || m.ix.base != nil {
		t.Fatal("an index was built for a map nobody read")
	}
	waitIndexed(t, m) // a Get asks; the waker builds it
	if v, ok := m.get("k0000007"); !ok || v != 7 {
		t.Fatalf("Get through the index: %d %v", v, ok)
	}
	// Enough writes, with no Get, for a rebuild to fall due: the index goes.
	m.ix.read.Store(false)
	write(2 * indexMinEntries)
	m.builds.Wait()
	m.mu.Lock()
	dropped := m.ix.base == nil
	m.mu.Unlock()
	if !dropped || m.load().idx != nil {
		t.Fatal("an index nobody read was rebuilt")
	}
	waitIndexed(t, m)
	for _, i := range []int{1, indexMinEntries, 6 * indexMinEntries} {
		if v, ok := m.get(fmt.Sprintf("k%07d", i)); !ok || v != i {
			t.Fatalf("key %d after the rebuild: %d %v", i, v, ok)
		}
	}
}

// A Get that loaded a state with an index, and records its read only after
// the index was dropped and a state without one was published, leaves read
// set with no wake-up: every later Get sees read set and never asks, and a
// quiet map is never indexed again.
func TestMapIndexReadNotedLate(t *testing.T) {
	m := newMapMachine[string, int](64)
	defer m.closeIndex()
	write := newKeysWriter(m)
	write(4 * indexMinEntries)
	waitIndexed(t, m)
	m.ix.read.Store(false)
	// A Get loads a state with the index ...
	st := m.load()
	if st.idx == nil {
		t.Fatal("setup: the state has no index")
	}
	// ... writes go on until the index is dropped ...
	for {
		write(64)
		m.mu.Lock()
		dropped := m.ix.base == nil && !m.ix.building
		m.mu.Unlock()
		if dropped {
			break
		}
	}
	// ... one more batch is published, without an index ...
	write(1)
	if m.load().idx != nil {
		t.Fatal("setup: expected a state without an index")
	}
	// ... and the Get goes on as get does with st.
	if st.idx != nil && !m.ix.read.Load() {
		m.noteRead()
	}
	// The map is now quiet and read.
	deadline := time.Now().Add(5 * time.Second)
	for m.get("k0000001"); m.load().idx == nil; m.get("k0000001") {
		if time.Now().After(deadline) {
			t.Fatal("a quiet, read map was never indexed")
		}
		time.Sleep(time.Millisecond)
	}
}

// newKeysWriter returns a function that applies n inserts of new keys
// k0000001, k0000002, … (each with its number as value) to m, publishing
// every 64 and at the end.
func newKeysWriter(m *mapMachine[string, int]) func(n int) {
	idx := 0
	return func(n int) {
		for range n {
			idx++
			v := idx
			m.ApplyReply(mapCmd[string, int]{Op: mapInsert, Key: fmt.Sprintf("k%07d", idx), Value: &v}, fakeCtx(idx))
			if idx%64 == 0 {
				m.Publish()
			}
		}
		m.Publish()
	}
}
