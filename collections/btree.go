package collections

import (
	"iter"

	"github.com/benbjohnson/immutable"
)

// Node sizes. A node that drops below its minimum borrows from or merges
// with a sibling. Capacities must be multiples of 4, at least 8.
const (
	btreeLeafCap   = 32 // entries in a leaf
	btreeBranchCap = 32 // children of a branch
	btreeLeafMin   = btreeLeafCap / 4
	btreeBranchMin = btreeBranchCap / 4
)

// btreeOwner identifies one generation of one editor. It has a size so that
// every allocation gets a distinct address. vers says the leaves it makes
// keep a version per entry (a Map's); it is the same for every generation
// of one tree.
type btreeOwner struct{ vers bool }

// bnode is a leaf (kids == nil) or a branch of a B+ tree. A branch with n
// children has n-1 separators: every key under kids[i] is < keys[i], and
// keys[i] <= every key under kids[i+1]. Delete leaves separators as they
// are, so a separator may be a key that is no longer in the tree.
//
// A node may be changed in place only by the editor whose current token is
// its owner; any other node may be shared with a frozen tree. A branch's
// keys have room for one fewer than its kids.
type bnode[K, V any] struct {
	owner *btreeOwner
	keys  []K
	vals  []V            // leaves only, parallel to keys
	vers  []Version      // leaves of a versioned tree only (else nil), parallel to keys
	kids  []*bnode[K, V] // branches only
}

// A node and its arrays are one allocation, in one of four sizes: a copy
// takes the smallest that fits, so a frozen node wastes little room, and a
// lookup goes from a node to its keys without another pointer.
type (
	bleaf1[K, V any] struct {
		n bnode[K, V]
		k [btreeLeafCap / 4]K
		v [btreeLeafCap / 4]V
	}
	bleaf2[K, V any] struct {
		n bnode[K, V]
		k [btreeLeafCap / 2]K
		v [btreeLeafCap / 2]V
	}
	bleaf3[K, V any] struct {
		n bnode[K, V]
		k [btreeLeafCap * 3 / 4]K
		v [btreeLeafCap * 3 / 4]V
	}
	bleaf4[K, V any] struct {
		n bnode[K, V]
		k [btreeLeafCap]K
		v [btreeLeafCap]V
	}
	bbranch1[K, V any] struct {
		n bnode[K, V]
		k [btreeBranchCap/4 - 1]K
		c [btreeBranchCap / 4]*bnode[K, V]
	}
	bbranch2[K, V any] struct {
		n bnode[K, V]
		k [btreeBranchCap/2 - 1]K
		c [btreeBranchCap / 2]*bnode[K, V]
	}
	bbranch3[K, V any] struct {
		n bnode[K, V]
		k [btreeBranchCap*3/4 - 1]K
		c [btreeBranchCap * 3 / 4]*bnode[K, V]
	}
	bbranch4[K, V any] struct {
		n bnode[K, V]
		k [btreeBranchCap - 1]K
		c [btreeBranchCap]*bnode[K, V]
	}
)

// newBLeaf returns an empty leaf with room for at least c entries.
func newBLeaf[K, V any](o *btreeOwner, c int) *bnode[K, V] {
	if o.vers {
		return newBVLeaf[K, V](o, c)
	}
	var n *bnode[K, V]
	switch {
	case c <= btreeLeafCap/4:
		a := new(bleaf1[K, V])
		a.n.keys, a.n.vals = a.k[:0], a.v[:0]
		n = &a.n
	case c <= btreeLeafCap/2:
		a := new(bleaf2[K, V])
		a.n.keys, a.n.vals = a.k[:0], a.v[:0]
		n = &a.n
	case c <= btreeLeafCap*3/4:
		a := new(bleaf3[K, V])
		a.n.keys, a.n.vals = a.k[:0], a.v[:0]
		n = &a.n
	default:
		a := new(bleaf4[K, V])
		a.n.keys, a.n.vals = a.k[:0], a.v[:0]
		n = &a.n
	}
	n.owner = o
	return n
}

