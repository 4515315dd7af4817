package collections

import (
	"hash/maphash"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/benbjohnson/immutable"
)

// A large Map also keeps a hash index, so that Get costs one hash lookup
// instead of a walk down the sorted tree. The index of a published state is
// a frozen Go map (the state at some earlier version) plus a small
// persistent map of the changes since, and a bit filter over the changed
// keys' hashes so most lookups skip the delta. When the delta grows, a
// background goroutine builds a new frozen map from a pinned state, and
// Apply swaps it in with the changes made meanwhile. The sorted tree stays
// the source of order, snapshots and iteration.

const (
	indexMinEntries = 1 << 14 // smaller maps are fast enough to search
	indexMinDelta   = 1 << 12
	indexDeltaShare = 32 // rebuild when the delta exceeds 1/32 of the base
)

// slot is a change in the delta: a value, or a removal.
type slot[V any] struct {
	v  V
	ok bool
}

// keyHasher hashes keys for the delta and the filter. Only keys of string
// and integer kinds are indexed: their == agrees with the tree's order
// (floats do not, for NaN).
type keyHasher[K comparable] struct {
	seed maphash.Seed
	str  bool
}

func indexable[K comparable]() bool {
	switch reflect.TypeFor[K]().Kind() {
	case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	}
	return false
}

func (h keyHasher[K]) sum(k K) uint64 {
	if h.str {
		return maphash.String(h.seed, as[K, string](k))
	}
	return maphash.Comparable(h.seed, k)
}

// Hash and Equal make keyHasher an immutable.Hasher.
func (h keyHasher[K]) Hash(k K) uint32   { return uint32(h.sum(k)) }
func (h keyHasher[K]) Equal(a, b K) bool { return a == b }

// bitFilter is a set of hash bits that only grows; readers of older states
// may see bits of later changes, which only sends them to the delta for
// nothing.
type bitFilter struct {
	mask  uint64
	words []atomic.Uint64
}

func newBitFilter(keys int) *bitFilter {
	bits := uint64(1 << 16)
	for bits < uint64(keys)*8 {
		bits <<= 1
	}
	return &bitFilter{mask: bits - 1, words: make([]atomic.Uint64, bits/64)}
}

func (f *bitFilter) add(h uint64) {
	i := (h >> 32) & f.mask
	f.words[i/64].Or(1 << (i % 64))
}

func (f *bitFilter) has(h uint64) bool {
	i := (h >> 32) & f.mask
	return f.words[i/64].Load()&(1<<(i%64)) != 0
}

// mapIndex is the hash index of one published state.
type mapIndex[K comparable, V any] struct {
	base   map[K]V // never written once published
	delta  *immutable.Map[K, slot[V]]
	filter *bitFilter
}

func (ix *mapIndex[K, V]) get(k K, hasher keyHasher[K]) (V, bool) {
	if ix.delta.Len() > 0 && ix.filter.has(hasher.sum(k)) {
		if s, found := ix.delta.Get(k); found {
			return s.v, s.ok
		}
	}
	v, ok := ix.base[k]
	return v, ok
}

// with returns the index with one more change. The filter is shared and
// gets the bit before the new state is published.
func (ix *mapIndex[K, V]) with(k K, h uint64, s slot[V]) *mapIndex[K, V] {
	ix.filter.add(h)
	return &mapIndex[K, V]{base: ix.base, delta: ix.delta.Set(k, s), filter: ix.filter}
}

// indexer is the machine's side of the index. Its lock is held by Apply and
// Restore for each state change, and by a finished build to install its
// index; readers never take it.
type indexer[K comparable, V any] struct {
	on     bool
	hasher keyHasher[K]

	mu       sync.Mutex
	gen      uint64 // a clear or restore starts a new generation
	building bool
	since    *immutable.Map[K, slot[V]] // changes after the version being built
	sinceF   *bitFilter

	closed atomic.Bool
	wg     sync.WaitGroup
}

func newIndexer[K comparable, V any]() *indexer[K, V] {
	return &indexer[K, V]{
		on:     indexable[K](),
		hasher: keyHasher[K]{seed: maphash.MakeSeed(), str: reflect.TypeFor[K]().Kind() == reflect.String},
	}
}

func (x *indexer[K, V]) emptyDelta() *immutable.Map[K, slot[V]] {
	return immutable.NewMap[K, slot[V]](x.hasher)
}

// change records a change of key k in idx (and in the delta being gathered
// for a build) and returns the new index. Under x.mu.
func (x *indexer[K, V]) change(idx *mapIndex[K, V], k K, s slot[V]) *mapIndex[K, V] {
	if !x.on || (idx == nil && !x.building) {
		return idx
	}
	h := x.hasher.sum(k)
	if x.building {
		x.sinceF.add(h)
		x.since = x.since.Set(k, s)
	}
	if idx != nil {
		idx = idx.with(k, h, s)
	}
	return idx
}

// reset drops the index: the state was cleared or replaced. Under x.mu.
func (x *indexer[K, V]) reset() {
	x.gen++
	x.building = false
	x.since, x.sinceF = nil, nil
}

// maybeBuild starts a build from st if the index is missing or its delta
// has grown. When done, the build calls install, under x.mu, with the new
// index and the changes made meanwhile. Under x.mu.
func (x *indexer[K, V]) maybeBuild(st *mapState[K, V], install func(*mapIndex[K, V])) {
	if !x.on || x.building || x.closed.Load() {
		return
	}
	n := st.m.Len()
	switch {
	case st.idx == nil && n < indexMinEntries:
		return
	case st.idx != nil && st.idx.delta.Len() <= max(indexMinDelta, len(st.idx.base)/indexDeltaShare):
		return
	}
	x.building = true
	x.since, x.sinceF = x.emptyDelta(), newBitFilter(max(indexMinDelta, n/indexDeltaShare))
	gen := x.gen
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		base := make(map[K]V, n)
		it := st.m.Iterator()
		for i := 0; !it.Done(); i++ {
			if i%4096 == 0 && x.closed.Load() {
				return
			}
			k, v, _ := it.Next()
			base[k] = v
		}
		x.mu.Lock()
		defer x.mu.Unlock()
		if gen != x.gen || !x.building {
			return // cleared or replaced meanwhile
		}
		install(&mapIndex[K, V]{base: base, delta: x.since, filter: x.sinceF})
		x.building = false
		x.since, x.sinceF = nil, nil
	}()
}

// close stops a build in progress and waits for it.
func (x *indexer[K, V]) close() {
	x.closed.Store(true)
	x.wg.Wait()
}
