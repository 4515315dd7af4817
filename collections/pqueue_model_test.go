package collections

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mosaik-go/mosaik/transport"
)

// PriorityQueue model tests: seeded random operations go to a queue, on a
// bare machine or replicated, and to a plain Go map; after each, the
// writer's reads and the replies (pops, evictions, compare-exchanges) must
// be the model's, and every few operations every replica's contents.

type pqE = PQEntry[int, string, int]

// pqModel is the plain model: a map from key to priority and value.
type pqModel struct {
	capacity int
	m        map[string]pqSlot[int, int]
}

func pqLess(a, b pqE) int {
	return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.Key, b.Key))
}

func (md *pqModel) sorted() []pqE {
	out := make([]pqE, 0, len(md.m))
	for k, s := range md.m {
		out = append(out, pqE{Priority: s.p, Key: k, Value: s.v})
	}
	slices.SortFunc(out, pqLess)
	return out
}

func (md *pqModel) insert(p int, k string, v int) []pqE {
	var gone []pqE
	if _, ok := md.m[k]; !ok && md.capacity > 0 && len(md.m) >= md.capacity {
		low := md.sorted()[0]
		e := pqE{Priority: p, Key: k, Value: v}
		if pqLess(e, low) < 0 {
			return []pqE{e}
		}
		delete(md.m, low.Key)
		gone = append(gone, low)
	}
	md.m[k] = pqSlot[int, int]{p, v}
	return gone
}

func (md *pqModel) inRange(p int, lo, hi Bound[int]) bool {
	switch {
	case lo.kind == boundIncl && p < lo.v, lo.kind == boundExcl && p <= lo.v:
		return false
	case hi.kind == boundIncl && p > hi.v, hi.kind == boundExcl && p >= hi.v:
		return false
	}
	return true
}

// pqDoer runs the operations on a queue, one way or another.
type pqDoer interface {
	insert(p int, k string, v int) ([]pqE, error)
	extend(es []pqE) ([]pqE, error)
	updatePriority(k string, p int) (bool, error)
	updateValue(k string, v int) (bool, error)
	cas(k string, exp int, rep *int) (bool, error)
	remove(k string) error
	removeKeys(ks []string) error
	removeRange(lo, hi Bound[int]) error
	clear() error
	pop(max bool) (pqE, bool, error)
	writer() pqReads[int, string, int]
	// replicas returns every replica's reads once they hold every write
	// made so far.
	replicas() []pqReads[int, string, int]
}

func pqRandBound(rng *rand.Rand) Bound[int] {
	switch rng.IntN(3) {
	case 0:
		return Unbounded[int]()
	case 1:
		return Inclusive(rng.IntN(12))
	}
	return Exclusive(rng.IntN(12))
}

// pqContents lists a queue's entries ascending.
func pqContents(r pqReads[int, string, int]) []pqE { return slices.Collect(r.All()) }

