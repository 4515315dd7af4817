package collections

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"sync/atomic"

	"github.com/benbjohnson/immutable"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// PQEntry is one entry of a PriorityQueue: a key, unique in the queue, its
// priority and its value.
type PQEntry[P, K, V any] struct {
	Priority P
	Key      K
	Value    V
}

// pqEntryWire is a PQEntry as a reply carries it (a pop's or an
// eviction's).
type pqEntryWire[P, K, V any] struct {
	_        struct{} `cbor:",toarray"`
	Priority P
	Key      K
	Value    V
}

// PQChange is one change to a PriorityQueue, as Watch reports it. A key
// whose priority or value changed is an OpInsert of its new entry; a key
// removed (by Remove, a range, a pop, a compare-exchange or an eviction)
// an OpRemove of the entry it had.
type PQChange[P, K, V any] struct {
	Op       Op // OpInsert, OpRemove or OpClear
	Priority P
	Key      K
	Value    V // the new value, for OpInsert
}

// wire carries the key on inserts and removes, and [priority, value] on
// inserts.
func (c PQChange[P, K, V]) wire() (w inspectwire.Change, err error) {
	w.Op = c.Op.wire()
	if c.Op == OpInsert || c.Op == OpRemove {
		if w.Key, err = rsm.Marshal(c.Key); err != nil {
			return w, err
		}
	}
	if c.Op == OpInsert {
		w.Value, err = rsm.Marshal([]any{c.Priority, c.Value})
	}
	return w, err
}

// Bound is one end of a range of priorities: Inclusive(x), Exclusive(x),
// or Unbounded, the zero value. It is a small value, safe to copy.
type Bound[T any] struct {
	v    T
	kind uint8 // 0 unbounded, boundIncl or boundExcl
}

const (
	boundIncl uint8 = 1 + iota
	boundExcl
)

// Inclusive is a bound that includes x.
func Inclusive[T any](x T) Bound[T] { return Bound[T]{v: x, kind: boundIncl} }

// Exclusive is a bound that excludes x.
func Exclusive[T any](x T) Bound[T] { return Bound[T]{v: x, kind: boundExcl} }

// Unbounded is no bound at all.
func Unbounded[T any]() Bound[T] { return Bound[T]{} }

func (b Bound[T]) ptr() *T {
	if b.kind == 0 {
		return nil
	}
	return &b.v
}

const (
	pqInsert uint8 = 1 + iota
	pqUpdatePriority
	pqUpdateValue
	pqCAS
	pqRemove
	pqRemoveRange
	pqClear
	pqPopMin
	pqPopMax
)

// Ends of a remove-range command.
const (
	pqLoExcl uint8 = 1 << iota
	pqHiExcl
)

// pqCmd is a PriorityQueue command as it travels in the log.
type pqCmd[P, K, V any] struct {
	_        struct{} `cbor:",toarray"`
	Op       uint8
	Key      K
	Priority *P // insert, update-priority
	Value    *V // insert, update-value; compare-exchange: the replacement, nil removes
	Expected *V // compare-exchange
	Lo, Hi   *P // remove-range: nil is unbounded
	Ends     uint8
}

// pqOrd is an entry's place in the queue's order: by priority, ties by key.
type pqOrd[P, K any] struct {
	p P
	k K
}

// pqCmp orders pqOrds. edge, if not 0, makes a bound of a priority alone:
// a bound compares as below (-1 as the second argument gives +1) or above
// every entry of its priority, never equal, so a search for it lands on
// the first entry at or past it.
type pqCmp[P, K any] struct {
	p    immutable.Comparer[P]
	k    immutable.Comparer[K]
	edge int
}

func (c pqCmp[P, K]) Compare(a, b pqOrd[P, K]) int {
	if x := c.p.Compare(a.p, b.p); x != 0 || c.edge != 0 {
		if x == 0 {
			return c.edge
		}
		return x
	}
	return c.k.Compare(a.k, b.k)
}

// pqSlot is what the key index holds for a key.
type pqSlot[P, V any] struct {
	p P
	v V
}

