package collections

import (
	"encoding/binary"
	"math/bits"
)

// hashTable is the base of a Map's hash index: an open-addressing table
// with linear probing, built once and then only read (a rebuild changes a
// clone). Each slot holds the key's hash, the key, the value and, for a
// string key, its first 16 bytes: a lookup of a key up to 16 bytes long, the
// common case, touches one slot and neither the key's nor the table's other
// memory, where a Go map also reads a control word and the key's bytes.
//
// The caller hashes keys (the same way for every call on one table); a
// slot's home is the hash scaled to the table's length.
type hashTable[K comparable, V any] struct {
	slots []hslot[K, V]
	count int
	str   bool // K is a string kind: compare short keys in the slot
}

type hslot[K comparable, V any] struct {
	h   uint64    // the key's hash with the low bit set; 0 marks an empty slot
	pre [2]uint64 // a string key's first 16 bytes, zero padded
	k   K
	v   V
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
	return &hashTable[K, V]{slots: make([]hslot[K, V], size), str: str}
}

func (t *hashTable[K, V]) len() int { return t.count }

func (t *hashTable[K, V]) home(h uint64) int {
	hi, _ := bits.Mul64(h, uint64(len(t.slots)))
	return int(hi)
}

// prefix returns the first 16 bytes of s, zero padded.
func prefix(s string) [2]uint64 {
	var b [16]byte
	copy(b[:], s)
	return [2]uint64{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
}

// find returns the slot of k, or the empty slot that ends its probe.
func (t *hashTable[K, V]) find(k K, h uint64) (int, bool) {
	h |= 1
	var pre [2]uint64
	short := false
	if t.str {
		s := as[K, string](k)
		if short = len(s) <= 16; short {
			pre = prefix(s)
		}
	}
	i := t.home(h)
	for {
		s := &t.slots[i]
		switch {
		case s.h == 0:
			return i, false
		case s.h != h:
		case !short:
			if s.k == k {
				return i, true
			}
		case s.pre == pre && len(as[K, string](s.k)) == len(as[K, string](k)):
			return i, true
		}
		if i++; i == len(t.slots) {
			i = 0
		}
	}
}

// get returns the value under k, whose hash is h.
func (t *hashTable[K, V]) get(k K, h uint64) (V, bool) {
	i, ok := t.find(k, h)
	return t.slots[i].v, ok
}

// set stores v under k, whose hash is h, growing the table if it is full.
// Only a table nobody reads yet may be changed.
func (t *hashTable[K, V]) set(k K, h uint64, v V) {
	i, ok := t.find(k, h)
	s := &t.slots[i]
	if !ok {
		if (t.count+1)*hashTableLoadDen > len(t.slots)*hashTableLoadNum {
			*t = *t.resized(t.count + 1)
			i, _ = t.find(k, h)
			s = &t.slots[i]
		}
		s.h, s.k = h|1, k
		if t.str {
			s.pre = prefix(as[K, string](k))
		}
		t.count++
	}
	s.v = v
}

// del removes k, whose hash is h, if it is there. Later slots of the probe
// move back into the gap, so no probe ever crosses an empty slot that was
// once full.
func (t *hashTable[K, V]) del(k K, h uint64) {
	i, ok := t.find(k, h)
	if !ok {
		return
	}
	t.count--
	for j := i; ; {
		if j++; j == len(t.slots) {
			j = 0
		}
		s := &t.slots[j]
		if s.h == 0 {
			break
		}
		// s may fill the gap at i unless its home lies after i, up to j.
		if home := t.home(s.h); cyclicBetween(i, home, j) {
			continue
		}
		t.slots[i] = *s
		i = j
	}
	t.slots[i] = hslot[K, V]{}
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
	if need := t.count + extra; need*hashTableLoadDen > len(t.slots)*hashTableLoadNum {
		return t.resized(need)
	}
	c := *t
	c.slots = make([]hslot[K, V], len(t.slots))
	copy(c.slots, t.slots)
	return &c
}

// resized returns a copy with every key placed again in a table with room
// for n keys and half as many more, so that a growing map does not resize
// at every rebuild of its index.
func (t *hashTable[K, V]) resized(n int) *hashTable[K, V] {
	c := newHashTable[K, V](n+n/2, t.str)
	for i := range t.slots {
		if s := &t.slots[i]; s.h != 0 {
			j := c.home(s.h)
			for c.slots[j].h != 0 {
				if j++; j == len(c.slots) {
					j = 0
				}
			}
			c.slots[j] = *s
		}
	}
	c.count = t.count
	return c
}
