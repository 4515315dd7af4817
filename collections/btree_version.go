package collections

import "github.com/benbjohnson/immutable"

// A versioned tree keeps, beside each entry's value, the Version at which
// the entry was last set: a Map's per-key versions. Its leaves hold a third
// array parallel to keys and values, in the same allocation, so a version
// costs 8 bytes per entry slot and nothing else; Get and All never read it.
// A tree is versioned or not for its whole life: every node of it is made
// by an owner with the same vers.

// Versioned leaves: plain ones and a version array, in one allocation.
type (
	bvleaf1[K, V any] struct {
		bleaf1[K, V]
		r [btreeLeafCap / 4]Version
	}
	bvleaf2[K, V any] struct {
		bleaf2[K, V]
		r [btreeLeafCap / 2]Version
	}
	bvleaf3[K, V any] struct {
		bleaf3[K, V]
		r [btreeLeafCap * 3 / 4]Version
	}
	bvleaf4[K, V any] struct {
		bleaf4[K, V]
		r [btreeLeafCap]Version
	}
)

// newBVLeaf returns an empty versioned leaf with room for at least c
// entries. Its vers is empty but not nil: that marks it versioned.
func newBVLeaf[K, V any](o *btreeOwner, c int) *bnode[K, V] {
	var n *bnode[K, V]
	switch {
	case c <= btreeLeafCap/4:
		a := new(bvleaf1[K, V])
		a.n.keys, a.n.vals, a.n.vers = a.k[:0], a.v[:0], a.r[:0]
		n = &a.n
	case c <= btreeLeafCap/2:
		a := new(bvleaf2[K, V])
		a.n.keys, a.n.vals, a.n.vers = a.k[:0], a.v[:0], a.r[:0]
		n = &a.n
	case c <= btreeLeafCap*3/4:
		a := new(bvleaf3[K, V])
		a.n.keys, a.n.vals, a.n.vers = a.k[:0], a.v[:0], a.r[:0]
		n = &a.n
	default:
		a := new(bvleaf4[K, V])
		a.n.keys, a.n.vals, a.n.vers = a.k[:0], a.v[:0], a.r[:0]
		n = &a.n
	}
	n.owner = o
	return n
}

// leafInsert inserts an entry at i into the leaf n, which has room.
func (n *bnode[K, V]) leafInsert(i int, k K, v V, ver Version) {
	n.keys, n.vals = btInsert(n.keys, i, k), btInsert(n.vals, i, v)
	if n.vers != nil {
		n.vers = btInsert(n.vers, i, ver)
	}
}

// newVersionedBTree returns an empty tree ordered by cmp that keeps a
// version per entry.
func newVersionedBTree[K, V any](cmp immutable.Comparer[K]) *btree[K, V] {
	return &btree[K, V]{cmp: cmp, vers: true}
}

// newVersionedTreeLoader is newTreeLoader for a versioned tree.
func newVersionedTreeLoader[K, V any](cmp immutable.Comparer[K]) *treeLoader[K, V] {
	return &treeLoader[K, V]{b: &btreeBuilder[K, V]{cmp: cmp, owner: &btreeOwner{vers: true}}}
}

// GetVersioned returns the value stored under k, the version it was set
// at (0 in a tree that keeps none), and whether there is one.
func (t *btree[K, V]) GetVersioned(k K) (V, Version, bool) {
	return btreeGetVersioned(t.cmp, t.root, k)
}

// GetVersioned is btree.GetVersioned on the editor's working contents.
func (e *btreeEditor[K, V]) GetVersioned(k K) (V, Version, bool) {
	return btreeGetVersioned(e.cmp, e.root, k)
}

func btreeGetVersioned[K, V any](cmp immutable.Comparer[K], n *bnode[K, V], k K) (V, Version, bool) {
	for n != nil {
		if n.leaf() {
			if i, ok := btreeSearch(cmp, n.keys, k); ok {
				var ver Version
				if n.vers != nil {
					ver = n.vers[i]
				}
				return n.vals[i], ver, true
			}
			break
		}
		n = n.kids[btreeChild(cmp, n.keys, k)]
	}
	var zero V
	return zero, 0, false
}

// AllVersioned yields the entries in ascending key order with their
// versions (0 in a tree that keeps none), until yield returns false.
func (t *btree[K, V]) AllVersioned(yield func(K, V, Version) bool) {
	btreeWalkVersioned(t.root, yield)
}

func btreeWalkVersioned[K, V any](n *bnode[K, V], yield func(K, V, Version) bool) bool {
	if n == nil {
		return true
	}
	if n.leaf() {
		for i, k := range n.keys {
			var ver Version
			if n.vers != nil {
				ver = n.vers[i]
			}
			if !yield(k, n.vals[i], ver) {
				return false
			}
		}
		return true
	}
	for _, c := range n.kids {
		if !btreeWalkVersioned(c, yield) {
			return false
		}
	}
	return true
}
