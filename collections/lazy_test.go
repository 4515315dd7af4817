package collections

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// A map nobody reads is not frozen after every batch, so a batch edits the
// nodes an earlier one copied in place; a read between batches freezes the
// tree, and the next batch copies what it touches again. Without the lazy
// freeze both loops below allocate alike.
func TestMapUnreadBatchesCopyLess(t *testing.T) {
	const keys, batch, rounds = 20_000, 64, 200
	m := newMapMachine[string, int](1)
	defer m.closeIndex()
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("k%07d", i)
	}
	idx := 0
	model := make([]int, keys)
	set := func(k, v int) {
		idx++
		m.ApplyReply(mapCmd[string, int]{Op: mapInsert, Key: names[k], Value: &v}, fakeCtx(idx))
		model[k] = v
	}
	write := func(rng *rand.Rand) {
		for range batch {
			set(rng.IntN(keys), idx)
		}
		m.Publish()
	}
	for i := range keys {
		set(i, i)
	}
	m.Publish()
	bytesOf := func(read bool) uint64 {
		rng := rand.New(rand.NewPCG(1, 2))
		// The first pass owns every leaf the keys touch; measure the next.
		for range rounds {
			write(rng)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range rounds {
			write(rng)
			if read {
				m.get(names[0])
			}
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	m.get(names[0]) // frozen: both measures start alike
	read := bytesOf(true)
	m.get(names[0])
	unread := bytesOf(false)
	t.Logf("%d batches of %d inserts: %d bytes read between batches, %d unread", rounds, batch, read, unread)
	if unread*3 > read {
		t.Fatalf("batches nobody read allocated %d bytes, batches read between allocated %d: want under a third", unread, read)
	}
	// The edits in place hold what was written.
	for i, want := range model {
		if got, ok := m.get(names[i]); !ok || got != want {
			t.Fatalf("%s after the batches: %d %v, want %d", names[i], got, ok, want)
		}
	}
}

// Readers racing with batches: a reader that saw version v (through
// version(), as a handle's Version does) then reads sees every write up to
// v, by Get, Len and a Range called after it; and a Range's loop sees one
// version whole.
func TestMapLazyFreezeReaders(t *testing.T) {
	m := newMapMachine[string, int](1)
	defer m.closeIndex()
	const total = 3000
	var wg sync.WaitGroup
	var failed atomic.Value
	fail := func(format string, args ...any) { failed.CompareAndSwap(nil, fmt.Sprintf(format, args...)) }
	done := make(chan struct{})
	var rounds atomic.Int64 // the readers' checks, so the writer waits for some
	for range 3 {
		wg.Go(func() {
			r := mapReads[string, int]{m: m}
			for {
				select {
				case <-done:
					return
				default:
				}
				v := int(m.version()) // every command inserts k<v> with value v
				if v == 0 {
					continue
				}
				if got, ok := m.get(fmt.Sprintf("k%07d", v)); !ok || got != v {
					fail("after version %d, Get of its key: %d %v", v, got, ok)
					return
				}
				if n := r.Len(); n < v {
					fail("after version %d, Len %d", v, n)
					return
				}
				seq := r.Range(AtLeast("k"))
				n, last := 0, ""
				for k := range seq {
					if k <= last {
						fail("Range out of order: %q after %q", k, last)
						return
					}
					n, last = n+1, k
				}
				// One version whole: its keys are k1 .. kn, nothing missing.
				if n < v || last != fmt.Sprintf("k%07d", n) {
					fail("Range after version %d: %d keys, the last %q", v, n, last)
					return
				}
				rounds.Add(1)
			}
		})
	}
	for i := 1; i <= total; i++ {
		v := i
		m.ApplyReply(mapCmd[string, int]{Op: mapInsert, Key: fmt.Sprintf("k%07d", i), Value: &v}, fakeCtx(i))
		if i%7 == 0 || i == total {
			m.Publish()
			// Let a reader check before the next batch, now and then.
			for seen := rounds.Load(); i%70 == 0 && rounds.Load() == seen && failed.Load() == nil; {
				runtime.Gosched()
			}
		}
	}
	close(done)
	wg.Wait()
	if f := failed.Load(); f != nil {
		t.Fatal(f)
	}
}
