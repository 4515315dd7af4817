package collections

import (
	"iter"
	"slices"
	"testing"
)

type vecReadsOf[T any] interface {
	Len() int
	IsEmpty() bool
	Get(int) (T, bool)
	Front() (T, bool)
	Back() (T, bool)
	Contains(T) bool
	IndexOf(T) (int, bool)
	All() iter.Seq2[int, T]
	Version() Version
}

// wantVec fails unless v holds exactly want, through every read method.
func wantVec(t testing.TB, who string, v vecReadsOf[string], want []string) {
	t.Helper()
	var got []string
	next := 0
	for i, x := range v.All() {
		if i != next {
			t.Fatalf("%s: All yields index %d after %d", who, i, next-1)
		}
		next++
		got = append(got, x)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s at %d holds %q, want %q", who, v.Version(), got, want)
	}
	if v.Len() != len(want) || v.IsEmpty() != (len(want) == 0) {
		t.Fatalf("%s: Len %d IsEmpty %v, want %d elements", who, v.Len(), v.IsEmpty(), len(want))
	}
	for i, w := range want {
		if x, ok := v.Get(i); !ok || x != w {
			t.Fatalf("%s: Get(%d) = %q, %v; want %q", who, i, x, ok, w)
		}
		if j, ok := v.IndexOf(w); !ok || j != slices.Index(want, w) {
			t.Fatalf("%s: IndexOf(%q) = %d, %v; want %d", who, w, j, ok, slices.Index(want, w))
		}
		if !v.Contains(w) {
			t.Fatalf("%s: Contains(%q) is false", who, w)
		}
	}
	for _, i := range []int{-1, len(want), len(want) + 1, -1 << 40} {
		if x, ok := v.Get(i); ok || x != "" {
			t.Fatalf("%s: Get(%d) out of range = %q, %v; want zero, false", who, i, x, ok)
		}
	}
	if j, ok := v.IndexOf("\xffmissing"); ok || j != -1 {
		t.Fatalf("%s: IndexOf of a missing element = %d, %v", who, j, ok)
	}
	if v.Contains("\xffmissing") {
		t.Fatalf("%s: Contains of a missing element", who)
	}
	f, fok := v.Front()
	b, bok := v.Back()
	if len(want) == 0 {
		if fok || bok || f != "" || b != "" {
			t.Fatalf("%s: Front %q %v, Back %q %v on an empty vector", who, f, fok, b, bok)
		}
	} else if !fok || !bok || f != want[0] || b != want[len(want)-1] {
		t.Fatalf("%s: Front %q %v, Back %q %v; want %q and %q", who, f, fok, b, bok, want[0], want[len(want)-1])
	}
}

func vecPair(t testing.TB, opts ...Option) (*VecWriter[string], *VecReader[string]) {
	t.Helper()
	tn := newTestNet(t)
	w := openVecW[string](t, tn.node(), "v", opts...)
	r := openVecR[string](t, tn.node(), "v", opts...)
	online(t, w, r)
	return w, r
}

func TestVecEmpty(t *testing.T) {
	w, r := vecPair(t)
	wantVec(t, "writer", w, nil)
	wantVec(t, "reader", r, nil)
	v := ok[Version](t)(w.Truncate(tctx(t), 0))
	v = max(v, ok[Version](t)(w.Clear(tctx(t))))
	reach(t, v, r)
	wantVec(t, "reader", r, nil)
}

// Every write method on a writer, observed on a reader on another node.
func TestVecWrites(t *testing.T) {
	w, r := vecPair(t)
	var want []string
	last := Version(0)
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
			wantVec(t, "writer after "+what, w, want)
			reach(t, v, r)
			wantVec(t, "reader after "+what, r, want)
		}
	}
	pop := func(what string, wantX string) func(string, Version, error) {
		return func(x string, v Version, err error) {
			t.Helper()
			if x != wantX && err == nil {
				t.Fatalf("%s returned %q, want %q", what, x, wantX)
			}
			step(what)(v, err)
		}
	}

	want = []string{"b"}
	step("PushBack")(w.PushBack(tctx(t), "b"))
	want = []string{"a", "b"}
	step("PushFront")(w.PushFront(tctx(t), "a"))
	want = []string{"a", "b", "b"}
	step("PushBack of a duplicate")(w.PushBack(tctx(t), "b"))
	want = []string{"0", "a", "b", "b"}
	step("Insert at 0")(w.Insert(tctx(t), 0, "0"))
	want = []string{"0", "a", "mid", "b", "b"}
	step("Insert in the middle")(w.Insert(tctx(t), 2, "mid"))
	want = []string{"0", "a", "mid", "b", "b", "end"}
	step("Insert at Len")(w.Insert(tctx(t), w.Len(), "end"))
	want = append(want, "x", "y", "z")
	step("Extend")(w.Extend(tctx(t), slices.Values([]string{"x", "y", "z"})))
	want = []string{"0", "a", "b", "b", "end", "x", "y", "z"}
	step("Remove in the middle")(w.Remove(tctx(t), 2))
	want = []string{"a", "b", "b", "end", "x", "y", "z"}
	step("Remove at 0")(w.Remove(tctx(t), 0))
	want = []string{"a", "b", "b", "end", "x", "y"}
	step("Remove the last")(w.Remove(tctx(t), 6))
	want = []string{"y", "b", "b", "end", "x", "a"}
	step("Swap")(w.Swap(tctx(t), 0, 5))
	step("Swap(i, i)")(w.Swap(tctx(t), 2, 2))
	step("Truncate beyond the length")(w.Truncate(tctx(t), 100))
	step("Truncate to the length")(w.Truncate(tctx(t), 6))
	want = []string{"y", "b", "b", "end"}
	step("Truncate")(w.Truncate(tctx(t), 4))
	want = []string{"b", "b", "end"}
	pop("PopFront", "y")(w.PopFront(tctx(t)))
	want = []string{"b", "b"}
	pop("PopBack", "end")(w.PopBack(tctx(t)))

	// An empty Extend writes nothing and returns the current version.
	before := w.Version()
	v, err := w.Extend(tctx(t), slices.Values([]string(nil)))
	if err != nil || v != before || w.Version() != before {
		t.Fatalf("empty Extend: %d, %v, now at %d; want the current version %d", v, err, w.Version(), before)
	}

	want = nil
	step("Clear")(w.Clear(tctx(t)))
	want = []string{"p", "q"}
	step("rebuild after Clear")(w.Extend(tctx(t), slices.Values([]string{"p", "q"})))
	want = nil
	step("Truncate(0)")(w.Truncate(tctx(t), 0))
}

