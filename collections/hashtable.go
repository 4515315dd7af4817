package collections

import (
	"encoding/binary"
)

// hashTable is the base of a Map's hash index: an open-addressing table
// with linear probing, built once and then only read (a rebuild changes a
// clone). Probes walk a dense array of 32-bit tags (hash bits, and for a
// string key its length), which at a million keys is a few megabytes and
// stays in cache; only a slot whose tag matches is read. A slot holds, for
// a string key, its first 16 bytes beside the key and the value, so a
// lookup of a key up to 16 bytes long, the common case, reads one tag and
// the front of one slot, and neither the key's bytes nor other slots:
// about one cache miss, where a table of whole slots probes through two or
// three of them (BenchmarkHashTableGet1M).
//
// The caller hashes keys (the same way for every call on one table); a
// slot's home is its tag scaled to the table's length.
type hashTable[K comparable, V any] struct {
	tags  []uint32 // 0 marks an empty slot
	slots []hslot[K, V]
	count int
	str   bool // K is a string kind: compare short keys in the slot
}

// hslot keeps what a lookup reads first: the prefix, then the value.
type hslot[K comparable, V any] struct {
	pre [2]uint64 // a string key's first 16 bytes, zero padded
	v   V
	k   K
}

// hashTableLoad is the highest share of slots in use; linear probing slows
// quickly above it.
const (
	hashTableLoadNum = 7
	hashTableLoadDen = 10
)

// newHashTable returns an empty table with room for n keys.
func newHashTable[K comparable, V any](n int, str bool) *hashTable[K, V] {
	size := max(n*hashTableLoadDen/hashTableLoadNum+1, 8)
	return &hashTable[K, V]{tags: make([]uint32, size), slots: make([]hslot[K, V], size), str: str}
}

func (t *hashTable[K, V]) len() int { return t.count }

// tag is what the tags array holds for k, whose hash is h: the hash's high
// 32 bits, never 0. For a string key the low 5 of them hold its length
// (17 for every longer key), so that equal tags and equal prefixes prove a
// short key equal without reading it. That leaves 27 bits of hash to place
// keys, enough to spread them over 2^27 slots.
func (t *hashTable[K, V]) tag(k K, h uint64) uint32 {
	g := uint32(h >> 32)
	if !t.str {
		return g | 1
	}
	return g&^31 | uint32(min(len(as[K, string](k)), 17)+1)
}

func (t *hashTable[K, V]) home(tag uint32) int {
	return int(uint64(tag) * uint64(len(t.tags)) >> 32)
}

// prefix returns the first 16 bytes of s, zero padded.
func prefix(s string) [2]uint64 {
	var b [16]byte
	copy(b[:], s)
	return [2]uint64{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
}

// find returns the slot of k, or the empty slot that ends its probe, and
// k's tag.
func (t *hashTable[K, V]) find(k K, h uint64) (int, uint32, bool) {
	tag := t.tag(k, h)
	var pre [2]uint64
	short := false
	if t.str {
		s := as[K, string](k)
		if short = len(s) <= 16; short {
			pre = prefix(s)
		}
	}
	i := t.home(tag)
	for {
		switch g := t.tags[i]; {
		case g == 0:
			return i, tag, false
		case g != tag:
		case short:
			if t.slots[i].pre == pre {
				return i, tag, true
			}
		case t.slots[i].k == k:
			return i, tag, true
		}
		if i++; i == len(t.tags) {
			i = 0
		}
	}
}

// get returns the value under k, whose hash is h.
func (t *hashTable[K, V]) get(k K, h uint64) (V, bool) {
	i, _, ok := t.find(k, h)
	if !ok {
		var zero V
		return zero, false
	}
	return t.slots[i].v, true
}

// set stores v under k, whose hash is h, growing the table if it is full.
// Only a table nobody reads yet may be changed.
func (t *hashTable[K, V]) set(k K, h uint64, v V) {
	i, tag, ok := t.find(k, h)
	if !ok {
		if (t.count+1)*hashTableLoadDen > len(t.tags)*hashTableLoadNum {
			*t = *t.resized(t.count + 1)
			i, _, _ = t.find(k, h)
		}
		s := &t.slots[i]
		t.tags[i], s.k = tag, k
		if t.str {
			s.pre = prefix(as[K, string](k))
		}
		t.count++
	}
	t.slots[i].v = v
}

// del removes k, whose hash is h, if it is there. Later slots of the probe
// move back into the gap, so no probe ever crosses an empty slot that was
// once full.
func (t *hashTable[K, V]) del(k K, h uint64) {
	i, _, ok := t.find(k, h)
	if !ok {
		return
	}
	t.count--
	for j := i; ; {
		if j++; j == len(t.tags) {
			j = 0
		}
		g := t.tags[j]
		if g == 0 {
			break
		}
		// j may fill the gap at i unless its home lies after i, up to j.
		if home := t.home(g); cyclicBetween(i, home, j) {
			continue
		}
		t.tags[i], t.slots[i] = g, t.slots[j]
		i = j
	}
	t.tags[i], t.slots[i] = 0, hslot[K, V]{}
}

// cyclicBetween reports whether x lies in (i, j] going round the table.
func cyclicBetween(i, x, j int) bool {
	if i <= j {
		return i < x && x <= j
	}
	return x > i || x <= j
}

// withRoom returns a copy with room for extra more keys: a copy of the
// slots if they have it, else every key placed again in a larger table.
func (t *hashTable[K, V]) withRoom(extra int) *hashTable[K, V] {
	if need := t.count + extra; need*hashTableLoadDen > len(t.tags)*hashTableLoadNum {
		return t.resized(need)
	}
	c := *t
	c.tags = append([]uint32(nil), t.tags...)
	c.slots = append([]hslot[K, V](nil), t.slots...)
	return &c
}

// resized returns a copy with every key placed again in a table with room
// for n keys and half as many more, so that a growing map does not resize
// at every rebuild of its index.
func (t *hashTable[K, V]) resized(n int) *hashTable[K, V] {
	c := newHashTable[K, V](n+n/2, t.str)
	for i, g := range t.tags {
		if g == 0 {
			continue
		}
		j := c.home(g)
		for c.tags[j] != 0 {
			if j++; j == len(c.tags) {
				j = 0
			}
		}
		c.tags[j], c.slots[j] = g, t.slots[i]
	}
	c.count = t.count
	return c
}