// pqState is the published order: immutable, shared by every reader.
type pqState[P any, K comparable, V any] struct {
	v     Version
	order *btree[pqOrd[P, K], V]
	keys  *mapState[K, pqSlot[P, V]] // the key index's state published with order
}

// pqMachine is the PriorityQueue's state machine: entries in a persistent
// tree ordered by (priority, key), and a key index, which is a Map machine
// of its own (its sorted tree and, on large queues, its hash index), driven
// with Map commands at the queue's versions. Apply, Publish and Restore run
// on the group's apply goroutine, which owns the order's working copy; the
// key index owns its lock and its index builders (see mapMachine). Readers
// load the published states atomically.
type pqMachine[P any, K comparable, V any] struct {
	sig      string
	capacity int // 0: unbounded
	cmp      pqCmp[P, K]
	keys     *mapMachine[K, pqSlot[P, V]]
	cur      atomic.Pointer[pqState[P, K, V]]
	hist     *history[PQChange[P, K, V]]

	order *btreeEditor[pqOrd[P, K], V]
	stage stage[PQChange[P, K, V]]
}

// pqSnapshotMagic names the PriorityQueue's snapshot format: the header,
// then one record per entry in ascending order, each its priority, key and
// value fields.
const pqSnapshotMagic = "mosaik.pqueue.v1"

// pqTypes names a queue's types and capacity, for its identity.
func pqTypes[P, K, V any](capacity int) string {
	t := typeName[P]() + "," + typeName[K]() + "," + typeName[V]()
	if capacity > 0 {
		t += ",capacity=" + strconv.Itoa(capacity)
	}
	return t
}

func newPQMachine[P any, K comparable, V any](history, capacity int) *pqMachine[P, K, V] {
	cmp := pqCmp[P, K]{p: comparerFor[P](), k: comparerFor[K]()}
	m := &pqMachine[P, K, V]{
		sig:      "mosaik.collections." + inspectwire.KindPQueue + ".v1[" + pqTypes[P, K, V](capacity) + "]",
		capacity: capacity,
		cmp:      cmp,
		keys:     newMapMachine[K, pqSlot[P, V]](1),
		hist:     newHistory[PQChange[P, K, V]](history),
		order:    newBTree[pqOrd[P, K], V](cmp).Edit(),
	}
	m.cur.Store(&pqState[P, K, V]{order: m.order.Freeze(), keys: m.keys.load()})
	return m
}

func (m *pqMachine[P, K, V]) Signature() string                            { return m.sig }
func (m *pqMachine[P, K, V]) Query(struct{}) reply                         { return reply{} }
func (m *pqMachine[P, K, V]) version() Version                             { return m.cur.Load().v }
func (m *pqMachine[P, K, V]) closeIndex()                                  { m.keys.closeIndex() }
func (m *pqMachine[P, K, V]) Apply(c pqCmd[P, K, V], ctx rsm.ApplyContext) { m.ApplyReply(c, ctx) }

// slot returns key's priority and value in the working state.
func (m *pqMachine[P, K, V]) slot(k K) (pqSlot[P, V], bool) {
	m.keys.mu.Lock()
	defer m.keys.mu.Unlock()
	return m.keys.work.Get(k)
}

// pqApply is one command's work on the working state.
type pqApply[P any, K comparable, V any] struct {
	m       *pqMachine[P, K, V]
	ctx     rsm.ApplyContext
	changes []PQChange[P, K, V]
}

func (a *pqApply[P, K, V]) set(p P, k K, v V) {
	if old, ok := a.m.slot(k); ok {
		a.m.order.Delete(pqOrd[P, K]{old.p, k})
	}
	a.m.order.Set(pqOrd[P, K]{p, k}, v)
	a.m.keys.ApplyReply(mapCmd[K, pqSlot[P, V]]{Op: mapInsert, Key: k, Value: &pqSlot[P, V]{p, v}}, a.ctx)
	a.changes = append(a.changes, PQChange[P, K, V]{Op: OpInsert, Priority: p, Key: k, Value: v})
}

