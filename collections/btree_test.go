package collections

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/immutable"
)

func btreeRand(t *testing.T) *rand.Rand { return seededRand(t, "btree") }

type btreeKV[K, V any] struct {
	k K
	v V
}

// btreeSorted returns the model's entries in key order.
func btreeSorted[K cmp.Ordered, V any](m map[K]V) []btreeKV[K, V] {
	kvs := make([]btreeKV[K, V], 0, len(m))
	for k, v := range m {
		kvs = append(kvs, btreeKV[K, V]{k, v})
	}
	slices.SortFunc(kvs, func(a, b btreeKV[K, V]) int { return cmp.Compare(a.k, b.k) })
	return kvs
}

// btreeCheck verifies the structure of a tree: every leaf at one depth,
// keys strictly ascending and within the bounds the separators above them
// set, node sizes and array capacities within limits, vacated slots
// cleared, no node reachable twice, and n entries in all.
func btreeCheck[K, V any](c immutable.Comparer[K], root *bnode[K, V], n int) error {
	if root == nil {
		if n != 0 {
			return fmt.Errorf("empty tree with Len %d", n)
		}
		return nil
	}
	ck := btreeChecker[K, V]{cmp: c, leafDepth: -1, seen: map[*bnode[K, V]]bool{}}
	if err := ck.node(root, 0, nil, nil, true, true); err != nil {
		return err
	}
	if ck.count != n {
		return fmt.Errorf("tree holds %d entries, Len is %d", ck.count, n)
	}
	return nil
}

type btreeChecker[K, V any] struct {
	cmp       immutable.Comparer[K]
	leafDepth int
	count     int
	prev      *K
	seen      map[*bnode[K, V]]bool
}

func (ck *btreeChecker[K, V]) node(n *bnode[K, V], depth int, lo, hi *K, root, rightmost bool) error {
	if ck.seen[n] {
		return fmt.Errorf("node %p reached twice", n)
	}
	ck.seen[n] = true
	if n.owner == nil {
		return errors.New("node without owner")
	}
	inBounds := func(k K) bool {
		return (lo == nil || ck.cmp.Compare(k, *lo) >= 0) && (hi == nil || ck.cmp.Compare(k, *hi) < 0)
	}
	low, capacity := btreeLeafMin, btreeLeafCap
	if !n.leaf() {
		low, capacity = btreeBranchMin, btreeBranchCap
	}
	switch {
	case root && n.leaf():
		low = 1
	case root:
		low = 2
	case rightmost:
		low = 1 // appending leaves the right edge short
	}
	if s := n.size(); s < low || s > capacity {
		return fmt.Errorf("node at depth %d (root %v, rightmost %v) has size %d, want [%d, %d]", depth, root, rightmost, s, low, capacity)
	}

	if n.leaf() {
		if ck.leafDepth < 0 {
			ck.leafDepth = depth
		} else if depth != ck.leafDepth {
			return fmt.Errorf("leaves at depths %d and %d", ck.leafDepth, depth)
		}
		if cap(n.keys) > btreeLeafCap || cap(n.vals) != cap(n.keys) || len(n.vals) != len(n.keys) {
			return fmt.Errorf("leaf arrays: %d/%d keys, %d/%d values", len(n.keys), cap(n.keys), len(n.vals), cap(n.vals))
		}
		for i := range n.keys {
			k := &n.keys[i]
			if !inBounds(*k) {
				return fmt.Errorf("leaf key %v outside its separators", *k)
			}
			if ck.prev != nil && ck.cmp.Compare(*ck.prev, *k) >= 0 {
				return fmt.Errorf("keys not ascending: %v then %v", *ck.prev, *k)
			}
			ck.prev = k
			ck.count++
		}
		if err := btreeCleared(n.keys); err != nil {
			return err
		}
		if n.vers != nil && (len(n.vers) != len(n.keys) || cap(n.vers) != cap(n.keys)) {
			return fmt.Errorf("leaf versions: %d/%d for %d/%d keys", len(n.vers), cap(n.vers), len(n.keys), cap(n.keys))
		}
		if err := btreeCleared(n.vers); err != nil {
			return err
		}
		return btreeCleared(n.vals)
	}

	if cap(n.kids) > btreeBranchCap || cap(n.keys) != cap(n.kids)-1 || len(n.keys) != len(n.kids)-1 {
		return fmt.Errorf("branch arrays: %d/%d separators, %d/%d children", len(n.keys), cap(n.keys), len(n.kids), cap(n.kids))
	}
	if n.vals != nil {
		return errors.New("branch with values")
	}
	for i, s := range n.keys {
		if !inBounds(s) || i > 0 && ck.cmp.Compare(n.keys[i-1], s) >= 0 {
			return fmt.Errorf("separator %v out of order", s)
		}
	}
	if err := btreeCleared(n.keys); err != nil {
		return err
	}
	if err := btreeCleared(n.kids); err != nil {
		return err
	}
	for i, kid := range n.kids {
		klo, khi := lo, hi
		if i > 0 {
			klo = &n.keys[i-1]
		}
		if i < len(n.keys) {
			khi = &n.keys[i]
		}
		if err := ck.node(kid, depth+1, klo, khi, false, rightmost && i == len(n.kids)-1); err != nil {
			return err
		}
	}
	return nil
}