// runPQModel runs ops random operations on d and the model.
func runPQModel(t *testing.T, rng *rand.Rand, d pqDoer, capacity, ops, check int) {
	md := &pqModel{capacity: capacity, m: map[string]pqSlot[int, int]{}}
	key := func() string { return fmt.Sprintf("k%02d", rng.IntN(16)) }
	for op := range ops {
		k, p, v := key(), rng.IntN(12), rng.IntN(4)
		var what string
		var err error
		var gone, wantGone []pqE
		var applied, want bool
		switch x := rng.IntN(100); {
		case x < 25:
			what = fmt.Sprintf("Insert(%d, %q, %d)", p, k, v)
			gone, err = d.insert(p, k, v)
			wantGone = md.insert(p, k, v)
		case x < 35:
			es := make([]pqE, rng.IntN(5))
			for i := range es {
				es[i] = pqE{Priority: rng.IntN(12), Key: key(), Value: rng.IntN(4)}
				wantGone = append(wantGone, md.insert(es[i].Priority, es[i].Key, es[i].Value)...)
			}
			what = fmt.Sprintf("Extend(%v)", es)
			gone, err = d.extend(es)
		case x < 43:
			what = fmt.Sprintf("UpdatePriority(%q, %d)", k, p)
			applied, err = d.updatePriority(k, p)
			if s, ok := md.m[k]; ok {
				md.m[k], want = pqSlot[int, int]{p, s.v}, true
			}
		case x < 50:
			what = fmt.Sprintf("UpdateValue(%q, %d)", k, v)
			applied, err = d.updateValue(k, v)
			if s, ok := md.m[k]; ok {
				md.m[k], want = pqSlot[int, int]{s.p, v}, true
			}
		case x < 60:
			exp := rng.IntN(4)
			var rep *int
			if rng.IntN(3) > 0 {
				rep = &v
			}
			what = fmt.Sprintf("CompareExchangeValue(%q, %d, %v)", k, exp, fmtPtr(rep))
			applied, err = d.cas(k, exp, rep)
			if s, ok := md.m[k]; ok && s.v == exp {
				want = true
				if rep == nil {
					delete(md.m, k)
				} else {
					md.m[k] = pqSlot[int, int]{s.p, *rep}
				}
			}
		case x < 68:
			what = fmt.Sprintf("Remove(%q)", k)
			err = d.remove(k)
			delete(md.m, k)
		case x < 72:
			ks := []string{key(), key(), key()}[:rng.IntN(4)]
			what = fmt.Sprintf("RemoveKeys(%q)", ks)
			err = d.removeKeys(ks)
			for _, k := range ks {
				delete(md.m, k)
			}
		case x < 78:
			lo, hi := pqRandBound(rng), pqRandBound(rng)
			what = fmt.Sprintf("RemoveRange(%+v, %+v)", lo, hi)
			err = d.removeRange(lo, hi)
			maps.DeleteFunc(md.m, func(_ string, s pqSlot[int, int]) bool { return md.inRange(s.p, lo, hi) })
		case x < 80:
			what = "Clear()"
			err = d.clear()
			clear(md.m)
		default:
			max := rng.IntN(2) == 0
			what = fmt.Sprintf("Pop(max=%v)", max)
			var e pqE
			e, applied, err = d.pop(max)
			var wantE pqE
			if s := md.sorted(); len(s) > 0 {
				wantE, want = s[0], true
				if max {
					wantE = s[len(s)-1]
				}
				delete(md.m, wantE.Key)
			}
			if err == nil && e != wantE {
				t.Fatalf("op %d %s: popped %+v, model %+v", op, what, e, wantE)
			}
		}
		if err != nil {
			t.Fatalf("op %d %s: %v", op, what, err)
		}
		if applied != want {
			t.Fatalf("op %d %s: applied/ok %v, model %v", op, what, applied, want)
		}
		if !slices.Equal(gone, wantGone) {
			t.Fatalf("op %d %s: evicted %+v, model %+v", op, what, gone, wantGone)
		}
		if dm, ok := d.(*pqMachineDoer); ok {
			pqAgree(t, dm.m, fmt.Sprintf("op %d %s", op, what))
		}
		w, wantAll := d.writer(), md.sorted()
		if got := pqContents(w); !slices.Equal(got, wantAll) {
			t.Fatalf("op %d %s: the writer holds\n%+v\nmodel\n%+v", op, what, got, wantAll)
		}
		gv, gp, gok := w.Get(k)
		if s, ok := md.m[k]; gok != ok || gv != s.v || gp != s.p || w.ContainsKey(k) != ok {
			t.Fatalf("op %d %s: Get(%q) = %d, %d, %v; model %+v, %v", op, what, k, gv, gp, gok, s, ok)
		}
		mn, okMin := w.Min()
		mx, okMax := w.Max()
		if len(wantAll) == 0 {
			if okMin || okMax || w.Len() != 0 || !w.IsEmpty() {
				t.Fatalf("op %d %s: an empty queue has a min or max", op, what)
			}
		} else if !okMin || !okMax || mn != wantAll[0] || mx != wantAll[len(wantAll)-1] || w.Len() != len(wantAll) {
			t.Fatalf("op %d %s: min %+v max %+v len %d; model %+v", op, what, mn, mx, w.Len(), wantAll)
		}
		rev := slices.Clone(wantAll)
		slices.Reverse(rev)
		if back := slices.Collect(w.Backward()); !slices.Equal(back, rev) {
			t.Fatalf("op %d %s: Backward gives %+v", op, what, back)
		}
		if op%check == check-1 || op == ops-1 {
			for i, r := range d.replicas() {
				if got := pqContents(r); !slices.Equal(got, wantAll) {
					t.Fatalf("op %d: replica %d holds\n%+v\nmodel\n%+v", op, i, got, wantAll)
				}
			}
		}
	}
}

// pqMachineDoer runs the operations on a bare machine, one command per
// batch, as the writer's API would send them; its replicas are the
// machine and a machine restored from its snapshot.
type pqMachineDoer struct {
	t   *testing.T
	m   *pqMachine[int, string, int]
	idx int
}

