package collections

import (
	"bytes"
	"context"
	"io"
	"iter"
	"sync"
	"sync/atomic"

	"github.com/benbjohnson/immutable"

	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// MapChange is one change to a Map, as Watch reports it.
type MapChange[K comparable, V any] struct {
	Op      Op // OpInsert, OpRemove or OpClear
	Key     K
	Value   V       // the new value, for OpInsert
	Version Version // the key's version (see GetWithVersion), for OpInsert
}

const (
	mapInsert uint8 = 1 + iota
	mapRemove
	mapClear
	mapCAS
	mapCASVersion
)

// mapCmd is a Map command as it travels in the log.
type mapCmd[K comparable, V any] struct {
	_        struct{} `cbor:",toarray"`
	Op       uint8
	Key      K
	Value    *V // insert: the value; compare-exchange: the replacement, nil for absent
	Expected *V // compare-exchange: the expected value, nil for absent
	// Version is the expected version of a version compare-exchange, 0
	// for absent. Only that command carries it (see MarshalCBOR).
	Version Version `cbor:"-"`
}

// mapState is the published state: immutable, shared by every reader.
type mapState[K comparable, V any] struct {
	v   Version
	m   *btree[K, V]
	idx *mapIndex[K, V] // nil: Get searches m
}

// mapMachine is the Map's state machine: a deterministic core over a
// persistent sorted tree, with no I/O. Apply edits a working copy of the
// tree in place where it owns the nodes, and readers load a frozen state
// atomically. Publish freezes the working tree only if the map was read
// since the last Publish (or an index rebuild is due); otherwise it marks
// it dirty and the first read freezes it (load). A tree frozen after every
// batch made the next batch copy every leaf and branch it touched, half the
// bytes a write allocated; a replica nobody reads (a leader, or a follower
// that only writes) now copies a node once, not once per batch. A read that
// finds the tree dirty while a batch applies waits for that batch's
// Publish: the tree then holds part of a batch, which no read may see.
//
// It owns mu, which guards the working state and the index's working part,
// and the goroutines that build the hash index: a build started by a freeze
// when the index has grown stale, and a waker, started by the first Get
// that wants an index, which starts one for a map nobody writes. The
// indexer only keeps data; it never calls back.
type mapMachine[K comparable, V any] struct {
	sig string
	cmp immutable.Comparer[K]
	cur atomic.Pointer[mapState[K, V]] // the frozen state; see load
	// dirty says Publish left changes in work that cur does not show yet.
	// ver is the version of the last Publish (or freeze), which reads see.
	// seen says a read loaded the state since the last Publish.
	dirty atomic.Bool
	ver   atomic.Uint64
	seen  atomic.Bool
	hist  *history[MapChange[K, V]]
	ix    *indexer[K, V]

	mu    sync.Mutex
	work  *btreeEditor[K, V] // Apply's working state, frozen by the first read after a Publish
	stage stage[MapChange[K, V]]
	// pubWait, if set, is closed by the next Publish, which then freezes:
	// readers that found the tree dirty in the middle of a batch wait on it.
	pubWait chan struct{}

	wake    chan struct{}
	started sync.Once // starts the waker, at most once
	done    chan struct{}
	closed  atomic.Bool
	waker   sync.WaitGroup
	builds  sync.WaitGroup // builds in progress
}

func newMapMachine[K comparable, V any](history int) *mapMachine[K, V] {
	cmp := comparerFor[K]()
	m := &mapMachine[K, V]{
		sig:  "mosaik.collections.map.v1[" + typeName[K]() + "," + typeName[V]() + "]",
		cmp:  cmp,
		hist: newHistory[MapChange[K, V]](history),
		ix:   newIndexer[K, V](cmp),
		work: newVersionedBTree[K, V](cmp).Edit(),
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	m.cur.Store(&mapState[K, V]{m: m.work.Freeze()})
	return m
}

// build starts a build of the index of st, the state just published, if
// one is due. Under m.mu.
func (m *mapMachine[K, V]) build(st *mapState[K, V]) {
	if m.closed.Load() {
		return
	}
	job, ok := m.ix.startBuild(st)
	if !ok {
		return
	}
	m.builds.Add(1)
	go func() {
		defer m.builds.Done()
		base := job.run(m.closed.Load)
		if base == nil {
			return // closed
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.ix.install(job, base) {
			m.republish()
		}
	}()
}

// noteRead records a Get and wakes the waker, which builds an index if one
// is missing or due. It wakes it whether or not this Get found an index: the
// index may have been dropped since, with no write to come and build it.
// Lock-free; a Get calls it only when read is not set.
func (m *mapMachine[K, V]) noteRead() {
	if !m.ix.on || !m.ix.read.CompareAndSwap(false, true) {
		return
	}
	m.started.Do(func() {
		if m.closed.Load() {
			return
		}
		m.waker.Add(1)
		go func() {
			defer m.waker.Done()
			for {
				select {
				case <-m.done:
					return
				case <-m.wake:
					m.buildOnRead()
				}
			}
		}()
	})
	select {
	case m.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// buildOnRead builds the index a Get asked for, unless commands wait to be
// published: the next freeze builds it then.
func (m *mapMachine[K, V]) buildOnRead() {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.stage.pending():
	case m.dirty.Load():
		m.freeze()
	default:
		m.build(m.cur.Load())
	}
}

// closeIndex stops the waker and a build in progress, and waits for them.
func (m *mapMachine[K, V]) closeIndex() {
	m.mu.Lock() // a build starts under it: after this, none does
	first := !m.closed.Swap(true)
	m.mu.Unlock()
	if first {
		m.started.Do(func() {}) // a waker not started by now never starts
		close(m.done)
	}
	m.waker.Wait()
	m.builds.Wait()
}

// Signature implements rsm.StateMachine.
func (m *mapMachine[K, V]) Signature() string { return m.sig }

// Apply implements rsm.StateMachine.
func (m *mapMachine[K, V]) Apply(cmd mapCmd[K, V], ctx rsm.ApplyContext) { m.ApplyReply(cmd, ctx) }

// Query implements rsm.StateMachine; reads go through the published state.
func (m *mapMachine[K, V]) Query(struct{}) reply { return reply{} }

func (m *mapMachine[K, V]) version() Version { return Version(m.ver.Load()) }

// load returns the published state, first freezing what Publish left in the
// working tree, and notes the read, so the next Publish freezes at once.
// Iterators use peek instead, which inlines.
func (m *mapMachine[K, V]) load() *mapState[K, V] {
	if !m.seen.Load() {
		m.seen.Store(true)
	}
	if m.dirty.Load() {
		m.freezeDirty()
	}
	return m.cur.Load()
}

// freezeDirty freezes what Publish left in the working tree, or, if a
// batch is applying now, waits for its Publish to do it.
func (m *mapMachine[K, V]) freezeDirty() {
	m.mu.Lock()
	if !m.dirty.Load() {
		m.mu.Unlock()
		return
	}
	if !m.stage.pending() {
		m.freeze()
		m.mu.Unlock()
		return
	}
	if m.pubWait == nil {
		m.pubWait = make(chan struct{})
	}
	ch := m.pubWait
	m.mu.Unlock()
	<-ch // Publish comes at the end of every batch
}

// freeze publishes the working tree as the current state, and then the
// batch's changes to watchers if Publish calls it. Under m.mu, never in the
// middle of a batch.
func (m *mapMachine[K, V]) freeze() {
	ns := &mapState[K, V]{v: m.stage.v, m: m.work.Freeze(), idx: m.ix.frozen()}
	m.cur.Store(ns)
	m.ver.Store(uint64(ns.v))
	m.dirty.Store(false)
	if m.stage.pending() {
		m.stage.flush(m.hist)
	}
	m.build(ns)
	if ns.idx != nil && m.ix.base == nil {
		// The build dropped an index nobody read: do not keep its table
		// alive in a state that may stay current for long.
		bare := *ns
		bare.idx = nil
		m.cur.Store(&bare)
	}
	if m.pubWait != nil {
		close(m.pubWait)
		m.pubWait = nil
	}
}

// peek returns the published tree for an iterator to hold from its call,
// or nil if Publish left changes unfrozen: the iterator then takes the
// state when its loop begins (held). It calls nothing, so that Range,
// Backward and All inline and a for-range loop over them allocates nothing.
func (m *mapMachine[K, V]) peek() *btree[K, V] {
	if m.dirty.Load() {
		return nil
	}
	return m.cur.Load().m
}

// held returns t, the tree an iterator held from its call, or else the
// current state's.
func (m *mapMachine[K, V]) held(t *btree[K, V]) *btree[K, V] {
	if t == nil {
		return m.load().m
	}
	return t
}

// workLen returns the number of entries in the working tree: after
// Publish, what the map holds.
func (m *mapMachine[K, V]) workLen() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.work.Len()
}

// ApplyReply implements rsm.Replier.
func (m *mapMachine[K, V]) ApplyReply(cmd mapCmd[K, V], ctx rsm.ApplyContext) any {
	v := Version(ctx.LogPosition().Index)
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.work
	var changes []MapChange[K, V]
	set := func(k K, val V) {
		st.SetAt(k, val, v)
		m.ix.change(k, slot[V]{v: val, ok: true})
		changes = append(changes, MapChange[K, V]{Op: OpInsert, Key: k, Value: val, Version: v})
	}
	del := func(k K) {
		st.Delete(k)
		m.ix.change(k, slot[V]{})
		changes = append(changes, MapChange[K, V]{Op: OpRemove, Key: k})
	}
	r := reply{Applied: true}
	switch cmd.Op {
	case mapInsert:
		if cmd.Value != nil {
			set(cmd.Key, *cmd.Value)
		}
	case mapRemove:
		if _, ok := st.Get(cmd.Key); ok {
			del(cmd.Key)
		}
	case mapClear:
		if st.Len() > 0 {
			st.Clear()
			m.ix.reset()
			changes = append(changes, MapChange[K, V]{Op: OpClear})
		}
	case mapCAS, mapCASVersion:
		cur, ver, present := st.GetVersioned(cmd.Key)
		switch {
		case cmd.Op == mapCASVersion:
			r.Applied = versionMatches(ver, present, cmd.Version)
		case cmd.Expected == nil:
			r.Applied = !present
		default:
			r.Applied = present && bytes.Equal(mustEncode(cur), mustEncode(*cmd.Expected))
		}
		if r.Applied {
			if cmd.Value != nil {
				set(cmd.Key, *cmd.Value)
			} else if present {
				del(cmd.Key)
			}
		}
	}
	m.stage.applied(v, changes)
	return r
}

// Publish implements rsm.Publisher. It freezes the working tree if the map
// was read since the last Publish, a reader waits, or the index is due for
// a rebuild; else it leaves it to the next read (load). Watchers hear of
// the batch now either way. dirty is set before the version, and both
// before watchers hear, so a reader told of the batch freezes.
func (m *mapMachine[K, V]) Publish() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.stage.pending() {
		return
	}
	if m.seen.Swap(false) || m.pubWait != nil || m.ix.due() {
		m.freeze()
		return
	}
	m.dirty.Store(true)
	m.ver.Store(uint64(m.stage.v))
	m.stage.flush(m.hist)
}

// republish publishes the state again with the index just built, unless
// commands applied since the last freeze: the next one publishes it then.
// Under m.mu.
func (m *mapMachine[K, V]) republish() {
	if m.stage.pending() || m.dirty.Load() {
		return
	}
	ns := *m.cur.Load()
	ns.idx = m.ix.frozen()
	m.cur.Store(&ns)
}

// get reads key from the current state, through the index if there is one.
func (m *mapMachine[K, V]) get(key K) (V, bool) { return m.getIn(m.load(), key) }

// getIn reads key from st, one of m's published states.
func (m *mapMachine[K, V]) getIn(st *mapState[K, V], key K) (V, bool) {
	if st.idx != nil {
		if !m.ix.read.Load() {
			m.noteRead()
		}
		return st.idx.get(key, m.ix.hasher)
	}
	if st.m.Len() >= indexMinEntries && !m.ix.read.Load() {
		m.noteRead()
	}
	return st.m.Get(key)
}

// Snapshot implements rsm.Snapshotter: it captures the immutable state.
func (m *mapMachine[K, V]) Snapshot() (rsm.Snapshot, error) {
	st := m.load()
	return snapshotFunc(func(w io.Writer) error { return writeMapSnapshot(w, st) }), nil
}

// Restore implements rsm.Snapshotter.
func (m *mapMachine[K, V]) Restore(r io.Reader) error {
	b, v, err := readMapSnapshot[K, V](r, m.cmp)
	if err != nil {
		return err
	}
	m.install(b, v)
	return nil
}

// install replaces the state with the tree b loaded, at version v.
func (m *mapMachine[K, V]) install(b *treeLoader[K, V], v Version) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ix.reset()
	m.work = b.edit()
	ns := &mapState[K, V]{v: v, m: m.work.Freeze()}
	m.cur.Store(ns)
	m.ver.Store(uint64(v))
	m.dirty.Store(false)
	m.hist.reset(v)
	m.build(ns)
}

// mapReads are the read methods shared by MapReader and MapWriter.
type mapReads[K comparable, V any] struct {
	*handle[mapCmd[K, V]]
	m *mapMachine[K, V]
}

// MapReader follows a replicated map. Reads are local; they take no lock
// unless they are the first since a batch nobody read (see mapMachine). It is
// safe for concurrent use.
type MapReader[K comparable, V any] struct{ mapReads[K, V] }

// MapWriter changes a replicated map and reads it like a MapReader. It is
// safe for concurrent use; writes issued one after another from one
// goroutine apply in that order.
type MapWriter[K comparable, V any] struct{ mapReads[K, V] }

func openMap[K comparable, V any](net *transport.Network, name string, writer bool, opts []Option) (mapReads[K, V], error) {
	h, m, err := openWith[mapCmd[K, V]](net, inspectwire.KindMap, name, typeName[K]()+","+typeName[V](), newMapMachine[K, V], writer, opts)
	if err != nil {
		return mapReads[K, V]{}, err
	}
	r := mapReads[K, V]{handle: h, m: m}
	if err := serve(h, m.hist, m.frozen); err != nil {
		_ = h.Close()
		return r, err
	}
	return r, nil
}

// NewMapWriter opens the map called name on net for writing.
func NewMapWriter[K comparable, V any](net *transport.Network, name string, opts ...Option) (*MapWriter[K, V], error) {
	r, err := openMap[K, V](net, name, true, opts)
	if err != nil {
		return nil, err
	}
	return &MapWriter[K, V]{r}, nil
}

// NewMapReader opens the map called name on net for reading.
func NewMapReader[K comparable, V any](net *transport.Network, name string, opts ...Option) (*MapReader[K, V], error) {
	r, err := openMap[K, V](net, name, false, opts)
	if err != nil {
		return nil, err
	}
	return &MapReader[K, V]{r}, nil
}

func (r mapReads[K, V]) state() *btree[K, V] { return r.m.load().m }

// Len returns the number of entries.
func (r mapReads[K, V]) Len() int { return r.state().Len() }

// IsEmpty reports whether the map has no entries.
func (r mapReads[K, V]) IsEmpty() bool { return r.state().Len() == 0 }

// ContainsKey reports whether key is present.
func (r mapReads[K, V]) ContainsKey(key K) bool {
	_, ok := r.m.get(key)
	return ok
}

// Get returns the value of key.
func (r mapReads[K, V]) Get(key K) (V, bool) { return r.m.get(key) }

// All iterates over the entries in key order, the same on every replica,
// over one version: the state when All was called or, if writes applied
// since the last read of this map, the state when the loop begins. Either
// holds every write this handle made or was told of (by Version, When,
// Watch or Sync) before the call.
func (r mapReads[K, V]) All() iter.Seq2[K, V] {
	held := r.m.peek()
	return func(yield func(K, V) bool) { btreeWalk(r.m.held(held).root, yield) }
}

// Keys iterates over the keys in order.
func (r mapReads[K, V]) Keys() iter.Seq[K] {
	all := r.All()
	return func(yield func(K) bool) {
		for k := range all {
			if !yield(k) {
				return
			}
		}
	}
}

// Values iterates over the values in key order.
func (r mapReads[K, V]) Values() iter.Seq[V] {
	all := r.All()
	return func(yield func(V) bool) {
		for _, v := range all {
			if !yield(v) {
				return
			}
		}
	}
}

// Watch streams the map's changes in version order, every change of one
// command in one event, until ctx ends or the handle closes (the sequence
// then yields the error and stops). See FromVersion, WithInitial and
// WatchRange.
func (r mapReads[K, V]) Watch(ctx context.Context, opts ...WatchOption) iter.Seq2[Event[MapChange[K, V]], error] {
	return r.watchKeys(ctx, opts)
}

// checkKV checks a key and value against the limits and returns their
// encoded size.
func checkKV[K, V any](key K, value *V) (int, error) {
	n, err := checkSize("key", key, MaxKeySize)
	if err != nil || value == nil {
		return n, err
	}
	m, err := checkSize("value", *value, MaxValueSize)
	return n + m, err
}

// Insert sets key to value. It returns once this node applied the write.
func (w *MapWriter[K, V]) Insert(ctx context.Context, key K, value V) (Version, error) {
	if _, err := checkKV(key, &value); err != nil {
		return 0, err
	}
	v, _, err := w.execute1(ctx, mapCmd[K, V]{Op: mapInsert, Key: key, Value: &value})
	return v, err
}

// Remove deletes key. Removing a missing key changes nothing and still
// returns a version.
func (w *MapWriter[K, V]) Remove(ctx context.Context, key K) (Version, error) {
	if _, err := checkKV[K, V](key, nil); err != nil {
		return 0, err
	}
	v, _, err := w.execute1(ctx, mapCmd[K, V]{Op: mapRemove, Key: key})
	return v, err
}

// Clear removes every entry.
func (w *MapWriter[K, V]) Clear(ctx context.Context) (Version, error) {
	v, _, err := w.execute1(ctx, mapCmd[K, V]{Op: mapClear})
	return v, err
}

// Extend inserts entries in order, so a later duplicate key wins. Up to
// groups.MaxBatchCommands entries apply as one unbroken run; longer
// sequences apply in several runs. An empty sequence writes nothing and
// returns the current version.
func (w *MapWriter[K, V]) Extend(ctx context.Context, entries iter.Seq2[K, V]) (Version, error) {
	return w.extend(ctx, func(yield func(mapCmd[K, V], int, error) bool) {
		for k, v := range entries {
			n, err := checkKV(k, &v)
			if !yield(mapCmd[K, V]{Op: mapInsert, Key: k, Value: &v}, n, err) {
				return
			}
		}
	})
}

// CompareExchange sets key to replacement if its current value encodes to
// the same bytes as expected, atomically. nil means absent: a nil expected
// matches a missing key, a nil replacement removes the key. The bool
// reports whether it applied; either way the write has a version.
func (w *MapWriter[K, V]) CompareExchange(ctx context.Context, key K, expected, replacement *V) (Version, bool, error) {
	if _, err := checkKV(key, expected); err != nil {
		return 0, false, err
	}
	if _, err := checkKV(key, replacement); err != nil {
		return 0, false, err
	}
	v, r, err := w.execute1(ctx, mapCmd[K, V]{Op: mapCAS, Key: key, Value: replacement, Expected: expected})
	return v, r.Applied, err
}

// state returns the current state as inserts, and its version.
func (m *mapMachine[K, V]) state() (Version, iter.Seq[MapChange[K, V]]) {
	st := m.load()
	return st.v, func(yield func(MapChange[K, V]) bool) {
		st.m.AllVersioned(func(k K, v V, ver Version) bool {
			return yield(MapChange[K, V]{Op: OpInsert, Key: k, Value: v, Version: ver})
		})
	}
}

// frozen returns the current state for an inspect dump.
func (m *mapMachine[K, V]) frozen() frozen[MapChange[K, V]] {
	st := m.load()
	return frozen[MapChange[K, V]]{v: st.v, n: st.m.Len(), after: func(last *MapChange[K, V]) iter.Seq[MapChange[K, V]] {
		all := st.m.All()
		if last != nil {
			all = st.m.After(last.Key)
		}
		return func(yield func(MapChange[K, V]) bool) {
			for k, v := range all {
				if !yield(MapChange[K, V]{Op: OpInsert, Key: k, Value: v}) {
					return
				}
			}
		}
	}}
}

// Outcome tells what became of a write of this writer that failed with
// ErrOutcomeUnknown: applied, at the version returned (true), or not
// applied and never to be (false). Take id from the error's
// *UnknownOutcomeError. A write whose caller gave up is withdrawn, so the
// answer comes as soon as the group's leader is reachable again. Without a
// deadline in ctx it waits at most 3 × ForwardTimeout; if the answer is
// not known by then it returns ErrOutcomeUnknown with an
// *UnknownOutcomeError again: ask later. ErrOutcomeUnknown without one is
// final: nobody can tell. It does not return what the write answered (a
// compare-exchange's bool): read the state at or after the version.
func (w *MapWriter[K, V]) Outcome(ctx context.Context, id WriteID) (Version, bool, error) {
	return w.outcome(ctx, id)
}