// btreeCleared reports a slot past the end of s that still holds something.
func btreeCleared[T any](s []T) error {
	rest := s[len(s):cap(s)]
	for i := range rest {
		if !reflect.ValueOf(&rest[i]).Elem().IsZero() {
			return fmt.Errorf("vacated slot %d of %d holds %v", len(s)+i, cap(s), rest[i])
		}
	}
	return nil
}

func btreeDepth[K, V any](n *bnode[K, V]) int {
	d := 0
	for ; n != nil; d++ {
		if n.leaf() {
			return d + 1
		}
		n = n.kids[0]
	}
	return d
}

// btreeNodes calls f on every node of the tree under n.
func btreeNodes[K, V any](n *bnode[K, V], f func(*bnode[K, V])) {
	if n == nil {
		return
	}
	f(n)
	for _, c := range n.kids {
		btreeNodes(c, f)
	}
}

// btreeDisowned reports a node of the frozen tree t that the editor owns:
// the editor could change it under t.
func btreeDisowned[K, V any](t *btree[K, V], e *btreeEditor[K, V]) error {
	var err error
	btreeNodes(t.root, func(n *bnode[K, V]) {
		if n.owner == e.owner && err == nil {
			err = fmt.Errorf("frozen tree shares node %p with the editor that owns it", n)
		}
	})
	return err
}

// btreeSame checks that t holds exactly want, in order, and that Get finds
// every key of want and none of absent.
func btreeSame[K comparable, V comparable](t *btree[K, V], want []btreeKV[K, V], absent []K) error {
	if t.Len() != len(want) {
		return fmt.Errorf("Len %d, want %d", t.Len(), len(want))
	}
	i := 0
	for k, v := range t.All() {
		if i >= len(want) {
			return fmt.Errorf("All yields more than %d entries: %v", len(want), k)
		}
		if k != want[i].k || v != want[i].v {
			return fmt.Errorf("All entry %d is %v=%v, want %v=%v", i, k, v, want[i].k, want[i].v)
		}
		i++
	}
	if i != len(want) {
		return fmt.Errorf("All yields %d entries, want %d", i, len(want))
	}
	for _, kv := range want {
		if v, ok := t.Get(kv.k); !ok || v != kv.v {
			return fmt.Errorf("Get(%v) = %v, %v; want %v", kv.k, v, ok, kv.v)
		}
	}
	for _, k := range absent {
		if v, ok := t.Get(k); ok {
			return fmt.Errorf("Get(%v) = %v for an absent key", k, v)
		}
	}
	return nil
}

type btreeModelConfig struct {
	name        string
	space       int // keys are key(0) .. key(space-1)
	ops         int
	freezeEvery int // mean operations between freezes
	keepEvery   int // keep one frozen tree in this many
	keep        int // frozen trees kept at most
	clearEvery  int // mean operations between clears
	check       int // full check after this many operations
	minDepth    int // the tree must reach this depth
}

func TestBTreeModel(t *testing.T) {
	cfgs := []btreeModelConfig{
		{name: "tiny", space: 40, ops: 6000, freezeEvery: 8, keepEvery: 1, keep: 200, clearEvery: 400, check: 50, minDepth: 2},
		{name: "small", space: 300, ops: 40000, freezeEvery: 16, keepEvery: 4, keep: 64, clearEvery: 8000, check: 500, minDepth: 2},
		{name: "merges", space: 3000, ops: 60000, freezeEvery: 64, keepEvery: 20, keep: 32, clearEvery: 1 << 30, check: 10000, minDepth: 3},
		{name: "large", space: 50000, ops: 240000, freezeEvery: 64, keepEvery: 150, keep: 12, clearEvery: 1 << 30, check: 60000, minDepth: 3},
	}
	for _, cfg := range cfgs {
		if testing.Short() {
			cfg.ops /= 4
		}
		t.Run(cfg.name+"/string", func(t *testing.T) {
			testBTreeModel(t, cfg, func(i int) string { return "k" + strconv.Itoa(i) })
		})
		t.Run(cfg.name+"/int", func(t *testing.T) {
			testBTreeModel(t, cfg, func(i int) int { return i*3 - 1000 })
		})
	}
}