func (a *pqApply[P, K, V]) del(p P, k K) PQEntry[P, K, V] {
	v, _ := a.m.order.Delete(pqOrd[P, K]{p, k})
	a.m.keys.ApplyReply(mapCmd[K, pqSlot[P, V]]{Op: mapRemove, Key: k}, a.ctx)
	a.changes = append(a.changes, PQChange[P, K, V]{Op: OpRemove, Priority: p, Key: k, Value: v})
	return PQEntry[P, K, V]{Priority: p, Key: k, Value: v}
}

func (a *pqApply[P, K, V]) clear() {
	if a.m.order.Len() == 0 {
		return
	}
	a.m.order.Clear()
	a.m.keys.ApplyReply(mapCmd[K, pqSlot[P, V]]{Op: mapClear}, a.ctx)
	a.changes = append(a.changes, PQChange[P, K, V]{Op: OpClear})
}

// end returns the first or last entry of the working state.
func (m *pqMachine[P, K, V]) end(last bool) (pqOrd[P, K], bool) {
	o, _, ok := btreeEnd(m.order.root, last)
	return o, ok
}

func encodeEntry[P, K, V any](e PQEntry[P, K, V]) []byte {
	return mustEncode(pqEntryWire[P, K, V]{Priority: e.Priority, Key: e.Key, Value: e.Value})
}

// ApplyReply implements rsm.Replier. A command whose fields make no sense
// (an insert without a priority or value, an unknown op) changes nothing.
// A reply's Value is the entry a pop removed or an insert evicted.
func (m *pqMachine[P, K, V]) ApplyReply(c pqCmd[P, K, V], ctx rsm.ApplyContext) any {
	v := Version(ctx.LogPosition().Index)
	a := pqApply[P, K, V]{m: m, ctx: ctx}
	r := reply{Applied: true}
	switch c.Op {
	case pqInsert:
		if c.Priority == nil || c.Value == nil {
			r.Applied = false
			break
		}
		// Full, and a new key (looked up only then): the lowest entry
		// goes, which may be this one.
		if m.capacity > 0 && m.order.Len() >= m.capacity {
			if _, present := m.slot(c.Key); !present {
				low, _ := m.end(false)
				if m.cmp.Compare(pqOrd[P, K]{*c.Priority, c.Key}, low) < 0 {
					r.Value = encodeEntry(PQEntry[P, K, V]{Priority: *c.Priority, Key: c.Key, Value: *c.Value})
					break
				}
				r.Value = encodeEntry(a.del(low.p, low.k))
			}
		}
		a.set(*c.Priority, c.Key, *c.Value)
	case pqUpdatePriority, pqUpdateValue:
		cur, present := m.slot(c.Key)
		switch {
		case !present, c.Op == pqUpdatePriority && c.Priority == nil, c.Op == pqUpdateValue && c.Value == nil:
			r.Applied = false
		case c.Op == pqUpdatePriority:
			a.set(*c.Priority, c.Key, cur.v)
		default:
			a.set(cur.p, c.Key, *c.Value)
		}
	case pqCAS:
		cur, present := m.slot(c.Key)
		r.Applied = present && c.Expected != nil && bytes.Equal(mustEncode(cur.v), mustEncode(*c.Expected))
		if r.Applied {
			if c.Value != nil {
				a.set(cur.p, c.Key, *c.Value)
			} else {
				a.del(cur.p, c.Key)
			}
		}
	case pqRemove:
		if cur, present := m.slot(c.Key); present {
			a.del(cur.p, c.Key)
		} else {
			r.Applied = false
		}
	case pqRemoveRange:
		if c.Lo == nil && c.Hi == nil {
			a.clear()
			break
		}
		var gone []pqOrd[P, K]
		m.ascend(m.order.root, c.Lo, c.Hi, c.Ends, func(o pqOrd[P, K]) bool {
			gone = append(gone, o)
			return true
		})
		for _, o := range gone {
			a.del(o.p, o.k)
		}
	case pqClear:
		a.clear()
	case pqPopMin, pqPopMax:
		o, ok := m.end(c.Op == pqPopMax)
		if !ok {
			r = reply{Code: codeEmpty}
			break
		}
		r.Value = encodeEntry(a.del(o.p, o.k))
	default:
		r.Applied = false
	}
	m.stage.applied(v, a.changes)
	return r
}

