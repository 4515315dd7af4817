package collections

import (
	"errors"
	"fmt"
	"iter"
	"slices"
	"testing"
)

// The scenarios of mosaik's tests/collections/depq.rs, one test each, on
// PriorityQueue[uint64, uint64, uint64]. Where our semantics differ the
// test says so: ties of equal priority are ordered by key, so a scenario
// that allowed any of them names the one; a reader's state is checked after
// When().Reaches, as there.

type (
	pqU  = PQEntry[uint64, uint64, uint64]
	pqUR = pqReads[uint64, uint64, uint64]
)

// pqNodes opens writers and readers of the queue "depq", each on a node of
// its own, and waits until they are online.
func pqNodes(t *testing.T, writers, readers int, opts ...Option) ([]*PriorityQueueWriter[uint64, uint64, uint64], []*PriorityQueueReader[uint64, uint64, uint64]) {
	t.Helper()
	tn := newTestNet(t)
	var ws []*PriorityQueueWriter[uint64, uint64, uint64]
	var rs []*PriorityQueueReader[uint64, uint64, uint64]
	var all []waiter
	for range writers {
		ws = append(ws, openPQW[uint64, uint64, uint64](t, tn.node(), "depq", opts...))
		all = append(all, ws[len(ws)-1])
	}
	for range readers {
		rs = append(rs, openPQR[uint64, uint64, uint64](t, tn.node(), "depq", opts...))
		all = append(all, rs[len(rs)-1])
	}
	online(t, all...)
	return ws, rs
}

// pqPair is one writer and one reader.
func pqPair(t *testing.T) (*PriorityQueueWriter[uint64, uint64, uint64], *PriorityQueueReader[uint64, uint64, uint64]) {
	ws, rs := pqNodes(t, 1, 1)
	return ws[0], rs[0]
}

// triples makes entries of (priority, key, value) triples.
func triples(ts ...[3]uint64) iter.Seq[pqU] {
	return func(yield func(pqU) bool) {
		for _, x := range ts {
			if !yield(pqU{Priority: x[0], Key: x[1], Value: x[2]}) {
				return
			}
		}
	}
}

// wrote fails on err and waits until hs reach v.
func wrote(t *testing.T, v Version, err error, hs ...waiter) Version {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	reach(t, v, hs...)
	return v
}

func ins(t *testing.T, w *PriorityQueueWriter[uint64, uint64, uint64], p, k, v uint64, hs ...waiter) Version {
	t.Helper()
	ver, _, err := w.Insert(tctx(t), p, k, v)
	return wrote(t, ver, err, hs...)
}

func ext(t *testing.T, w *PriorityQueueWriter[uint64, uint64, uint64], es iter.Seq[pqU], hs ...waiter) Version {
	t.Helper()
	ver, _, err := w.Extend(tctx(t), es)
	return wrote(t, ver, err, hs...)
}

func wantGet(t *testing.T, r pqUR, k, v, p uint64) {
	t.Helper()
	if gv, gp, ok := r.Get(k); !ok || gv != v || gp != p || !r.ContainsKey(k) {
		t.Fatalf("Get(%d) = %d, %d, %v; want %d at %d", k, gv, gp, ok, v, p)
	}
}

func wantNone(t *testing.T, r pqUR, ks ...uint64) {
	t.Helper()
	for _, k := range ks {
		if v, p, ok := r.Get(k); ok || r.ContainsKey(k) {
			t.Fatalf("Get(%d) = %d, %d, present", k, v, p)
		}
	}
}

func wantLen(t *testing.T, r pqUR, n int) {
	t.Helper()
	if r.Len() != n || r.IsEmpty() != (n == 0) {
		t.Fatalf("Len %d, IsEmpty %v; want %d", r.Len(), r.IsEmpty(), n)
	}
}

func wantBounds(t *testing.T, r pqUR, lo, hi uint64) {
	t.Helper()
	mn, ok1 := r.MinPriority()
	mx, ok2 := r.MaxPriority()
	if !ok1 || !ok2 || mn != lo || mx != hi {
		t.Fatalf("priorities %d (%v) to %d (%v); want %d to %d", mn, ok1, mx, ok2, lo, hi)
	}
}

func wantEmpty(t *testing.T, r pqUR) {
	t.Helper()
	wantLen(t, r, 0)
	_, ok1 := r.Min()
	_, ok2 := r.Max()
	_, ok3 := r.MinPriority()
	_, ok4 := r.MaxPriority()
	if ok1 || ok2 || ok3 || ok4 || len(slices.Collect(r.All())) != 0 || len(slices.Collect(r.Backward())) != 0 {
		t.Fatal("an empty queue has entries")
	}
}