// testBTreeModel applies random operations to an editor and a Go map, and
// keeps some of the frozen trees with a copy of what each held, to check
// that no later edit shows through.
func testBTreeModel[K cmp.Ordered](t *testing.T, cfg btreeModelConfig, key func(int) K) {
	rng := btreeRand(t)
	c := comparerFor[K]()
	ed := newBTree[K, int](c).Edit()
	model := map[K]int{}
	type kept struct {
		t    *btree[K, int]
		want []btreeKV[K, int]
	}
	var frozen []kept
	var last *btree[K, int]
	freezes, depth := 0, 0

	absent := func(want []btreeKV[K, int]) []K {
		ks := []K{key(-1), key(cfg.space), key(cfg.space + 7)}
		for range 40 {
			k := key(rng.IntN(cfg.space))
			if _, ok := slices.BinarySearchFunc(want, k, func(kv btreeKV[K, int], k K) int { return cmp.Compare(kv.k, k) }); !ok {
				ks = append(ks, k)
			}
		}
		return ks
	}
	checkAll := func(op int) {
		t.Helper()
		if err := btreeCheck(c, ed.root, ed.Len()); err != nil {
			t.Fatalf("op %d: editor: %v", op, err)
		}
		want := btreeSorted(model)
		// A view, not Freeze, so checking does not change what the editor owns.
		view := &btree[K, int]{cmp: c, root: ed.root, len: ed.len}
		if err := btreeSame(view, want, absent(want)); err != nil {
			t.Fatalf("op %d: editor: %v", op, err)
		}
		for i, f := range frozen {
			if err := btreeCheck(c, f.t.root, f.t.Len()); err != nil {
				t.Fatalf("op %d: frozen tree %d: %v", op, i, err)
			}
			if err := btreeSame(f.t, f.want, absent(f.want)); err != nil {
				t.Fatalf("op %d: frozen tree %d: %v", op, i, err)
			}
			if err := btreeDisowned(f.t, ed); err != nil {
				t.Fatalf("op %d: frozen tree %d: %v", op, i, err)
			}
		}
	}

	// Phases grow, hold, shrink and drain the tree, so it both reaches
	// depth and merges its way back down. The first two grow.
	setP, phase := 90, max(cfg.ops/16, 500)
	for op := range cfg.ops {
		if op >= 2*phase && op%phase == 0 {
			setP = []int{90, 60, 30, 0}[rng.IntN(4)]
		}
		k := key(rng.IntN(cfg.space))
		switch r := rng.IntN(100); {
		case rng.IntN(cfg.clearEvery) == 0:
			ed.Clear()
			clear(model)
		case rng.IntN(cfg.freezeEvery) == 0:
			if last != nil && cfg.space <= 5000 {
				if err := btreeDisowned(last, ed); err != nil {
					t.Fatalf("op %d: last frozen tree: %v", op, err)
				}
			}
			ft := ed.Freeze()
			last = ft
			if freezes++; freezes%cfg.keepEvery == 0 {
				f := kept{ft, btreeSorted(model)}
				if len(frozen) < cfg.keep {
					frozen = append(frozen, f)
				} else {
					frozen[rng.IntN(len(frozen))] = f
				}
			}
		case r < 15:
			v, ok := ed.Get(k)
			if mv, mok := model[k]; v != mv || ok != mok {
				t.Fatalf("op %d: Get(%v) = %v, %v; want %v, %v", op, k, v, ok, mv, mok)
			}
		case r < 15+setP*85/100:
			v := rng.IntN(1 << 20)
			ed.Set(k, v)
			model[k] = v
		default:
			v, ok := ed.Delete(k)
			if mv, mok := model[k]; v != mv || ok != mok {
				t.Fatalf("op %d: Delete(%v) = %v, %v; want %v, %v", op, k, v, ok, mv, mok)
			}
			delete(model, k)
		}
		if ed.Len() != len(model) {
			t.Fatalf("op %d: Len %d, want %d", op, ed.Len(), len(model))
		}
		depth = max(depth, btreeDepth(ed.root))
		if (op+1)%cfg.check == 0 {
			checkAll(op)
		}
	}
	checkAll(cfg.ops)
	if depth < cfg.minDepth {
		t.Errorf("deepest tree had depth %d, want at least %d", depth, cfg.minDepth)
	}
	t.Logf("%d freezes, %d trees kept, depth %d, %d entries at the end", freezes, len(frozen), depth, ed.Len())
}

