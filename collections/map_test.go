package collections

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMapSmoke(t *testing.T) {
	tn := newTestNet(t)
	w := cleanup(t, must[*MapWriter[string, float64]](t)(NewMapWriter[string, float64](tn.node(), "prices", testOpts()...)))
	r := cleanup(t, must[*MapReader[string, float64]](t)(NewMapReader[string, float64](tn.node(), "prices", testOpts()...)))
	if err := w.When().Online(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	v, err := w.Insert(ctxT(t, 5*time.Second), "ETH", 3812.5)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := w.Get("ETH"); !ok || got != 3812.5 {
		t.Fatalf("writer reads %v %v", got, ok)
	}
	if err := r.When().Reaches(ctxT(t, 5*time.Second), v); err != nil {
		t.Fatal(err)
	}
	if got, ok := r.Get("ETH"); !ok || got != 3812.5 {
		t.Fatalf("reader reads %v %v", got, ok)
	}
}

// mapReadsOf is what MapReader and MapWriter share, for checks on both.
type mapReadsOf[K comparable, V any] interface {
	Len() int
	IsEmpty() bool
	ContainsKey(K) bool
	Get(K) (V, bool)
	All() iter.Seq2[K, V]
	Keys() iter.Seq[K]
	Values() iter.Seq[V]
	Version() Version
}

// wantMap fails unless m holds exactly want, iterating in sorted key order
// through All, Keys and Values, and answering Len, IsEmpty, Get and
// ContainsKey accordingly.
func wantMap(t testing.TB, who string, m mapReadsOf[string, int], want map[string]int) {
	t.Helper()
	keys := slices.Sorted(maps.Keys(want))
	var gotKeys []string
	for k, v := range m.All() {
		gotKeys = append(gotKeys, k)
		if w, ok := want[k]; !ok || w != v {
			t.Fatalf("%s at %d: All yields %s=%d, want %v", who, m.Version(), k, v, want)
		}
	}
	if !slices.Equal(gotKeys, keys) {
		t.Fatalf("%s at %d: All yields keys %q, want %q", who, m.Version(), gotKeys, keys)
	}
	if got := slices.Collect(m.Keys()); !slices.Equal(got, keys) {
		t.Fatalf("%s: Keys yields %q, want %q", who, got, keys)
	}
	var vals []int
	for _, k := range keys {
		vals = append(vals, want[k])
	}
	if got := slices.Collect(m.Values()); !slices.Equal(got, vals) {
		t.Fatalf("%s: Values yields %v, want %v", who, got, vals)
	}
	if m.Len() != len(want) || m.IsEmpty() != (len(want) == 0) {
		t.Fatalf("%s: Len %d IsEmpty %v, want %d entries", who, m.Len(), m.IsEmpty(), len(want))
	}
	for k, w := range want {
		if v, ok := m.Get(k); !ok || v != w {
			t.Fatalf("%s: Get(%q) = %d, %v; want %d", who, k, v, ok, w)
		}
		if !m.ContainsKey(k) {
			t.Fatalf("%s: ContainsKey(%q) is false", who, k)
		}
	}
	if v, ok := m.Get("\xffmissing"); ok || v != 0 {
		t.Fatalf("%s: Get of a missing key = %d, %v", who, v, ok)
	}
	if m.ContainsKey("\xffmissing") {
		t.Fatalf("%s: ContainsKey of a missing key", who)
	}
}

// mapPair opens a writer and a reader of one map on two nodes, online.
func mapPair(t testing.TB, opts ...Option) (*MapWriter[string, int], *MapReader[string, int]) {
	t.Helper()
	tn := newTestNet(t)
	w := openMapW[string, int](t, tn.node(), "m", opts...)
	r := openMapR[string, int](t, tn.node(), "m", opts...)
	online(t, w, r)
	return w, r
}

func TestMapEmpty(t *testing.T) {
	w, r := mapPair(t)
	wantMap(t, "writer", w, nil)
	wantMap(t, "reader", r, nil)
	for range w.All() {
		t.Fatal("All yields on an empty map")
	}
	// Still empty after writes that change nothing.
	v := ok[Version](t)(w.Remove(tctx(t), "nothing"))
	v2 := ok[Version](t)(w.Clear(tctx(t)))
	if v2 <= v || v == 0 {
		t.Fatalf("versions %d then %d", v, v2)
	}
	reach(t, v2, r)
	wantMap(t, "reader", r, nil)
}

// Every write method on a writer, observed on a reader on another node.
func TestMapWrites(t *testing.T) {
	w, r := mapPair(t)
	want := map[string]int{}
	last := Version(0)
	// step checks a write: a fresh version, read at once by the writer,
	// and seen by the reader once it reaches that version.
	step := func(what string) func(Version, error) {
		return func(v Version, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if v <= last {
				t.Fatalf("%s: version %d after %d", what, v, last)
			}
			last = v
			if w.Version() < v {
				t.Fatalf("%s: writer at %d after a write at %d", what, w.Version(), v)
			}
			wantMap(t, "writer after "+what, w, want)
			reach(t, v, r)
			wantMap(t, "reader after "+what, r, want)
		}
	}

	want["a"] = 1
	step("Insert")(w.Insert(tctx(t), "a", 1))
	want["b"] = 2
	step("Insert")(w.Insert(tctx(t), "b", 2))
	want["a"] = 10
	step("overwrite")(w.Insert(tctx(t), "a", 10))
	step("overwrite with the same value")(w.Insert(tctx(t), "a", 10))
	delete(want, "b")
	step("Remove")(w.Remove(tctx(t), "b"))
	step("Remove of a missing key")(w.Remove(tctx(t), "b"))
	for _, k := range []string{"z", "c", "y", "d"} {
		want[k] = len(k) * 100
	}
	step("Extend")(w.Extend(tctx(t), maps.All(map[string]int{"z": 100, "c": 100, "y": 100, "d": 100})))
	want["dup"] = 3
	step("Extend with a duplicate key")(w.Extend(tctx(t), func(yield func(string, int) bool) {
		_ = yield("dup", 1) && yield("dup", 2) && yield("dup", 3)
	}))

	// An empty Extend writes nothing and returns the current version.
	before := w.Version()
	v, err := w.Extend(tctx(t), maps.All(map[string]int{}))
	if err != nil || v != before {
		t.Fatalf("empty Extend: %d, %v; want the current version %d", v, err, before)
	}
	if w.Version() != before {
		t.Fatalf("empty Extend moved the version from %d to %d", before, w.Version())
	}

	clear(want)
	step("Clear")(w.Clear(tctx(t)))
	step("Clear of an empty map")(w.Clear(tctx(t)))
	want["again"] = 1
	want["rebuilt"] = 2
	step("rebuild after Clear")(w.Extend(tctx(t), maps.All(map[string]int{"again": 1, "rebuilt": 2})))
	if r.Version() != w.Version() {
		t.Fatalf("reader at %d, writer at %d", r.Version(), w.Version())
	}
}

// Every compare-exchange case, on a present and an absent key.
func TestMapCompareExchange(t *testing.T) {
	w, r := mapPair(t)
	p := func(x int) *int { return &x }
	cases := []struct {
		name          string
		start         *int // the key's value before, nil for absent
		expected, rep *int
		applied       bool
		after         *int
	}{
		{"insert when absent", nil, nil, p(1), true, p(1)},
		{"update", p(1), p(1), p(2), true, p(2)},
		{"delete", p(1), p(1), nil, true, nil},
		{"mismatch on a present key", p(1), p(5), p(2), false, p(1)},
		{"mismatch on a present key, delete", p(1), p(5), nil, false, p(1)},
		{"mismatch on an absent key", nil, p(1), p(2), false, nil},
		{"mismatch on an absent key, delete", nil, p(1), nil, false, nil},
		{"nil to nil on an absent key", nil, nil, nil, true, nil},
		{"nil to nil on a present key", p(1), nil, nil, false, p(1)},
		{"insert on a present key", p(1), nil, p(2), false, p(1)},
		{"same value for expected and replacement", p(7), p(7), p(7), true, p(7)},
		{"zero value is not absent", p(0), nil, p(3), false, p(0)},
		{"expect the zero value", p(0), p(0), p(3), true, p(3)},
		{"zero value expected on an absent key", nil, p(0), p(3), false, nil},
	}
	last := w.Version()
	for i, c := range cases {
		key := fmt.Sprintf("k%02d", i)
		if c.start != nil {
			ok[Version](t)(w.Insert(tctx(t), key, *c.start))
		}
		v, applied, err := w.CompareExchange(tctx(t), key, c.expected, c.rep)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if applied != c.applied {
			t.Fatalf("%s: applied %v, want %v", c.name, applied, c.applied)
		}
		if v <= last {
			t.Fatalf("%s: version %d after %d: a compare-exchange has a version whether it applies or not", c.name, v, last)
		}
		last = v
		reach(t, v, r)
		for who, m := range map[string]mapReadsOf[string, int]{"writer": w, "reader": r} {
			got, present := m.Get(key)
			switch {
			case c.after == nil && present:
				t.Fatalf("%s: %s holds %d, want absent", c.name, who, got)
			case c.after != nil && (!present || got != *c.after):
				t.Fatalf("%s: %s holds %d, %v; want %d", c.name, who, got, present, *c.after)
			}
		}
	}
}

// Two writers race to insert one absent key: exactly one wins, and both
// agree on the value.
func TestMapCompareExchangeRace(t *testing.T) {
	tn := newTestNet(t)
	w1 := openMapW[string, string](t, tn.node(), "m")
	w2 := openMapW[string, string](t, tn.node(), "m")
	online(t, w1, w2)
	for round := range 10 {
		key := fmt.Sprintf("k%d", round)
		var wg sync.WaitGroup
		won := make([]bool, 2)
		errs := make([]error, 2)
		for i, w := range []*MapWriter[string, string]{w1, w2} {
			mine := fmt.Sprintf("writer%d", i)
			wg.Go(func() { _, won[i], errs[i] = w.CompareExchange(tctx(t), key, nil, &mine) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if won[0] == won[1] {
			t.Fatalf("round %d: writer 0 won %v, writer 1 won %v; want exactly one", round, won[0], won[1])
		}
		settle(t, w1, w2)
		winner := "writer0"
		if won[1] {
			winner = "writer1"
		}
		for i, w := range []*MapWriter[string, string]{w1, w2} {
			if got, _ := w.Get(key); got != winner {
				t.Fatalf("round %d: writer %d reads %q, want the winner's %q", round, i, got, winner)
			}
		}
	}
}

// Map[string,int] and Map[int,int] of one name are separate collections.
func TestMapTypesAreSeparate(t *testing.T) {
	tn := newTestNet(t)
	n := tn.node()
	a := openMapW[string, int](t, n, "x")
	b := openMapW[int, int](t, n, "x")
	online(t, a, b)
	ok[Version](t)(a.Insert(tctx(t), "1", 1))
	ok[Version](t)(b.Insert(tctx(t), 1, 2))
	ok[Version](t)(b.Insert(tctx(t), 2, 2))
	if a.Len() != 1 || b.Len() != 2 {
		t.Fatalf("lengths %d and %d; the maps are mixed up", a.Len(), b.Len())
	}
}

// Keys iterate in their natural order (numbers numerically, strings by
// Go's string order), the same on every replica.
func TestMapKeyOrder(t *testing.T) {
	ints := newMapMachine[int, bool](16)
	for i, k := range []int{5, -3, 100, 0, -100, 7} {
		applied(ints, mapCmd[int, bool]{Op: mapInsert, Key: k, Value: new(true)}, fakeCtx(i+1))
	}
	var got []int
	for k := range (mapReads[int, bool]{m: ints}).Keys() {
		got = append(got, k)
	}
	if want := []int{-100, -3, 0, 5, 7, 100}; !slices.Equal(got, want) {
		t.Fatalf("int keys in order %v, want %v", got, want)
	}

	strs := newMapMachine[string, bool](16)
	in := []string{"b", "B", "", "ab", "a", "é", "z", "aa", "\x00"}
	for i, k := range in {
		applied(strs, mapCmd[string, bool]{Op: mapInsert, Key: k, Value: new(true)}, fakeCtx(i+1))
	}
	gotS := slices.Collect((mapReads[string, bool]{m: strs}).Keys())
	if want := slices.Sorted(slices.Values(in)); !slices.Equal(gotS, want) {
		t.Fatalf("string keys in order %q, want %q", gotS, want)
	}

	type point struct{ X, Y int }
	structs := newMapMachine[point, bool](16)
	for i, k := range []point{{2, 1}, {1, 2}, {1, 1}} {
		applied(structs, mapCmd[point, bool]{Op: mapInsert, Key: k, Value: new(true)}, fakeCtx(i+1))
	}
	if n := structs.load().m.Len(); n != 3 {
		t.Fatalf("struct keys: %d entries, want 3", n)
	}
	if _, ok := (mapReads[point, bool]{m: structs}).Get(point{1, 2}); !ok {
		t.Fatal("struct key not found")
	}
}

// A writer reads its own writes at once, and a write is visible on the
// reader exactly from its version on: Version and the state move together.
func TestMapReadYourWrites(t *testing.T) {
	w, r := mapPair(t)
	for i := range 30 {
		v := ok[Version](t)(w.Insert(tctx(t), "k", i))
		if got, _ := w.Get("k"); got != i {
			t.Fatalf("writer reads %d after writing %d", got, i)
		}
		reach(t, v, r)
		if got, _ := r.Get("k"); got < i {
			t.Fatalf("reader at version %d reads %d, older than the write %d at %d", r.Version(), got, i, v)
		}
	}
}

// Closing a handle while writes are in flight: each write either commits
// or fails with ErrClosed; none hangs.
func TestMapCloseDuringWrites(t *testing.T) {
	tn := newTestNet(t)
	w1 := openMapW[string, int](t, tn.node(), "m")
	w2 := openMapW[string, int](t, tn.node(), "m")
	online(t, w1, w2)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, 1000)
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				_, err := w1.Insert(ctx, fmt.Sprintf("g%d-%d", g, i), i)
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	reach(t, w1.Version()+20, w1)
	if err := closeOf(t, w1); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		isErr(t, err, ErrClosed, "a write in flight at Close")
	}
	// The other writer carries on.
	ok[Version](t)(w2.Insert(tctx(t), "after", 1))
}

// Definitions open writers and readers of one collection; a ReaderOnly
// definition opens readers.
func TestDefinitions(t *testing.T) {
	prices := MapDef[string, float64]("prices", testOpts()...)
	queue := VecDef[string]("queue", testOpts()...)
	tags := SetDef[string]("tags", testOpts()...)
	if prices.Name() != "prices" || prices.ReaderOnly().Name() != "prices" || queue.ReaderOnly().Name() != "queue" || tags.ReaderOnly().Name() != "tags" {
		t.Fatal("definition names")
	}
	tn := newTestNet(t)
	wn, rn := tn.node(), tn.node()
	pw := cleanup(t, must[*MapWriter[string, float64]](t)(prices.Writer(wn)))
	pr := cleanup(t, must[*MapReader[string, float64]](t)(prices.ReaderOnly().Reader(rn)))
	qw := cleanup(t, must[*VecWriter[string]](t)(queue.Writer(wn)))
	qr := cleanup(t, must[*VecReader[string]](t)(queue.ReaderOnly().Reader(rn)))
	sw := cleanup(t, must[*SetWriter[string]](t)(tags.Writer(wn)))
	sr := cleanup(t, must[*SetReader[string]](t)(tags.Reader(rn)))
	online(t, pw, pr, qw, qr, sw, sr)
	reach(t, ok[Version](t)(pw.Insert(tctx(t), "ETH", 3812.5)), pr)
	reach(t, ok[Version](t)(qw.PushBack(tctx(t), "job")), qr)
	reach(t, ok[Version](t)(sw.Insert(tctx(t), "hot")), sr)
	if p, _ := pr.Get("ETH"); p != 3812.5 {
		t.Fatalf("reader reads %v", p)
	}
	if j, _ := qr.Front(); j != "job" {
		t.Fatalf("reader reads %q", j)
	}
	if !sr.Contains("hot") {
		t.Fatal("reader lacks the element")
	}
	_, err := prices.Reader(wn)
	isErr(t, err, ErrAlreadyOpen, "a definition's reader beside its writer")
}

// A run of Extend applies as one batch and is published whole: a reader on
// another node sees none of it or all of it, never a part.
func TestMapExtendIsSeenWhole(t *testing.T) {
	tn := newTestNet(t)
	w := openMapW[int, int](t, tn.node(), "whole")
	r := openMapR[int, int](t, tn.node(), "whole")
	online(t, w, r)
	const n = 2000
	var stop atomic.Bool
	seen := make(chan map[int]bool, 1)
	go func() {
		lens := map[int]bool{}
		for !stop.Load() {
			lens[r.Len()] = true
		}
		seen <- lens
	}()
	for round := 1; round <= 3; round++ {
		v, err := w.Extend(tctx(t), func(yield func(int, int) bool) {
			for i := range n {
				if !yield(round*n+i, i) {
					return
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.When().Reaches(tctx(t), v); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	for l := range <-seen {
		if l%n != 0 {
			t.Fatalf("the reader saw %d entries: part of a run", l)
		}
	}
}

// A Go string holds any bytes, and a write of one that is not UTF-8
// applies as any other: it used to return a version while every replica
// refused to decode it.
func TestMapKeyNotUTF8(t *testing.T) {
	tn := newTestNet(t)
	w := openMapW[string, string](t, tn.node(), "m")
	r := openMapR[string, string](t, tn.node(), "m")
	online(t, w, r)
	v := ok[Version](t)(w.Insert(tctx(t), "\xff\xfe", "\xc3("))
	reach(t, v, r)
	for i, h := range []interface{ Get(string) (string, bool) }{w, r} {
		if got, found := h.Get("\xff\xfe"); !found || got != "\xc3(" {
			t.Fatalf("handle %d: Get of a key that is not UTF-8: %q, %v", i, got, found)
		}
	}
}
