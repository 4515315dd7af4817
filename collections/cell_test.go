package collections

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// Tests of Cell, with the scenarios of mosaik's tests/collections/cell.rs
// (named in each test's comment), on three nodes.

func openCellW[T any](t testing.TB, n *transport.Network, name string, opts ...Option) *CellWriter[T] {
	t.Helper()
	return cleanup(t, must[*CellWriter[T]](t)(NewCellWriter[T](n, name, append(testOpts(), opts...)...)))
}

func openCellR[T any](t testing.TB, n *transport.Network, name string, opts ...Option) *CellReader[T] {
	t.Helper()
	return cleanup(t, must[*CellReader[T]](t)(NewCellReader[T](n, name, append(testOpts(), opts...)...)))
}

// slotReadsOf is what Cell and Once handles read.
type slotReadsOf[T any] interface {
	Get() (T, bool)
	IsEmpty() bool
	Version() Version
}

// wantCell fails unless h holds want (nil: empty).
func wantCell[T comparable](t testing.TB, who string, h slotReadsOf[T], want *T) {
	t.Helper()
	got, ok := h.Get()
	switch {
	case want == nil && (ok || !h.IsEmpty()):
		t.Fatalf("%s at %d holds %v, want it empty", who, h.Version(), got)
	case want != nil && (!ok || got != *want || h.IsEmpty()):
		t.Fatalf("%s at %d holds %v (%v), want %v", who, h.Version(), got, ok, *want)
	}
}

// cellTrio opens two writers and a reader of one cell on three nodes.
func cellTrio(t testing.TB, opts ...Option) (*CellWriter[uint64], *CellWriter[uint64], *CellReader[uint64]) {
	t.Helper()
	tn := newTestNet(t)
	w1 := openCellW[uint64](t, tn.node(), "c", opts...)
	w2 := openCellW[uint64](t, tn.node(), "c", opts...)
	r := openCellR[uint64](t, tn.node(), "c", opts...)
	online(t, w1, w2, r)
	return w1, w2, r
}

// stepper checks a write: no error, a version after the last one, and
// every handle at it holding want.
func stepper[T comparable](t testing.TB, hs ...slotReadsOf[T]) func(what string, want *T) func(Version, error) {
	last := Version(0)
	return func(what string, want *T) func(Version, error) {
		return func(v Version, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if v <= last {
				t.Fatalf("%s: version %d after %d", what, v, last)
			}
			last = v
			for i, h := range hs {
				reach(t, v, h.(waiter))
				wantCell(t, fmt.Sprintf("handle %d after %s", i, what), h, want)
			}
		}
	}
}

// smoke_no_catchup, writer_reads_own_writes, overwrite_keeps_latest,
// clear_empty, clear_then_write, write_clear_cycle.
func TestCellWrites(t *testing.T) {
	w, _, r := cellTrio(t)
	wantCell(t, "writer", w, nil)
	wantCell(t, "reader", r, nil)
	step := stepper[uint64](t, w, r)
	step("Clear of an empty cell", nil)(w.Clear(tctx(t)))
	step("Set", new(uint64(42)))(w.Set(tctx(t), 42))
	step("overwrite", new(uint64(99)))(w.Set(tctx(t), 99))
	step("Set of the same value", new(uint64(99)))(w.Set(tctx(t), 99))
	step("Set of zero", new(uint64(0)))(w.Set(tctx(t), 0))
	step("Clear", nil)(w.Clear(tctx(t)))
	step("Clear again", nil)(w.Clear(tctx(t)))
	for i := range uint64(5) {
		step("Set in a cycle", &i)(w.Set(tctx(t), i))
		step("Clear in a cycle", nil)(w.Clear(tctx(t)))
	}
	step("Set after the cycles", new(uint64(999)))(w.Set(tctx(t), 999))
}

// multiple_writers, many_writers_many_readers: every writer's write is
// seen by every handle.
func TestCellManyWriters(t *testing.T) {
	tn := newTestNet(t)
	w0 := openCellW[uint64](t, tn.node(), "c")
	w1 := openCellW[uint64](t, tn.node(), "c")
	r0 := openCellR[uint64](t, tn.node(), "c")
	r1 := openCellR[uint64](t, tn.node(), "c")
	online(t, w0, w1, r0, r1)
	step := stepper[uint64](t, w0, w1, r0, r1)
	step("writer 0 sets", new(uint64(10)))(w0.Set(tctx(t), 10))
	step("writer 1 overwrites", new(uint64(20)))(w1.Set(tctx(t), 20))
	step("writer 0 clears", nil)(w0.Clear(tctx(t)))
	step("writer 1 sets again", new(uint64(30)))(w1.Set(tctx(t), 30))
}

