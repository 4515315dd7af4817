package collections

import (
	"hash/maphash"
	"reflect"
	"sync/atomic"

	"github.com/benbjohnson/immutable"
)

// A large Map also keeps a hash index, so that Get costs one hash lookup
// instead of a walk down the sorted tree. The index of a published state is
// a frozen hash table (the state at some earlier version) plus a small
// persistent tree of the changes since, and a bit filter over the changed
// keys' hashes so most lookups skip the delta. When the delta grows, a
// background goroutine clones the frozen table, applies the delta to it, and
// swaps it in with the changes made meanwhile as the new delta. The sorted
// tree stays the source of order, snapshots and iteration.

const (
	indexMinEntries = 1 << 14 // smaller maps are fast enough to search
	indexMinDelta   = 1 << 12
	indexDeltaShare = 4 // rebuild when the delta exceeds 1/4 of the base
)

// slot is a change in the delta: a value, or a removal.
type slot[V any] struct {
	v  V
	ok bool
}

// keyHasher hashes keys for the filter. Only keys of string and integer
// kinds are indexed: their == agrees with the tree's order (floats do not,
// for NaN).
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
	base   *hashTable[K, V] // never written once built
	delta  *btree[K, slot[V]]
	filter *bitFilter
}

func (ix *mapIndex[K, V]) get(k K, hasher keyHasher[K]) (V, bool) {
	h := hasher.sum(k)
	if ix.delta.Len() > 0 && ix.filter.has(h) {
		if s, found := ix.delta.Get(k); found {
			return s.v, s.ok
		}
	}
	return ix.base.get(k, h)
}

// indexer keeps the working index: Apply records every change in it, and
// a freeze of the state (mapMachine.freeze) freezes it with the state. It
// has no lock and starts nothing: its owner (the Map machine) calls it
// under its own lock, runs the builds it prepares (buildJob.run, without
// the lock) and installs what they return.
// Only read is touched without the lock, by every Get.
type indexer[K comparable, V any] struct {
	// Read by every Get: kept apart from the owner's lock, which every
	// Apply takes.
	on     bool
	hasher keyHasher[K]
	cmp    immutable.Comparer[K]
	// read says a Get came since the last build began. A due rebuild of an
	// index nobody read is skipped and the index dropped, so a replica that
	// is only written pays nothing for it; a Get that finds no index on a
	// large map asks its owner to build one.
	read atomic.Bool
	_    [64]byte

	gen    uint64           // a clear or restore starts a new generation
	base   *hashTable[K, V] // nil: no index yet
	delta  *btreeEditor[K, slot[V]]
	filter *bitFilter

	building bool
	since    *btreeEditor[K, slot[V]] // changes after the version being built
	sinceF   *bitFilter
}

func newIndexer[K comparable, V any](cmp immutable.Comparer[K]) *indexer[K, V] {
	return &indexer[K, V]{
		on:     indexable[K](),
		cmp:    cmp,
		hasher: keyHasher[K]{seed: maphash.MakeSeed(), str: reflect.TypeFor[K]().Kind() == reflect.String},
	}
}

// change records a change of key k.
func (x *indexer[K, V]) change(k K, s slot[V]) {
	if !x.on || (x.base == nil && !x.building) {
		return
	}
	h := x.hasher.sum(k)
	if x.building {
		x.sinceF.add(h)
		x.since.Set(k, s)
	}
	if x.base != nil {
		x.filter.add(h)
		x.delta.Set(k, s)
	}
}

// frozen returns the index of the working state, or nil.
func (x *indexer[K, V]) frozen() *mapIndex[K, V] {
	if x.base == nil {
		return nil
	}
	return &mapIndex[K, V]{base: x.base, delta: x.delta.Freeze(), filter: x.filter}
}

// reset drops the index: the state was cleared or replaced.
func (x *indexer[K, V]) reset() {
	x.gen++
	x.base, x.delta, x.filter = nil, nil, nil
	x.building = false
	x.since, x.sinceF = nil, nil
}

// deltaFull says the delta has grown enough for the index to be rebuilt,
// or dropped if nobody read it since the last build. Needs base.
func (x *indexer[K, V]) deltaFull() bool {
	return x.delta.Len() > max(indexMinDelta, x.base.len()/indexDeltaShare)
}

// due says a rebuild (or drop) is due for an index that is not building:
// its owner then freezes a state to start it from, rather than wait for a
// read to freeze one while the delta goes on growing.
func (x *indexer[K, V]) due() bool {
	return x.on && !x.building && x.base != nil && x.deltaFull()
}

// buildJob builds the base table of one published state.
type buildJob[K comparable, V any] struct {
	x    *indexer[K, V]
	gen  uint64
	st   *mapState[K, V]
	from *mapIndex[K, V] // the state's own index, if it has one
}

// startBuild prepares a build if the index is missing or its delta has
// grown; st is the state just published, the same as the working state.
// From now on changes are recorded for the build too (since), to become
// the new delta when it is installed.
func (x *indexer[K, V]) startBuild(st *mapState[K, V]) (*buildJob[K, V], bool) {
	if !x.on || x.building {
		return nil, false
	}
	n := st.m.Len()
	switch {
	case x.base == nil && n < indexMinEntries:
		return nil, false
	case x.base != nil && !x.deltaFull():
		return nil, false
	case !x.read.Load():
		// Not read since the last build: drop the index rather than
		// rebuild it. The published states keep theirs; a Get asks anew.
		x.base, x.delta, x.filter = nil, nil, nil
		return nil, false
	}
	x.read.Store(false)
	x.building = true
	x.since = newBTree[K, slot[V]](x.cmp).Edit()
	x.sinceF = newBitFilter(max(indexMinDelta, n/indexDeltaShare))
	return &buildJob[K, V]{x: x, gen: x.gen, st: st, from: st.idx}, true
}

// install makes a finished build's table the index, with the changes made
// meanwhile as its delta, unless the state was cleared or replaced since.
func (x *indexer[K, V]) install(j *buildJob[K, V], base *hashTable[K, V]) bool {
	if j.gen != x.gen || !x.building {
		return false
	}
	x.base, x.delta, x.filter = base, x.since, x.sinceF
	x.building = false
	x.since, x.sinceF = nil, nil
	return true
}

// run makes the base table: a copy of the previous base with its delta
// applied, or, without one, every entry of the tree. It reads only
// immutable states, so it runs without the owner's lock; it gives up (nil)
// once stop says so.
func (j *buildJob[K, V]) run(stop func() bool) *hashTable[K, V] {
	x := j.x
	if from := j.from; from != nil {
		adds := 0 // at most: some may replace a value
		for _, s := range from.delta.All() {
			if s.ok {
				adds++
			}
		}
		base := from.base.withRoom(adds)
		for k, s := range from.delta.All() {
			if s.ok {
				base.set(k, x.hasher.sum(k), s.v)
			} else {
				base.del(k, x.hasher.sum(k))
			}
		}
		return base
	}
	base := newHashTable[K, V](j.st.m.Len(), x.hasher.str)
	i := 0
	for k, v := range j.st.m.All() {
		if i%4096 == 0 && stop() {
			return nil
		}
		base.set(k, x.hasher.sum(k), v)
		i++
	}
	return base
}