func priorities(seq iter.Seq[pqU]) []uint64 {
	var out []uint64
	for e := range seq {
		out = append(out, e.Priority)
	}
	return out
}

// smoke_no_catchup
func TestPQSmoke(t *testing.T) {
	w, r := pqPair(t)
	wantEmpty(t, r.pqReads)
	wantNone(t, r.pqReads, 1)

	ins(t, w, 10, 1, 100, r)
	wantLen(t, r.pqReads, 1)
	wantGet(t, r.pqReads, 1, 100, 10)
	wantNone(t, r.pqReads, 2)
	if mn, _ := r.Min(); mn != (pqU{10, 1, 100}) {
		t.Fatalf("min %+v", mn)
	}
	if mx, _ := r.Max(); mx != (pqU{10, 1, 100}) {
		t.Fatalf("max %+v", mx)
	}
	wantBounds(t, r.pqReads, 10, 10)

	ins(t, w, 5, 2, 200, r)
	ins(t, w, 20, 3, 300, r)
	wantLen(t, r.pqReads, 3)
	if mn, _ := r.Min(); mn != (pqU{5, 2, 200}) {
		t.Fatalf("min %+v", mn)
	}
	if mx, _ := r.Max(); mx != (pqU{20, 3, 300}) {
		t.Fatalf("max %+v", mx)
	}

	ins(t, w, 15, 1, 150, r) // an upsert moves the key
	wantLen(t, r.pqReads, 3)
	wantGet(t, r.pqReads, 1, 150, 15)

	ext(t, w, triples([3]uint64{1, 4, 400}, [3]uint64{30, 5, 500}, [3]uint64{8, 6, 600}), r)
	wantLen(t, r.pqReads, 6)
	wantGet(t, r.pqReads, 4, 400, 1)
	wantGet(t, r.pqReads, 5, 500, 30)
	wantBounds(t, r.pqReads, 1, 30)
	if asc := priorities(r.All()); !slices.Equal(asc, []uint64{1, 5, 8, 15, 20, 30}) {
		t.Fatalf("ascending %v", asc)
	}
	if desc := priorities(r.Backward()); !slices.Equal(desc, []uint64{30, 20, 15, 8, 5, 1}) {
		t.Fatalf("descending %v", desc)
	}

	wrote(t, must[Version](t)(w.Remove(tctx(t), 4)), nil, r)
	wantLen(t, r.pqReads, 5)
	wantNone(t, r.pqReads, 4)
	wantBounds(t, r.pqReads, 5, 30)

	wrote(t, must[Version](t)(w.Clear(tctx(t))), nil, r)
	wantEmpty(t, r.pqReads)
}

// catchup_single_reader: here the log is not compacted, so the reader
// replays it; TestPQLateReaderUsesSnapshot catches up by snapshot.
func TestPQLateReaderReplays(t *testing.T) {
	tn := newTestNet(t)
	w := openPQW[uint64, uint64, uint64](t, tn.node(), "depq")
	online(t, w)
	for i := range uint64(100) {
		ins(t, w, i*10, i, i*100)
	}
	v := ext(t, w, triples([3]uint64{1000, 100, 10000}, [3]uint64{1010, 101, 10100}, [3]uint64{1020, 102, 10200}))
	r := openPQR[uint64, uint64, uint64](t, tn.node(), "depq")
	online(t, r)
	reach(t, v, r)
	wantLen(t, r.pqReads, 103)
	for i := range uint64(100) {
		wantGet(t, r.pqReads, i, i*100, i*10)
	}
	wantGet(t, r.pqReads, 102, 10200, 1020)
	wantBounds(t, r.pqReads, 0, 1020)
	wrote(t, must[Version](t)(w.Remove(tctx(t), 50)), nil, r)
	wantLen(t, r.pqReads, 102)
	wantNone(t, r.pqReads, 50)
}

// multiple_readers
func TestPQMultipleReaders(t *testing.T) {
	ws, rs := pqNodes(t, 1, 3)
	w := ws[0]
	hs := waiters(anyHandles(rs)...)
	ext(t, w, triples([3]uint64{10, 1, 100}, [3]uint64{20, 2, 200}, [3]uint64{30, 3, 300}, [3]uint64{40, 4, 400}, [3]uint64{50, 5, 500}), hs...)
	for _, r := range rs {
		wantLen(t, r.pqReads, 5)
		wantBounds(t, r.pqReads, 10, 50)
		wantGet(t, r.pqReads, 5, 500, 50)
	}
	ins(t, w, 60, 6, 600, hs...)
	for _, r := range rs {
		wantGet(t, r.pqReads, 6, 600, 60)
		wantBounds(t, r.pqReads, 10, 60)
	}
	wrote(t, must[Version](t)(w.Remove(tctx(t), 1)), nil, hs...)
	for _, r := range rs {
		wantLen(t, r.pqReads, 5)
		wantNone(t, r.pqReads, 1)
		wantBounds(t, r.pqReads, 20, 60)
	}
}

