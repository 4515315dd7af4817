package collections

import (
	"context"
	"io"
	"iter"
	"sync/atomic"

	"github.com/benbjohnson/immutable"

	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// SetChange is one change to a Set, as Watch reports it.
type SetChange[T comparable] struct {
	Op    Op // OpInsert, OpRemove or OpClear
	Value T
}

const (
	setInsert uint8 = 1 + iota
	setRemove
	setClear
)

type setCmd[T comparable] struct {
	_     struct{} `cbor:",toarray"`
	Op    uint8
	Value T
}

type setState[T comparable] struct {
	v Version
	s *btree[T, struct{}]
}

// setMachine is the Set's state machine over a persistent sorted tree.
type setMachine[T comparable] struct {
	sig  string
	cmp  immutable.Comparer[T]
	cur  atomic.Pointer[setState[T]]
	hist *history[SetChange[T]]

	// Apply's working state, published once per batch.
	work  *btreeEditor[T, struct{}]
	stage stage[SetChange[T]]
}

func newSetMachine[T comparable](history int) *setMachine[T] {
	m := &setMachine[T]{
		sig:  "mosaik.collections.set.v1[" + typeName[T]() + "]",
		cmp:  comparerFor[T](),
		hist: newHistory[SetChange[T]](history),
	}
	m.work = newBTree[T, struct{}](m.cmp).Edit()
	m.cur.Store(&setState[T]{s: m.work.Freeze()})
	return m
}

func (m *setMachine[T]) Signature() string                         { return m.sig }
func (m *setMachine[T]) Apply(cmd setCmd[T], ctx rsm.ApplyContext) { m.ApplyReply(cmd, ctx) }
func (m *setMachine[T]) Query(struct{}) reply                      { return reply{} }
func (m *setMachine[T]) version() Version                          { return m.cur.Load().v }

// ApplyReply implements rsm.Replier.
func (m *setMachine[T]) ApplyReply(cmd setCmd[T], ctx rsm.ApplyContext) any {
	v := Version(ctx.LogPosition().Index)
	s := m.work
	var changes []SetChange[T]
	_, present := s.Get(cmd.Value)
	switch cmd.Op {
	case setInsert:
		if !present {
			s.Set(cmd.Value, struct{}{})
			changes = []SetChange[T]{{Op: OpInsert, Value: cmd.Value}}
		}
	case setRemove:
		if present {
			s.Delete(cmd.Value)
			changes = []SetChange[T]{{Op: OpRemove, Value: cmd.Value}}
		}
	case setClear:
		if s.Len() > 0 {
			s.Clear()
			changes = []SetChange[T]{{Op: OpClear}}
		}
	}
	m.stage.applied(v, changes)
	return reply{Applied: true}
}

// Publish implements rsm.Publisher.
func (m *setMachine[T]) Publish() {
	if m.stage.pending() {
		m.cur.Store(&setState[T]{v: m.stage.v, s: m.work.Freeze()})
		m.stage.flush(m.hist)
	}
}

// Snapshot implements rsm.Snapshotter.
func (m *setMachine[T]) Snapshot() (rsm.Snapshot, error) {
	st := m.cur.Load()
	return snapshotFunc(func(w io.Writer) error {
		return writeSnapshot(w, st.v, st.s.Len(), func(sw *snapshotWriter) error {
			for x := range st.s.All() {
				if err := writeField(sw, x); err != nil {
					return err
				}
				sw.records++
			}
			return nil
		})
	}), nil
}

// Restore implements rsm.Snapshotter.
func (m *setMachine[T]) Restore(r io.Reader) error {
	b := newTreeLoader[T, struct{}](m.cmp)
	v, err := readSnapshot(r, func(sr *snapshotReader) error {
		var x T
		if err := readField(sr, &x); err != nil {
			return err
		}
		b.set(x, struct{}{})
		return nil
	})
	if err != nil {
		return err
	}
	m.work = b.edit()
	m.cur.Store(&setState[T]{v: v, s: m.work.Freeze()})
	m.hist.reset(v)
	return nil
}

type setReads[T comparable] struct {
	*handle[setCmd[T]]
	m *setMachine[T]
}

// SetReader follows a replicated set. It is safe for concurrent use.
type SetReader[T comparable] struct{ setReads[T] }

// SetWriter changes a replicated set and reads it like a SetReader. It is
// safe for concurrent use.
type SetWriter[T comparable] struct{ setReads[T] }

func openSet[T comparable](net *transport.Network, name string, writer bool, opts []Option) (setReads[T], error) {
	h, m, err := openWith[setCmd[T]](net, inspectwire.KindSet, name, typeName[T](), newSetMachine[T], writer, opts)
	if err != nil {
		return setReads[T]{}, err
	}
	r := setReads[T]{handle: h, m: m}
	if err := serve(h, m.hist, m.frozen); err != nil {
		_ = h.Close()
		return r, err
	}
	return r, nil
}

// NewSetWriter opens the set called name on net for writing.
func NewSetWriter[T comparable](net *transport.Network, name string, opts ...Option) (*SetWriter[T], error) {
	r, err := openSet[T](net, name, true, opts)
	if err != nil {
		return nil, err
	}
	return &SetWriter[T]{r}, nil
}

// NewSetReader opens the set called name on net for reading.
func NewSetReader[T comparable](net *transport.Network, name string, opts ...Option) (*SetReader[T], error) {
	r, err := openSet[T](net, name, false, opts)
	if err != nil {
		return nil, err
	}
	return &SetReader[T]{r}, nil
}

func (r setReads[T]) state() *btree[T, struct{}] { return r.m.cur.Load().s }

// Len returns the number of elements.
func (r setReads[T]) Len() int { return r.state().Len() }

// IsEmpty reports whether the set has no elements.
func (r setReads[T]) IsEmpty() bool { return r.state().Len() == 0 }

// Contains reports whether x is in the set.
func (r setReads[T]) Contains(x T) bool {
	_, ok := r.state().Get(x)
	return ok
}

// IsSubset reports whether every element of this set is in other.
func (r setReads[T]) IsSubset(other interface{ Contains(T) bool }) bool {
	for x := range r.All() {
		if !other.Contains(x) {
			return false
		}
	}
	return true
}

// All iterates over the elements in order, the same on every replica.
func (r setReads[T]) All() iter.Seq[T] {
	s := r.state()
	return func(yield func(T) bool) {
		for x := range s.All() {
			if !yield(x) {
				return
			}
		}
	}
}

// Watch streams the set's changes; see MapReader.Watch.
func (r setReads[T]) Watch(ctx context.Context, opts ...WatchOption) iter.Seq2[Event[SetChange[T]], error] {
	return watch(ctx, r.g.Done(), r.m.hist, r.m.version, r.m.state, opts)
}

func (w *SetWriter[T]) write(ctx context.Context, cmd setCmd[T]) (Version, error) {
	if _, err := checkSize("element", cmd.Value, MaxValueSize); err != nil {
		return 0, err
	}
	v, _, err := w.execute1(ctx, cmd)
	return v, err
}

// Insert adds x; inserting an element already present changes nothing.
func (w *SetWriter[T]) Insert(ctx context.Context, x T) (Version, error) {
	return w.write(ctx, setCmd[T]{Op: setInsert, Value: x})
}

// Remove deletes x; removing a missing element changes nothing.
func (w *SetWriter[T]) Remove(ctx context.Context, x T) (Version, error) {
	return w.write(ctx, setCmd[T]{Op: setRemove, Value: x})
}

// Clear removes every element.
func (w *SetWriter[T]) Clear(ctx context.Context) (Version, error) {
	v, _, err := w.execute1(ctx, setCmd[T]{Op: setClear})
	return v, err
}

// Extend inserts every element of xs; see MapWriter.Extend.
func (w *SetWriter[T]) Extend(ctx context.Context, xs iter.Seq[T]) (Version, error) {
	return w.extend(ctx, func(yield func(setCmd[T], int, error) bool) {
		for x := range xs {
			n, err := checkSize("element", x, MaxValueSize)
			if !yield(setCmd[T]{Op: setInsert, Value: x}, n, err) {
				return
			}
		}
	})
}

// state returns the current state as inserts, and its version.
func (m *setMachine[T]) state() (Version, iter.Seq[SetChange[T]]) {
	st := m.cur.Load()
	return st.v, func(yield func(SetChange[T]) bool) {
		for x := range st.s.All() {
			if !yield(SetChange[T]{Op: OpInsert, Value: x}) {
				return
			}
		}
	}
}

// frozen returns the current state for an inspect dump.
func (m *setMachine[T]) frozen() frozen[SetChange[T]] {
	st := m.cur.Load()
	return frozen[SetChange[T]]{v: st.v, n: st.s.Len(), after: func(last *SetChange[T]) iter.Seq[SetChange[T]] {
		all := st.s.All()
		if last != nil {
			all = st.s.After(last.Value)
		}
		return func(yield func(SetChange[T]) bool) {
			for x := range all {
				if !yield(SetChange[T]{Op: OpInsert, Value: x}) {
					return
				}
			}
		}
	}}
}

// Outcome tells what became of a write of this writer that failed with
// ErrOutcomeUnknown, as MapWriter.Outcome does.
func (w *SetWriter[T]) Outcome(ctx context.Context, id WriteID) (Version, bool, error) {
	return w.outcome(ctx, id)
}
