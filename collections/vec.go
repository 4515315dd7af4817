package collections

import (
	"bytes"
	"context"
	"io"
	"iter"
	"sync/atomic"

	"github.com/benbjohnson/immutable"

	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// VecChange is one change to a Vec, as Watch reports it.
type VecChange[T any] struct {
	Op    Op  // OpInsert, OpRemove, OpSet, OpTruncate or OpClear
	Index int // where; for OpTruncate, the new length
	Value T   // for OpInsert and OpSet
}

const (
	vecPushBack uint8 = 1 + iota
	vecPushFront
	vecInsert
	vecPopBack
	vecPopFront
	vecRemove
	vecSwap
	vecTruncate
	vecClear
)

type vecCmd[T any] struct {
	_     struct{} `cbor:",toarray"`
	Op    uint8
	I, J  int
	Value *T
}

type vecState[T any] struct {
	v Version
	l *immutable.List[T]
}

// vecMachine is the Vec's state machine over a persistent list. Access by
// index, push and pop at either end, swap and truncate cost O(log n);
// inserting or removing in the middle rebuilds the tail, O(n).
type vecMachine[T any] struct {
	sig  string
	cur  atomic.Pointer[vecState[T]]
	hist *history[VecChange[T]]

	// Apply's working state, published once per batch.
	work  *immutable.List[T]
	stage stage[VecChange[T]]
}

func newVecMachine[T any](history int) *vecMachine[T] {
	m := &vecMachine[T]{
		sig:  "mosaik.collections.vec.v1[" + typeName[T]() + "]",
		hist: newHistory[VecChange[T]](history),
	}
	m.work = immutable.NewList[T]()
	m.cur.Store(&vecState[T]{l: m.work})
	return m
}

func (m *vecMachine[T]) Signature() string                         { return m.sig }
func (m *vecMachine[T]) Apply(cmd vecCmd[T], ctx rsm.ApplyContext) { m.ApplyReply(cmd, ctx) }
func (m *vecMachine[T]) Query(struct{}) reply                      { return reply{} }
func (m *vecMachine[T]) version() Version                          { return m.cur.Load().v }

// ApplyReply implements rsm.Replier.
func (m *vecMachine[T]) ApplyReply(cmd vecCmd[T], ctx rsm.ApplyContext) any {
	v := Version(ctx.LogPosition().Index)
	l := m.work
	n := l.Len()
	var changes []VecChange[T]
	r := reply{Applied: true}
	refuse := func(code uint8) { r = reply{Code: code} }
	value := func() T {
		if cmd.Value == nil {
			var zero T
			return zero
		}
		return *cmd.Value
	}
	switch cmd.Op {
	case vecPushBack:
		l = l.Append(value())
		changes = []VecChange[T]{{Op: OpInsert, Index: n, Value: value()}}
	case vecPushFront:
		l = l.Prepend(value())
		changes = []VecChange[T]{{Op: OpInsert, Index: 0, Value: value()}}
	case vecInsert:
		if cmd.I < 0 || cmd.I > n {
			refuse(codeOutOfRange)
			break
		}
		l = insertAt(l, cmd.I, value())
		changes = []VecChange[T]{{Op: OpInsert, Index: cmd.I, Value: value()}}
	case vecPopBack, vecPopFront:
		if n == 0 {
			refuse(codeEmpty)
			break
		}
		i := 0
		if cmd.Op == vecPopBack {
			i = n - 1
		}
		r.Value = mustEncode(l.Get(i))
		l = removeAt(l, i)
		changes = []VecChange[T]{{Op: OpRemove, Index: i}}
	case vecRemove:
		if cmd.I < 0 || cmd.I >= n {
			refuse(codeOutOfRange)
			break
		}
		r.Value = mustEncode(l.Get(cmd.I))
		l = removeAt(l, cmd.I)
		changes = []VecChange[T]{{Op: OpRemove, Index: cmd.I}}
	case vecSwap:
		if cmd.I < 0 || cmd.I >= n || cmd.J < 0 || cmd.J >= n {
			refuse(codeOutOfRange)
			break
		}
		if cmd.I != cmd.J {
			a, b := l.Get(cmd.I), l.Get(cmd.J)
			l = l.Set(cmd.I, b).Set(cmd.J, a)
			changes = []VecChange[T]{{Op: OpSet, Index: cmd.I, Value: b}, {Op: OpSet, Index: cmd.J, Value: a}}
		}
	case vecTruncate:
		if cmd.I < 0 {
			refuse(codeOutOfRange)
			break
		}
		if cmd.I < n {
			l = l.Slice(0, cmd.I)
			changes = []VecChange[T]{{Op: OpTruncate, Index: cmd.I}}
		}
	case vecClear:
		if n > 0 {
			l = immutable.NewList[T]()
			changes = []VecChange[T]{{Op: OpClear}}
		}
	}
	m.work = l
	m.stage.applied(v, changes)
	return r
}

// Publish implements rsm.Publisher.
func (m *vecMachine[T]) Publish() {
	if m.stage.pending() {
		m.cur.Store(&vecState[T]{v: m.stage.v, l: m.work})
		m.stage.flush(m.hist)
	}
}

func insertAt[T any](l *immutable.List[T], i int, v T) *immutable.List[T] {
	switch i {
	case 0:
		return l.Prepend(v)
	case l.Len():
		return l.Append(v)
	}
	out := l.Slice(0, i).Append(v)
	for it := iterFrom(l, i); !it.Done(); {
		_, x := it.Next()
		out = out.Append(x)
	}
	return out
}

func removeAt[T any](l *immutable.List[T], i int) *immutable.List[T] {
	n := l.Len()
	switch i {
	case 0:
		return l.Slice(1, n)
	case n - 1:
		return l.Slice(0, n-1)
	}
	out := l.Slice(0, i)
	for it := iterFrom(l, i+1); !it.Done(); {
		_, x := it.Next()
		out = out.Append(x)
	}
	return out
}

func iterFrom[T any](l *immutable.List[T], i int) *immutable.ListIterator[T] {
	it := l.Iterator()
	it.Seek(i)
	return it
}

// Snapshot implements rsm.Snapshotter.
func (m *vecMachine[T]) Snapshot() (rsm.Snapshot, error) {
	st := m.cur.Load()
	return snapshotFunc(func(w io.Writer) error {
		return writeSnapshot(w, st.v, st.l.Len(), func(sw *snapshotWriter) error {
			for it := st.l.Iterator(); !it.Done(); {
				_, x := it.Next()
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
func (m *vecMachine[T]) Restore(r io.Reader) error {
	b := immutable.NewListBuilder[T]()
	v, err := readSnapshot(r, func(sr *snapshotReader) error {
		var x T
		if err := readField(sr, &x); err != nil {
			return err
		}
		b.Append(x)
		return nil
	})
	if err != nil {
		return err
	}
	m.work = b.List()
	m.cur.Store(&vecState[T]{v: v, l: m.work})
	m.hist.reset(v)
	return nil
}

type vecReads[T any] struct {
	*handle[vecCmd[T]]
	m *vecMachine[T]
}

// VecReader follows a replicated vector. It is safe for concurrent use.
type VecReader[T any] struct{ vecReads[T] }

// VecWriter changes a replicated vector and reads it like a VecReader. It
// is safe for concurrent use.
type VecWriter[T any] struct{ vecReads[T] }

func openVec[T any](net *transport.Network, name string, writer bool, opts []Option) (vecReads[T], error) {
	h, m, err := openWith[vecCmd[T]](net, inspectwire.KindVec, name, typeName[T](), newVecMachine[T], writer, opts)
	if err != nil {
		return vecReads[T]{}, err
	}
	r := vecReads[T]{handle: h, m: m}
	if err := serve(h, m.hist, m.frozen); err != nil {
		_ = h.Close()
		return r, err
	}
	return r, nil
}

// NewVecWriter opens the vector called name on net for writing.
func NewVecWriter[T any](net *transport.Network, name string, opts ...Option) (*VecWriter[T], error) {
	r, err := openVec[T](net, name, true, opts)
	if err != nil {
		return nil, err
	}
	return &VecWriter[T]{r}, nil
}

// NewVecReader opens the vector called name on net for reading.
func NewVecReader[T any](net *transport.Network, name string, opts ...Option) (*VecReader[T], error) {
	r, err := openVec[T](net, name, false, opts)
	if err != nil {
		return nil, err
	}
	return &VecReader[T]{r}, nil
}

func (r vecReads[T]) state() *immutable.List[T] { return r.m.cur.Load().l }

// Len returns the number of elements.
func (r vecReads[T]) Len() int { return r.state().Len() }

// IsEmpty reports whether the vector has no elements.
func (r vecReads[T]) IsEmpty() bool { return r.state().Len() == 0 }

// Get returns the element at i, or false if i is out of range.
func (r vecReads[T]) Get(i int) (T, bool) {
	l := r.state()
	if i < 0 || i >= l.Len() {
		var zero T
		return zero, false
	}
	return l.Get(i), true
}

// Front returns the first element.
func (r vecReads[T]) Front() (T, bool) { return r.Get(0) }

// Back returns the last element.
func (r vecReads[T]) Back() (T, bool) {
	l := r.state()
	if l.Len() == 0 {
		var zero T
		return zero, false
	}
	return l.Get(l.Len() - 1), true
}

// Contains reports whether an element encodes to the same bytes as x. It
// scans the vector.
func (r vecReads[T]) Contains(x T) bool {
	_, ok := r.IndexOf(x)
	return ok
}

// IndexOf returns the first index whose element encodes to the same bytes
// as x. It scans the vector.
func (r vecReads[T]) IndexOf(x T) (int, bool) {
	want := mustEncode(x)
	for i, v := range r.All() {
		if bytes.Equal(mustEncode(v), want) {
			return i, true
		}
	}
	return -1, false
}

// All iterates over the elements in order, over the state as it was when
// All was called.
func (r vecReads[T]) All() iter.Seq2[int, T] {
	l := r.state()
	return func(yield func(int, T) bool) {
		for it := l.Iterator(); !it.Done(); {
			if !yield(it.Next()) {
				return
			}
		}
	}
}

// Watch streams the vector's changes; see MapReader.Watch.
func (r vecReads[T]) Watch(ctx context.Context, opts ...WatchOption) iter.Seq2[Event[VecChange[T]], error] {
	return watch(ctx, r.g.Done(), r.m.hist, r.m.version, r.m.state, opts)
}

func (w *VecWriter[T]) write(ctx context.Context, cmd vecCmd[T]) (Version, reply, error) {
	if cmd.Value != nil {
		if _, err := checkSize("element", *cmd.Value, MaxValueSize); err != nil {
			return 0, reply{}, err
		}
	}
	v, r, err := w.execute1(ctx, cmd)
	if err == nil {
		err = r.err()
	}
	return v, r, err
}

func (w *VecWriter[T]) writeV(ctx context.Context, cmd vecCmd[T]) (Version, error) {
	v, _, err := w.write(ctx, cmd)
	return v, err
}

// PushBack appends x.
func (w *VecWriter[T]) PushBack(ctx context.Context, x T) (Version, error) {
	return w.writeV(ctx, vecCmd[T]{Op: vecPushBack, Value: &x})
}

// PushFront prepends x.
func (w *VecWriter[T]) PushFront(ctx context.Context, x T) (Version, error) {
	return w.writeV(ctx, vecCmd[T]{Op: vecPushFront, Value: &x})
}

// Insert puts x at index i, shifting later elements; Insert(Len(), x)
// appends. An index outside [0, Len()] is ErrOutOfRange and changes nothing.
func (w *VecWriter[T]) Insert(ctx context.Context, i int, x T) (Version, error) {
	return w.writeV(ctx, vecCmd[T]{Op: vecInsert, I: i, Value: &x})
}

// Extend appends every element of xs in order; see MapWriter.Extend.
func (w *VecWriter[T]) Extend(ctx context.Context, xs iter.Seq[T]) (Version, error) {
	return w.extend(ctx, func(yield func(vecCmd[T], int, error) bool) {
		for x := range xs {
			n, err := checkSize("element", x, MaxValueSize)
			if !yield(vecCmd[T]{Op: vecPushBack, Value: &x}, n, err) {
				return
			}
		}
	})
}

func (w *VecWriter[T]) pop(ctx context.Context, op uint8) (T, Version, error) {
	var x T
	v, r, err := w.write(ctx, vecCmd[T]{Op: op})
	if err == nil {
		err = rsm.Unmarshal(r.Value, &x)
	}
	return x, v, err
}

// PopBack removes and returns the last element; ErrEmpty if there is none.
func (w *VecWriter[T]) PopBack(ctx context.Context) (T, Version, error) {
	return w.pop(ctx, vecPopBack)
}

// PopFront removes and returns the first element; ErrEmpty if there is none.
func (w *VecWriter[T]) PopFront(ctx context.Context) (T, Version, error) {
	return w.pop(ctx, vecPopFront)
}

// Remove deletes the element at i, shifting later elements. An index
// outside [0, Len()) is ErrOutOfRange and changes nothing.
func (w *VecWriter[T]) Remove(ctx context.Context, i int) (Version, error) {
	return w.writeV(ctx, vecCmd[T]{Op: vecRemove, I: i})
}

// Swap exchanges the elements at i and j; Swap(i, i) succeeds and changes
// nothing.
func (w *VecWriter[T]) Swap(ctx context.Context, i, j int) (Version, error) {
	return w.writeV(ctx, vecCmd[T]{Op: vecSwap, I: i, J: j})
}

// Truncate shortens the vector to n elements; n >= Len() changes nothing.
func (w *VecWriter[T]) Truncate(ctx context.Context, n int) (Version, error) {
	return w.writeV(ctx, vecCmd[T]{Op: vecTruncate, I: n})
}

// Clear removes every element.
func (w *VecWriter[T]) Clear(ctx context.Context) (Version, error) {
	return w.writeV(ctx, vecCmd[T]{Op: vecClear})
}

// state returns the current state as inserts, and its version.
func (m *vecMachine[T]) state() (Version, iter.Seq[VecChange[T]]) {
	st := m.cur.Load()
	return st.v, func(yield func(VecChange[T]) bool) {
		for it := st.l.Iterator(); !it.Done(); {
			i, x := it.Next()
			if !yield(VecChange[T]{Op: OpInsert, Index: i, Value: x}) {
				return
			}
		}
	}
}

// frozen returns the current state for an inspect dump.
func (m *vecMachine[T]) frozen() frozen[VecChange[T]] {
	st := m.cur.Load()
	return frozen[VecChange[T]]{v: st.v, n: st.l.Len(), after: func(last *VecChange[T]) iter.Seq[VecChange[T]] {
		return func(yield func(VecChange[T]) bool) {
			from := 0
			if last != nil {
				from = last.Index + 1
			}
			if from < 0 || from >= st.l.Len() {
				return
			}
			it := st.l.Iterator()
			it.Seek(from)
			for !it.Done() {
				i, x := it.Next()
				if !yield(VecChange[T]{Op: OpInsert, Index: i, Value: x}) {
					return
				}
			}
		}
	}}
}

// Outcome tells what became of a write of this writer that failed with
// ErrOutcomeUnknown, as MapWriter.Outcome does. It does not return what
// the write answered (a pop's value).
func (w *VecWriter[T]) Outcome(ctx context.Context, id WriteID) (Version, bool, error) {
	return w.outcome(ctx, id)
}
