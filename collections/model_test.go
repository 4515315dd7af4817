package collections

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// Model tests: seeded random operations go to a replicated collection,
// through two writers, and to a plain Go map or slice. Every few operations
// every replica (two writers, one reader) must hold what the model holds,
// in the same iteration order. Set MOSAIK_MODEL_SEED to replay a failure.

const (
	modelOps   = 300
	modelCheck = 25 // compare every replica after this many operations
)

func modelRand(t *testing.T) *rand.Rand { return seededRand(t, "model") }

// seededRand is seeded from the clock, or from MOSAIK_MODEL_SEED to replay
// a failure; the seed is logged when the test fails.
func seededRand(t *testing.T, what string) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MOSAIK_MODEL_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("MOSAIK_MODEL_SEED=%q: %v", s, err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s seed %d: rerun with MOSAIK_MODEL_SEED=%d go test -run '^%s$' ./collections", what, seed, seed, t.Name())
		}
	})
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

func modelKey(rng *rand.Rand) string {
	switch rng.IntN(20) {
	case 0:
		return ""
	case 1:
		return "é"
	case 2:
		return "Z"
	}
	return fmt.Sprintf("k%02d", rng.IntN(30))
}

func TestMapModel(t *testing.T) {
	rng := modelRand(t)
	tn := newTestNet(t)
	w1 := openMapW[string, int](t, tn.node(), "m")
	w2 := openMapW[string, int](t, tn.node(), "m")
	r := openMapR[string, int](t, tn.node(), "m")
	online(t, w1, w2, r)
	model := map[string]int{}
	// vers models per-key versions: the version of the write that last set
	// each key. old holds every version a key ever had, for stale
	// compare-exchanges.
	vers, old := map[string]Version{}, map[string][]Version{}
	setVer := func(k string, v Version) { vers[k] = v; old[k] = append(old[k], v) }
	// casApplied updates the models for a compare-exchange that applies,
	// and returns what sets the key's version.
	casApplied := func(k string, rep *int) func(Version) {
		if rep == nil {
			delete(model, k)
			delete(vers, k)
			return nil
		}
		model[k] = *rep
		return func(v Version) { setVer(k, v) }
	}
	var last Version
	for op := range modelOps {
		w := []*MapWriter[string, int]{w1, w2}[rng.IntN(2)]
		ctx := tctx(t)
		k := modelKey(rng)
		val := rng.IntN(5) // small values, so compare-exchanges often match
		var v Version
		var err error
		var what string
		var after func(Version) // updates vers once the write's version is known
		empty := false          // an empty Extend returns this writer's version, which may trail the other's
		switch p := rng.IntN(100); {
		case p < 25:
			what = fmt.Sprintf("Insert(%q, %d)", k, val)
			v, err = w.Insert(ctx, k, val)
			model[k] = val
			after = func(v Version) { setVer(k, v) }
		case p < 37:
			what = fmt.Sprintf("Remove(%q)", k)
			v, err = w.Remove(ctx, k)
			delete(model, k)
			delete(vers, k)
		case p < 57:
			var exp, rep *int
			cur, present := model[k]
			switch rng.IntN(3) {
			case 0:
			case 1:
				if present {
					exp = &cur
				} else {
					exp = new(rng.IntN(5))
				}
			default:
				exp = new(rng.IntN(5))
			}
			if rng.IntN(4) > 0 {
				rep = &val
			}
			want := (exp == nil && !present) || (exp != nil && present && *exp == cur)
			what = fmt.Sprintf("CompareExchange(%q, %v, %v) on %v", k, fmtPtr(exp), fmtPtr(rep), fmtPtr(ptrIf(cur, present)))
			var applied bool
			v, applied, err = w.CompareExchange(ctx, k, exp, rep)
			if err == nil && applied != want {
				t.Fatalf("op %d %s: applied %v, model says %v", op, what, applied, want)
			}
			if want {
				after = casApplied(k, rep)
			}
		case p < 77:
			// A compare-exchange on the key's version: the current one, one
			// it had before (perhaps with the same value), 0, or any.
			var exp Version
			cur, present := vers[k]
			switch rng.IntN(4) {
			case 0:
				exp = cur
			case 1:
				if hs := old[k]; len(hs) > 0 {
					exp = hs[rng.IntN(len(hs))]
				}
			case 2:
			default:
				exp = Version(rng.IntN(int(last) + 2))
			}
			var rep *int
			if rng.IntN(4) > 0 {
				rep = &val
			}
			want := (exp == 0 && !present) || (exp != 0 && present && exp == cur)
			what = fmt.Sprintf("CompareVersionExchange(%q, %d, %v) on version %d", k, exp, fmtPtr(rep), cur)
			var applied bool
			v, applied, err = w.CompareVersionExchange(ctx, k, exp, rep)
			if err == nil && applied != want {
				t.Fatalf("op %d %s: applied %v, model says %v", op, what, applied, want)
			}
			if want {
				after = casApplied(k, rep)
			}
		case p < 97:
			var es []kv[string, int]
			for range rng.IntN(6) {
				es = append(es, kv[string, int]{modelKey(rng), rng.IntN(100)})
			}
			what = fmt.Sprintf("Extend(%v)", es)
			v, err = w.Extend(ctx, func(yield func(string, int) bool) {
				for _, e := range es {
					if !yield(e.K, e.V) {
						return
					}
				}
			})
			for _, e := range es {
				model[e.K] = e.V
			}
			empty = len(es) == 0
			// The entries are one contiguous run of commands ending at v.
			after = func(v Version) {
				for i, e := range es {
					setVer(e.K, v-Version(len(es)-1-i))
				}
			}
		default:
			what = "Clear()"
			v, err = w.Clear(ctx)
			clear(model)
			clear(vers)
		}
		if err != nil {
			t.Fatalf("op %d %s: %v", op, what, err)
		}
		if empty {
			if v != w.Version() {
				t.Fatalf("op %d %s: version %d, the writer is at %d", op, what, v, w.Version())
			}
		} else if v <= last {
			t.Fatalf("op %d %s: version %d after %d", op, what, v, last)
		} else {
			last = v
		}
		// The writer reads its own write, and everything before it, at once.
		got, present := w.Get(k)
		if empty {
			got, present = model[k]
		}
		if want, wpresent := model[k]; present != wpresent || got != want {
			t.Fatalf("op %d %s: the writer reads %q = %d, %v; model %d, %v", op, what, k, got, present, want, wpresent)
		}
		if after != nil && !empty {
			after(v)
		}
		// As for the value: after an empty Extend the writer may trail.
		if _, ver, _ := w.GetWithVersion(k); !empty && ver != vers[k] {
			t.Fatalf("op %d %s: the writer reads %q at version %d; model %d", op, what, k, ver, vers[k])
		}
		if op%modelCheck == modelCheck-1 || op == modelOps-1 {
			reach(t, last, w1, w2, r)
			for i, h := range []mapReadsOf[string, int]{w1, w2, r} {
				wantMap(t, fmt.Sprintf("op %d: replica %d", op, i), h, model)
				wantVersions(t, fmt.Sprintf("op %d: replica %d", op, i), h.(mapVersionReads), vers)
			}
		}
	}
}