// newBBranch returns an empty branch with room for at least c children.
func newBBranch[K, V any](o *btreeOwner, c int) *bnode[K, V] {
	var n *bnode[K, V]
	switch {
	case c <= btreeBranchCap/4:
		a := new(bbranch1[K, V])
		a.n.keys, a.n.kids = a.k[:0], a.c[:0]
		n = &a.n
	case c <= btreeBranchCap/2:
		a := new(bbranch2[K, V])
		a.n.keys, a.n.kids = a.k[:0], a.c[:0]
		n = &a.n
	case c <= btreeBranchCap*3/4:
		a := new(bbranch3[K, V])
		a.n.keys, a.n.kids = a.k[:0], a.c[:0]
		n = &a.n
	default:
		a := new(bbranch4[K, V])
		a.n.keys, a.n.kids = a.k[:0], a.c[:0]
		n = &a.n
	}
	n.owner = o
	return n
}

func (n *bnode[K, V]) leaf() bool { return n.kids == nil }

// size is what the capacity limits: entries of a leaf, children of a branch.
func (n *bnode[K, V]) size() int {
	if n.leaf() {
		return len(n.keys)
	}
	return len(n.kids)
}

func (n *bnode[K, V]) room() int {
	if n.leaf() {
		return cap(n.keys)
	}
	return cap(n.kids)
}

// btree is an immutable ordered map: a B+ tree whose nodes are never
// changed once the tree exists. The zero value is not usable; use newBTree.
// A btree is safe for concurrent use, also while an editor derived from it
// makes changes.
type btree[K, V any] struct {
	cmp  immutable.Comparer[K]
	root *bnode[K, V] // nil when empty
	len  int
	vers bool // keeps a version per entry: see newVersionedBTree
}

// newBTree returns an empty tree ordered by cmp.
func newBTree[K, V any](cmp immutable.Comparer[K]) *btree[K, V] {
	return &btree[K, V]{cmp: cmp}
}

// Len returns the number of entries.
func (t *btree[K, V]) Len() int { return t.len }

// Get returns the value stored under k, and whether there is one.
func (t *btree[K, V]) Get(k K) (V, bool) { return btreeGet(t.cmp, t.root, k) }

// All yields the entries in ascending key order.
func (t *btree[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) { btreeWalk(t.root, yield) }
}

// After yields the entries whose keys are greater than k, in ascending key
// order.
func (t *btree[K, V]) After(k K) iter.Seq2[K, V] {
	return func(yield func(K, V) bool) { btreeAfter(t.cmp, t.root, k, yield) }
}

// Edit returns a new editor whose contents start as t's. t never changes.
func (t *btree[K, V]) Edit() *btreeEditor[K, V] {
	return &btreeEditor[K, V]{cmp: t.cmp, root: t.root, len: t.len, owner: &btreeOwner{vers: t.vers}}
}

// btreeBuilder builds a tree from entries in ascending key order, as a
// restore reads them, without searching: it fills nodes left to right,
// keeping the path down the right edge, and leaves them as appending with
// an editor would.
type btreeBuilder[K, V any] struct {
	cmp   immutable.Comparer[K]
	owner *btreeOwner
	path  []*bnode[K, V] // path[0] the last leaf, path[h] its ancestor h levels up
	len   int
}

func newBTreeBuilder[K, V any](cmp immutable.Comparer[K]) *btreeBuilder[K, V] {
	return &btreeBuilder[K, V]{cmp: cmp, owner: new(btreeOwner)}
}

// Add appends an entry and reports true, or adds nothing and reports false
// if k is not above every key added so far.
func (b *btreeBuilder[K, V]) Add(k K, v V) bool { return b.AddAt(k, v, 0) }

// AddAt is Add with the entry's version, which a versioned tree keeps.
func (b *btreeBuilder[K, V]) AddAt(k K, v V, ver Version) bool {
	if len(b.path) == 0 {
		b.path = append(b.path, newBLeaf[K, V](b.owner, btreeLeafCap))
	}
	leaf := b.path[0]
	n := len(leaf.keys)
	if n > 0 && b.cmp.Compare(leaf.keys[n-1], k) >= 0 {
		return false
	}
	if n == btreeLeafCap {
		leaf = newBLeaf[K, V](b.owner, btreeLeafCap)
		b.link(1, k, leaf)
		b.path[0] = leaf
	}
	leaf.keys = append(leaf.keys, k)
	leaf.vals = append(leaf.vals, v)
	if leaf.vers != nil {
		leaf.vers = append(leaf.vers, ver)
	}
	b.len++
	return true
}