func anyHandles[H anyHandle](hs []H) []anyHandle {
	out := make([]anyHandle, len(hs))
	for i, h := range hs {
		out[i] = h
	}
	return out
}

// sameQueues fails unless every handle lists the same entries.
func sameQueues(t *testing.T, hs ...pqUR) []pqU {
	t.Helper()
	want := slices.Collect(hs[0].All())
	for i, h := range hs[1:] {
		if got := slices.Collect(h.All()); !slices.Equal(got, want) {
			t.Fatalf("handle %d holds %v, handle 0 %v", i+1, got, want)
		}
	}
	return want
}

// multiple_writers
func TestPQMultipleWriters(t *testing.T) {
	ws, rs := pqNodes(t, 2, 1)
	r := rs[0]
	ins(t, ws[0], 10, 1, 100, r)
	ins(t, ws[1], 20, 2, 200, r)
	ins(t, ws[0], 30, 3, 300, r)
	wantLen(t, r.pqReads, 3)
	wantGet(t, r.pqReads, 2, 200, 20)
	ext(t, ws[1], triples([3]uint64{40, 4, 400}, [3]uint64{50, 5, 500}), r, ws[0], ws[1])
	wantLen(t, r.pqReads, 5)
	sameQueues(t, ws[0].pqReads, ws[1].pqReads, r.pqReads)
}

// catchup_multiple_readers
func TestPQLateReaders(t *testing.T) {
	tn := newTestNet(t)
	w := openPQW[uint64, uint64, uint64](t, tn.node(), "depq")
	online(t, w)
	for i := range uint64(50) {
		ins(t, w, i*10, i, i*100)
	}
	mid := ins(t, w, 9990, 999, 99_900)
	r1 := openPQR[uint64, uint64, uint64](t, tn.node(), "depq")
	online(t, r1)
	reach(t, mid, r1)
	wantLen(t, r1.pqReads, 51)
	wantGet(t, r1.pqReads, 999, 99_900, 9990)
	for i := range uint64(30) {
		ins(t, w, (50+i)*10, 50+i, (50+i)*100)
	}
	late := ins(t, w, 10000, 1000, 100_000)
	r2 := openPQR[uint64, uint64, uint64](t, tn.node(), "depq")
	online(t, r2)
	reach(t, late, r1, r2)
	wantLen(t, r1.pqReads, 82)
	wantGet(t, r2.pqReads, 1000, 100_000, 10000)
	sameQueues(t, r1.pqReads, r2.pqReads, w.pqReads)
}

// insert_overwrite
func TestPQInsertOverwrite(t *testing.T) {
	w, r := pqPair(t)
	ins(t, w, 10, 1, 100, r)
	ins(t, w, 99, 1, 999, r)
	wantGet(t, r.pqReads, 1, 999, 99)
	wantLen(t, r.pqReads, 1)
	wantBounds(t, r.pqReads, 99, 99) // the old place is gone
}

// updated returns a check of an update's result: it found the key as
// want says, and hs reached its version.
func updated(t *testing.T, what string, want bool, hs ...waiter) func(Version, bool, error) {
	return func(v Version, found bool, err error) {
		t.Helper()
		wrote(t, v, err, hs...)
		if found != want {
			t.Fatalf("%s: found %v, want %v", what, found, want)
		}
	}
}

// update_priority
func TestPQUpdatePriority(t *testing.T) {
	w, r := pqPair(t)
	ext(t, w, triples([3]uint64{10, 1, 100}, [3]uint64{20, 2, 200}, [3]uint64{30, 3, 300}), r)
	updated(t, "UpdatePriority(1, 50)", true, r)(w.UpdatePriority(tctx(t), 1, 50))
	wantGet(t, r.pqReads, 1, 100, 50)
	wantLen(t, r.pqReads, 3)
	wantBounds(t, r.pqReads, 20, 50)
	updated(t, "UpdatePriority(999, 1)", false, r)(w.UpdatePriority(tctx(t), 999, 1))
	wantLen(t, r.pqReads, 3)
	wantNone(t, r.pqReads, 999)
}

