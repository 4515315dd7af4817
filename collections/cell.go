package collections

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"sync/atomic"

	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// CellChange is one change to a Cell or a Once, as Watch reports it.
type CellChange[T any] struct {
	Op    Op // OpInsert (the value was set) or OpClear
	Value T  // the new value, for OpInsert
}

// wire carries the value on inserts.
func (c CellChange[T]) wire() (w inspectwire.Change, err error) {
	w.Op = c.Op.wire()
	if c.Op == OpInsert {
		w.Value, err = rsm.Marshal(c.Value)
	}
	return w, err
}

const (
	cellSet uint8 = 1 + iota
	cellClear
	cellCAS
)

// cellCmd is a Cell command as it travels in the log.
type cellCmd[T any] struct {
	_        struct{} `cbor:",toarray"`
	Op       uint8
	Value    *T // set: the value; compare-exchange: the replacement, nil for empty
	Expected *T // compare-exchange: the expected value, nil for empty
}

// slotState is the published state of a Cell or a Once: immutable, shared
// by every reader.
type slotState[T any] struct {
	v   Version
	val T
	ok  bool
}

// slotMachine is the part of the Cell's and the Once's machines that holds
// one optional value: its published state, history, snapshot and the
// state Apply works on. Apply runs on the group's apply goroutine only, so
// the working state needs no lock; readers load the published state
// atomically.
type slotMachine[T any] struct {
	sig   string
	magic string // the snapshot format's
	cur   atomic.Pointer[slotState[T]]
	hist  *history[CellChange[T]]

	// Apply's working state, published once per batch.
	val   T
	ok    bool
	stage stage[CellChange[T]]
}

func (m *slotMachine[T]) init(kind, magic string, history int) {
	m.sig = "mosaik.collections." + kind + ".v1[" + typeName[T]() + "]"
	m.magic = magic
	m.hist = newHistory[CellChange[T]](history)
	m.cur.Store(&slotState[T]{})
}

func (m *slotMachine[T]) Signature() string    { return m.sig }
func (m *slotMachine[T]) Query(struct{}) reply { return reply{} }
func (m *slotMachine[T]) version() Version     { return m.cur.Load().v }

// set and clear change the working state, and record the change.
func (m *slotMachine[T]) set(x T) []CellChange[T] {
	m.val, m.ok = x, true
	return []CellChange[T]{{Op: OpInsert, Value: x}}
}

func (m *slotMachine[T]) clear() []CellChange[T] {
	if !m.ok {
		return nil
	}
	var zero T
	m.val, m.ok = zero, false
	return []CellChange[T]{{Op: OpClear}}
}

// holds reports whether the working state holds a value that encodes to
// the same bytes as x.
func (m *slotMachine[T]) holds(x T) bool {
	return m.ok && bytes.Equal(mustEncode(m.val), mustEncode(x))
}

// Publish implements rsm.Publisher.
func (m *slotMachine[T]) Publish() {
	if m.stage.pending() {
		m.cur.Store(&slotState[T]{v: m.stage.v, val: m.val, ok: m.ok})
		m.stage.flush(m.hist)
	}
}

// Snapshot implements rsm.Snapshotter: a header, then the value if there
// is one.
func (m *slotMachine[T]) Snapshot() (rsm.Snapshot, error) {
	st := m.cur.Load()
	n := 0
	if st.ok {
		n = 1
	}
	return snapshotFunc(func(w io.Writer) error {
		return writeSnapshotAs(w, m.magic, st.v, n, func(sw *snapshotWriter) error {
			if st.ok {
				sw.records++
				return writeField(sw, st.val)
			}
			return nil
		})
	}), nil
}

// Restore implements rsm.Snapshotter. A snapshot that does not read leaves
// the state as it was.
func (m *slotMachine[T]) Restore(r io.Reader) error {
	var val T
	ok := false
	v, err := readSnapshotOf(r, func(h snapshotHeader) func(*snapshotReader) error {
		if h.Magic != m.magic {
			return nil
		}
		return func(sr *snapshotReader) error {
			if ok {
				return fmt.Errorf("%d values, at most 1", h.Count)
			}
			ok = true
			return readField(sr, &val)
		}
	})
	if err != nil {
		return err
	}
	m.val, m.ok = val, ok
	m.cur.Store(&slotState[T]{v: v, val: val, ok: ok})
	m.hist.reset(v)
	return nil
}

// state returns the current state as an insert, and its version.
func (m *slotMachine[T]) state() (Version, iter.Seq[CellChange[T]]) {
	st := m.cur.Load()
	return st.v, func(yield func(CellChange[T]) bool) {
		if st.ok {
			yield(CellChange[T]{Op: OpInsert, Value: st.val})
		}
	}
}

// frozen returns the current state for an inspect dump.
func (m *slotMachine[T]) frozen() frozen[CellChange[T]] {
	st := m.cur.Load()
	n := 0
	if st.ok {
		n = 1
	}
	return frozen[CellChange[T]]{v: st.v, n: n, after: func(last *CellChange[T]) iter.Seq[CellChange[T]] {
		return func(yield func(CellChange[T]) bool) {
			if st.ok && last == nil {
				yield(CellChange[T]{Op: OpInsert, Value: st.val})
			}
		}
	}}
}

// slotReads are the read methods of Cell and Once handles.
type slotReads[C, T any] struct {
	*handle[C]
	m *slotMachine[T]
}

