package collections

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// rangeModel drives a Map machine and a plain Go map with the same random
// inserts and removes, and checks every kind of range read against the
// model's sorted keys.
type rangeModel[K comparable] struct {
	t     *testing.T
	rng   *rand.Rand
	m     *mapMachine[K, int]
	model map[K]int
	cmp   func(a, b K) int
	key   func() K // a random key, often one of the model's
	ver   int
}

func newRangeModel[K comparable](t *testing.T, rng *rand.Rand, cmp func(a, b K) int, key func() K) *rangeModel[K] {
	return &rangeModel[K]{t: t, rng: rng, m: newMapMachine[K, int](16), model: map[K]int{}, cmp: cmp, key: key}
}

func (rm *rangeModel[K]) reads() mapReads[K, int] { return mapReads[K, int]{m: rm.m} }

// write applies n random inserts (mostly) and removes as one batch.
func (rm *rangeModel[K]) write(n int) {
	for range n {
		k := rm.key()
		rm.ver++
		if rm.rng.IntN(4) == 0 {
			rm.m.ApplyReply(mapCmd[K, int]{Op: mapRemove, Key: k}, fakeCtx(rm.ver))
			delete(rm.model, k)
			continue
		}
		rm.m.ApplyReply(mapCmd[K, int]{Op: mapInsert, Key: k, Value: new(rm.ver)}, fakeCtx(rm.ver))
		rm.model[k] = rm.ver
	}
	rm.m.Publish()
}

// bound returns a random bound: an existing key, a random one, or none.
func (rm *rangeModel[K]) bound(keys []K) (K, bool) {
	switch p := rm.rng.IntN(10); {
	case p == 0:
		var zero K
		return zero, false
	case p < 5 && len(keys) > 0:
		return keys[rm.rng.IntN(len(keys))], true
	}
	return rm.key(), true
}

// check compares Range and Backward over random ranges with the model.
func (rm *rangeModel[K]) check(ranges int) {
	rm.t.Helper()
	keys := slices.SortedFunc(func(yield func(K) bool) {
		for k := range rm.model {
			if !yield(k) {
				return
			}
		}
	}, rm.cmp)
	r := rm.reads()
	for range ranges {
		lo, hasLo := rm.bound(keys)
		hi, hasHi := rm.bound(keys)
		var kr KeyRange[K]
		switch {
		case hasLo && hasHi:
			kr = Between(lo, hi)
		case hasLo:
			kr = AtLeast(lo)
		case hasHi:
			kr = Below(hi)
		}
		var want []kv[K, int]
		for _, k := range keys {
			if (!hasLo || rm.cmp(k, lo) >= 0) && (!hasHi || rm.cmp(k, hi) < 0) {
				want = append(want, kv[K, int]{k, rm.model[k]})
			}
		}
		what := fmt.Sprintf("[%v (%v), %v (%v)) over %d keys", lo, hasLo, hi, hasHi, len(keys))
		rm.same("Range "+what, entries(r.Range(kr)), want)
		slices.Reverse(want)
		rm.same("Backward "+what, entries(r.Backward(kr)), want)
		// Breaking off early yields a prefix of the whole.
		if n := len(want); n > 0 {
			stop := rm.rng.IntN(n)
			var got []kv[K, int]
			for k, v := range r.Backward(kr) {
				got = append(got, kv[K, int]{k, v})
				if len(got) == stop+1 {
					break
				}
			}
			rm.same("Backward broken off "+what, got, want[:stop+1])
		}
	}
}

func (rm *rangeModel[K]) same(what string, got, want []kv[K, int]) {
	rm.t.Helper()
	if !slices.Equal(got, want) {
		rm.t.Fatalf("%s: got %d entries, want %d\n got  %v\n want %v", what, len(got), len(want), head(got), head(want))
	}
}

func head[T any](s []T) []T { return s[:min(len(s), 12)] }

// run grows the map through sizes that give trees of one, two and three
// levels, with removes leaving stale separators, and checks at each.
func (rm *rangeModel[K]) run() {
	rm.t.Helper()
	rm.check(50) // empty
	for _, n := range []int{1, 5, 40, 300, 2000, 8000} {
		rm.write(n)
		rm.check(300)
	}
}

func TestMapRangeModel(t *testing.T) {
	t.Run("string", func(t *testing.T) {
		rng := seededRand(t, "range")
		// Short keys over a small alphabet with the extremes of the byte
		// order, so bounds often equal keys and prefixes share a lot.
		alpha := "\x00ab\x7f\xc3\xff"
		key := func() string {
			b := make([]byte, rng.IntN(5))
			for i := range b {
				b[i] = alpha[rng.IntN(len(alpha))]
			}
			return string(b)
		}
		newRangeModel(t, rng, strings.Compare, key).run()
	})
	t.Run("int", func(t *testing.T) {
		rng := seededRand(t, "range")
		key := func() int64 {
			switch rng.IntN(20) {
			case 0:
				return math.MinInt64
			case 1:
				return math.MaxInt64
			}
			return rng.Int64N(20000) - 10000
		}
		newRangeModel(t, rng, cmp.Compare[int64], key).run()
	})
	t.Run("float", func(t *testing.T) {
		rng := seededRand(t, "range")
		key := func() float64 {
			switch rng.IntN(30) {
			case 0:
				return math.Inf(-1)
			case 1:
				return math.Inf(1)
			}
			return float64(rng.IntN(8000)-4000) / 4
		}
		newRangeModel(t, rng, cmp.Compare[float64], key).run()
	})
	t.Run("cbor", func(t *testing.T) {
		// A struct key is ordered by its CBOR encoding, not field by field.
		type point struct{ X, Y int }
		rng := seededRand(t, "range")
		key := func() point { return point{rng.IntN(300) - 150, rng.IntN(100) * 1000} }
		byCBOR := func(a, b point) int { return bytes.Compare(mustEncode(a), mustEncode(b)) }
		newRangeModel(t, rng, byCBOR, key).run()
	})
}