func TestBTreeAscending(t *testing.T) {
	const n = 100_000
	e := newBTree[int, int](comparerFor[int]()).Edit()
	want := make([]btreeKV[int, int], n)
	for i := range n {
		e.Set(i, -i)
		want[i] = btreeKV[int, int]{i, -i}
	}
	tr := e.Freeze()
	if err := btreeCheck(tr.cmp, tr.root, tr.Len()); err != nil {
		t.Fatal(err)
	}
	if err := btreeSame(tr, want, []int{-1, n, n + 1}); err != nil {
		t.Fatal(err)
	}
	if err := btreePacked(tr.root, true); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for range tr.All() {
		if seen++; seen == 1000 {
			break
		}
	}
	if seen != 1000 {
		t.Fatalf("All went on after break: %d entries", seen)
	}
}

// TestBTreeBuilder builds trees of many sizes from ascending entries: each
// is a valid tree, packed like an appended one, holding what was added, and
// an editor goes on from it; a key out of order is refused.
func TestBTreeBuilder(t *testing.T) {
	rng := btreeRand(t)
	sizes := []int{0, 1, btreeLeafCap - 1, btreeLeafCap, btreeLeafCap + 1, btreeLeafCap * btreeBranchCap,
		btreeLeafCap*btreeBranchCap + 1, btreeLeafCap * btreeBranchCap * btreeBranchCap, 100_000}
	for range 5 {
		sizes = append(sizes, rng.IntN(50_000))
	}
	for _, n := range sizes {
		b := newBTreeBuilder[int, int](comparerFor[int]())
		model := make(map[int]int, n)
		k := 0
		for range n {
			k += 1 + rng.IntN(3)
			if !b.Add(k, -k) {
				t.Fatalf("n=%d: Add(%d) refused after smaller keys", n, k)
			}
			model[k] = -k
		}
		if n > 0 && (b.Add(k, 0) || b.Add(k-1, 0)) {
			t.Fatalf("n=%d: Add took a key not above the last", n)
		}
		e := b.Edit()
		tr := e.Freeze()
		if err := btreeCheck(tr.cmp, tr.root, tr.Len()); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		built := btreeSorted(model)
		if err := btreeSame(tr, built, []int{-1, 0, k + 1}); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if n > 0 {
			if err := btreePacked(tr.root, true); err != nil {
				t.Fatalf("n=%d: %v", n, err)
			}
		}
		// The editor takes over, in place of the builder: random sets and
		// deletes, including at the short right edge; tr stays as it was.
		for range min(n, 2000) + 10 {
			x := rng.IntN(k + 10)
			if rng.IntN(2) == 0 {
				e.Set(x, x)
				model[x] = x
			} else {
				e.Delete(x)
				delete(model, x)
			}
		}
		after := e.Freeze()
		if err := btreeCheck(after.cmp, after.root, after.Len()); err != nil {
			t.Fatalf("n=%d after edits: %v", n, err)
		}
		if err := btreeSame(after, btreeSorted(model), nil); err != nil {
			t.Fatalf("n=%d after edits: %v", n, err)
		}
		if err := btreeSame(tr, built, nil); err != nil {
			t.Fatalf("n=%d: the built tree changed: %v", n, err)
		}
	}
}

// btreePacked checks that every node off the right edge is full, with no
// spare room, as appending should leave it.
func btreePacked[K, V any](n *bnode[K, V], rightmost bool) error {
	capacity := btreeLeafCap
	if !n.leaf() {
		capacity = btreeBranchCap
	}
	if !rightmost && (n.size() != capacity || n.room() != capacity) {
		return fmt.Errorf("node off the right edge with size %d and room %d, want %d", n.size(), n.room(), capacity)
	}
	for i, c := range n.kids {
		if err := btreePacked(c, rightmost && i == len(n.kids)-1); err != nil {
			return err
		}
	}
	return nil
}