// update_value
func TestPQUpdateValue(t *testing.T) {
	w, r := pqPair(t)
	ext(t, w, triples([3]uint64{10, 1, 100}, [3]uint64{20, 2, 200}, [3]uint64{30, 3, 300}), r)
	updated(t, "UpdateValue(2, 999)", true, r)(w.UpdateValue(tctx(t), 2, 999))
	wantGet(t, r.pqReads, 2, 999, 20)
	updated(t, "UpdateValue(999, 42)", false, r)(w.UpdateValue(tctx(t), 999, 42))
	wantLen(t, r.pqReads, 3)
	wantNone(t, r.pqReads, 999)
}

var pqFive = triples([3]uint64{10, 1, 100}, [3]uint64{20, 2, 200}, [3]uint64{30, 3, 300}, [3]uint64{40, 4, 400}, [3]uint64{50, 5, 500})

// remove_range, with every kind of end
func TestPQRemoveRange(t *testing.T) {
	w, r := pqPair(t)
	rm := func(lo, hi Bound[uint64]) {
		t.Helper()
		wrote(t, must[Version](t)(w.RemoveRange(tctx(t), lo, hi)), nil, r)
	}
	ext(t, w, pqFive, r)
	rm(Unbounded[uint64](), Exclusive[uint64](25)) // ..25
	wantLen(t, r.pqReads, 3)
	wantNone(t, r.pqReads, 1, 2)
	wantGet(t, r.pqReads, 3, 300, 30)
	wantBounds(t, r.pqReads, 30, 50)
	rm(Inclusive[uint64](45), Unbounded[uint64]()) // 45..
	wantLen(t, r.pqReads, 2)
	wantNone(t, r.pqReads, 5)
	wantBounds(t, r.pqReads, 30, 40)

	wrote(t, must[Version](t)(w.Clear(tctx(t))), nil, r)
	ext(t, w, pqFive, r)
	rm(Inclusive[uint64](20), Inclusive[uint64](40)) // 20..=40
	wantLen(t, r.pqReads, 2)
	wantGet(t, r.pqReads, 1, 100, 10)
	wantGet(t, r.pqReads, 5, 500, 50)
	wantNone(t, r.pqReads, 2, 3, 4)

	// Ends on the priorities of entries: exclusive ones keep them.
	ext(t, w, pqFive, r)
	rm(Exclusive[uint64](10), Exclusive[uint64](50))
	if got := priorities(r.All()); !slices.Equal(got, []uint64{10, 50}) {
		t.Fatalf("after (10, 50): %v", got)
	}
	ext(t, w, pqFive, r)
	rm(Exclusive[uint64](30), Inclusive[uint64](40))
	if got := priorities(r.All()); !slices.Equal(got, []uint64{10, 20, 30, 50}) {
		t.Fatalf("after (30, 40]: %v", got)
	}
	rm(Inclusive[uint64](40), Inclusive[uint64](20)) // empty: lo above hi
	wantLen(t, r.pqReads, 4)

	rm(Unbounded[uint64](), Unbounded[uint64]()) // ..: a clear
	wantEmpty(t, r.pqReads)
}

// remove_nonexistent
func TestPQRemoveMissing(t *testing.T) {
	w, r := pqPair(t)
	ext(t, w, triples([3]uint64{10, 1, 100}, [3]uint64{20, 2, 200}, [3]uint64{30, 3, 300}), r)
	wrote(t, must[Version](t)(w.Remove(tctx(t), 999)), nil, r)
	wantLen(t, r.pqReads, 3)
	wantGet(t, r.pqReads, 1, 100, 10)
	wantGet(t, r.pqReads, 3, 300, 30)
}

// clear_then_rebuild
func TestPQClearThenRebuild(t *testing.T) {
	w, r := pqPair(t)
	ext(t, w, triples([3]uint64{10, 1, 100}, [3]uint64{20, 2, 200}, [3]uint64{30, 3, 300}), r)
	wrote(t, must[Version](t)(w.Clear(tctx(t))), nil, r)
	wantEmpty(t, r.pqReads)
	ins(t, w, 99, 100, 1000, r)
	wantLen(t, r.pqReads, 1)
	wantGet(t, r.pqReads, 100, 1000, 99)
	wantNone(t, r.pqReads, 1)
}

// extend_empty: nothing is sent; the version is the writer's.
func TestPQExtendEmpty(t *testing.T) {
	w, r := pqPair(t)
	v := ins(t, w, 10, 1, 100, r)
	ve, gone, err := w.Extend(tctx(t), triples())
	if err != nil || ve != v || gone != nil {
		t.Fatalf("an empty Extend: %d, %v, %v; want version %d", ve, gone, err, v)
	}
	wantLen(t, r.pqReads, 1)
	ins(t, w, 20, 2, 200, r)
	wantLen(t, r.pqReads, 2)
}