// ascend yields the places in n whose priorities lie between lo and hi
// (nil: unbounded; ends says which are exclusive), in ascending order.
func (m *pqMachine[P, K, V]) ascend(n *bnode[pqOrd[P, K], V], lo, hi *P, ends uint8, yield func(pqOrd[P, K]) bool) {
	inHi := func(o pqOrd[P, K]) bool {
		if hi == nil {
			return true
		}
		x := m.cmp.p.Compare(o.p, *hi)
		return x < 0 || x == 0 && ends&pqHiExcl == 0
	}
	each := func(o pqOrd[P, K], _ V) bool { return inHi(o) && yield(o) }
	if lo == nil {
		btreeWalk(n, each)
		return
	}
	cmp := m.cmp
	cmp.edge = 1 // the bound is below its priority's entries
	if ends&pqLoExcl != 0 {
		cmp.edge = -1
	}
	btreeAscend(immutable.Comparer[pqOrd[P, K]](cmp), n, keyBounds[pqOrd[P, K]]{lo: pqOrd[P, K]{p: *lo}, hasLo: true}, each)
}

// Publish implements rsm.Publisher: the key index first, so that the state
// stored after it names the key index of its own version (see slot).
func (m *pqMachine[P, K, V]) Publish() {
	m.keys.Publish()
	if m.stage.pending() {
		m.cur.Store(&pqState[P, K, V]{v: m.stage.v, order: m.order.Freeze(), keys: m.keys.load()})
		m.stage.flush(m.hist)
	}
}

// Snapshot implements rsm.Snapshotter: it captures the immutable order.
func (m *pqMachine[P, K, V]) Snapshot() (rsm.Snapshot, error) {
	st := m.cur.Load()
	return snapshotFunc(func(w io.Writer) error {
		return writeSnapshotAs(w, pqSnapshotMagic, st.v, st.order.Len(), func(sw *snapshotWriter) error {
			var err error
			btreeWalk(st.order.root, func(o pqOrd[P, K], v V) bool {
				if err = writeField(sw, o.p); err != nil {
					return false
				}
				if err = writeField(sw, o.k); err != nil {
					return false
				}
				if err = writeField(sw, v); err != nil {
					return false
				}
				sw.records++
				return true
			})
			return err
		})
	}), nil
}

// Restore implements rsm.Snapshotter. The records must come in strictly
// ascending order, each key once, and no more than the capacity; a
// snapshot that does not read leaves the state as it was.
func (m *pqMachine[P, K, V]) Restore(r io.Reader) error {
	order := newBTreeBuilder[pqOrd[P, K], V](m.cmp)
	keys := newVersionedTreeLoader[K, pqSlot[P, V]](m.keys.cmp)
	var count int
	v, err := readSnapshotOf(r, func(h snapshotHeader) func(*snapshotReader) error {
		if h.Magic != pqSnapshotMagic {
			return nil
		}
		if m.capacity > 0 && h.Count > m.capacity {
			return func(*snapshotReader) error {
				return fmt.Errorf("%d entries, capacity %d", h.Count, m.capacity)
			}
		}
		if h.Count > 0 && h.Version == 0 {
			return func(*snapshotReader) error { return errors.New("entries at version 0") }
		}
		count = h.Count
		return func(sr *snapshotReader) error {
			var e PQEntry[P, K, V]
			if err := readField(sr, &e.Priority); err != nil {
				return err
			}
			if err := readField(sr, &e.Key); err != nil {
				return err
			}
			if err := readField(sr, &e.Value); err != nil {
				return err
			}
			if !order.Add(pqOrd[P, K]{e.Priority, e.Key}, e.Value) {
				return errors.New("entries out of order")
			}
			keys.setAt(e.Key, pqSlot[P, V]{e.Priority, e.Value}, h.Version)
			return nil
		}
	})
	if err != nil {
		return err
	}
	if n := keys.edit().Len(); n != count {
		return fmt.Errorf("collections: snapshot holds %d entries for %d keys", count, n)
	}
	m.keys.install(keys, v)
	m.order = order.Edit()
	m.cur.Store(&pqState[P, K, V]{v: v, order: m.order.Freeze(), keys: m.keys.load()})
	m.hist.reset(v)
	return nil
}