// TestBTreeRightEdge works at both ends of trees built by appending, where
// the right edge holds nodes of one entry or one child, and the left edge
// is full siblings' neighbour.
func TestBTreeRightEdge(t *testing.T) {
	rng := btreeRand(t)
	c := comparerFor[int]()
	const l, b = btreeLeafCap, btreeBranchCap
	for _, n := range []int{l + 1, l*b + 1, l*b + 2, 2*l*b + l + 1} {
		for _, order := range []string{"back", "front", "alternate", "edge churn"} {
			t.Run(fmt.Sprintf("%d/%s", n, order), func(t *testing.T) {
				e := newBTree[int, int](c).Edit()
				model := map[int]int{}
				for i := range n {
					e.Set(i, i)
					model[i] = i
				}
				lo, hi := 0, n // the keys still present, in the first three orders
				for step := 0; e.Len() > 0; step++ {
					var k int
					switch {
					case order == "back" || order == "alternate" && step%2 == 0:
						hi--
						k = hi
					case order == "front" || order == "alternate":
						k = lo
						lo++
					default:
						// Delete near the end and append past it, so
						// small right-edge nodes come and go.
						if step > n {
							e.Clear()
							clear(model)
							break
						}
						k = hi - 1 - rng.IntN(40)
						if rng.IntN(2) == 0 {
							e.Set(hi, step)
							model[hi] = step
							hi++
						}
					}
					if e.Len() == 0 {
						break
					}
					v, ok := e.Delete(k)
					if mv, mok := model[k]; v != mv || ok != mok {
						t.Fatalf("step %d: Delete(%d) = %d, %v; want %d, %v", step, k, v, ok, mv, mok)
					}
					delete(model, k)
					if step%4 != 0 && e.Len() > 2*l {
						continue
					}
					if err := btreeCheck(c, e.root, e.Len()); err != nil {
						t.Fatalf("step %d, after Delete(%d): %v", step, k, err)
					}
					if step%32 == 0 {
						want := btreeSorted(model)
						if err := btreeSame(e.Freeze(), want, []int{k, -1}); err != nil {
							t.Fatalf("step %d: %v", step, err)
						}
					}
				}
				if e.root != nil {
					t.Fatalf("empty tree keeps a root")
				}
			})
		}
	}
}

// TestBTreeAppendFrozen appends past depth 3 with a freeze every few
// inserts, so every kind of split on the right edge meets shared nodes.
func TestBTreeAppendFrozen(t *testing.T) {
	const n, batch = 40_000, 37
	e := newBTree[int, int](comparerFor[int]()).Edit()
	type kept struct {
		t *btree[int, int]
		n int
	}
	var frozen []kept
	var last *btree[int, int]
	for i := range n {
		e.Set(i, -i)
		if (i+1)%batch != 0 {
			continue
		}
		if last != nil {
			if err := btreeDisowned(last, e); err != nil {
				t.Fatalf("after %d inserts: %v", i+1, err)
			}
		}
		last = e.Freeze()
		if len(frozen) == 0 || i+1-frozen[len(frozen)-1].n > 3000 {
			frozen = append(frozen, kept{last, i + 1})
		}
	}
	if d := btreeDepth(e.root); d < 4 {
		t.Fatalf("depth %d, want 4", d)
	}
	for _, f := range frozen {
		want := make([]btreeKV[int, int], f.n)
		for i := range want {
			want[i] = btreeKV[int, int]{i, -i}
		}
		if err := btreeCheck(f.t.cmp, f.t.root, f.t.Len()); err != nil {
			t.Fatalf("tree of %d: %v", f.n, err)
		}
		if err := btreeSame(f.t, want, []int{-1, f.n}); err != nil {
			t.Fatalf("tree of %d: %v", f.n, err)
		}
	}
}

// TestBTreePackedInserts inserts between the keys of a tree whose nodes
// are all full, as a restored replica's are: every insert splits, and the
// first splits the last leaf with the whole right edge full.
func TestBTreePackedInserts(t *testing.T) {
	const n = btreeLeafCap * btreeBranchCap * btreeBranchCap
	rng := btreeRand(t)
	c := comparerFor[int]()
	e := newBTree[int, int](c).Edit()
	model := map[int]int{}
	for i := range n {
		e.Set(2*i, i)
		model[2*i] = i
	}
	packed := e.Freeze()
	if err := btreePacked(packed.root, false); err != nil {
		t.Fatal(err)
	}
	wantPacked := btreeSorted(model)
	for j := range 2000 {
		k := 2*n - 3
		if j > 0 {
			k = 2*rng.IntN(n) + 1
		}
		e.Set(k, -k)
		model[k] = -k
		if j%10 == 0 {
			if err := btreeDisowned(packed, e); err != nil {
				t.Fatalf("insert %d: %v", j, err)
			}
			e.Freeze()
		}
	}
	if err := btreeCheck(c, e.root, e.Len()); err != nil {
		t.Fatal(err)
	}
	if err := btreeSame(e.Freeze(), btreeSorted(model), []int{-1, 2 * n}); err != nil {
		t.Fatal(err)
	}
	if err := btreeSame(packed, wantPacked, []int{2*n - 3}); err != nil {
		t.Fatalf("packed tree: %v", err)
	}
}

