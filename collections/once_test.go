package collections

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// Tests of Once, with the scenarios of mosaik's tests/collections/once.rs
// (named in each test's comment), on three nodes.

func openOnceW[T any](t testing.TB, n *transport.Network, name string, opts ...Option) *OnceWriter[T] {
	t.Helper()
	return cleanup(t, must[*OnceWriter[T]](t)(NewOnceWriter[T](n, name, append(testOpts(), opts...)...)))
}

func openOnceR[T any](t testing.TB, n *transport.Network, name string, opts ...Option) *OnceReader[T] {
	t.Helper()
	return cleanup(t, must[*OnceReader[T]](t)(NewOnceReader[T](n, name, append(testOpts(), opts...)...)))
}

// setOnce checks a Set: no error, the bool wanted, and every handle at its
// version holding want.
func setOnce[T comparable](t testing.TB, w *OnceWriter[T], x T, wantWon bool, want T, hs ...slotReadsOf[T]) Version {
	t.Helper()
	v, won, err := w.Set(tctx(t), x)
	if err != nil {
		t.Fatalf("Set(%v): %v", x, err)
	}
	if won != wantWon {
		t.Fatalf("Set(%v) with %v decided: reported %v", x, want, won)
	}
	for i, h := range append([]slotReadsOf[T]{w}, hs...) {
		reach(t, v, h.(waiter))
		wantCell(t, fmt.Sprintf("handle %d after Set(%v)", i, x), h, &want)
	}
	return v
}

// smoke, writer_reads_own_write, multiple_readers, multiple_writers: the
// first Set wins, later ones are ignored, and every handle agrees. The
// bool tells each caller whether the value is its own.
func TestOnceFirstSetWins(t *testing.T) {
	tn := newTestNet(t)
	w0 := openOnceW[string](t, tn.node(), "o")
	w1 := openOnceW[string](t, tn.node(), "o")
	r := openOnceR[string](t, tn.node(), "o")
	online(t, w0, w1, r)
	for i, h := range []slotReadsOf[string]{w0, w1, r} {
		wantCell(t, fmt.Sprint("empty handle ", i), h, nil)
	}
	v := setOnce(t, w0, "first", true, "first", w1, r)
	if v2 := setOnce(t, w1, "second", false, "first", w0, r); v2 <= v {
		t.Fatalf("a later Set at version %d, after %d", v2, v)
	}
	setOnce(t, w0, "third", false, "first", w1, r)
	setOnce(t, w1, "", false, "first", w0, r)
	// The same value again, as a retry would send it: it is the value.
	setOnce(t, w1, "first", true, "first", w0, r)
}