// link adds kid, whose keys are all at least sep, as the last child of the
// right edge at height h, growing the tree when the edge is full.
func (b *btreeBuilder[K, V]) link(h int, sep K, kid *bnode[K, V]) {
	if h == len(b.path) {
		r := newBBranch[K, V](b.owner, btreeBranchCap)
		r.kids = append(r.kids, b.path[h-1])
		b.path = append(b.path, r)
	}
	n := b.path[h]
	if len(n.kids) == btreeBranchCap {
		n = newBBranch[K, V](b.owner, btreeBranchCap)
		b.link(h+1, sep, n)
		b.path[h] = n
		n.kids = append(n.kids, kid)
		return
	}
	n.keys = append(n.keys, sep)
	n.kids = append(n.kids, kid)
}

// Edit returns an editor holding what was added. The builder is spent.
func (b *btreeBuilder[K, V]) Edit() *btreeEditor[K, V] {
	e := &btreeEditor[K, V]{cmp: b.cmp, owner: b.owner, len: b.len}
	if b.len > 0 {
		e.root = b.path[len(b.path)-1]
	}
	b.path = nil
	return e
}

// treeLoader fills a tree from a snapshot: with a builder while keys come
// in ascending order, as every replica writes them, else with an editor.
type treeLoader[K, V any] struct {
	b *btreeBuilder[K, V]
	e *btreeEditor[K, V]
}

func newTreeLoader[K, V any](cmp immutable.Comparer[K]) *treeLoader[K, V] {
	return &treeLoader[K, V]{b: newBTreeBuilder[K, V](cmp)}
}

func (l *treeLoader[K, V]) set(k K, v V) { l.setAt(k, v, 0) }

func (l *treeLoader[K, V]) setAt(k K, v V, ver Version) {
	if l.e == nil {
		if l.b.AddAt(k, v, ver) {
			return
		}
		l.e = l.b.Edit()
	}
	l.e.SetAt(k, v, ver)
}

func (l *treeLoader[K, V]) edit() *btreeEditor[K, V] {
	if l.e == nil {
		l.e = l.b.Edit()
	}
	return l.e
}

// btreeEditor is a mutable working copy of a btree. It changes in place the
// nodes it created since its last Freeze, and copies any other node before
// changing it, so a batch of edits copies each shared node at most once.
// It is not safe for concurrent use; the trees it freezes are.
type btreeEditor[K, V any] struct {
	cmp   immutable.Comparer[K]
	root  *bnode[K, V]
	len   int
	owner *btreeOwner
}

// Len returns the number of entries.
func (e *btreeEditor[K, V]) Len() int { return e.len }

// Get returns the value stored under k, and whether there is one.
func (e *btreeEditor[K, V]) Get(k K) (V, bool) { return btreeGet(e.cmp, e.root, k) }

// Clear removes every entry.
func (e *btreeEditor[K, V]) Clear() {
	e.root = nil
	e.len = 0
}

// Freeze returns an immutable tree of the current contents. The editor
// stays usable: it takes a new token, so every node it has so far counts
// as shared and is copied before a later change.
func (e *btreeEditor[K, V]) Freeze() *btree[K, V] {
	t := &btree[K, V]{cmp: e.cmp, root: e.root, len: e.len, vers: e.owner.vers}
	e.owner = &btreeOwner{vers: e.owner.vers}
	return t
}

// mut returns n if the editor owns it and it has room for extra more
// entries or children; else a copy, owned, with that room, which the caller
// must link in n's place.
func (e *btreeEditor[K, V]) mut(n *bnode[K, V], extra int) *bnode[K, V] {
	need := n.size() + extra
	if n.owner == e.owner && n.room() >= need {
		return n
	}
	if n.leaf() {
		m := newBLeaf[K, V](e.owner, need)
		m.keys = append(m.keys, n.keys...)
		m.vals = append(m.vals, n.vals...)
		m.vers = append(m.vers, n.vers...)
		return m
	}
	m := newBBranch[K, V](e.owner, need)
	m.keys = append(m.keys, n.keys...)
	m.kids = append(m.kids, n.kids...)
	return m
}

// Set stores v under k, replacing any value there.
func (e *btreeEditor[K, V]) Set(k K, v V) { e.SetAt(k, v, 0) }