func TestBTreeDescending(t *testing.T) {
	const n = 100_000
	e := newBTree[string, int](comparerFor[string]()).Edit()
	for i := n - 1; i >= 0; i-- {
		e.Set(benchKey(i), i)
		if i%20000 == 0 {
			e.Freeze()
		}
	}
	want := make([]btreeKV[string, int], n)
	for i := range n {
		want[i] = btreeKV[string, int]{benchKey(i), i}
	}
	tr := e.Freeze()
	if err := btreeCheck(tr.cmp, tr.root, tr.Len()); err != nil {
		t.Fatal(err)
	}
	if err := btreeSame(tr, want, []string{"", benchKey(n), "x"}); err != nil {
		t.Fatal(err)
	}
}

// TestBTreeDeleteAll empties a large tree in random order, freezing along
// the way, then fills it again.
func TestBTreeDeleteAll(t *testing.T) {
	const n = 100_000
	rng := btreeRand(t)
	c := comparerFor[int]()
	e := newBTree[int, int](c).Edit()
	for i := range n {
		e.Set(i, i)
	}
	full := e.Freeze()
	order := rng.Perm(n)
	for j, i := range order {
		if v, ok := e.Delete(i); !ok || v != i {
			t.Fatalf("Delete(%d) = %d, %v", i, v, ok)
		}
		if _, ok := e.Delete(i); ok {
			t.Fatalf("second Delete(%d) found it", i)
		}
		if e.Len() != n-j-1 {
			t.Fatalf("Len %d after %d deletes", e.Len(), j+1)
		}
		if j%5000 == 0 || n-j < 3000 && j%4 == 0 {
			if err := btreeCheck(c, e.root, e.Len()); err != nil {
				t.Fatalf("after %d deletes: %v", j+1, err)
			}
		}
		if rng.IntN(64) == 0 {
			e.Freeze()
		}
	}
	if e.root != nil || e.Len() != 0 {
		t.Fatalf("emptied tree: root %p, Len %d", e.root, e.Len())
	}
	for _, i := range rng.Perm(n) {
		e.Set(i, i+1)
	}
	want := make([]btreeKV[int, int], n)
	for i := range n {
		want[i] = btreeKV[int, int]{i, i + 1}
	}
	if err := btreeCheck(c, e.root, e.Len()); err != nil {
		t.Fatal(err)
	}
	if err := btreeSame(e.Freeze(), want, []int{-1, n}); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		want[i].v = i
	}
	if err := btreeSame(full, want, []int{-1, n}); err != nil {
		t.Fatalf("tree frozen before the deletes: %v", err)
	}
}

func TestBTreeEdgeCases(t *testing.T) {
	c := comparerFor[string]()
	empty := newBTree[string, int](c)
	if err := btreeSame(empty, nil, []string{"", "a"}); err != nil {
		t.Fatal(err)
	}

	e := empty.Edit()
	if v, ok := e.Delete("a"); ok || v != 0 {
		t.Fatalf("Delete on empty = %d, %v", v, ok)
	}
	if f := e.Freeze(); f.Len() != 0 || f.root != nil {
		t.Fatalf("frozen empty editor: Len %d", f.Len())
	}

	e.Set("b", 1)
	e.Set("a", 2)
	e.Set("c", 3)
	e.Set("b", 4) // replaces
	if e.Len() != 3 {
		t.Fatalf("Len %d after replacing, want 3", e.Len())
	}
	f := e.Freeze()
	wantF := []btreeKV[string, int]{{"a", 2}, {"b", 4}, {"c", 3}}
	if err := btreeSame(f, wantF, []string{"", "bb", "d"}); err != nil {
		t.Fatal(err)
	}

	// Deleting an absent key copies nothing.
	if _, ok := e.Delete("bb"); ok || e.root != f.root {
		t.Fatalf("Delete of an absent key: found %v, root copied %v", ok, e.root != f.root)
	}

	// Edits after Freeze leave the frozen tree alone.
	e.Set("a", 20)
	e.Set("d", 5)
	if v, ok := e.Delete("c"); !ok || v != 3 {
		t.Fatalf("Delete(c) = %d, %v", v, ok)
	}
	if err := btreeSame(f, wantF, []string{"d"}); err != nil {
		t.Fatalf("frozen tree after edits: %v", err)
	}
	e.Clear()
	if e.Len() != 0 {
		t.Fatalf("Len %d after Clear", e.Len())
	}
	if err := btreeSame(f, wantF, []string{"d"}); err != nil {
		t.Fatalf("frozen tree after Clear: %v", err)
	}

	// Two editors from one tree do not see each other.
	e1, e2 := f.Edit(), f.Edit()
	e1.Set("x", 1)
	e2.Set("y", 2)
	e2.Delete("a")
	if _, ok := e1.Get("y"); ok {
		t.Fatal("editor sees another editor's Set")
	}
	if _, ok := e1.Get("a"); !ok {
		t.Fatal("editor sees another editor's Delete")
	}
	if err := btreeSame(f, wantF, []string{"x", "y"}); err != nil {
		t.Fatalf("tree after two editors: %v", err)
	}

	// All stops when asked to.
	n := 0
	for range f.All() {
		n++
		break
	}
	if n != 1 {
		t.Fatalf("All yielded %d entries after break", n)
	}
}