// state returns the current entries as inserts, and their version.
func (m *pqMachine[P, K, V]) state() (Version, iter.Seq[PQChange[P, K, V]]) {
	st := m.cur.Load()
	return st.v, func(yield func(PQChange[P, K, V]) bool) {
		btreeWalk(st.order.root, func(o pqOrd[P, K], v V) bool {
			return yield(PQChange[P, K, V]{Op: OpInsert, Priority: o.p, Key: o.k, Value: v})
		})
	}
}

// frozen returns the current state for an inspect dump.
func (m *pqMachine[P, K, V]) frozen() frozen[PQChange[P, K, V]] {
	st := m.cur.Load()
	return frozen[PQChange[P, K, V]]{v: st.v, n: st.order.Len(), after: func(last *PQChange[P, K, V]) iter.Seq[PQChange[P, K, V]] {
		all := st.order.All()
		if last != nil {
			all = st.order.After(pqOrd[P, K]{last.Priority, last.Key})
		}
		return func(yield func(PQChange[P, K, V]) bool) {
			for o, v := range all {
				if !yield(PQChange[P, K, V]{Op: OpInsert, Priority: o.p, Key: o.k, Value: v}) {
					return
				}
			}
		}
	}}
}

// pqReads are the read methods shared by PriorityQueueReader and
// PriorityQueueWriter.
type pqReads[P any, K comparable, V any] struct {
	*handle[pqCmd[P, K, V]]
	m *pqMachine[P, K, V]
}

// PriorityQueueReader follows a replicated double-ended priority queue:
// entries with unique keys, ordered by priority and, among equal
// priorities, by key (the order Map keys have), the same on every replica.
// Reads are local and lock-free. It is safe for concurrent use.
type PriorityQueueReader[P any, K comparable, V any] struct{ pqReads[P, K, V] }

// PriorityQueueWriter changes a replicated priority queue and reads it like
// a PriorityQueueReader. It is safe for concurrent use; writes issued one
// after another from one goroutine apply in that order.
type PriorityQueueWriter[P any, K comparable, V any] struct{ pqReads[P, K, V] }

// WithCapacity bounds a PriorityQueue to n entries: an insert of a new key
// into a full queue evicts its lowest entry (the first in ascending order),
// which may be the one inserted. The capacity is part of the queue's
// identity: handles of one name with different capacities never meet, as
// with different types. Other collections refuse it.
func WithCapacity(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("collections: WithCapacity(%d): must be at least 1", n)
		}
		o.capacity = n
		return nil
	}
}

func openPQ[P any, K comparable, V any](net *transport.Network, name string, writer bool, opts []Option) (pqReads[P, K, V], error) {
	o, err := resolve(opts)
	if err != nil {
		return pqReads[P, K, V]{}, err
	}
	newMachine := func(history int) *pqMachine[P, K, V] { return newPQMachine[P, K, V](history, o.capacity) }
	h, m, err := openWith[pqCmd[P, K, V]](net, inspectwire.KindPQueue, name, pqTypes[P, K, V](o.capacity), newMachine, writer, opts)
	if err != nil {
		return pqReads[P, K, V]{}, err
	}
	r := pqReads[P, K, V]{handle: h, m: m}
	if err := serve(h, m.hist, m.frozen); err != nil {
		_ = h.Close()
		return r, err
	}
	return r, nil
}

// NewPriorityQueueWriter opens the priority queue called name on net for
// writing. See WithCapacity for a bounded queue.
func NewPriorityQueueWriter[P any, K comparable, V any](net *transport.Network, name string, opts ...Option) (*PriorityQueueWriter[P, K, V], error) {
	r, err := openPQ[P, K, V](net, name, true, opts)
	if err != nil {
		return nil, err
	}
	return &PriorityQueueWriter[P, K, V]{r}, nil
}

// NewPriorityQueueReader opens the priority queue called name on net for
// reading. A bounded queue's readers need its WithCapacity too.
func NewPriorityQueueReader[P any, K comparable, V any](net *transport.Network, name string, opts ...Option) (*PriorityQueueReader[P, K, V], error) {
	r, err := openPQ[P, K, V](net, name, false, opts)
	if err != nil {
		return nil, err
	}
	return &PriorityQueueReader[P, K, V]{r}, nil
}