// SetAt is Set with the entry's version, which a versioned tree keeps.
func (e *btreeEditor[K, V]) SetAt(k K, v V, ver Version) {
	if e.root == nil {
		r := newBLeaf[K, V](e.owner, 1)
		r.leafInsert(0, k, v, ver)
		e.root, e.len = r, 1
		return
	}
	root, right, sep, added := e.set(e.root, k, v, ver, true)
	if right != nil {
		r := newBBranch[K, V](e.owner, 2)
		r.keys = append(r.keys, sep)
		r.kids = append(r.kids, root, right)
		root = r
	}
	e.root = root
	if added {
		e.len++
	}
}

// set stores v under k in the subtree n and returns what replaces n: n
// itself, or an owned copy. If n had to split, right is its new right
// sibling and sep the separator between them. rightmost says n is on the
// tree's right edge.
func (e *btreeEditor[K, V]) set(n *bnode[K, V], k K, v V, ver Version, rightmost bool) (m, right *bnode[K, V], sep K, added bool) {
	if n.leaf() {
		i, found := btreeSearch(e.cmp, n.keys, k)
		switch {
		case found:
			m = e.mut(n, 0)
			m.vals[i] = v
			if m.vers != nil {
				m.vers[i] = ver
			}
			return m, nil, sep, false
		case len(n.keys) < btreeLeafCap:
			m = e.mut(n, 1)
			m.leafInsert(i, k, v, ver)
			return m, nil, sep, true
		case rightmost && i == len(n.keys):
			// Appending, as a restore does: n stays full, and the new leaf
			// has room for what comes next.
			right = newBLeaf[K, V](e.owner, btreeLeafCap)
			right.leafInsert(0, k, v, ver)
			return n, right, k, true
		}
		m, right = e.splitLeaf(n, i)
		if h := len(m.keys); i <= h {
			m.leafInsert(i, k, v, ver)
		} else {
			right.leafInsert(i-h, k, v, ver)
		}
		return m, right, right.keys[0], true
	}

	i := btreeChild(e.cmp, n.keys, k)
	last := i == len(n.kids)-1
	kid, kr, ks, added := e.set(n.kids[i], k, v, ver, rightmost && last)
	switch {
	case kr == nil:
		m = e.mut(n, 0)
		m.kids[i] = kid
		return m, nil, sep, added
	case len(n.kids) < btreeBranchCap:
		m = e.mut(n, 1)
		m.kids[i] = kid
		m.keys, m.kids = btInsert(m.keys, i, ks), btInsert(m.kids, i+1, kr)
		return m, nil, sep, added
	case rightmost && last:
		// Appending, as for a leaf: n stays full.
		m = e.mut(n, 0)
		m.kids[i] = kid
		right = newBBranch[K, V](e.owner, btreeBranchCap)
		right.kids = append(right.kids, kr)
		return m, right, ks, added
	}
	m, right, sep = e.splitBranch(n, i)
	if h := len(m.kids); i < h {
		m.kids[i] = kid
		m.keys, m.kids = btInsert(m.keys, i, ks), btInsert(m.kids, i+1, kr)
	} else {
		right.kids[i-h] = kid
		right.keys, right.kids = btInsert(right.keys, i-h, ks), btInsert(right.kids, i-h+1, kr)
	}
	return m, right, sep, added
}

// splitLeaf copies the full leaf n into two new leaves, the half that will
// take index i with room for one more entry.
func (e *btreeEditor[K, V]) splitLeaf(n *bnode[K, V], i int) (left, right *bnode[K, V]) {
	h := len(n.keys) / 2
	el, er := 1, 0
	if i > h {
		el, er = 0, 1
	}
	left = newBLeaf[K, V](e.owner, h+el)
	left.keys = append(left.keys, n.keys[:h]...)
	left.vals = append(left.vals, n.vals[:h]...)
	right = newBLeaf[K, V](e.owner, len(n.keys)-h+er)
	right.keys = append(right.keys, n.keys[h:]...)
	right.vals = append(right.vals, n.vals[h:]...)
	if n.vers != nil {
		left.vers = append(left.vers, n.vers[:h]...)
		right.vers = append(right.vers, n.vers[h:]...)
	}
	return left, right
}