type pqCmdT = pqCmd[int, string, int]

func (d *pqMachineDoer) do(c pqCmdT) reply {
	d.idx++
	return applied(d.m, c, fakeCtx(d.idx))
}

func (d *pqMachineDoer) goneOf(r reply) []pqE {
	es, err := replyEntry[int, string, int](r)
	if err != nil {
		d.t.Fatal(err)
	}
	return es
}

func (d *pqMachineDoer) insert(p int, k string, v int) ([]pqE, error) {
	return d.goneOf(d.do(pqCmdT{Op: pqInsert, Priority: &p, Key: k, Value: &v})), nil
}

func (d *pqMachineDoer) extend(es []pqE) ([]pqE, error) {
	// One batch, as a run of Extend applies.
	var gone []pqE
	for _, e := range es {
		d.idx++
		gone = append(gone, d.goneOf(d.m.ApplyReply(pqCmdT{Op: pqInsert, Priority: &e.Priority, Key: e.Key, Value: &e.Value}, fakeCtx(d.idx)).(reply))...)
	}
	d.m.Publish()
	return gone, nil
}

func (d *pqMachineDoer) updatePriority(k string, p int) (bool, error) {
	return d.do(pqCmdT{Op: pqUpdatePriority, Key: k, Priority: &p}).Applied, nil
}

func (d *pqMachineDoer) updateValue(k string, v int) (bool, error) {
	return d.do(pqCmdT{Op: pqUpdateValue, Key: k, Value: &v}).Applied, nil
}

func (d *pqMachineDoer) cas(k string, exp int, rep *int) (bool, error) {
	return d.do(pqCmdT{Op: pqCAS, Key: k, Expected: &exp, Value: rep}).Applied, nil
}

func (d *pqMachineDoer) remove(k string) error {
	d.do(pqCmdT{Op: pqRemove, Key: k})
	return nil
}

func (d *pqMachineDoer) removeKeys(ks []string) error {
	for _, k := range ks {
		d.do(pqCmdT{Op: pqRemove, Key: k})
	}
	return nil
}

func (d *pqMachineDoer) removeRange(lo, hi Bound[int]) error {
	c := pqCmdT{Op: pqRemoveRange, Lo: lo.ptr(), Hi: hi.ptr()}
	if lo.kind == boundExcl {
		c.Ends |= pqLoExcl
	}
	if hi.kind == boundExcl {
		c.Ends |= pqHiExcl
	}
	d.do(c)
	return nil
}

func (d *pqMachineDoer) clear() error {
	d.do(pqCmdT{Op: pqClear})
	return nil
}

func (d *pqMachineDoer) pop(max bool) (pqE, bool, error) {
	op := pqPopMin
	if max {
		op = pqPopMax
	}
	r := d.do(pqCmdT{Op: op})
	if r.Code == codeEmpty {
		return pqE{}, false, nil
	}
	es := d.goneOf(r)
	if len(es) != 1 {
		d.t.Fatalf("a pop replied %+v", r)
	}
	return es[0], true, nil
}

func (d *pqMachineDoer) writer() pqReads[int, string, int] { return pqReads[int, string, int]{m: d.m} }

func (d *pqMachineDoer) replicas() []pqReads[int, string, int] {
	c := newPQMachine[int, string, int](8, d.m.capacity)
	if err := c.Restore(bytes.NewReader(snapshotBytes(d.t, d.m))); err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(c.closeIndex)
	return []pqReads[int, string, int]{d.writer(), {m: c}}
}

func TestPQMachineModel(t *testing.T) {
	for _, capacity := range []int{0, 1, 6} {
		t.Run(fmt.Sprint("capacity=", capacity), func(t *testing.T) {
			rng := seededRand(t, "pqueue machine model")
			m := newPQMachine[int, string, int](64, capacity)
			t.Cleanup(m.closeIndex)
			runPQModel(t, rng, &pqMachineDoer{t: t, m: m}, capacity, 3000, 50)
		})
	}
}

// pqClusterDoer runs the operations through two writers, at random, with a
// reader following.
type pqClusterDoer struct {
	t    *testing.T
	rng  *rand.Rand
	ws   []*PriorityQueueWriter[int, string, int]
	r    *PriorityQueueReader[int, string, int]
	cur  *PriorityQueueWriter[int, string, int]
	last Version
}

func (d *pqClusterDoer) w() *PriorityQueueWriter[int, string, int] {
	d.cur = d.ws[d.rng.IntN(len(d.ws))]
	return d.cur
}