// compare_exchange_success, _from_none, _to_none, _mismatch_no_change,
// _mismatch_on_empty, _replicates_to_readers, _chained,
// _mixed_with_write_clear, _none_to_none: each with the bool it returns,
// which mosaik does not have.
func TestCellCompareExchange(t *testing.T) {
	w1, w2, r := cellTrio(t)
	step := stepper[uint64](t, w1, w2, r)
	p := func(x uint64) *uint64 { return &x }
	cas := func(w *CellWriter[uint64], what string, exp, rep *uint64, wantApplied bool, want *uint64) {
		t.Helper()
		v, applied, err := w.CompareExchange(tctx(t), exp, rep)
		if err == nil && applied != wantApplied {
			t.Fatalf("%s: applied %v, want %v", what, applied, wantApplied)
		}
		step(what, want)(v, err)
	}
	cas(w1, "none to none on empty", nil, nil, true, nil)
	cas(w1, "mismatch on empty", p(42), p(99), false, nil)
	cas(w1, "from none", nil, p(1), true, p(1))
	cas(w2, "chained 1 to 2, from the other writer", p(1), p(2), true, p(2))
	cas(w1, "chained 2 to 3", p(2), p(3), true, p(3))
	cas(w1, "mismatch", p(100), p(200), false, p(3))
	cas(w2, "none expected on a full cell", nil, p(300), false, p(3))
	cas(w1, "stale expected", p(2), p(4), false, p(3))
	cas(w1, "to none", p(3), nil, true, nil)
	step("Set", p(10))(w1.Set(tctx(t), 10))
	cas(w2, "after a Set", p(10), p(20), true, p(20))
	step("Clear", nil)(w2.Clear(tctx(t)))
	cas(w1, "from none after a Clear", nil, p(30), true, p(30))
	step("Set after the compare-exchanges", p(40))(w1.Set(tctx(t), 40))
	cas(w1, "to itself", p(40), p(40), true, p(40))
}