func (r pqReads[P, K, V]) state() *btree[pqOrd[P, K], V] { return r.m.cur.Load().order }

// Capacity returns the queue's capacity, 0 if it is unbounded.
func (r pqReads[P, K, V]) Capacity() int { return r.m.capacity }

// Len returns the number of entries.
func (r pqReads[P, K, V]) Len() int { return r.state().Len() }

// IsEmpty reports whether the queue has no entries.
func (r pqReads[P, K, V]) IsEmpty() bool { return r.state().Len() == 0 }

// ContainsKey reports whether key is in the queue.
func (r pqReads[P, K, V]) ContainsKey(key K) bool {
	_, ok := r.slot(key)
	return ok
}

// Get returns key's value and priority, and whether key is in the queue.
func (r pqReads[P, K, V]) Get(key K) (V, P, bool) {
	s, ok := r.slot(key)
	return s.v, s.p, ok
}

// slot reads key from the key index of the state the other reads see.
// Publish stores a batch's key index before its order, so the index may be
// a newer batch's for a moment; at the same version it may be newer only
// by the hash index built for it since.
func (r pqReads[P, K, V]) slot(key K) (pqSlot[P, V], bool) {
	st := r.m.cur.Load()
	ks := r.m.keys.load()
	if ks.v != st.keys.v {
		ks = st.keys
	}
	return r.m.keys.getIn(ks, key)
}

func (r pqReads[P, K, V]) end(last bool) (PQEntry[P, K, V], bool) {
	o, v, ok := btreeEnd(r.state().root, last)
	return PQEntry[P, K, V]{Priority: o.p, Key: o.k, Value: v}, ok
}

// Min returns the first entry: the lowest priority, and among entries of
// that priority the lowest key. ok is false for an empty queue.
func (r pqReads[P, K, V]) Min() (PQEntry[P, K, V], bool) { return r.end(false) }

// Max returns the last entry: the highest priority, and among entries of
// that priority the highest key.
func (r pqReads[P, K, V]) Max() (PQEntry[P, K, V], bool) { return r.end(true) }

// MinPriority returns the lowest priority in the queue.
func (r pqReads[P, K, V]) MinPriority() (P, bool) {
	e, ok := r.end(false)
	return e.Priority, ok
}

// MaxPriority returns the highest priority in the queue.
func (r pqReads[P, K, V]) MaxPriority() (P, bool) {
	e, ok := r.end(true)
	return e.Priority, ok
}

// All iterates over the entries in ascending order (priority, then key),
// over the state as it was when All was called.
func (r pqReads[P, K, V]) All() iter.Seq[PQEntry[P, K, V]] {
	st := r.state()
	return func(yield func(PQEntry[P, K, V]) bool) {
		btreeWalk(st.root, func(o pqOrd[P, K], v V) bool {
			return yield(PQEntry[P, K, V]{Priority: o.p, Key: o.k, Value: v})
		})
	}
}

// Backward iterates over the entries in descending order, as All does the
// other way.
func (r pqReads[P, K, V]) Backward() iter.Seq[PQEntry[P, K, V]] {
	st := r.state()
	return func(yield func(PQEntry[P, K, V]) bool) {
		btreeDescend(st.cmp, st.root, keyBounds[pqOrd[P, K]]{}, func(o pqOrd[P, K], v V) bool {
			return yield(PQEntry[P, K, V]{Priority: o.p, Key: o.k, Value: v})
		})
	}
}

// Watch streams the queue's changes in version order, every change of one
// command in one event, until ctx ends or the handle closes (the sequence
// then yields the error and stops). With WithInitial the entries come
// first as OpInserts, in ascending order. See FromVersion.
func (r pqReads[P, K, V]) Watch(ctx context.Context, opts ...WatchOption) iter.Seq2[Event[PQChange[P, K, V]], error] {
	return watch(ctx, r.g.Done(), r.m.hist, r.m.version, r.m.state, opts)
}