// Out-of-range writes return ErrOutOfRange and change nothing; the
// collection goes on working.
func TestVecOutOfRange(t *testing.T) {
	w, r := vecPair(t)
	want := []string{"a", "b", "c"}
	reach(t, ok[Version](t)(w.Extend(tctx(t), slices.Values(want))), r)
	bad := []struct {
		name  string
		write func() (Version, error)
	}{
		{"Insert(-1)", func() (Version, error) { return w.Insert(tctx(t), -1, "x") }},
		{"Insert(Len+1)", func() (Version, error) { return w.Insert(tctx(t), 4, "x") }},
		{"Insert(huge)", func() (Version, error) { return w.Insert(tctx(t), 1<<40, "x") }},
		{"Remove(-1)", func() (Version, error) { return w.Remove(tctx(t), -1) }},
		{"Remove(Len)", func() (Version, error) { return w.Remove(tctx(t), 3) }},
		{"Swap(0, Len)", func() (Version, error) { return w.Swap(tctx(t), 0, 3) }},
		{"Swap(Len, 0)", func() (Version, error) { return w.Swap(tctx(t), 3, 0) }},
		{"Swap(-1, 0)", func() (Version, error) { return w.Swap(tctx(t), -1, 0) }},
		{"Swap(Len, Len)", func() (Version, error) { return w.Swap(tctx(t), 3, 3) }},
		{"Truncate(-1)", func() (Version, error) { return w.Truncate(tctx(t), -1) }},
	}
	for _, b := range bad {
		_, err := b.write()
		isErr(t, err, ErrOutOfRange, b.name)
		wantVec(t, "writer after "+b.name, w, want)
	}
	// The refusals are in the log like any write: once the reader is as
	// far as the writer, it holds the same unchanged vector.
	v := ok[Version](t)(w.PushBack(tctx(t), "d"))
	reach(t, v, r)
	want = append(want, "d")
	wantVec(t, "reader", r, want)
	wantVec(t, "writer", w, want)
}

// PopBack and PopFront until empty return the right values; one more pop
// is ErrEmpty and changes nothing.
func TestVecPopUntilEmpty(t *testing.T) {
	w, r := vecPair(t)
	in := []string{"1", "2", "3", "4", "5", "6", "7"}
	ok[Version](t)(w.Extend(tctx(t), slices.Values(in)))
	want := slices.Clone(in)
	for i := 0; len(want) > 0; i++ {
		var x string
		var err error
		var exp string
		if i%2 == 0 {
			exp = want[0]
			want = want[1:]
			x, _, err = w.PopFront(tctx(t))
		} else {
			exp = want[len(want)-1]
			want = want[:len(want)-1]
			x, _, err = w.PopBack(tctx(t))
		}
		if err != nil || x != exp {
			t.Fatalf("pop %d: %q, %v; want %q", i, x, err, exp)
		}
		wantVec(t, "writer", w, want)
	}
	x, _, err := w.PopBack(tctx(t))
	isErr(t, err, ErrEmpty, "PopBack of an empty vector")
	if x != "" {
		t.Fatalf("PopBack of an empty vector returned %q", x)
	}
	x, _, err = w.PopFront(tctx(t))
	isErr(t, err, ErrEmpty, "PopFront of an empty vector")
	if x != "" {
		t.Fatalf("PopFront of an empty vector returned %q", x)
	}
	v := ok[Version](t)(w.PushBack(tctx(t), "again"))
	reach(t, v, r)
	wantVec(t, "reader", r, []string{"again"})
	if got, _, err := w.PopBack(tctx(t)); err != nil || got != "again" {
		t.Fatalf("PopBack after refill: %q, %v", got, err)
	}
}

// IndexOf finds the first of equal elements; Contains compares by value,
// also for element types with structure.
func TestVecIndexOfContains(t *testing.T) {
	type item struct {
		Name string
		Tags []string
	}
	m := newVecMachine[item](16)
	in := []item{{"a", nil}, {"b", []string{"x"}}, {"a", nil}, {"b", []string{"y"}}}
	for i, x := range in {
		applied(m, vecCmd[item]{Op: vecPushBack, Value: &x}, fakeCtx(i+1))
	}
	r := vecReads[item]{m: m}
	for _, c := range []struct {
		x  item
		at int
	}{{item{"a", nil}, 0}, {item{"b", []string{"x"}}, 1}, {item{"b", []string{"y"}}, 3}, {item{"b", nil}, -1}, {item{"c", nil}, -1}} {
		i, ok := r.IndexOf(c.x)
		if i != c.at || ok != (c.at >= 0) || r.Contains(c.x) != (c.at >= 0) {
			t.Fatalf("IndexOf(%v) = %d, %v; want %d", c.x, i, ok, c.at)
		}
	}
}