// TestBTreeConcurrentReaders has one goroutine edit and publish frozen
// trees while others read them. Every published tree holds the keys
// lo..hi-1, each with value f(key).
func TestBTreeConcurrentReaders(t *testing.T) {
	type published struct {
		t      *btree[int, int]
		lo, hi int
	}
	f := func(i int) int { return i*7 + 1 }
	check := func(p *published, rng *rand.Rand) error {
		if p.t.Len() != p.hi-p.lo {
			return fmt.Errorf("[%d,%d): Len %d", p.lo, p.hi, p.t.Len())
		}
		i := p.lo
		for k, v := range p.t.All() {
			if k != i || v != f(i) {
				return fmt.Errorf("[%d,%d): All yields %d=%d, want %d=%d", p.lo, p.hi, k, v, i, f(i))
			}
			i++
		}
		if i != p.hi {
			return fmt.Errorf("[%d,%d): All stops at %d", p.lo, p.hi, i)
		}
		for range 64 {
			k := p.lo - 4 + rng.IntN(p.hi-p.lo+8)
			v, ok := p.t.Get(k)
			if in := k >= p.lo && k < p.hi; ok != in || in && v != f(k) {
				return fmt.Errorf("[%d,%d): Get(%d) = %d, %v", p.lo, p.hi, k, v, ok)
			}
		}
		return nil
	}

	rng := btreeRand(t)
	var cur atomic.Pointer[published]
	e := newBTree[int, int](comparerFor[int]()).Edit()
	lo, hi := 0, 2000
	for i := lo; i < hi; i++ {
		e.Set(i, f(i))
	}
	cur.Store(&published{e.Freeze(), lo, hi})

	var done atomic.Bool
	var checks atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		rrng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		wg.Go(func() {
			var old *published
			for !done.Load() {
				p := cur.Load()
				if err := check(p, rrng); err != nil {
					errs <- err
					return
				}
				checks.Add(1)
				if old != nil {
					if err := check(old, rrng); err != nil {
						errs <- fmt.Errorf("older tree: %w", err)
						return
					}
				}
				if old == nil || rrng.IntN(8) == 0 {
					old = p
				}
			}
		})
	}

	// Go on until the readers have checked enough trees, so reads overlap
	// many edits.
	rounds := 400
	if testing.Short() {
		rounds = 100
	}
	deadline := time.Now().Add(20 * time.Second)
	for r := 0; r < rounds || checks.Load() < 200 && time.Now().Before(deadline); r++ {
		// Slide the window by a batch, and churn inside it: what a batch
		// deletes and puts back must not show in any published tree.
		for range rng.IntN(64) {
			e.Set(hi, f(hi))
			hi++
		}
		for range rng.IntN(64) {
			if hi-lo > 500 {
				e.Delete(lo)
				lo++
			}
		}
		for range rng.IntN(32) {
			k := lo + rng.IntN(hi-lo)
			e.Delete(k)
			e.Set(k, -1)
			e.Set(k, f(k))
		}
		cur.Store(&published{e.Freeze(), lo, hi})
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := check(cur.Load(), rng); err != nil {
		t.Error(err)
	}
	t.Logf("%d trees checked by readers", checks.Load())
}

// BenchmarkBTreeGet1M is a lookup in a tree of 1,000,000 string keys.
func BenchmarkBTreeGet1M(b *testing.B) {
	const n = 1_000_000
	e := newBTree[string, int](comparerFor[string]()).Edit()
	for i := range n {
		e.Set(benchKey(i), i)
	}
	t := e.Freeze()
	benchGets(b, lookupKeys(n), t.Get)
}