// note checks that versions grow, and keeps the last.
func (d *pqClusterDoer) note(v Version, err error) error {
	if err == nil {
		if v <= d.last {
			d.t.Fatalf("version %d after %d", v, d.last)
		}
		d.last = v
	}
	return err
}

func (d *pqClusterDoer) insert(p int, k string, v int) ([]pqE, error) {
	ver, gone, err := d.w().Insert(tctx(d.t), p, k, v)
	return gone, d.note(ver, err)
}

func (d *pqClusterDoer) extend(es []pqE) ([]pqE, error) {
	w := d.w()
	ver, gone, err := w.Extend(tctx(d.t), slices.Values(es))
	if len(es) == 0 {
		// Nothing sent: the other writer's writes may not be here yet.
		reach(d.t, d.last, w)
		return gone, err
	}
	return gone, d.note(ver, err)
}

func (d *pqClusterDoer) updatePriority(k string, p int) (bool, error) {
	v, ok, err := d.w().UpdatePriority(tctx(d.t), k, p)
	return ok, d.note(v, err)
}

func (d *pqClusterDoer) updateValue(k string, x int) (bool, error) {
	v, ok, err := d.w().UpdateValue(tctx(d.t), k, x)
	return ok, d.note(v, err)
}

func (d *pqClusterDoer) cas(k string, exp int, rep *int) (bool, error) {
	v, ok, err := d.w().CompareExchangeValue(tctx(d.t), k, exp, rep)
	return ok, d.note(v, err)
}

func (d *pqClusterDoer) remove(k string) error { return d.note(d.w().Remove(tctx(d.t), k)) }

func (d *pqClusterDoer) removeKeys(ks []string) error {
	w := d.w()
	v, err := w.RemoveKeys(tctx(d.t), slices.Values(ks))
	if len(ks) == 0 {
		reach(d.t, d.last, w)
		return err
	}
	return d.note(v, err)
}

func (d *pqClusterDoer) removeRange(lo, hi Bound[int]) error {
	return d.note(d.w().RemoveRange(tctx(d.t), lo, hi))
}

func (d *pqClusterDoer) clear() error { return d.note(d.w().Clear(tctx(d.t))) }

func (d *pqClusterDoer) pop(max bool) (pqE, bool, error) {
	w := d.w()
	pop := w.PopMin
	if max {
		pop = w.PopMax
	}
	e, v, err := pop(tctx(d.t))
	if errors.Is(err, ErrEmpty) {
		return e, false, d.note(v, nil) // a write that changed nothing
	}
	return e, err == nil, d.note(v, err)
}

func (d *pqClusterDoer) writer() pqReads[int, string, int] { return d.cur.pqReads }

func (d *pqClusterDoer) replicas() []pqReads[int, string, int] {
	reach(d.t, d.last, d.ws[0], d.ws[1], d.r)
	return []pqReads[int, string, int]{d.ws[0].pqReads, d.ws[1].pqReads, d.r.pqReads}
}

func openPQW[P any, K comparable, V any](t testing.TB, n *transport.Network, name string, opts ...Option) *PriorityQueueWriter[P, K, V] {
	t.Helper()
	return cleanup(t, must[*PriorityQueueWriter[P, K, V]](t)(NewPriorityQueueWriter[P, K, V](n, name, append(testOpts(), opts...)...)))
}

func openPQR[P any, K comparable, V any](t testing.TB, n *transport.Network, name string, opts ...Option) *PriorityQueueReader[P, K, V] {
	t.Helper()
	return cleanup(t, must[*PriorityQueueReader[P, K, V]](t)(NewPriorityQueueReader[P, K, V](n, name, append(testOpts(), opts...)...)))
}

func TestPQModel(t *testing.T) {
	for _, capacity := range []int{0, 5} {
		t.Run(fmt.Sprint("capacity=", capacity), func(t *testing.T) {
			rng := modelRand(t)
			var opts []Option
			if capacity > 0 {
				opts = append(opts, WithCapacity(capacity))
			}
			tn := newTestNet(t)
			d := &pqClusterDoer{t: t, rng: rng}
			d.ws = []*PriorityQueueWriter[int, string, int]{openPQW[int, string, int](t, tn.node(), "q", opts...), openPQW[int, string, int](t, tn.node(), "q", opts...)}
			d.r = openPQR[int, string, int](t, tn.node(), "q", opts...)
			online(t, d.ws[0], d.ws[1], d.r)
			runPQModel(t, rng, d, capacity, modelOps, modelCheck)
		})
	}
}