// checkEntry checks a priority, key and value against the limits (the
// priority as a key) and returns their encoded size.
func checkEntry[P, K, V any](p *P, key K, value *V) (int, error) {
	n, err := checkKV(key, value)
	if err != nil || p == nil {
		return n, err
	}
	m, err := checkSize("priority", *p, MaxKeySize)
	return n + m, err
}

// replyEntry decodes the entry a reply holds: what a pop removed or an
// insert evicted.
func replyEntry[P, K, V any](r reply) ([]PQEntry[P, K, V], error) {
	if len(r.Value) == 0 {
		return nil, nil
	}
	var e pqEntryWire[P, K, V]
	if err := rsm.Unmarshal(r.Value, &e); err != nil {
		return nil, fmt.Errorf("collections: decode a reply's entry: %w", err)
	}
	return []PQEntry[P, K, V]{{Priority: e.Priority, Key: e.Key, Value: e.Value}}, nil
}

// Insert sets key's priority and value, moving it if it was there. In a
// bounded queue that is full, inserting a new key evicts the lowest entry,
// which may be this one: evicted holds it (nil otherwise). It returns
// once this node applied the write.
func (w *PriorityQueueWriter[P, K, V]) Insert(ctx context.Context, priority P, key K, value V) (v Version, evicted []PQEntry[P, K, V], err error) {
	if _, err := checkEntry(&priority, key, &value); err != nil {
		return 0, nil, err
	}
	v, r, err := w.execute1(ctx, pqCmd[P, K, V]{Op: pqInsert, Key: key, Priority: &priority, Value: &value})
	if err != nil {
		return v, nil, err
	}
	evicted, err = replyEntry[P, K, V](r)
	return v, evicted, err
}

// Extend inserts entries in order, as Insert does each, so a later
// duplicate key wins; evicted holds what a bounded queue evicted, in the
// order it did. Up to groups.MaxBatchCommands entries apply as one
// unbroken run; longer sequences apply in several runs. An empty sequence
// writes nothing and returns the current version. With an error, evicted
// holds the evictions of the runs that applied here before it.
func (w *PriorityQueueWriter[P, K, V]) Extend(ctx context.Context, entries iter.Seq[PQEntry[P, K, V]]) (v Version, evicted []PQEntry[P, K, V], err error) {
	var bad error
	v, err = w.extendReplies(ctx, func(yield func(pqCmd[P, K, V], int, error) bool) {
		for e := range entries {
			n, err := checkEntry(&e.Priority, e.Key, &e.Value)
			if !yield(pqCmd[P, K, V]{Op: pqInsert, Key: e.Key, Priority: &e.Priority, Value: &e.Value}, n, err) {
				return
			}
		}
	}, func(r groups.Reply[reply]) {
		es, err := replyEntry[P, K, V](r.Value)
		if err != nil {
			bad = err
		}
		evicted = append(evicted, es...)
	})
	if err == nil {
		err = bad
	}
	return v, evicted, err
}

// UpdatePriority moves key to priority, keeping its value. The bool
// reports whether key was there; either way the write has a version.
func (w *PriorityQueueWriter[P, K, V]) UpdatePriority(ctx context.Context, key K, priority P) (Version, bool, error) {
	if _, err := checkEntry[P, K, V](&priority, key, nil); err != nil {
		return 0, false, err
	}
	v, r, err := w.execute1(ctx, pqCmd[P, K, V]{Op: pqUpdatePriority, Key: key, Priority: &priority})
	return v, r.Applied, err
}

// UpdateValue sets key's value, keeping its priority. The bool reports
// whether key was there.
func (w *PriorityQueueWriter[P, K, V]) UpdateValue(ctx context.Context, key K, value V) (Version, bool, error) {
	if _, err := checkKV(key, &value); err != nil {
		return 0, false, err
	}
	v, r, err := w.execute1(ctx, pqCmd[P, K, V]{Op: pqUpdateValue, Key: key, Value: &value})
	return v, r.Applied, err
}