// splitBranch copies the full branch n into two new branches, the half
// that holds child i with room for one more child, and returns the
// separator between them.
func (e *btreeEditor[K, V]) splitBranch(n *bnode[K, V], i int) (left, right *bnode[K, V], sep K) {
	h := len(n.kids) / 2
	el, er := 1, 0
	if i >= h {
		el, er = 0, 1
	}
	left = newBBranch[K, V](e.owner, h+el)
	left.keys = append(left.keys, n.keys[:h-1]...)
	left.kids = append(left.kids, n.kids[:h]...)
	right = newBBranch[K, V](e.owner, len(n.kids)-h+er)
	right.keys = append(right.keys, n.keys[h:]...)
	right.kids = append(right.kids, n.kids[h:]...)
	return left, right, n.keys[h-1]
}

// Delete removes the entry under k and returns its value, and whether
// there was one. Deleting an absent key copies nothing.
func (e *btreeEditor[K, V]) Delete(k K) (V, bool) {
	if e.root == nil {
		var zero V
		return zero, false
	}
	root, v, ok := e.del(e.root, k)
	if !ok {
		return v, false
	}
	e.len--
	for !root.leaf() && len(root.kids) == 1 {
		root = root.kids[0]
	}
	if root.size() == 0 {
		root = nil
	}
	e.root = root
	return v, true
}

// del removes k from the subtree n and returns n's owned replacement, or n
// itself if k is absent.
func (e *btreeEditor[K, V]) del(n *bnode[K, V], k K) (m *bnode[K, V], v V, ok bool) {
	if n.leaf() {
		i, found := btreeSearch(e.cmp, n.keys, k)
		if !found {
			return n, v, false
		}
		m = e.mut(n, 0)
		v = m.vals[i]
		m.keys, m.vals = btRemove(m.keys, i), btRemove(m.vals, i)
		if m.vers != nil {
			m.vers = btRemove(m.vers, i)
		}
		return m, v, true
	}
	i := btreeChild(e.cmp, n.keys, k)
	kid, v, ok := e.del(n.kids[i], k)
	if !ok {
		return n, v, false
	}
	m = e.mut(n, 0)
	m.kids[i] = kid
	e.rebalance(m, i)
	return m, v, true
}

// rebalance restores the size of m's child i after a delete below it.
// Nodes on the right edge may be small (appending leaves them so); any
// other node is brought back to its minimum.
func (e *btreeEditor[K, V]) rebalance(m *bnode[K, V], i int) {
	c := m.kids[i]
	low, capacity := btreeLeafMin, btreeLeafCap
	if !c.leaf() {
		low, capacity = btreeBranchMin, btreeBranchCap
	}
	switch {
	case c.size() >= low:
		return
	case c.size() == 0:
		m.kids = btRemove(m.kids, i)
		if len(m.keys) > 0 {
			m.keys = btRemove(m.keys, max(i-1, 0))
		}
		return
	case len(m.kids) == 1:
		return // the right edge, with no sibling to take from
	}
	l := max(i-1, 0)
	left, right := m.kids[l], m.kids[l+1]
	ls, rs := left.size(), right.size()
	if ls+rs <= capacity {
		left = e.mut(left, rs)
		mergeBNodes(left, right, m.keys[l])
		m.kids[l] = left
		m.kids = btRemove(m.kids, l+1)
		m.keys = btRemove(m.keys, l)
		return
	}
	want := (ls + rs) / 2
	left, right = e.mut(left, max(want-ls, 0)), e.mut(right, max(ls-want, 0))
	m.kids[l], m.kids[l+1] = left, right
	m.keys[l] = shiftBNodes(left, right, m.keys[l], want)
}

// mergeBNodes appends right, whose separator from left is sep, to left.
func mergeBNodes[K, V any](left, right *bnode[K, V], sep K) {
	if left.leaf() {
		left.keys = append(left.keys, right.keys...)
		left.vals = append(left.vals, right.vals...)
		left.vers = append(left.vers, right.vers...)
		return
	}
	left.keys = append(append(left.keys, sep), right.keys...)
	left.kids = append(left.kids, right.kids...)
}