// Prefix holds exactly the keys that start with it, also when the prefix
// ends in 0xff bytes or is nothing but them.
func TestMapPrefix(t *testing.T) {
	type path string
	rng := seededRand(t, "prefix")
	m := newMapMachine[path, int](16)
	model := map[path]int{}
	alpha := "\x00a\xfe\xff"
	rnd := func(n int) path {
		b := make([]byte, rng.IntN(n))
		for i := range b {
			b[i] = alpha[rng.IntN(len(alpha))]
		}
		return path(b)
	}
	for i := range 5000 {
		k := rnd(7)
		m.ApplyReply(mapCmd[path, int]{Op: mapInsert, Key: k, Value: new(i)}, fakeCtx(i+1))
		model[k] = i
	}
	m.Publish()
	keys := slices.Sorted(func(yield func(path) bool) {
		for k := range model {
			if !yield(k) {
				return
			}
		}
	})
	r := mapReads[path, int]{m: m}
	for i := range 500 {
		p := rnd(4)
		if i < 4 {
			p = []path{"", "\xff", "\xff\xff", "a\xff"}[i]
		}
		var want []kv[path, int]
		for _, k := range keys {
			if strings.HasPrefix(string(k), string(p)) {
				want = append(want, kv[path, int]{k, model[k]})
			}
		}
		if got := entries(r.Range(Prefix(p))); !slices.Equal(got, want) {
			t.Fatalf("Prefix(%q): %d entries, want %d", p, len(got), len(want))
		}
		slices.Reverse(want)
		if got := entries(r.Backward(Prefix(p))); !slices.Equal(got, want) {
			t.Fatalf("Backward(Prefix(%q)): %d entries, want %d", p, len(got), len(want))
		}
	}
	for p, want := range map[string]string{"a": "b", "a\xff": "b", "\x00\xff\xff": "\x01", "a\xfe": "a\xff", "\x7f": "\x80"} {
		if got, ok := prefixEnd(p); !ok || got != want {
			t.Errorf("prefixEnd(%q) = %q, %v; want %q", p, got, ok, want)
		}
	}
	for _, p := range []string{"", "\xff", "\xff\xff"} {
		if got, ok := prefixEnd(p); ok {
			t.Errorf("prefixEnd(%q) = %q, want none", p, got)
		}
	}
}

// A range read walks the state's tree: on a large map it allocates the
// same small number of objects whatever it yields, and a state published
// after Range was called does not show in it.
func TestMapRangeAllocs(t *testing.T) {
	m := newMapMachine[string, int](16)
	const n = 100_000
	for i := range n {
		m.ApplyReply(mapCmd[string, int]{Op: mapInsert, Key: fmt.Sprintf("k%07d", i), Value: new(i)}, fakeCtx(i+1))
	}
	m.Publish()
	r := mapReads[string, int]{m: m}
	first := -1.0 // allocations of the shortest range
	for _, span := range []int{1, 100, 10_000} {
		lo, hi := fmt.Sprintf("k%07d", 5000), fmt.Sprintf("k%07d", 5000+span)
		kr := Between(lo, hi)
		got := 0
		allocs := testing.AllocsPerRun(20, func() {
			got = 0
			for range r.Range(kr) {
				got++
			}
			for range r.Backward(kr) {
				got++
			}
		})
		if got != 2*span {
			t.Fatalf("range of %d keys yields %d entries forwards and backwards", span, got)
		}
		// Under the race detector the iterators' closures allocate too, but
		// never more for a longer range.
		limit := 2.0
		if raceEnabled {
			if first < 0 {
				first = allocs
			}
			limit = first
		}
		if allocs > limit {
			t.Fatalf("Range and Backward over %d of %d keys: %.1f allocations, want at most %.0f", span, n, allocs, limit)
		}
	}

	// The iteration holds the version it was called at.
	seq := r.Range(AtLeast("k0099990"))
	m.ApplyReply(mapCmd[string, int]{Op: mapInsert, Key: "k0099995x", Value: new(-1)}, fakeCtx(n+1))
	m.ApplyReply(mapCmd[string, int]{Op: mapRemove, Key: "k0099991"}, fakeCtx(n+2))
	m.Publish()
	// The writes keep the count at 10: compare the keys, which differ.
	keys := func(es []kv[string, int]) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.K)
		}
		return out
	}
	before := keys(entries(seq))
	if want := []string{"k0099990", "k0099991", "k0099992", "k0099993", "k0099994", "k0099995", "k0099996", "k0099997", "k0099998", "k0099999"}; !slices.Equal(before, want) {
		t.Fatalf("a Range called before a write yields %v, want the keys of its version %v", before, want)
	}
	after := keys(entries(r.Range(AtLeast("k0099990"))))
	if len(after) != 10 || !slices.Contains(after, "k0099995x") || slices.Contains(after, "k0099991") {
		t.Fatalf("a Range after the writes yields %v, want one key added and one removed", after)
	}
}