// openSlotOf opens a Cell's or a Once's handle on the machine newMachine
// makes, and serves inspect for it.
func openSlotOf[C, T any, M interface {
	stateMachine[C]
	slot() *slotMachine[T]
}](net *transport.Network, kind, name string, newMachine func(history int) M, writer bool, opts []Option) (slotReads[C, T], error) {
	h, m, err := openWith[C](net, kind, name, typeName[T](), newMachine, writer, opts)
	if err != nil {
		return slotReads[C, T]{}, err
	}
	s := m.slot()
	r := slotReads[C, T]{handle: h, m: s}
	if err := serve(h, s.hist, s.frozen); err != nil {
		_ = h.Close()
		return r, err
	}
	return r, nil
}

// Get returns the value, and false if there is none.
func (r slotReads[C, T]) Get() (T, bool) {
	st := r.m.cur.Load()
	return st.val, st.ok
}

// IsEmpty reports whether there is no value.
func (r slotReads[C, T]) IsEmpty() bool { return !r.m.cur.Load().ok }

// Watch streams the changes in version order, until ctx ends or the handle
// closes (the sequence then yields the error and stops). With WithInitial
// the current value, if any, comes first as one OpInsert. See FromVersion.
func (r slotReads[C, T]) Watch(ctx context.Context, opts ...WatchOption) iter.Seq2[Event[CellChange[T]], error] {
	return watch(ctx, r.g.Done(), r.m.hist, r.m.version, r.m.state, opts)
}

// cellMachine is the Cell's state machine.
type cellMachine[T any] struct{ slotMachine[T] }

func newCellMachine[T any](history int) *cellMachine[T] {
	m := &cellMachine[T]{}
	m.init(inspectwire.KindCell, cellSnapshotMagic, history)
	return m
}

// cellSnapshotMagic names the Cell's snapshot format: the header, then
// the value as one record if there is one.
const cellSnapshotMagic = "mosaik.cell.v1"

func (m *cellMachine[T]) slot() *slotMachine[T]                      { return &m.slotMachine }
func (m *cellMachine[T]) Apply(cmd cellCmd[T], ctx rsm.ApplyContext) { m.ApplyReply(cmd, ctx) }

// ApplyReply implements rsm.Replier. A command whose fields make no sense
// (a set without a value, an unknown op) changes nothing.
func (m *cellMachine[T]) ApplyReply(cmd cellCmd[T], ctx rsm.ApplyContext) any {
	v := Version(ctx.LogPosition().Index)
	var changes []CellChange[T]
	r := reply{Applied: true}
	switch cmd.Op {
	case cellSet:
		if cmd.Value != nil {
			changes = m.set(*cmd.Value)
		}
	case cellClear:
		changes = m.clear()
	case cellCAS:
		if cmd.Expected == nil {
			r.Applied = !m.ok
		} else {
			r.Applied = m.holds(*cmd.Expected)
		}
		if r.Applied {
			if cmd.Value != nil {
				changes = m.set(*cmd.Value)
			} else {
				changes = m.clear()
			}
		}
	}
	m.stage.applied(v, changes)
	return r
}

// CellReader follows a replicated cell: one value, or none. Reads are
// local and lock-free. It is safe for concurrent use.
type CellReader[T any] struct{ slotReads[cellCmd[T], T] }

// CellWriter changes a replicated cell and reads it like a CellReader. It
// is safe for concurrent use.
type CellWriter[T any] struct{ slotReads[cellCmd[T], T] }

// NewCellWriter opens the cell called name on net for writing.
func NewCellWriter[T any](net *transport.Network, name string, opts ...Option) (*CellWriter[T], error) {
	r, err := openSlotOf[cellCmd[T], T](net, inspectwire.KindCell, name, newCellMachine[T], true, opts)
	if err != nil {
		return nil, err
	}
	return &CellWriter[T]{r}, nil
}

// NewCellReader opens the cell called name on net for reading.
func NewCellReader[T any](net *transport.Network, name string, opts ...Option) (*CellReader[T], error) {
	r, err := openSlotOf[cellCmd[T], T](net, inspectwire.KindCell, name, newCellMachine[T], false, opts)
	if err != nil {
		return nil, err
	}
	return &CellReader[T]{r}, nil
}

// checkValue checks a value, if any, against MaxValueSize.
func checkValue[T any](x *T) error {
	if x == nil {
		return nil
	}
	_, err := checkSize("value", *x, MaxValueSize)
	return err
}

// Set sets the value. It returns once this node applied the write.
func (w *CellWriter[T]) Set(ctx context.Context, x T) (Version, error) {
	if err := checkValue(&x); err != nil {
		return 0, err
	}
	v, _, err := w.execute1(ctx, cellCmd[T]{Op: cellSet, Value: &x})
	return v, err
}

// Clear removes the value. Clearing an empty cell changes nothing and
// still returns a version.
func (w *CellWriter[T]) Clear(ctx context.Context) (Version, error) {
	v, _, err := w.execute1(ctx, cellCmd[T]{Op: cellClear})
	return v, err
}

// CompareExchange sets the value to replacement if the current value
// encodes to the same bytes as expected, atomically. nil means empty: a nil
// expected matches an empty cell, a nil replacement clears it. The bool
// reports whether it applied; either way the write has a version.
func (w *CellWriter[T]) CompareExchange(ctx context.Context, expected, replacement *T) (Version, bool, error) {
	if err := checkValue(expected); err != nil {
		return 0, false, err
	}
	if err := checkValue(replacement); err != nil {
		return 0, false, err
	}
	v, r, err := w.execute1(ctx, cellCmd[T]{Op: cellCAS, Value: replacement, Expected: expected})
	return v, r.Applied, err
}

// Outcome tells what became of a write of this writer that failed with
// ErrOutcomeUnknown, as MapWriter.Outcome does.
func (w *CellWriter[T]) Outcome(ctx context.Context, id WriteID) (Version, bool, error) {
	return w.outcome(ctx, id)
}