func fmtPtr(p *int) string {
	if p == nil {
		return "nil"
	}
	return strconv.Itoa(*p)
}

func ptrIf(x int, ok bool) *int {
	if !ok {
		return nil
	}
	return &x
}

func TestVecModel(t *testing.T) {
	rng := modelRand(t)
	tn := newTestNet(t)
	w1 := openVecW[string](t, tn.node(), "v")
	w2 := openVecW[string](t, tn.node(), "v")
	r := openVecR[string](t, tn.node(), "v")
	online(t, w1, w2, r)
	var model []string
	var last Version
	for op := range modelOps {
		w := []*VecWriter[string]{w1, w2}[rng.IntN(2)]
		ctx := tctx(t)
		n := len(model)
		x := fmt.Sprint(op)
		// An index a little outside the valid range now and then.
		idx := func(hi int) int { return rng.IntN(hi+3) - 1 }
		var v Version
		var err, want error
		var what string
		empty := false
		var popped, wantPopped string
		switch p := rng.IntN(100); {
		case p < 15:
			what = "PushBack"
			v, err = w.PushBack(ctx, x)
			model = append(model, x)
		case p < 25:
			what = "PushFront"
			v, err = w.PushFront(ctx, x)
			model = slices.Insert(model, 0, x)
		case p < 40:
			i := idx(n)
			what = fmt.Sprintf("Insert(%d) of %d", i, n)
			v, err = w.Insert(ctx, i, x)
			if i < 0 || i > n {
				want = ErrOutOfRange
			} else {
				model = slices.Insert(model, i, x)
			}
		case p < 50:
			i := idx(n)
			what = fmt.Sprintf("Remove(%d) of %d", i, n)
			v, err = w.Remove(ctx, i)
			if i < 0 || i >= n {
				want = ErrOutOfRange
			} else {
				model = slices.Delete(model, i, i+1)
			}
		case p < 62:
			i, j := idx(n), idx(n)
			what = fmt.Sprintf("Swap(%d, %d) of %d", i, j, n)
			v, err = w.Swap(ctx, i, j)
			if i < 0 || i >= n || j < 0 || j >= n {
				want = ErrOutOfRange
			} else {
				model[i], model[j] = model[j], model[i]
			}
		case p < 70:
			what = "PopBack"
			popped, v, err = w.PopBack(ctx)
			if n == 0 {
				want = ErrEmpty
			} else {
				wantPopped, model = model[n-1], model[:n-1]
			}
		case p < 78:
			what = "PopFront"
			popped, v, err = w.PopFront(ctx)
			if n == 0 {
				want = ErrEmpty
			} else {
				wantPopped, model = model[0], model[1:]
			}
		case p < 84:
			k := idx(n + 2)
			what = fmt.Sprintf("Truncate(%d) of %d", k, n)
			v, err = w.Truncate(ctx, k)
			switch {
			case k < 0:
				want = ErrOutOfRange
			case k < n:
				model = model[:k]
			}
		case p < 98:
			xs := make([]string, rng.IntN(5))
			for i := range xs {
				xs[i] = fmt.Sprintf("%d.%d", op, i)
			}
			what = fmt.Sprintf("Extend(%q)", xs)
			v, err = w.Extend(ctx, slices.Values(xs))
			model = append(model, xs...)
			empty = len(xs) == 0
		default:
			what = "Clear"
			v, err = w.Clear(ctx)
			model = nil
		}
		if !errors.Is(err, want) {
			t.Fatalf("op %d %s: error %v, model says %v", op, what, err, want)
		}
		if popped != wantPopped {
			t.Fatalf("op %d %s: popped %q, model says %q", op, what, popped, wantPopped)
		}
		switch {
		case err != nil:
		case empty:
			if v != w.Version() {
				t.Fatalf("op %d %s: version %d, the writer is at %d", op, what, v, w.Version())
			}
		case v <= last:
			t.Fatalf("op %d %s: version %d after %d", op, what, v, last)
		default:
			last = v
		}
		if got := vecStrings(w); !empty && !slices.Equal(got, model) {
			t.Fatalf("op %d %s: the writer holds %q, model %q", op, what, got, model)
		}
		if op%modelCheck == modelCheck-1 || op == modelOps-1 {
			last = max(last, w1.Version(), w2.Version())
			reach(t, last, w1, w2, r)
			for i, h := range []vecReadsOf[string]{w1, w2, r} {
				wantVec(t, fmt.Sprintf("op %d: replica %d", op, i), h, model)
			}
		}
	}
}

