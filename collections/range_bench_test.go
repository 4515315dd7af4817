package collections

import (
	"math/rand/v2"
	"runtime"
	"testing"
)

// BenchmarkMapRange reads 100 consecutive keys at a random place of a map
// of 1,000,000 entries, next to one Get and 100 Gets of the same map.
func BenchmarkMapRange(b *testing.B) {
	const n, span = 1_000_000, 100
	m := bigMapMachine(b, n)
	defer m.closeIndex()
	waitIndexed(b, m) // a settled replica has its hash index
	r := MapReader[string, []byte]{mapReads[string, []byte]{m: m}}
	rng := rand.New(rand.NewPCG(3, 4))
	starts := make([]int, 1<<12)
	for i := range starts {
		starts[i] = rng.IntN(n/span) * span // a multiple of 100: a prefix of 14 digits
	}
	ranges := make([]KeyRange[string], len(starts))
	prefixes := make([]KeyRange[string], len(starts))
	for i, s := range starts {
		ranges[i] = Between(benchKey(s), benchKey(s+span))
		prefixes[i] = Prefix(benchKey(s)[:14])
	}
	keys := lookupKeys(n)
	runtime.GC()

	each := func(b *testing.B, read func(i int) int, want int) {
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			if got := read(i); got != want {
				b.Fatalf("read %d entries, want %d", got, want)
			}
			i++
		}
	}
	b.Run("get", func(b *testing.B) {
		benchGets(b, keys, r.Get)
	})
	b.Run("get100", func(b *testing.B) {
		each(b, func(i int) int {
			got := 0
			s := starts[i&(len(starts)-1)]
			for j := range span {
				if _, ok := r.Get(keys[(s+j)&(len(keys)-1)]); ok {
					got++
				}
			}
			return got
		}, span)
	})
	count := func(seq func(func(string, []byte) bool)) int {
		got := 0
		for range seq {
			got++
		}
		return got
	}
	b.Run("range100", func(b *testing.B) {
		each(b, func(i int) int { return count(r.Range(ranges[i&(len(ranges)-1)])) }, span)
	})
	b.Run("backward100", func(b *testing.B) {
		each(b, func(i int) int { return count(r.Backward(ranges[i&(len(ranges)-1)])) }, span)
	})
	b.Run("prefix100", func(b *testing.B) {
		each(b, func(i int) int { return count(r.Range(prefixes[i&(len(prefixes)-1)])) }, span)
	})
	b.Run("first", func(b *testing.B) { // the first key at or above a point
		each(b, func(i int) int {
			for range r.Range(AtLeast(keys[i&(len(keys)-1)])) {
				return 1
			}
			return 0
		}, 1)
	})
}
