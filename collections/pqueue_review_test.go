package collections

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"
)

// pqAgree fails unless m's order and key index hold the same entries:
// every key of the one in the other, at the same priority (bit for bit)
// and value.
func pqAgree[P any, K comparable, V comparable](t *testing.T, m *pqMachine[P, K, V], what string) {
	t.Helper()
	m.keys.mu.Lock()
	keys := m.keys.work.Freeze()
	m.keys.mu.Unlock()
	order := m.order.Freeze()
	if order.Len() != keys.Len() {
		t.Fatalf("%s: order holds %d entries, key index %d", what, order.Len(), keys.Len())
	}
	for o, v := range order.All() {
		s, ok := keys.Get(o.k)
		if !ok || fmt.Sprintf("%#v", s.p) != fmt.Sprintf("%#v", o.p) || s.v != v {
			t.Fatalf("%s: order has %v at %v = %v, key index %+v, %v", what, o.k, o.p, v, s, ok)
		}
	}
}

// Float priorities (NaN, signed zeros, infinities) order as cmp.Compare
// has them, and the order and the key index agree after every command.
func TestPQFloatPriorities(t *testing.T) {
	for _, capacity := range []int{0, 3} {
		t.Run(fmt.Sprint("capacity=", capacity), func(t *testing.T) {
			rng := seededRand(t, "pqueue float priorities")
			ps := []float64{math.NaN(), math.Copysign(0, -1), 0, math.Inf(-1), math.Inf(1), 1, 2}
			m := newPQMachine[float64, string, int](8, capacity)
			t.Cleanup(m.closeIndex)
			type ent struct {
				p float64
				v int
			}
			model := map[string]ent{}
			sorted := func() []PQEntry[float64, string, int] {
				var out []PQEntry[float64, string, int]
				for k, e := range model {
					out = append(out, PQEntry[float64, string, int]{e.p, k, e.v})
				}
				slices.SortFunc(out, func(a, b PQEntry[float64, string, int]) int {
					return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.Key, b.Key))
				})
				return out
			}
			bound := func() (Bound[float64], *float64) {
				p := ps[rng.IntN(len(ps))]
				switch rng.IntN(3) {
				case 0:
					return Unbounded[float64](), nil
				case 1:
					return Inclusive(p), &p
				}
				return Exclusive(p), &p
			}
			in := func(p float64, b Bound[float64], lo bool) bool {
				if b.kind == 0 {
					return true
				}
				c := cmp.Compare(p, b.v)
				if !lo {
					c = -c
				}
				return c > 0 || c == 0 && b.kind == boundIncl
			}
			for i := range 4000 {
				k := fmt.Sprint("k", rng.IntN(6))
				p, v := ps[rng.IntN(len(ps))], rng.IntN(3)
				var c pqCmd[float64, string, int]
				switch rng.IntN(6) {
				case 0, 1:
					c = pqCmd[float64, string, int]{Op: pqInsert, Key: k, Priority: &p, Value: &v}
					if _, ok := model[k]; !ok && capacity > 0 && len(model) >= capacity {
						low := sorted()[0]
						if cmp.Or(cmp.Compare(p, low.Priority), cmp.Compare(k, low.Key)) < 0 {
							break
						}
						delete(model, low.Key)
					}
					model[k] = ent{p, v}
				case 2:
					c = pqCmd[float64, string, int]{Op: pqUpdatePriority, Key: k, Priority: &p}
					if e, ok := model[k]; ok {
						model[k] = ent{p, e.v}
					}
				case 3:
					lo, _ := bound()
					hi, _ := bound()
					c = pqCmd[float64, string, int]{Op: pqRemoveRange, Lo: lo.ptr(), Hi: hi.ptr()}
					if lo.kind == boundExcl {
						c.Ends |= pqLoExcl
					}
					if hi.kind == boundExcl {
						c.Ends |= pqHiExcl
					}
					maps.DeleteFunc(model, func(_ string, e ent) bool { return in(e.p, lo, true) && in(e.p, hi, false) })
				case 4:
					c = pqCmd[float64, string, int]{Op: pqPopMin}
					if s := sorted(); len(s) > 0 {
						delete(model, s[0].Key)
					}
				default:
					c = pqCmd[float64, string, int]{Op: pqPopMax}
					if s := sorted(); len(s) > 0 {
						delete(model, s[len(s)-1].Key)
					}
				}
				applied(m, c, fakeCtx(i+1))
				what := fmt.Sprintf("command %d %+v", i, c)
				pqAgree(t, m, what)
				got := slices.Collect(pqReads[float64, string, int]{m: m}.All())
				if fmt.Sprint(got) != fmt.Sprint(sorted()) {
					t.Fatalf("%s: queue %v, model %v", what, got, sorted())
				}
			}
		})
	}
}