// extend_overwrite
func TestPQExtendOverwrite(t *testing.T) {
	w, r := pqPair(t)
	ext(t, w, triples([3]uint64{10, 1, 100}, [3]uint64{20, 2, 200}, [3]uint64{30, 3, 300}), r)
	ext(t, w, triples([3]uint64{99, 2, 999}, [3]uint64{88, 3, 888}, [3]uint64{40, 4, 400}), r)
	wantLen(t, r.pqReads, 4)
	wantGet(t, r.pqReads, 1, 100, 10)
	wantGet(t, r.pqReads, 2, 999, 99)
	wantGet(t, r.pqReads, 3, 888, 88)
	wantGet(t, r.pqReads, 4, 400, 40)
}

// same_priority_bucket: mosaik allows any entry of the lowest priority as
// the min; ours is the lowest key of it, on every replica.
func TestPQSamePriority(t *testing.T) {
	w, r := pqPair(t)
	ext(t, w, triples([3]uint64{10, 3, 300}, [3]uint64{10, 1, 100}, [3]uint64{10, 2, 200}, [3]uint64{20, 4, 400}), r, w)
	wantLen(t, r.pqReads, 4)
	wantBounds(t, r.pqReads, 10, 20)
	if mn, _ := r.Min(); mn != (pqU{10, 1, 100}) {
		t.Fatalf("min %+v, want the lowest key of priority 10", mn)
	}
	if got := slices.Collect(r.All()); !slices.Equal(got, []pqU{{10, 1, 100}, {10, 2, 200}, {10, 3, 300}, {20, 4, 400}}) {
		t.Fatalf("ascending %v", got)
	}
	if got := slices.Collect(r.Backward()); !slices.Equal(got, []pqU{{20, 4, 400}, {10, 3, 300}, {10, 2, 200}, {10, 1, 100}}) {
		t.Fatalf("descending %v", got)
	}
	wrote(t, must[Version](t)(w.Remove(tctx(t), 2)), nil, r)
	wantLen(t, r.pqReads, 3)
	wantBounds(t, r.pqReads, 10, 20)
	wrote(t, must[Version](t)(w.Remove(tctx(t), 1)), nil, r)
	wrote(t, must[Version](t)(w.Remove(tctx(t), 3)), nil, r)
	wantLen(t, r.pqReads, 1)
	wantBounds(t, r.pqReads, 20, 20)
}

// many_writers_many_readers
func TestPQManyWritersManyReaders(t *testing.T) {
	ws, rs := pqNodes(t, 2, 2)
	all := []waiter{ws[0], ws[1], rs[0], rs[1]}
	ext(t, ws[0], triples([3]uint64{10, 1, 100}, [3]uint64{20, 2, 200}, [3]uint64{30, 3, 300}), all...)
	ext(t, ws[1], triples([3]uint64{40, 4, 400}, [3]uint64{50, 5, 500}), all...)
	wantLen(t, rs[0].pqReads, 5)
	wantLen(t, rs[1].pqReads, 5)
	wrote(t, must[Version](t)(ws[0].Remove(tctx(t), 1)), nil, all...)
	ins(t, ws[1], 60, 6, 600, all...)
	got := sameQueues(t, ws[0].pqReads, ws[1].pqReads, rs[0].pqReads, rs[1].pqReads)
	var keys []uint64
	for _, e := range got {
		keys = append(keys, e.Key)
	}
	if !slices.Equal(keys, []uint64{2, 3, 4, 5, 6}) {
		t.Fatalf("keys %v", keys)
	}
}

// late_writer_catchup
func TestPQLateWriter(t *testing.T) {
	tn := newTestNet(t)
	w0 := openPQW[uint64, uint64, uint64](t, tn.node(), "depq")
	online(t, w0)
	v := ext(t, w0, pqFive)
	w1 := openPQW[uint64, uint64, uint64](t, tn.node(), "depq")
	online(t, w1)
	reach(t, v, w1)
	wantLen(t, w1.pqReads, 5)
	ins(t, w1, 99, 99, 990, w0, w1)
	wantLen(t, w0.pqReads, 6)
	wantGet(t, w0.pqReads, 99, 990, 99)
	wantGet(t, w1.pqReads, 99, 990, 99)
}