func vecStrings(v vecReadsOf[string]) []string {
	var out []string
	for _, x := range v.All() {
		out = append(out, x)
	}
	return out
}

func TestSetModel(t *testing.T) {
	rng := modelRand(t)
	tn := newTestNet(t)
	w1 := openSetW[string](t, tn.node(), "s")
	w2 := openSetW[string](t, tn.node(), "s")
	r := openSetR[string](t, tn.node(), "s")
	online(t, w1, w2, r)
	model := map[string]bool{}
	var last Version
	for op := range modelOps {
		w := []*SetWriter[string]{w1, w2}[rng.IntN(2)]
		ctx := tctx(t)
		x := modelKey(rng)
		var v Version
		var err error
		var what string
		empty := false // an empty Extend returns this writer's version, which may trail the other's
		switch p := rng.IntN(100); {
		case p < 50:
			what = fmt.Sprintf("Insert(%q)", x)
			v, err = w.Insert(ctx, x)
			model[x] = true
		case p < 80:
			what = fmt.Sprintf("Remove(%q)", x)
			v, err = w.Remove(ctx, x)
			delete(model, x)
		case p < 97:
			xs := make([]string, rng.IntN(6))
			for i := range xs {
				xs[i] = modelKey(rng)
				model[xs[i]] = true
			}
			what = fmt.Sprintf("Extend(%q)", xs)
			v, err = w.Extend(ctx, slices.Values(xs))
			empty = len(xs) == 0
		default:
			what = "Clear"
			v, err = w.Clear(ctx)
			clear(model)
		}
		if err != nil {
			t.Fatalf("op %d %s: %v", op, what, err)
		}
		if empty {
			if v != w.Version() {
				t.Fatalf("op %d %s: version %d, the writer is at %d", op, what, v, w.Version())
			}
		} else if v <= last {
			t.Fatalf("op %d %s: version %d after %d", op, what, v, last)
		} else {
			last = v
		}
		if !empty && w.Contains(x) != model[x] {
			t.Fatalf("op %d %s: the writer's Contains(%q) is %v, model %v", op, what, x, w.Contains(x), model[x])
		}
		if op%modelCheck == modelCheck-1 || op == modelOps-1 {
			reach(t, last, w1, w2, r)
			want := slices.Sorted(maps.Keys(model))
			for i, h := range []setReadsOf[string]{w1, w2, r} {
				wantSet(t, fmt.Sprintf("op %d: replica %d", op, i), h, want)
			}
		}
	}
}