// CompareExchangeValue sets key's value to replacement, keeping its
// priority, if key is there with a value that encodes to the same bytes as
// expected, atomically; a nil replacement removes the key. The bool
// reports whether it applied; a missing key never matches.
func (w *PriorityQueueWriter[P, K, V]) CompareExchangeValue(ctx context.Context, key K, expected V, replacement *V) (Version, bool, error) {
	if _, err := checkKV(key, &expected); err != nil {
		return 0, false, err
	}
	if err := checkValue(replacement); err != nil {
		return 0, false, err
	}
	v, r, err := w.execute1(ctx, pqCmd[P, K, V]{Op: pqCAS, Key: key, Value: replacement, Expected: &expected})
	return v, r.Applied, err
}

// Remove deletes key. Removing a missing key changes nothing and still
// returns a version.
func (w *PriorityQueueWriter[P, K, V]) Remove(ctx context.Context, key K) (Version, error) {
	if _, err := checkKV[K, V](key, nil); err != nil {
		return 0, err
	}
	v, _, err := w.execute1(ctx, pqCmd[P, K, V]{Op: pqRemove, Key: key})
	return v, err
}

// RemoveKeys deletes every key of keys, in runs as Extend applies its
// entries. Missing keys are skipped; an empty sequence writes nothing and
// returns the current version.
func (w *PriorityQueueWriter[P, K, V]) RemoveKeys(ctx context.Context, keys iter.Seq[K]) (Version, error) {
	return w.extend(ctx, func(yield func(pqCmd[P, K, V], int, error) bool) {
		for k := range keys {
			n, err := checkKV[K, V](k, nil)
			if !yield(pqCmd[P, K, V]{Op: pqRemove, Key: k}, n, err) {
				return
			}
		}
	})
}

// RemoveRange deletes every entry whose priority lies between lo and hi,
// each end Inclusive, Exclusive or Unbounded, in one command. Both
// Unbounded is Clear.
func (w *PriorityQueueWriter[P, K, V]) RemoveRange(ctx context.Context, lo, hi Bound[P]) (Version, error) {
	var ends uint8
	if lo.kind == boundExcl {
		ends |= pqLoExcl
	}
	if hi.kind == boundExcl {
		ends |= pqHiExcl
	}
	for _, b := range []*P{lo.ptr(), hi.ptr()} {
		if b != nil {
			if _, err := checkSize("priority", *b, MaxKeySize); err != nil {
				return 0, err
			}
		}
	}
	v, _, err := w.execute1(ctx, pqCmd[P, K, V]{Op: pqRemoveRange, Lo: lo.ptr(), Hi: hi.ptr(), Ends: ends})
	return v, err
}

// Clear removes every entry.
func (w *PriorityQueueWriter[P, K, V]) Clear(ctx context.Context) (Version, error) {
	v, _, err := w.execute1(ctx, pqCmd[P, K, V]{Op: pqClear})
	return v, err
}

// PopMin removes the first entry (see Min) and returns it; ErrEmpty if
// the queue was empty, which changes nothing (the write still has a
// version), as VecWriter.PopFront.
func (w *PriorityQueueWriter[P, K, V]) PopMin(ctx context.Context) (PQEntry[P, K, V], Version, error) {
	return w.pop(ctx, pqPopMin)
}

// PopMax removes the last entry (see Max) and returns it, as PopMin does.
func (w *PriorityQueueWriter[P, K, V]) PopMax(ctx context.Context) (PQEntry[P, K, V], Version, error) {
	return w.pop(ctx, pqPopMax)
}

func (w *PriorityQueueWriter[P, K, V]) pop(ctx context.Context, op uint8) (PQEntry[P, K, V], Version, error) {
	v, r, err := w.execute1(ctx, pqCmd[P, K, V]{Op: op})
	if err == nil {
		err = r.err()
	}
	if err != nil {
		return PQEntry[P, K, V]{}, v, err
	}
	es, err := replyEntry[P, K, V](r)
	if err == nil && len(es) == 0 {
		err = errors.New("collections: a pop's reply holds no entry")
	}
	if err != nil {
		return PQEntry[P, K, V]{}, v, err
	}
	return es[0], v, nil
}

// Outcome tells what became of a write of this writer that failed with
// ErrOutcomeUnknown, as MapWriter.Outcome does.
func (w *PriorityQueueWriter[P, K, V]) Outcome(ctx context.Context, id WriteID) (Version, bool, error) {
	return w.outcome(ctx, id)
}