// shiftBNodes moves entries between siblings so left has size want, and
// returns the new separator between them (sep is the old one).
func shiftBNodes[K, V any](left, right *bnode[K, V], sep K, want int) K {
	ls := left.size()
	if left.leaf() {
		vers := left.vers != nil
		if ls > want {
			right.keys = btPrepend(right.keys, left.keys[want:])
			right.vals = btPrepend(right.vals, left.vals[want:])
			left.keys, left.vals = btTruncate(left.keys, want), btTruncate(left.vals, want)
			if vers {
				right.vers = btPrepend(right.vers, left.vers[want:])
				left.vers = btTruncate(left.vers, want)
			}
		} else {
			d := want - ls
			left.keys = append(left.keys, right.keys[:d]...)
			left.vals = append(left.vals, right.vals[:d]...)
			right.keys, right.vals = btDropFront(right.keys, d), btDropFront(right.vals, d)
			if vers {
				left.vers = append(left.vers, right.vers[:d]...)
				right.vers = btDropFront(right.vers, d)
			}
		}
		return right.keys[0]
	}
	if ls > want {
		// left.keys[want-1] goes up; the keys after it and the old
		// separator come down to the front of right.
		up := left.keys[want-1]
		right.keys = btPrepend(btInsert(right.keys, 0, sep), left.keys[want:])
		right.kids = btPrepend(right.kids, left.kids[want:])
		left.keys, left.kids = btTruncate(left.keys, want-1), btTruncate(left.kids, want)
		return up
	}
	d := want - ls
	up := right.keys[d-1]
	left.keys = append(append(left.keys, sep), right.keys[:d-1]...)
	left.kids = append(left.kids, right.kids[:d]...)
	right.keys, right.kids = btDropFront(right.keys, d), btDropFront(right.kids, d)
	return up
}

func btreeGet[K, V any](cmp immutable.Comparer[K], n *bnode[K, V], k K) (V, bool) {
	for n != nil {
		if n.leaf() {
			if i, ok := btreeSearch(cmp, n.keys, k); ok {
				return n.vals[i], true
			}
			break
		}
		n = n.kids[btreeChild(cmp, n.keys, k)]
	}
	var zero V
	return zero, false
}

func btreeWalk[K, V any](n *bnode[K, V], yield func(K, V) bool) bool {
	if n == nil {
		return true
	}
	if n.leaf() {
		for i, k := range n.keys {
			if !yield(k, n.vals[i]) {
				return false
			}
		}
		return true
	}
	for _, c := range n.kids {
		if !btreeWalk(c, yield) {
			return false
		}
	}
	return true
}

// btreeAfter walks the entries of n with keys greater than k.
func btreeAfter[K, V any](cmp immutable.Comparer[K], n *bnode[K, V], k K, yield func(K, V) bool) bool {
	if n == nil {
		return true
	}
	if n.leaf() {
		i, found := btreeSearch(cmp, n.keys, k)
		if found {
			i++
		}
		for ; i < len(n.keys); i++ {
			if !yield(n.keys[i], n.vals[i]) {
				return false
			}
		}
		return true
	}
	i := btreeChild(cmp, n.keys, k)
	if !btreeAfter(cmp, n.kids[i], k, yield) {
		return false
	}
	for _, c := range n.kids[i+1:] {
		if !btreeWalk(c, yield) {
			return false
		}
	}
	return true
}

// btreeSearch returns the index of k in the sorted keys, or where it would
// be inserted, and whether it is there.
func btreeSearch[K any](cmp immutable.Comparer[K], keys []K, k K) (int, bool) {
	lo, hi := 0, len(keys)
	for lo < hi {
		h := int(uint(lo+hi) >> 1)
		switch c := cmp.Compare(keys[h], k); {
		case c < 0:
			lo = h + 1
		case c > 0:
			hi = h
		default:
			return h, true
		}
	}
	return lo, false
}

// btreeChild returns the index of the child of a branch with separators
// seps whose range holds k.
func btreeChild[K any](cmp immutable.Comparer[K], seps []K, k K) int {
	i, found := btreeSearch(cmp, seps, k)
	if found {
		i++
	}
	return i
}

// Slice helpers for node arrays: they never grow an array (mut makes the
// room), and they clear vacated slots so a node does not keep removed keys
// and values alive.

func btInsert[T any](s []T, i int, v T) []T {
	s = s[:len(s)+1]
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

func btRemove[T any](s []T, i int) []T {
	copy(s[i:], s[i+1:])
	return btTruncate(s, len(s)-1)
}

func btPrepend[T any](s, front []T) []T {
	n := len(s)
	s = s[:n+len(front)]
	copy(s[len(front):], s[:n])
	copy(s, front)
	return s
}

func btDropFront[T any](s []T, d int) []T {
	n := copy(s, s[d:])
	return btTruncate(s, n)
}

func btTruncate[T any](s []T, n int) []T {
	clear(s[n:])
	return s[:n]
}
