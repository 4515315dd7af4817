package collections

import (
	"fmt"
	"hash/maphash"
	"maps"
	"strings"
	"testing"
)

// hashTableCheck verifies a table against a model: the count, every key
// found with its value, the slots of short string keys holding their
// prefix, and the probe invariant (no empty slot between a key's home and
// its slot).
func hashTableCheck[K comparable, V comparable](t *hashTable[K, V], model map[K]V, hash func(K) uint64) error {
	if t.len() != len(model) {
		return fmt.Errorf("count %d, model %d", t.len(), len(model))
	}
	used := 0
	for j, g := range t.tags {
		s := &t.slots[j]
		if g == 0 {
			if *s != (hslot[K, V]{}) {
				return fmt.Errorf("empty slot %d not cleared", j)
			}
			continue
		}
		used++
		if want := t.tag(s.k, hash(s.k)); g != want {
			return fmt.Errorf("slot %d: tag %x of key %v, want %x", j, g, s.k, want)
		}
		if t.str && s.pre != prefix(as[K, string](s.k)) {
			return fmt.Errorf("slot %d: prefix of %q wrong", j, as[K, string](s.k))
		}
		for i := t.home(g); i != j; i = (i + 1) % len(t.tags) {
			if t.tags[i] == 0 {
				return fmt.Errorf("key %v in slot %d, but slot %d between it and its home is empty", s.k, j, i)
			}
		}
	}
	if used != len(model) {
		return fmt.Errorf("%d slots in use, model %d", used, len(model))
	}
	for k, want := range model {
		if v, ok := t.get(k, hash(k)); !ok || v != want {
			return fmt.Errorf("get(%v) = %v, %v; want %v", k, v, ok, want)
		}
	}
	return nil
}

// TestHashTableModel runs random sets, deletes and clones against a Go map,
// with a real hash and with hashes so poor that probes run long, cross the
// table's end and collide on the full hash. Short and long keys share
// prefixes, lengths and trailing zero bytes. A clone's changes never reach
// the table it came from. Seeded; the seed is printed on failure.
func TestHashTableModel(t *testing.T) {
	rng := seededRand(t, "hash table")
	seed := maphash.MakeSeed()
	hashes := map[string]func(string) uint64{
		"maphash": func(k string) uint64 { return maphash.String(seed, k) },
		"by length": func(k string) uint64 {
			return uint64(len(k)) * 0x9e3779b97f4a7c15 // every key of a length collides
		},
		"high bits only": func(k string) uint64 { return maphash.String(seed, k) | 0xffff_ffff_0000_0000 },
		"constant":       func(string) uint64 { return 0x5555 }, // every key collides
	}
	var keys []string
	for _, base := range []string{"", "a", "0123456789abcdef", "0123456789abcdef-long-tail", "\x00", "a\x00", strings.Repeat("z", 40)} {
		for i := range 40 {
			keys = append(keys, base+fmt.Sprint(i), base+string(rune('a'+i%26)))
		}
		keys = append(keys, base)
	}
	for name, hash := range hashes {
		t.Run(name, func(t *testing.T) {
			tab := newHashTable[string, int](rng.IntN(50), true)
			model := map[string]int{}
			var frozen []*hashTable[string, int]
			var frozenModels []map[string]int
			for op := range 20_000 {
				k := keys[rng.IntN(len(keys))]
				switch r := rng.IntN(100); {
				case r < 55:
					tab.set(k, hash(k), op)
					model[k] = op
				case r < 95:
					tab.del(k, hash(k))
					delete(model, k)
				default:
					frozen = append(frozen, tab)
					frozenModels = append(frozenModels, maps.Clone(model))
					tab = tab.withRoom(rng.IntN(20))
				}
				if op%97 == 0 {
					if err := hashTableCheck(tab, model, hash); err != nil {
						t.Fatalf("op %d: %v", op, err)
					}
				}
				if _, ok := tab.get("absent-key-never-set", hash("absent-key-never-set")); ok {
					t.Fatal("found a key never set")
				}
			}
			if err := hashTableCheck(tab, model, hash); err != nil {
				t.Fatal(err)
			}
			for i, f := range frozen {
				if err := hashTableCheck(f, frozenModels[i], hash); err != nil {
					t.Fatalf("table frozen at clone %d changed: %v", i, err)
				}
			}
		})
	}
}

// TestHashTableSized: a table made for n keys takes n without growing.
func TestHashTableSized(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 10, 69, 70, 71, 1000, 1 << 16, 1_000_003} {
		tab := newHashTable[int, int](n, false)
		slots := len(tab.tags)
		for i := range n {
			tab.set(i, uint64(i)*0x9e3779b97f4a7c15, i)
		}
		if len(tab.tags) != slots || len(tab.slots) != slots {
			t.Errorf("a table for %d keys grew from %d to %d slots", n, slots, len(tab.tags))
		}
	}
}

// TestHashTableIntKeys covers integer keys, which are compared whole, and
// growth from the smallest table to many keys.
func TestHashTableIntKeys(t *testing.T) {
	rng := seededRand(t, "hash table ints")
	seed := maphash.MakeSeed()
	hash := func(k int64) uint64 { return maphash.Comparable(seed, k) }
	tab := newHashTable[int64, string](0, false)
	model := map[int64]string{}
	for i := range 50_000 {
		k := rng.Int64N(20_000) - 10_000
		if rng.IntN(4) == 0 {
			tab.del(k, hash(k))
			delete(model, k)
			continue
		}
		tab.set(k, hash(k), fmt.Sprint(i))
		model[k] = fmt.Sprint(i)
	}
	if err := hashTableCheck(tab, model, hash); err != nil {
		t.Fatal(err)
	}
	if _, ok := tab.get(10_001, hash(10_001)); ok {
		t.Fatal("found a key never set")
	}
}

// BenchmarkHashTableGet1M is a lookup in a table of 1,000,000 string keys,
// as the Map's index does it, beside a Go map of the same keys.
func BenchmarkHashTableGet1M(b *testing.B) {
	const n = 1_000_000
	seed := maphash.MakeSeed()
	tab := newHashTable[string, []byte](n, true)
	goMap := make(map[string][]byte, n)
	for i := range n {
		k, v := benchKey(i), benchValue(i)
		tab.set(k, maphash.String(seed, k), v)
		goMap[k] = v
	}
	keys := lookupKeys(n)
	b.Run("table", func(b *testing.B) {
		benchGets(b, keys, func(k string) ([]byte, bool) { return tab.get(k, maphash.String(seed, k)) })
	})
	b.Run("go map", func(b *testing.B) {
		benchGets(b, keys, func(k string) ([]byte, bool) { v, ok := goMap[k]; return v, ok })
	})
}