// writer_reads_own_writes: at once, without waiting.
func TestPQWriterReadsOwnWrites(t *testing.T) {
	tn := newTestNet(t)
	w := openPQW[uint64, string, string](t, tn.node(), "depq")
	online(t, w)
	if _, _, err := w.Insert(tctx(t), 10, "hello", "world"); err != nil {
		t.Fatal(err)
	}
	if v, p, ok := w.Get("hello"); !ok || v != "world" || p != 10 || w.Len() != 1 || !w.ContainsKey("hello") || w.ContainsKey("missing") {
		t.Fatalf("Get = %q, %d, %v; Len %d", v, p, ok, w.Len())
	}
	if _, _, err := w.Insert(tctx(t), 20, "foo", "bar"); err != nil {
		t.Fatal(err)
	}
	want := []PQEntry[uint64, string, string]{{10, "hello", "world"}, {20, "foo", "bar"}}
	if got := slices.Collect(w.All()); !slices.Equal(got, want) {
		t.Fatalf("%v", got)
	}
}

// remove_all_entries
func TestPQRemoveAll(t *testing.T) {
	w, r := pqPair(t)
	ext(t, w, triples([3]uint64{10, 1, 100}, [3]uint64{20, 2, 200}, [3]uint64{30, 3, 300}), r)
	for i, k := range []uint64{1, 2, 3} {
		wrote(t, must[Version](t)(w.Remove(tctx(t), k)), nil, r)
		wantLen(t, r.pqReads, 2-i)
	}
	wantEmpty(t, r.pqReads)
	ins(t, w, 42, 4, 400, r)
	wantLen(t, r.pqReads, 1)
	wantGet(t, r.pqReads, 4, 400, 42)
}

// remove_keys
func TestPQRemoveKeys(t *testing.T) {
	w, r := pqPair(t)
	ext(t, w, pqFive, r)
	wrote(t, must[Version](t)(w.RemoveKeys(tctx(t), slices.Values([]uint64{2, 4, 5}))), nil, r)
	wantLen(t, r.pqReads, 2)
	wantGet(t, r.pqReads, 1, 100, 10)
	wantGet(t, r.pqReads, 3, 300, 30)
	wantNone(t, r.pqReads, 2, 4, 5)
	wantBounds(t, r.pqReads, 10, 30)
	wrote(t, must[Version](t)(w.RemoveKeys(tctx(t), slices.Values([]uint64{1, 99, 100}))), nil, r)
	wantLen(t, r.pqReads, 1)
	wantNone(t, r.pqReads, 1)
	v, err := w.RemoveKeys(tctx(t), slices.Values([]uint64(nil)))
	if err != nil || v != w.Version() {
		t.Fatalf("an empty RemoveKeys: %d, %v; the writer is at %d", v, err, w.Version())
	}
	ins(t, w, 60, 10, 1000, r)
	wantLen(t, r.pqReads, 2)
}

// remove_range_empty
func TestPQRemoveRangeEmpty(t *testing.T) {
	ws, _ := pqNodes(t, 1, 0)
	w := ws[0]
	wrote(t, must[Version](t)(w.RemoveRange(tctx(t), Unbounded[uint64](), Exclusive[uint64](100))), nil)
	wantEmpty(t, w.pqReads)
	ins(t, w, 10, 1, 100)
	wantLen(t, w.pqReads, 1)
}

// iter_ordering_after_mutations
func TestPQOrderAfterMutations(t *testing.T) {
	ws, _ := pqNodes(t, 1, 0)
	w := ws[0]
	ext(t, w, triples([3]uint64{50, 1, 100}, [3]uint64{10, 2, 200}, [3]uint64{30, 3, 300}, [3]uint64{20, 4, 400}, [3]uint64{40, 5, 500}))
	order := func(asc, desc []uint64) {
		t.Helper()
		if got := priorities(w.All()); !slices.Equal(got, asc) {
			t.Fatalf("ascending %v, want %v", got, asc)
		}
		if got := priorities(w.Backward()); !slices.Equal(got, desc) {
			t.Fatalf("descending %v, want %v", got, desc)
		}
	}
	order([]uint64{10, 20, 30, 40, 50}, []uint64{50, 40, 30, 20, 10})
	wrote(t, must[Version](t)(w.Remove(tctx(t), 3)), nil)
	order([]uint64{10, 20, 40, 50}, []uint64{50, 40, 20, 10})
	if _, _, err := w.UpdatePriority(tctx(t), 2, 45); err != nil {
		t.Fatal(err)
	}
	order([]uint64{20, 40, 45, 50}, []uint64{50, 45, 40, 20})
}

// cas runs a CompareExchangeValue and waits for hs; it fails unless it
// applied as want says.
func cas(t *testing.T, w *PriorityQueueWriter[uint64, uint64, uint64], k, exp uint64, rep *uint64, want bool, hs ...waiter) {
	t.Helper()
	v, applied, err := w.CompareExchangeValue(tctx(t), k, exp, rep)
	wrote(t, v, err, hs...)
	if applied != want {
		t.Fatalf("CompareExchangeValue(%d, %d, %v) applied %v, want %v", k, exp, rep, applied, want)
	}
}

