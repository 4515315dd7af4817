package collections

import (
	"iter"
	"slices"
	"testing"
)

type setReadsOf[T comparable] interface {
	Len() int
	IsEmpty() bool
	Contains(T) bool
	IsSubset(interface{ Contains(T) bool }) bool
	All() iter.Seq[T]
	Version() Version
}

// goSet is a plain Go set with the method IsSubset needs.
type goSet map[string]struct{}

func (s goSet) Contains(x string) bool { _, ok := s[x]; return ok }

func setOf(xs ...string) goSet {
	s := goSet{}
	for _, x := range xs {
		s[x] = struct{}{}
	}
	return s
}

// wantSet fails unless s holds exactly want (sorted, no duplicates).
func wantSet(t testing.TB, who string, s setReadsOf[string], want []string) {
	t.Helper()
	if got := slices.Collect(s.All()); !slices.Equal(got, want) {
		t.Fatalf("%s at %d holds %q, want %q", who, s.Version(), got, want)
	}
	if s.Len() != len(want) || s.IsEmpty() != (len(want) == 0) {
		t.Fatalf("%s: Len %d IsEmpty %v, want %d elements", who, s.Len(), s.IsEmpty(), len(want))
	}
	for _, x := range want {
		if !s.Contains(x) {
			t.Fatalf("%s: Contains(%q) is false", who, x)
		}
	}
	if s.Contains("\xffmissing") {
		t.Fatalf("%s: Contains of a missing element", who)
	}
	if !s.IsSubset(setOf(want...)) {
		t.Fatalf("%s: not a subset of its own contents", who)
	}
}

func setPair(t testing.TB, opts ...Option) (*SetWriter[string], *SetReader[string]) {
	t.Helper()
	tn := newTestNet(t)
	w := openSetW[string](t, tn.node(), "s", opts...)
	r := openSetR[string](t, tn.node(), "s", opts...)
	online(t, w, r)
	return w, r
}

func TestSetEmpty(t *testing.T) {
	w, r := setPair(t)
	wantSet(t, "writer", w, nil)
	wantSet(t, "reader", r, nil)
	if !r.IsSubset(goSet{}) {
		t.Fatal("the empty set is not a subset of the empty set")
	}
	v := ok[Version](t)(w.Remove(tctx(t), "nothing"))
	reach(t, v, r)
	wantSet(t, "reader", r, nil)
}

// Every write method on a writer, observed on a reader on another node.
func TestSetWrites(t *testing.T) {
	w, r := setPair(t)
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
			wantSet(t, "writer after "+what, w, want)
			reach(t, v, r)
			wantSet(t, "reader after "+what, r, want)
		}
	}
	want = []string{"m"}
	step("Insert")(w.Insert(tctx(t), "m"))
	want = []string{"a", "m"}
	step("Insert")(w.Insert(tctx(t), "a"))
	step("Insert of a duplicate")(w.Insert(tctx(t), "a"))
	want = []string{"a"}
	step("Remove")(w.Remove(tctx(t), "m"))
	step("Remove of a missing element")(w.Remove(tctx(t), "m"))
	want = []string{"", "a", "b", "z"}
	step("Extend with duplicates")(w.Extend(tctx(t), slices.Values([]string{"z", "b", "z", "a", "", "b"})))

	before := w.Version()
	v, err := w.Extend(tctx(t), slices.Values([]string(nil)))
	if err != nil || v != before || w.Version() != before {
		t.Fatalf("empty Extend: %d, %v, now at %d; want the current version %d", v, err, w.Version(), before)
	}

	want = nil
	step("Clear")(w.Clear(tctx(t)))
	step("Clear of an empty set")(w.Clear(tctx(t)))
	want = []string{"again"}
	step("rebuild after Clear")(w.Insert(tctx(t), "again"))
}

// IsSubset both ways, against other handles and a plain Go set.
func TestSetIsSubset(t *testing.T) {
	tn := newTestNet(t)
	small := openSetW[string](t, tn.node(), "small")
	big := openSetW[string](t, tn.node(), "big")
	bigR := openSetR[string](t, tn.node(), "big")
	online(t, small, big, bigR)
	ok[Version](t)(small.Extend(tctx(t), slices.Values([]string{"a", "c"})))
	reach(t, ok[Version](t)(big.Extend(tctx(t), slices.Values([]string{"a", "b", "c", "d"}))), bigR)

	for _, c := range []struct {
		name string
		got  bool
		want bool
	}{
		{"small ⊆ big", small.IsSubset(big), true},
		{"big ⊆ small", big.IsSubset(small), false},
		{"small ⊆ big's reader", small.IsSubset(bigR), true},
		{"big's reader ⊆ small", bigR.IsSubset(small), false},
		{"big's reader ⊆ big", bigR.IsSubset(big), true},
		{"big ⊆ big's reader", big.IsSubset(bigR), true},
		{"small ⊆ itself", small.IsSubset(small), true},
		{"small ⊆ Go set {a,b,c}", small.IsSubset(setOf("a", "b", "c")), true},
		{"small ⊆ Go set {a}", small.IsSubset(setOf("a")), false},
		{"small ⊆ empty Go set", small.IsSubset(goSet{}), false},
		{"big ⊆ Go set of the same", big.IsSubset(setOf("d", "c", "b", "a")), true},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	// And the other way round: a Go set checked against the collection.
	for x := range setOf("a", "c") {
		if !big.Contains(x) {
			t.Fatalf("big lacks %q", x)
		}
	}
}