// Compare-exchanges racing from two writers on the same expected value:
// exactly one applies each round, and every replica agrees.
func TestCellCompareExchangeRace(t *testing.T) {
	w1, w2, r := cellTrio(t)
	ws := []*CellWriter[uint64]{w1, w2}
	var cur *uint64
	for round := range uint64(10) {
		var wins atomic.Int32
		var wg sync.WaitGroup
		vs := make([]Version, 2)
		for i, w := range ws {
			rep := round*10 + uint64(i) + 1
			wg.Go(func() {
				v, applied, err := w.CompareExchange(tctx(t), cur, &rep)
				if err != nil {
					t.Error(err)
				}
				vs[i] = v
				if applied {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d compare-exchanges applied, want 1", round, wins.Load())
		}
		reach(t, max(vs[0], vs[1]), w1, w2, r)
		x, _ := w1.Get()
		cur = &x
		for i, h := range []slotReadsOf[uint64]{w1, w2, r} {
			wantCell(t, fmt.Sprintf("round %d: handle %d", round, i), h, cur)
		}
	}
}

// catchup_single_reader, catchup_multiple_readers, late_writer_catchup,
// compare_exchange_catchup: handles opened after the writes hold the
// latest value, and a late writer writes.
func TestCellLateHandles(t *testing.T) {
	tn := newTestNet(t)
	w0 := openCellW[uint64](t, tn.node(), "c")
	online(t, w0)
	for i := range uint64(50) {
		ok[Version](t)(w0.Set(tctx(t), i))
	}
	ok[Version](t)(w0.Clear(tctx(t)))
	_, applied, err := w0.CompareExchange(tctx(t), nil, new(uint64(1)))
	if err != nil || !applied {
		t.Fatal(applied, err)
	}
	v, applied, err := w0.CompareExchange(tctx(t), new(uint64(1)), new(uint64(3)))
	if err != nil || !applied {
		t.Fatal(applied, err)
	}
	r1 := openCellR[uint64](t, tn.node(), "c")
	r2 := openCellR[uint64](t, tn.node(), "c")
	w1 := openCellW[uint64](t, tn.node(), "c")
	online(t, r1, r2, w1)
	reach(t, v, r1, r2, w1)
	for i, h := range []slotReadsOf[uint64]{r1, r2, w1} {
		wantCell(t, fmt.Sprintf("late handle %d", i), h, new(uint64(3)))
	}
	step := stepper[uint64](t, w0, w1, r1, r2)
	step("the late writer's Set", new(uint64(99)))(w1.Set(tctx(t), 99))
}

// A late reader of a cell whose log was compacted catches up from the
// cell's snapshot, not by replaying the log.
func TestCellLateReaderUsesSnapshot(t *testing.T) {
	tn := newTestNet(t)
	w := openCellW[string](t, tn.node(), "c", snapshotOpts()...)
	online(t, w)
	n := writeUntilSnapshot(t, w.handle, func(i int) error { _, err := w.Set(tctx(t), fmt.Sprint("value", i)); return err })
	r := openCellR[string](t, tn.node(), "c", append(snapshotOpts(), WithHistory(1<<20))...)
	restoredLate(t, w, r, r.Watch)
	wantCell(t, "late reader", r, new(fmt.Sprint("value", n-1)))
}

// writeUntilSnapshot writes with write until the log of w's group is
// compacted past the first writes, and returns how many it wrote.
func writeUntilSnapshot[C any](t testing.TB, w *handle[C], write func(i int) error) int {
	t.Helper()
	i := 0
	eventually(t, "a snapshot", func() bool {
		if err := write(i); err != nil {
			t.Fatal(err)
		}
		i++
		return w.g.Status().LogSnapshot >= 20
	})
	return i
}

// restoredLate waits until the late reader r has caught up with w, and
// fails unless it did so from a snapshot: a replica restored from one
// keeps no changes from before it.
func restoredLate[E any](t testing.TB, w, r waiter, watch func(context.Context, ...WatchOption) iter.Seq2[Event[E], error]) {
	t.Helper()
	online(t, r)
	reach(t, w.Version(), r)
	for _, err := range watch(tctx(t), FromVersion(0)) {
		if !errors.Is(err, ErrCompacted) {
			t.Fatalf("the reader replayed the whole log (watch from 0: %v): the log was never compacted", err)
		}
		break
	}
}

// construct_from_def: a definition opens writers and readers, and
// ReaderOnly only readers.
func TestCellDef(t *testing.T) {
	def := CellDef[string]("def", testOpts()...)
	if def.Name() != "def" || def.ReaderOnly().Name() != "def" {
		t.Fatal("a definition's name")
	}
	tn := newTestNet(t)
	w := cleanup(t, must[*CellWriter[string]](t)(def.Writer(tn.node())))
	r := cleanup(t, must[*CellReader[string]](t)(def.Reader(tn.node())))
	r2 := cleanup(t, must[*CellReader[string]](t)(def.ReaderOnly().Reader(tn.node())))
	online(t, w, r, r2)
	v := ok[Version](t)(w.Set(tctx(t), "hello"))
	reach(t, v, r, r2)
	wantCell(t, "reader", r, new("hello"))
	wantCell(t, "reader-only definition's reader", r2, new("hello"))
}

// Watch reports sets and clears, not writes that changed nothing; with
// WithInitial the current value first; FromVersion resumes.
func TestCellWatch(t *testing.T) {
	w, _, r := cellTrio(t)
	start := ok[Version](t)(w.Set(tctx(t), 1))
	reach(t, start, r)
	ctx, cancel := context.WithCancel(tctx(t))
	defer cancel()
	events := watchEvents(r.Watch(ctx, WithInitial()))
	ok[Version](t)(w.Clear(tctx(t)))
	ok[Version](t)(w.Clear(tctx(t)))                                     // nothing
	_, _, _ = w.CompareExchange(tctx(t), new(uint64(5)), new(uint64(6))) // nothing
	ok[Version](t)(w.Set(tctx(t), 7))
	wantEvents(t, events, "initial [{insert 1}]", "caught-up []", "changed [{clear 0}]", "changed [{insert 7}]")
	// Resuming after the first Set reports the rest.
	var resumed []string
	for e, err := range r.Watch(tctx(t), FromVersion(start)) {
		if err != nil {
			t.Fatal(err)
		}
		resumed = append(resumed, fmt.Sprint(e.Changes))
		if len(resumed) == 2 {
			break
		}
	}
	if fmt.Sprint(resumed) != "[[{clear 0}] [{insert 7}]]" {
		t.Fatalf("resumed watch: %v", resumed)
	}
}

// watchEvents runs a watch, in a goroutine that ends with it, and passes
// on its events as "kind changes".
func watchEvents[E any](seq iter.Seq2[Event[E], error]) <-chan string {
	events := make(chan string, 64)
	go func() {
		defer close(events)
		for e, err := range seq {
			if err != nil {
				return
			}
			events <- fmt.Sprintf("%v %v", e.Kind, e.Changes)
		}
	}()
	return events
}

// wantEvents fails unless the next events are want.
func wantEvents(t *testing.T, events <-chan string, want ...string) {
	t.Helper()
	var got []string
	for len(got) < len(want) {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("the watch ended after %v", got)
			}
			got = append(got, e)
		case <-time.After(10 * time.Second):
			t.Fatalf("watch: got %v, want %v", got, want)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("watch: got\n%v\nwant\n%v", got, want)
	}
}

// Values over MaxValueSize are refused before anything is sent, in every
// write that carries one.
func TestCellTooLarge(t *testing.T) {
	tn := newTestNet(t)
	sw := openCellW[string](t, tn.node(), "big")
	online(t, sw)
	big := strings.Repeat("x", MaxValueSize)
	_, err := sw.Set(tctx(t), big)
	isErr(t, err, ErrTooLarge, "Set")
	isErr(t, err, ErrNotApplied, "Set")
	_, _, err = sw.CompareExchange(tctx(t), &big, nil)
	isErr(t, err, ErrTooLarge, "CompareExchange expected")
	_, _, err = sw.CompareExchange(tctx(t), nil, &big)
	isErr(t, err, ErrTooLarge, "CompareExchange replacement")
	if sw.Version() != 0 || !sw.IsEmpty() {
		t.Fatalf("a refused write changed the cell: at %d", sw.Version())
	}
	ok[Version](t)(sw.Set(tctx(t), big[:MaxValueSize-8])) // the CBOR head takes 5 bytes
}

// A model test: random operations from two writers against a plain
// optional value.
func TestCellModel(t *testing.T) {
	rng := modelRand(t)
	w1, w2, r := cellTrio(t)
	var model *uint64
	var last Version
	for op := range modelOps {
		w := []*CellWriter[uint64]{w1, w2}[rng.IntN(2)]
		ctx := tctx(t)
		val := uint64(rng.IntN(4)) // few values, so compare-exchanges often match
		var v Version
		var err error
		var what string
		switch p := rng.IntN(100); {
		case p < 35:
			what = fmt.Sprintf("Set(%d)", val)
			v, err = w.Set(ctx, val)
			model = &val
		case p < 50:
			what = "Clear"
			v, err = w.Clear(ctx)
			model = nil
		default:
			var exp, rep *uint64
			switch rng.IntN(3) {
			case 0:
			case 1:
				exp = model
			default:
				exp = new(uint64(rng.IntN(4)))
			}
			if rng.IntN(4) > 0 {
				rep = &val
			}
			want := (exp == nil && model == nil) || (exp != nil && model != nil && *exp == *model)
			what = fmt.Sprintf("CompareExchange(%v, %v) on %v", fmtU(exp), fmtU(rep), fmtU(model))
			var applied bool
			v, applied, err = w.CompareExchange(ctx, exp, rep)
			if err == nil && applied != want {
				t.Fatalf("op %d %s: applied %v, model says %v", op, what, applied, want)
			}
			if want {
				model = rep
			}
		}
		if err != nil {
			t.Fatalf("op %d %s: %v", op, what, err)
		}
		if v <= last {
			t.Fatalf("op %d %s: version %d after %d", op, what, v, last)
		}
		last = v
		wantCell(t, fmt.Sprintf("op %d %s: the writer", op, what), w, model)
		if op%modelCheck == modelCheck-1 || op == modelOps-1 {
			reach(t, last, w1, w2, r)
			for i, h := range []slotReadsOf[uint64]{w1, w2, r} {
				wantCell(t, fmt.Sprintf("op %d: replica %d", op, i), h, model)
			}
		}
	}
}

func fmtU(p *uint64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

// dumpSlot is a Cell's or a Once's state, for comparing machines.
func dumpSlot[T any](m *slotMachine[T]) string {
	st := m.cur.Load()
	return fmt.Sprintf("%v %v %v", st.v, st.ok, st.val)
}

// Snapshot then Restore gives the same state and version, full or empty,
// and the restored machine goes on applying; a corrupt snapshot, another
// format's or one of two values does not restore and changes nothing.
func TestCellSnapshot(t *testing.T) {
	for _, full := range []bool{true, false} {
		m := newCellMachine[snapPoint](8)
		applied(m, cellCmd[snapPoint]{Op: cellSet, Value: &snapPoint{1, 2, "p"}}, fakeCtx(3))
		if !full {
			applied(m, cellCmd[snapPoint]{Op: cellClear}, fakeCtx(4))
		}
		b := persist(t, m)
		n := newCellMachine[snapPoint](8)
		applied(n, cellCmd[snapPoint]{Op: cellSet, Value: &snapPoint{9, 9, "old"}}, fakeCtx(1))
		if err := n.Restore(bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		if dumpSlot(&n.slotMachine) != dumpSlot(&m.slotMachine) || !bytes.Equal(persist(t, n), b) {
			t.Fatalf("restored %s, want %s", dumpSlot(&n.slotMachine), dumpSlot(&m.slotMachine))
		}
		r := applied(n, cellCmd[snapPoint]{Op: cellCAS, Expected: &snapPoint{1, 2, "p"}, Value: &snapPoint{3, 4, "q"}}, fakeCtx(9))
		if r.Applied != full || n.version() != 9 {
			t.Fatalf("the restored machine applied a compare-exchange: %v at %d", r.Applied, n.version())
		}
		for i := range len(b) {
			if newCellMachine[snapPoint](8).Restore(bytes.NewReader(b[:i])) == nil {
				t.Fatalf("a snapshot truncated to %d of %d bytes restored", i, len(b))
			}
		}
	}
	m := newCellMachine[string](8)
	applied(m, cellCmd[string]{Op: cellSet, Value: new("kept")}, fakeCtx(2))
	before := dumpSlot(&m.slotMachine)
	two := func(magic string, count int) []byte {
		var buf bytes.Buffer
		err := writeSnapshotAs(&buf, magic, 5, count, func(sw *snapshotWriter) error {
			for i := range count {
				if err := writeField(sw, fmt.Sprint(i)); err != nil {
					return err
				}
				sw.records++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	once := newOnceMachine[string](8)
	applied(once, onceCmd[string]{Op: onceSet, Value: new("o")}, fakeCtx(1))
	set := newSetMachine[string](8)
	applied(set, setCmd[string]{Op: setInsert, Value: "s"}, fakeCtx(1))
	for what, b := range map[string][]byte{
		"two values": two(cellSnapshotMagic, 2), "a Once's": persist(t, once), "a Set's": persist(t, set),
		"an empty": two(cellSnapshotMagic, 0)[:0], "garbage": []byte("\x05hello"),
	} {
		if err := m.Restore(bytes.NewReader(b)); err == nil {
			t.Fatalf("%s snapshot restored into a cell", what)
		}
		if dumpSlot(&m.slotMachine) != before {
			t.Fatalf("a failed restore of %s snapshot changed the cell", what)
		}
	}
	if err := m.Restore(bytes.NewReader(two(cellSnapshotMagic, 1))); err != nil || dumpSlot(&m.slotMachine) != "5 true 0" {
		t.Fatalf("a one-value snapshot: %v, %s", err, dumpSlot(&m.slotMachine))
	}
}

// CompareExchange compares encoded bytes, as Map's does: a nil and an
// empty slice differ, and so do values Go calls equal but that encode
// differently.
func TestCellCompareExchangeBytes(t *testing.T) {
	m := newCellMachine[[]byte](8)
	applied(m, cellCmd[[]byte]{Op: cellSet, Value: new([]byte(nil))}, fakeCtx(1))
	if r := applied(m, cellCmd[[]byte]{Op: cellCAS, Expected: new([]byte{}), Value: new([]byte("x"))}, fakeCtx(2)); r.Applied {
		t.Fatal("an empty slice matched a nil one")
	}
	if r := applied(m, cellCmd[[]byte]{Op: cellCAS, Expected: nil, Value: new([]byte("x"))}, fakeCtx(3)); r.Applied {
		t.Fatal("an empty expected matched a cell holding a nil slice")
	}
	if r := applied(m, cellCmd[[]byte]{Op: cellCAS, Expected: new([]byte(nil)), Value: new([]byte("x"))}, fakeCtx(4)); !r.Applied {
		t.Fatal("a nil slice did not match itself")
	}
	if got, _ := (slotReads[cellCmd[[]byte], []byte]{m: &m.slotMachine}).Get(); string(got) != "x" {
		t.Fatalf("holds %q", got)
	}
}

// An inspect dump and the changes it serves carry the value on inserts.
func TestCellInspectWire(t *testing.T) {
	m := newCellMachine[string](8)
	if f := m.frozen(); f.n != 0 || len(collectSeq(f.after(nil))) != 0 {
		t.Fatal("an empty cell dumps an entry")
	}
	applied(m, cellCmd[string]{Op: cellSet, Value: new("v")}, fakeCtx(1))
	f := m.frozen()
	all := collectSeq(f.after(nil))
	if f.n != 1 || f.v != 1 || len(all) != 1 || len(collectSeq(f.after(&all[0]))) != 0 {
		t.Fatalf("dump of a full cell: %d entries at %d: %v", f.n, f.v, all)
	}
	w, err := all[0].wire()
	if err != nil || w.Op != inspectwire.ChangeInsert || !bytes.Equal(w.Value, mustEncode("v")) {
		t.Fatalf("an insert's wire form: %+v, %v", w, err)
	}
	if w, _ := (CellChange[string]{Op: OpClear, Value: "x"}).wire(); w.Op != inspectwire.ChangeClear || w.Value != nil {
		t.Fatalf("a clear's wire form: %+v", w)
	}
	if kind, ok := sigDescribe(m.Signature()); !ok || kind != "Cell[string]" {
		t.Fatalf("the signature %q describes as %q", m.Signature(), kind)
	}
}

func collectSeq[E any](seq func(func(E) bool)) []E {
	var out []E
	for x := range seq {
		out = append(out, x)
	}
	return out
}

var fuzzCellSeed = []cellCmd[string]{{Op: cellSet, Value: ptr("a")}, {Op: cellClear}, {Op: cellSet, Value: ptr("b")}}

func FuzzCellApply(f *testing.F) {
	for _, cmds := range [][]cellCmd[string]{fuzzCellSeed, {{Op: cellCAS, Expected: ptr("b"), Value: ptr("c")},
		{Op: cellCAS, Value: ptr("d")}, {Op: cellCAS, Expected: ptr("c")}, {Op: cellSet}, {Op: 99, Value: ptr("e")}}} {
		f.Add(must[[]byte](f)(rsm.Marshal(cmds)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzApply(t, data, newCellMachine[string], fuzzCellSeed)
	})
}

func FuzzCellRestore(f *testing.F) {
	m := newCellMachine[string](8)
	applied(m, fuzzCellSeed[0], fakeCtx(1))
	f.Add(snapshotBytes(f, m))
	f.Add(snapshotBytes(f, newCellMachine[string](8)))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRestore(t, data, newCellMachine[string], fuzzCellSeed)
	})
}

// BenchmarkCellGet is a local read: one atomic load.
func BenchmarkCellGet(b *testing.B) {
	m := newCellMachine[[]byte](8)
	applied(m, cellCmd[[]byte]{Op: cellSet, Value: new(benchValue(1))}, fakeCtx(1))
	r := CellReader[[]byte]{slotReads[cellCmd[[]byte], []byte]{m: &m.slotMachine}}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := r.Get(); !ok {
			b.Fatal("empty")
		}
	}
}

// BenchmarkCellSet is Cell.Set at concurrency 1 through the leader of
// three replicas in one process, next to Map.Insert in the same setting.
func BenchmarkCellSet(b *testing.B) {
	for _, what := range []string{"cell.Set", "map.Insert"} {
		b.Run("replicas=3/link=process/via=leader/concurrency=1/"+what, func(b *testing.B) {
			tn := newTestNet(b)
			var write func(ctx context.Context, i int) error
			var leaderOf func() (transport.PeerID, bool)
			var ws []waiter
			nets := []*transport.Network{tn.node(), tn.node(), tn.node()}
			writes := make([]func(ctx context.Context, i int) error, 3)
			for i, n := range nets {
				if what == "cell.Set" {
					w := openCellW[[]byte](b, n, "bench")
					ws, leaderOf = append(ws, w), w.Leader
					writes[i] = func(ctx context.Context, i int) error { _, err := w.Set(ctx, benchValue(i)); return err }
				} else {
					w := openMapW[string, []byte](b, n, "bench")
					ws, leaderOf = append(ws, w), w.Leader
					writes[i] = func(ctx context.Context, i int) error {
						_, err := w.Insert(ctx, benchKey(i), benchValue(i))
						return err
					}
				}
			}
			online(b, ws...)
			write = atLeader(b, nets, leaderOf, writes)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			b.ResetTimer()
			start := time.Now()
			i := 0
			for b.Loop() {
				if err := write(ctx, i); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(i)/time.Since(start).Seconds(), "writes/s")
		})
	}
}