// compare_exchange_value_success, _remove, _mismatch, _missing_key,
// _chained and _preserves_priority
func TestPQCompareExchangeValue(t *testing.T) {
	w, r := pqPair(t)
	cas(t, w, 1, 100, new(uint64(200)), false, r) // missing key
	wantEmpty(t, r.pqReads)
	ext(t, w, triples([3]uint64{5, 1, 100}, [3]uint64{10, 2, 200}, [3]uint64{20, 3, 300}), r)
	cas(t, w, 1, 100, new(uint64(200)), true, r)
	wantGet(t, r.pqReads, 1, 200, 5) // the priority stays
	cas(t, w, 1, 999, new(uint64(7)), false, r)
	cas(t, w, 1, 999, nil, false, r)
	wantGet(t, r.pqReads, 1, 200, 5)
	cas(t, w, 99, 100, new(uint64(200)), false, r)
	wantNone(t, r.pqReads, 99)
	cas(t, w, 2, 200, new(uint64(250)), true, r)
	wantGet(t, r.pqReads, 2, 250, 10)
	wantBounds(t, r.pqReads, 5, 20)
	if got := priorities(r.All()); !slices.Equal(got, []uint64{5, 10, 20}) {
		t.Fatalf("ascending %v", got)
	}
	// Chained, then a removal.
	cas(t, w, 1, 200, new(uint64(300)), true, r)
	cas(t, w, 1, 300, nil, true, r)
	wantNone(t, r.pqReads, 1)
	wantLen(t, r.pqReads, 2)
	wantGet(t, r.pqReads, 3, 300, 20)
}

// compare_exchange_value_replicates_to_readers
func TestPQCompareExchangeValueReplicates(t *testing.T) {
	ws, rs := pqNodes(t, 1, 2)
	w := ws[0]
	hs := waiters(anyHandles(rs)...)
	ext(t, w, triples([3]uint64{10, 1, 100}, [3]uint64{20, 2, 200}), hs...)
	cas(t, w, 1, 100, new(uint64(150)), true, hs...)
	for _, r := range rs {
		wantGet(t, r.pqReads, 1, 150, 10)
	}
}

// compare_exchange_value_mixed_with_mutations
func TestPQCompareExchangeValueMixed(t *testing.T) {
	w, r := pqPair(t)
	ins(t, w, 10, 1, 100, r)
	cas(t, w, 1, 100, new(uint64(200)), true, r)
	if _, _, err := w.UpdateValue(tctx(t), 1, 300); err != nil {
		t.Fatal(err)
	}
	cas(t, w, 1, 300, new(uint64(400)), true, r)
	if _, _, err := w.UpdatePriority(tctx(t), 1, 50); err != nil {
		t.Fatal(err)
	}
	cas(t, w, 1, 400, new(uint64(500)), true, r)
	wantGet(t, r.pqReads, 1, 500, 50)
	cas(t, w, 1, 500, nil, true, r)
	wantEmpty(t, r.pqReads)
	ins(t, w, 1, 1, 10, r)
	wantGet(t, r.pqReads, 1, 10, 1)
}

// compare_exchange_value_catchup
func TestPQCompareExchangeValueLateReader(t *testing.T) {
	tn := newTestNet(t)
	w := openPQW[uint64, uint64, uint64](t, tn.node(), "depq")
	online(t, w)
	ins(t, w, 10, 1, 100)
	cas(t, w, 1, 100, new(uint64(200)), true)
	ins(t, w, 20, 2, 300)
	cas(t, w, 2, 300, new(uint64(400)), true)
	r := openPQR[uint64, uint64, uint64](t, tn.node(), "depq")
	online(t, r)
	reach(t, w.Version(), r)
	wantLen(t, r.pqReads, 2)
	wantGet(t, r.pqReads, 1, 200, 10)
	wantGet(t, r.pqReads, 2, 400, 20)
}

// compare_exchange_value_remove_affects_minmax
func TestPQCompareExchangeValueMinMax(t *testing.T) {
	w, r := pqPair(t)
	ext(t, w, triples([3]uint64{5, 1, 100}, [3]uint64{10, 2, 200}, [3]uint64{20, 3, 300}), r)
	wantBounds(t, r.pqReads, 5, 20)
	cas(t, w, 1, 100, nil, true, r)
	wantBounds(t, r.pqReads, 10, 20)
	cas(t, w, 3, 300, nil, true, r)
	wantBounds(t, r.pqReads, 10, 10)
	wantLen(t, r.pqReads, 1)
}