// BenchmarkBTreeGet1MSortedMap is BenchmarkBTreeGet1M on immutable.SortedMap.
func BenchmarkBTreeGet1MSortedMap(b *testing.B) {
	const n = 1_000_000
	bl := immutable.NewSortedMapBuilder[string, int](comparerFor[string]())
	for i := range n {
		bl.Set(benchKey(i), i)
	}
	m := bl.Map()
	benchGets(b, lookupKeys(n), m.Get)
}

// btreeSetBatchKeys returns the 1,000,000 keys a benchmark map starts
// with (the even keys below 2,000,000), in the order to insert them, and
// the keys to set. "restored" builds the map in ascending order, as a
// restore does (the tree packs its nodes full; SortedMapBuilder leaves them
// half full); "applied" in random order, as a replica that applied every
// write has it. Both then set random keys: half replace an entry, half
// insert one. "appending" sets new keys past the end, in order, as a log
// keyed by time would.
func btreeSetBatchKeys(state string) (initial, sets []string) {
	const n = 1_000_000
	rng := rand.New(rand.NewPCG(3, 4))
	initial = make([]string, n)
	for i := range initial {
		initial[i] = benchKey(2 * i)
	}
	if state == "applied" {
		rng.Shuffle(n, func(i, j int) { initial[i], initial[j] = initial[j], initial[i] })
	}
	sets = make([]string, 1<<20)
	for i := range sets {
		if state == "appending" {
			sets[i] = benchKey(2*n + i)
		} else {
			sets[i] = benchKey(rng.IntN(2 * n))
		}
	}
	return initial, sets
}

var btreeSetBatchStates = []string{"restored", "applied", "appending"}

// BenchmarkBTreeSetBatch is a machine applying batches of 64 Sets to a
// 1,000,000-entry map and publishing a frozen tree after each batch. An op
// is one Set.
func BenchmarkBTreeSetBatch(b *testing.B) {
	for _, state := range btreeSetBatchStates {
		b.Run(state, func(b *testing.B) {
			initial, sets := btreeSetBatchKeys(state)
			val := make([]byte, 100)
			e := newBTree[string, []byte](comparerFor[string]()).Edit()
			for _, k := range initial {
				e.Set(k, val)
			}
			pub := e.Freeze()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				e.Set(sets[i&(len(sets)-1)], val)
				if i++; i%64 == 0 {
					pub = e.Freeze()
				}
			}
			runtime.KeepAlive(pub)
		})
	}
}

// BenchmarkBTreeSetBatchSortedMap is BenchmarkBTreeSetBatch with
// immutable.SortedMap.Set, which copies a path on every Set.
func BenchmarkBTreeSetBatchSortedMap(b *testing.B) {
	for _, state := range btreeSetBatchStates {
		b.Run(state, func(b *testing.B) {
			initial, sets := btreeSetBatchKeys(state)
			val := make([]byte, 100)
			bl := immutable.NewSortedMapBuilder[string, []byte](comparerFor[string]())
			for _, k := range initial {
				bl.Set(k, val)
			}
			m := bl.Map()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m = m.Set(sets[i&(len(sets)-1)], val)
				i++
			}
			runtime.KeepAlive(m)
		})
	}
}

// BenchmarkBTreeHeap1M measures the heap a map of 1,000,000 ascending
// 16-byte keys with 100-byte values holds, beyond the keys and values
// themselves.
func BenchmarkBTreeHeap1M(b *testing.B) {
	const n = 1_000_000
	keys := make([]string, n)
	vals := make([][]byte, n)
	for i := range n {
		keys[i] = benchKey(i)
		vals[i] = make([]byte, 100)
	}
	b.Run("btree", func(b *testing.B) {
		for range b.N {
			before := heapAlloc()
			e := newBTree[string, []byte](comparerFor[string]()).Edit()
			for i := range n {
				e.Set(keys[i], vals[i])
			}
			t := e.Freeze()
			after := heapAlloc()
			runtime.KeepAlive(t)
			b.ReportMetric(float64(after-before)/n, "bytes/entry")
		}
	})
	b.Run("SortedMapBuilder", func(b *testing.B) {
		for range b.N {
			before := heapAlloc()
			bl := immutable.NewSortedMapBuilder[string, []byte](comparerFor[string]())
			for i := range n {
				bl.Set(keys[i], vals[i])
			}
			m := bl.Map()
			after := heapAlloc()
			runtime.KeepAlive(m)
			b.ReportMetric(float64(after-before)/n, "bytes/entry")
		}
	})
	runtime.KeepAlive(keys)
	runtime.KeepAlive(vals)
}
