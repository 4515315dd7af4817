package collections

import (
	"context"

	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// OnceChange is the one change a Once makes: an OpInsert of its value.
type OnceChange[T any] = CellChange[T]

const onceSet uint8 = 1

// onceCmd is a Once command as it travels in the log.
type onceCmd[T any] struct {
	_     struct{} `cbor:",toarray"`
	Op    uint8
	Value *T
}

// onceSnapshotMagic names the Once's snapshot format, the Cell's with its
// own name: a Once restored from a Cell's snapshot could hold a value that
// was later replaced.
const onceSnapshotMagic = "mosaik.once.v1"

// onceMachine is the Once's state machine: the Cell's state, set once.
type onceMachine[T any] struct{ slotMachine[T] }

func newOnceMachine[T any](history int) *onceMachine[T] {
	m := &onceMachine[T]{}
	m.init(inspectwire.KindOnce, onceSnapshotMagic, history)
	return m
}

func (m *onceMachine[T]) slot() *slotMachine[T]                      { return &m.slotMachine }
func (m *onceMachine[T]) Apply(cmd onceCmd[T], ctx rsm.ApplyContext) { m.ApplyReply(cmd, ctx) }

// ApplyReply implements rsm.Replier: the first set with a value decides
// it. The reply says whether the value held afterwards is the command's
// (the same encoded bytes), so a retried Set of the winning value is told
// it won. A command without a value, or of an unknown op, changes nothing.
func (m *onceMachine[T]) ApplyReply(cmd onceCmd[T], ctx rsm.ApplyContext) any {
	v := Version(ctx.LogPosition().Index)
	var changes []CellChange[T]
	r := reply{}
	if cmd.Op == onceSet && cmd.Value != nil {
		if !m.ok {
			changes = m.set(*cmd.Value)
			r.Applied = true
		} else {
			r.Applied = m.holds(*cmd.Value)
		}
	}
	m.stage.applied(v, changes)
	return r
}

type onceReads[T any] struct{ slotReads[onceCmd[T], T] }

// OnceReader follows a replicated once: a value decided once, by the first
// Set any writer commits, and never changed. Reads are local and
// lock-free. It is safe for concurrent use.
type OnceReader[T any] struct{ onceReads[T] }

// OnceWriter proposes the once's value and reads it like a OnceReader. It
// is safe for concurrent use.
type OnceWriter[T any] struct{ onceReads[T] }

func openOnce[T any](net *transport.Network, name string, writer bool, opts []Option) (onceReads[T], error) {
	r, err := openSlotOf[onceCmd[T], T](net, inspectwire.KindOnce, name, newOnceMachine[T], writer, opts)
	return onceReads[T]{r}, err
}

// NewOnceWriter opens the once called name on net for writing.
func NewOnceWriter[T any](net *transport.Network, name string, opts ...Option) (*OnceWriter[T], error) {
	r, err := openOnce[T](net, name, true, opts)
	if err != nil {
		return nil, err
	}
	return &OnceWriter[T]{r}, nil
}

// NewOnceReader opens the once called name on net for reading.
func NewOnceReader[T any](net *transport.Network, name string, opts ...Option) (*OnceReader[T], error) {
	r, err := openOnce[T](net, name, false, opts)
	if err != nil {
		return nil, err
	}
	return &OnceReader[T]{r}, nil
}

// Wait returns the value once one is decided: at once if this handle holds
// it, else when this handle applies it. It returns ctx's error when ctx
// ends first, and ErrClosed when the handle closes with no value.
func (r onceReads[T]) Wait(ctx context.Context) (T, error) {
	for {
		// The channel first: a value published after the check closes it.
		changed := r.m.hist.changed()
		if x, ok := r.Get(); ok {
			return x, nil
		}
		select {
		case <-changed:
		case <-r.g.Done():
			if x, ok := r.Get(); ok {
				return x, nil
			}
			var zero T
			return zero, ErrClosed
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	}
}

// Set proposes x as the value. The first Set any writer commits decides
// it; later ones change nothing. The bool reports whether the value is
// now x (encoded to the same bytes): true for the Set that decided it,
// and for a later Set of the same value, such as a retry; false when
// another value was decided first. Either way the write has a version,
// after which this node holds the decided value.
func (w *OnceWriter[T]) Set(ctx context.Context, x T) (Version, bool, error) {
	if err := checkValue(&x); err != nil {
		return 0, false, err
	}
	v, r, err := w.execute1(ctx, onceCmd[T]{Op: onceSet, Value: &x})
	return v, r.Applied, err
}

// Outcome tells what became of a write of this writer that failed with
// ErrOutcomeUnknown, as MapWriter.Outcome does. That a Set applied does not
// mean it decided the value: Get tells.
func (w *OnceWriter[T]) Outcome(ctx context.Context, id WriteID) (Version, bool, error) {
	return w.outcome(ctx, id)
}