// construct_from_def (mosaik's construct_from_macro has no Go
// counterpart: a definition is the way). A bounded definition carries its
// capacity to every handle.
func TestPQDef(t *testing.T) {
	def := PriorityQueueDef[uint64, string, string]("def", append(testOpts(), WithCapacity(2))...)
	if def.Name() != "def" || def.ReaderOnly().Name() != "def" {
		t.Fatal("names")
	}
	tn := newTestNet(t)
	w := cleanup(t, must[*PriorityQueueWriter[uint64, string, string]](t)(def.Writer(tn.node())))
	r := cleanup(t, must[*PriorityQueueReader[uint64, string, string]](t)(def.ReaderOnly().Reader(tn.node())))
	online(t, w, r)
	for i, k := range []string{"hello", "a", "b"} {
		v, _, err := w.Insert(tctx(t), uint64(15+i), k, "world")
		wrote(t, v, err, r)
	}
	if r.Capacity() != 2 || r.Len() != 2 {
		t.Fatalf("capacity %d, %d entries", r.Capacity(), r.Len())
	}
	if _, _, ok := r.Get("hello"); ok {
		t.Fatal("the lowest entry was not evicted")
	}
	if v, p, ok := r.Get("b"); !ok || v != "world" || p != 17 {
		t.Fatalf("Get(b) = %q, %d, %v", v, p, ok)
	}
}

// Pops take the ends and say so; an empty queue's pop has a version and
// changes nothing. Not in mosaik, which has no pop.
func TestPQPop(t *testing.T) {
	w, r := pqPair(t)
	e, v, err := w.PopMin(tctx(t))
	if !errors.Is(err, ErrEmpty) || e != (pqU{}) || v == 0 {
		t.Fatalf("a pop of an empty queue: %+v at %d, %v; want ErrEmpty with a version", e, v, err)
	}
	wrote(t, v, nil, r)
	ext(t, w, triples([3]uint64{10, 2, 200}, [3]uint64{10, 1, 100}, [3]uint64{30, 3, 300}, [3]uint64{30, 4, 400}), r)
	for _, want := range []struct {
		max bool
		e   pqU
	}{{false, pqU{10, 1, 100}}, {true, pqU{30, 4, 400}}, {false, pqU{10, 2, 200}}, {false, pqU{30, 3, 300}}} {
		pop := w.PopMin
		if want.max {
			pop = w.PopMax
		}
		e, v, err := pop(tctx(t))
		wrote(t, v, err, r)
		if e != want.e {
			t.Fatalf("pop (max %v) took %+v; want %+v", want.max, e, want.e)
		}
		wantNone(t, r.pqReads, e.Key)
	}
	wantEmpty(t, r.pqReads)
}

// A bounded queue evicts its lowest entry when an insert of a new key
// overfills it, possibly the new one, and says which; moving a key that is
// there evicts nothing.
func TestPQEviction(t *testing.T) {
	ws, rs := pqNodes(t, 1, 1, WithCapacity(3))
	w, r := ws[0], rs[0]
	insert := func(p, k uint64, want []pqU) {
		t.Helper()
		v, gone, err := w.Insert(tctx(t), p, k, k*100)
		wrote(t, v, err, r)
		if !slices.Equal(gone, want) {
			t.Fatalf("Insert(%d, %d) evicted %v, want %v", p, k, gone, want)
		}
	}
	insert(20, 2, nil)
	insert(10, 1, nil)
	insert(30, 3, nil)
	insert(25, 4, []pqU{{10, 1, 100}})
	insert(5, 5, []pqU{{5, 5, 500}}) // lower than every entry: itself
	insert(40, 2, nil)               // a move, no growth
	insert(25, 0, []pqU{{25, 0, 0}}) // ties by key: 0 is below 4
	if got := slices.Collect(r.All()); !slices.Equal(got, []pqU{{25, 4, 400}, {30, 3, 300}, {40, 2, 200}}) {
		t.Fatalf("after the inserts %v", got)
	}
	v, gone, err := w.Extend(tctx(t), triples([3]uint64{50, 6, 600}, [3]uint64{1, 7, 700}, [3]uint64{60, 8, 800}))
	wrote(t, v, err, r)
	if want := []pqU{{25, 4, 400}, {1, 7, 700}, {30, 3, 300}}; !slices.Equal(gone, want) {
		t.Fatalf("Extend evicted %v, want %v", gone, want)
	}
	if got := fmt.Sprint(slices.Collect(r.All())); got != "[{40 2 200} {50 6 600} {60 8 800}]" {
		t.Fatalf("after Extend %s", got)
	}
}
