package collections

import "github.com/benbjohnson/immutable"

// keyBounds are optional bounds on keys: lo inclusive, hi exclusive.
type keyBounds[K any] struct {
	lo, hi       K
	hasLo, hasHi bool
}

// empty reports whether no key can lie within b.
func (b *keyBounds[K]) empty(cmp immutable.Comparer[K]) bool {
	return b.hasLo && b.hasHi && cmp.Compare(b.lo, b.hi) >= 0
}

// contains reports whether k lies within b.
func (b *keyBounds[K]) contains(cmp immutable.Comparer[K], k K) bool {
	return (!b.hasLo || cmp.Compare(k, b.lo) >= 0) && (!b.hasHi || cmp.Compare(k, b.hi) < 0)
}

// btreeAscend walks the entries of n within b in ascending key order. It
// goes down once to lo and then along the leaves, so it costs O(log n)
// plus one step per entry, and allocates nothing. It returns false once
// yield stopped it or it passed hi.
func btreeAscend[K, V any](cmp immutable.Comparer[K], n *bnode[K, V], b keyBounds[K], yield func(K, V) bool) bool {
	if n == nil {
		return true
	}
	if n.leaf() {
		i, end := 0, len(n.keys)
		if b.hasLo {
			i, _ = btreeSearch(cmp, n.keys, b.lo)
		}
		if b.hasHi { // one search per leaf, not a comparison per key
			end, _ = btreeSearch(cmp, n.keys, b.hi)
		}
		for ; i < end; i++ {
			if !yield(n.keys[i], n.vals[i]) {
				return false
			}
		}
		return end == len(n.keys)
	}
	i := 0
	if b.hasLo {
		i = btreeChild(cmp, n.keys, b.lo)
	}
	if !btreeAscend(cmp, n.kids[i], b, yield) {
		return false
	}
	b.hasLo = false // every key right of lo's child is above lo
	for _, c := range n.kids[i+1:] {
		if !btreeAscend(cmp, c, b, yield) {
			return false
		}
	}
	return true
}

// btreeDescend walks the entries of n within b in descending key order,
// as btreeAscend does the other way.
func btreeDescend[K, V any](cmp immutable.Comparer[K], n *bnode[K, V], b keyBounds[K], yield func(K, V) bool) bool {
	if n == nil {
		return true
	}
	if n.leaf() {
		start, i := 0, len(n.keys)
		if b.hasHi {
			i, _ = btreeSearch(cmp, n.keys, b.hi) // the first key not below hi
		}
		if b.hasLo {
			start, _ = btreeSearch(cmp, n.keys, b.lo)
		}
		for i--; i >= start; i-- {
			if !yield(n.keys[i], n.vals[i]) {
				return false
			}
		}
		return start == 0
	}
	i := len(n.kids) - 1
	if b.hasHi {
		i = btreeChild(cmp, n.keys, b.hi)
	}
	if !btreeDescend(cmp, n.kids[i], b, yield) {
		return false
	}
	b.hasHi = false // every key left of hi's child is below hi
	for j := i - 1; j >= 0; j-- {
		if !btreeDescend(cmp, n.kids[j], b, yield) {
			return false
		}
	}
	return true
}

// btreeEnd returns the first entry of n, or with last the last one, and
// whether n has any.
func btreeEnd[K, V any](n *bnode[K, V], last bool) (k K, v V, ok bool) {
	for n != nil && !n.leaf() {
		if last {
			n = n.kids[len(n.kids)-1]
		} else {
			n = n.kids[0]
		}
	}
	if n == nil || len(n.keys) == 0 {
		return k, v, false
	}
	i := 0
	if last {
		i = len(n.keys) - 1
	}
	return n.keys[i], n.vals[i], true
}