// Sets racing from two writers: exactly one decides, its caller alone is
// told so, and everyone holds its value.
func TestOnceRace(t *testing.T) {
	for round := range 5 {
		tn := newTestNet(t)
		name := fmt.Sprint("race", round)
		w0 := openOnceW[int](t, tn.node(), name)
		w1 := openOnceW[int](t, tn.node(), name)
		r := openOnceR[int](t, tn.node(), name)
		online(t, w0, w1, r)
		won := make([]bool, 2)
		vs := make([]Version, 2)
		var wg sync.WaitGroup
		for i, w := range []*OnceWriter[int]{w0, w1} {
			wg.Go(func() {
				var err error
				vs[i], won[i], err = w.Set(tctx(t), i+1)
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		if won[0] == won[1] {
			t.Fatalf("round %d: both Sets report %v", round, won[0])
		}
		want := 1
		if won[1] {
			want = 2
		}
		reach(t, max(vs[0], vs[1]), w0, w1, r)
		for i, h := range []slotReadsOf[int]{w0, w1, r} {
			wantCell(t, fmt.Sprintf("round %d: handle %d", round, i), h, &want)
		}
	}
}

// await_value: Wait blocks until a value is decided, on a handle opened
// before any writer, then returns it; once decided it returns at once. It
// ends with ctx, and with ErrClosed when its handle closes empty.
func TestOnceWait(t *testing.T) {
	tn := newTestNet(t)
	r := openOnceR[uint64](t, tn.node(), "o")
	got := make(chan error, 1)
	go func() {
		x, err := r.Wait(ctxT(t, 30*time.Second))
		if err == nil && x != 42 {
			err = fmt.Errorf("Wait returned %d", x)
		}
		got <- err
	}()
	w := openOnceW[uint64](t, tn.node(), "o")
	online(t, w)
	if _, err := r.Wait(ctxT(t, 50*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on an empty once: %v", err)
	}
	setOnce(t, w, 42, true, 42)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a decided value needs no waiting
	for i, h := range []interface {
		Wait(context.Context) (uint64, error)
	}{w, r} {
		if x, err := h.Wait(ctx); err != nil || x != 42 {
			t.Fatalf("handle %d: Wait after the value was decided: %d, %v", i, x, err)
		}
	}

	empty := openOnceR[uint64](t, tn.node(), "other")
	done := make(chan error, 1)
	go func() {
		_, err := empty.Wait(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Wait on an empty once returned %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := closeOf(t, empty); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		isErr(t, err, ErrClosed, "Wait when its handle closes")
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not end when its handle closed")
	}
	if _, err := empty.Wait(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait on a closed handle: %v", err)
	}
}

// catchup_single_reader, late_writer_catchup: handles opened after many
// ignored Sets hold the first value; a late writer's Set is ignored.
func TestOnceLateHandles(t *testing.T) {
	tn := newTestNet(t)
	w0 := openOnceW[uint64](t, tn.node(), "o")
	online(t, w0)
	setOnce(t, w0, 999, true, 999)
	for i := range uint64(30) {
		setOnce(t, w0, i, false, 999)
	}
	r := openOnceR[uint64](t, tn.node(), "o")
	w1 := openOnceW[uint64](t, tn.node(), "o")
	online(t, r, w1)
	reach(t, w0.Version(), r, w1)
	wantCell(t, "late reader", r, new(uint64(999)))
	wantCell(t, "late writer", w1, new(uint64(999)))
	setOnce(t, w1, 99, false, 999, w0, r)
}

// A late reader of a once whose log was compacted catches up from the
// once's snapshot.
func TestOnceLateReaderUsesSnapshot(t *testing.T) {
	tn := newTestNet(t)
	w := openOnceW[string](t, tn.node(), "o", snapshotOpts()...)
	online(t, w)
	writeUntilSnapshot(t, w.handle, func(i int) error { _, _, err := w.Set(tctx(t), fmt.Sprint("value", i)); return err })
	r := openOnceR[string](t, tn.node(), "o", append(snapshotOpts(), WithHistory(1<<20))...)
	restoredLate(t, w, r, r.Watch)
	wantCell(t, "late reader", r, new("value0"))
}

// construct_from_def: a definition, and a reader-only one.
func TestOnceDef(t *testing.T) {
	def := OnceDef[string]("def", testOpts()...)
	if def.Name() != "def" || def.ReaderOnly().Name() != "def" {
		t.Fatal("a definition's name")
	}
	tn := newTestNet(t)
	w := cleanup(t, must[*OnceWriter[string]](t)(def.Writer(tn.node())))
	r := cleanup(t, must[*OnceReader[string]](t)(def.Reader(tn.node())))
	r2 := cleanup(t, must[*OnceReader[string]](t)(def.ReaderOnly().Reader(tn.node())))
	online(t, w, r, r2)
	setOnce(t, w, "hello", true, "hello", r, r2)
}

// Watch reports the one insert, not the ignored Sets; WithInitial starts
// with the value.
func TestOnceWatch(t *testing.T) {
	tn := newTestNet(t)
	w := openOnceW[string](t, tn.node(), "o")
	r := openOnceR[string](t, tn.node(), "o")
	online(t, w, r)
	start := r.Version()
	setOnce(t, w, "a", true, "a", r)
	setOnce(t, w, "b", false, "a", r)
	var got []string
	for e, err := range r.Watch(tctx(t), FromVersion(start)) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(e.Kind, e.Changes))
		break
	}
	for e, err := range r.Watch(tctx(t), WithInitial()) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(e.Kind, e.Changes))
		if e.Kind == CaughtUp {
			break
		}
	}
	if want := "[changed [{insert a}] initial [{insert a}] caught-up []]"; fmt.Sprint(got) != want {
		t.Fatalf("watch: %v, want %v", got, want)
	}
}

// A model test: random Sets from two writers against a plain optional
// value, with the bool each returns.
func TestOnceModel(t *testing.T) {
	rng := modelRand(t)
	tn := newTestNet(t)
	w1 := openOnceW[uint64](t, tn.node(), "o")
	w2 := openOnceW[uint64](t, tn.node(), "o")
	r := openOnceR[uint64](t, tn.node(), "o")
	online(t, w1, w2, r)
	var model *uint64
	var last Version
	const ops = modelOps / 3 // after the first Set every write is the same
	for op := range ops {
		w := []*OnceWriter[uint64]{w1, w2}[rng.IntN(2)]
		x := uint64(rng.IntN(4))
		if model == nil && rng.IntN(3) > 0 { // stay undecided for a while
			if x, ok := w.Get(); ok {
				t.Fatalf("op %d: decided %d before any Set", op, x)
			}
			continue
		}
		v, won, err := w.Set(tctx(t), x)
		if err != nil {
			t.Fatalf("op %d Set(%d): %v", op, x, err)
		}
		if model == nil {
			model = &x
		}
		if won != (*model == x) || v <= last {
			t.Fatalf("op %d Set(%d) on %d: won %v at version %d after %d", op, x, *model, won, v, last)
		}
		last = v
		wantCell(t, fmt.Sprintf("op %d: the writer", op), w, model)
		if op%modelCheck == modelCheck-1 || op == ops-1 {
			reach(t, last, w1, w2, r)
			for i, h := range []slotReadsOf[uint64]{w1, w2, r} {
				wantCell(t, fmt.Sprintf("op %d: replica %d", op, i), h, model)
			}
		}
	}
}

// Snapshot round trips, full and empty; a restored once keeps its value
// against later Sets; a Cell's snapshot does not restore into a Once.
func TestOnceSnapshot(t *testing.T) {
	for _, full := range []bool{true, false} {
		m := newOnceMachine[string](8)
		if full {
			applied(m, onceCmd[string]{Op: onceSet, Value: new("v")}, fakeCtx(2))
		}
		b := persist(t, m)
		n := newOnceMachine[string](8)
		applied(n, onceCmd[string]{Op: onceSet, Value: new("old")}, fakeCtx(1))
		if err := n.Restore(bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		if dumpSlot(&n.slotMachine) != dumpSlot(&m.slotMachine) || !bytes.Equal(persist(t, n), b) {
			t.Fatalf("restored %s, want %s", dumpSlot(&n.slotMachine), dumpSlot(&m.slotMachine))
		}
		r := applied(n, onceCmd[string]{Op: onceSet, Value: new("w")}, fakeCtx(5))
		if r.Applied == full || n.version() != 5 {
			t.Fatalf("a Set on the restored once: %v at %d", r.Applied, n.version())
		}
	}
	c := newCellMachine[string](8)
	applied(c, cellCmd[string]{Op: cellSet, Value: new("c")}, fakeCtx(1))
	if err := newOnceMachine[string](8).Restore(bytes.NewReader(persist(t, c))); err == nil {
		t.Fatal("a Cell's snapshot restored into a Once")
	}
}

var fuzzOnceSeed = []onceCmd[string]{{Op: onceSet, Value: ptr("a")}}

func FuzzOnceApply(f *testing.F) {
	for _, cmds := range [][]onceCmd[string]{fuzzOnceSeed, {{Op: onceSet, Value: ptr("b")}, {Op: onceSet}, {Op: 9, Value: ptr("c")}}} {
		f.Add(must[[]byte](f)(rsm.Marshal(cmds)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzApply(t, data, newOnceMachine[string], nil)
		fuzzApply(t, data, newOnceMachine[string], fuzzOnceSeed)
	})
}

func FuzzOnceRestore(f *testing.F) {
	m := newOnceMachine[string](8)
	applied(m, fuzzOnceSeed[0], fakeCtx(1))
	f.Add(snapshotBytes(f, m))
	f.Add(snapshotBytes(f, newOnceMachine[string](8)))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRestore(t, data, newOnceMachine[string], fuzzOnceSeed)
	})
}

// lenOf gives a Cell's or a Once's handle the Len the shared tests of
// kinds_test.go need: 1 with a value, else 0.
type lenOf[H interface{ IsEmpty() bool }] struct{ h H }

func (l lenOf[H]) Len() int {
	if l.h.IsEmpty() {
		return 0
	}
	return 1
}

type cellKindW struct {
	*CellWriter[int]
	lenOf[*CellWriter[int]]
}
type cellKindR struct {
	*CellReader[int]
	lenOf[*CellReader[int]]
}
type onceKindW struct {
	*OnceWriter[int]
	lenOf[*OnceWriter[int]]
}
type onceKindR struct {
	*OnceReader[int]
	lenOf[*OnceReader[int]]
}

// The tests shared by every kind (handles_test.go) run on Cell and Once
// too.
func init() {
	slotDump := func(h anyHandle) []string {
		x, ok := h.(interface{ Get() (int, bool) }).Get()
		if !ok {
			return nil
		}
		return []string{fmt.Sprint(x)}
	}
	slotWatchEnd := func(ctx context.Context, h anyHandle) error {
		return watchEndOf(h.(interface {
			Watch(context.Context, ...WatchOption) iter.Seq2[Event[CellChange[int]], error]
		}).Watch(ctx))
	}
	kinds = append(kinds, kind{
		name: "cell",
		writer: func(n *transport.Network, name string, opts ...Option) (anyHandle, error) {
			w, err := NewCellWriter[int](n, name, opts...)
			if err != nil {
				return nil, err
			}
			return cellKindW{w, lenOf[*CellWriter[int]]{w}}, nil
		},
		reader: func(n *transport.Network, name string, opts ...Option) (anyHandle, error) {
			r, err := NewCellReader[int](n, name, opts...)
			if err != nil {
				return nil, err
			}
			return cellKindR{r, lenOf[*CellReader[int]]{r}}, nil
		},
		write: func(ctx context.Context, h anyHandle, i int) (Version, error) {
			w := h.(cellKindW)
			switch i % 4 {
			case 1:
				return w.Clear(ctx)
			case 2:
				v, _, err := w.CompareExchange(ctx, nil, &i)
				return v, err
			}
			return w.Set(ctx, i)
		},
		dump:     slotDump,
		watchEnd: slotWatchEnd,
	}, kind{
		name: "once",
		writer: func(n *transport.Network, name string, opts ...Option) (anyHandle, error) {
			w, err := NewOnceWriter[int](n, name, opts...)
			if err != nil {
				return nil, err
			}
			return onceKindW{w, lenOf[*OnceWriter[int]]{w}}, nil
		},
		reader: func(n *transport.Network, name string, opts ...Option) (anyHandle, error) {
			r, err := NewOnceReader[int](n, name, opts...)
			if err != nil {
				return nil, err
			}
			return onceKindR{r, lenOf[*OnceReader[int]]{r}}, nil
		},
		write: func(ctx context.Context, h anyHandle, i int) (Version, error) {
			v, _, err := h.(onceKindW).Set(ctx, i)
			return v, err
		},
		dump:     slotDump,
		watchEnd: slotWatchEnd,
	})
}
