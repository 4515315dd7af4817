package collections

import (
	"fmt"
	"maps"
	"slices"
	"testing"
)

// filterEvents is what a watch limited to kr must yield, made from the
// unfiltered stream by hand.
func filterEvents(events []Event[MapChange[string, int]], in func(string) bool) []Event[MapChange[string, int]] {
	var out []Event[MapChange[string, int]]
	for _, e := range events {
		var keep []MapChange[string, int]
		for _, c := range e.Changes {
			if c.Op == OpClear || in(c.Key) {
				keep = append(keep, c)
			}
		}
		if len(keep) > 0 {
			out = append(out, Event[MapChange[string, int]]{Kind: e.Kind, Version: e.Version, Changes: keep})
		}
	}
	return out
}

// A watch limited to a key range yields exactly the unfiltered stream's
// changes to keys in the range, at the same versions, and no event for a
// command that changed none of them; with WithInitial its Initial events
// hold only the range's entries, and replaying it gives the range's state.
func TestMapWatchRange(t *testing.T) {
	w, r := mapPair(t)
	rng := seededRand(t, "watch range")
	key := func() string {
		return fmt.Sprintf("%c/%d", "abc"[rng.IntN(3)], rng.IntN(10))
	}
	for range 30 {
		ok[Version](t)(w.Insert(tctx(t), key(), -1))
	}
	reach(t, w.Version(), r)

	ranges := map[string]struct {
		kr KeyRange[string]
		in func(string) bool
	}{
		"prefix a/":   {Prefix("a/"), func(k string) bool { return k >= "a/" && k < "a0" }},
		"[b/3, b/7)":  {Between("b/3", "b/7"), func(k string) bool { return k >= "b/3" && k < "b/7" }},
		"at least c/": {AtLeast("c/5"), func(k string) bool { return k >= "c/5" }},
		"below a/5":   {Below("a/5"), func(k string) bool { return k < "a/5" }},
		"empty":       {Between("b", "a"), func(string) bool { return false }},
	}
	from := r.Version()
	all := pull(t, r.Watch(tctx(t), FromVersion(from)))
	type watched struct {
		changed, initial *puller[MapChange[string, int]]
		state            map[string]int // the range's state from the Initial events
	}
	ws := map[string]*watched{}
	for name, x := range ranges {
		wd := &watched{
			changed: pull(t, r.Watch(tctx(t), FromVersion(from), WatchRange(x.kr))),
			// FromVersion does not matter beside WithInitial: the watch
			// starts at the state's version, as an unfiltered one does.
			initial: pull(t, r.Watch(tctx(t), WithInitial(), FromVersion(0), WatchRange(x.kr))),
			state:   map[string]int{},
		}
		ws[name] = wd
		var e Event[MapChange[string, int]]
		for e = wd.initial.event(); e.Kind == Initial; e = wd.initial.event() {
			if e.Version != from {
				t.Fatalf("%s: Initial event at %d, state at %d", name, e.Version, from)
			}
			for _, c := range e.Changes {
				if _, ver, _ := r.GetWithVersion(c.Key); c.Version != ver || ver == 0 {
					t.Fatalf("%s: Initial change to %q at version %d, the key's is %d", name, c.Key, c.Version, ver)
				}
			}
			replayMap(wd.state, []Event[MapChange[string, int]]{e})
		}
		if e.Kind != CaughtUp || e.Version != from {
			t.Fatalf("%s: %v at %d after the Initial events, want CaughtUp at %d", name, e.Kind, e.Version, from)
		}
		want := maps.Collect(r.Range(x.kr))
		if !maps.Equal(wd.state, want) {
			t.Fatalf("%s: Initial events hold %v, want %v", name, wd.state, want)
		}
	}

	// Random writes, some changing nothing, one Clear, and a last Extend
	// that touches every range but the empty one.
	for i := range 120 {
		ctx := tctx(t)
		switch p := rng.IntN(100); {
		case p < 45:
			ok[Version](t)(w.Insert(ctx, key(), i))
		case p < 70:
			ok[Version](t)(w.Remove(ctx, key())) // may change nothing
		case p < 85:
			ok[Version](t)(w.Extend(ctx, func(yield func(string, int) bool) {
				for range 1 + rng.IntN(4) {
					if !yield(key(), i) {
						return
					}
				}
			}))
		case p < 99:
			k := key()
			var exp *int
			if cur, present := w.Get(k); present {
				exp = &cur
			}
			if _, _, err := w.CompareExchange(ctx, k, exp, new(i)); err != nil {
				t.Fatal(err)
			}
		default:
			ok[Version](t)(w.Clear(ctx))
		}
		if i == 60 { // a Clear that changes something: every range sees it
			ok[Version](t)(w.Insert(ctx, key(), i))
			ok[Version](t)(w.Clear(ctx))
		}
	}
	end := ok[Version](t)(w.Extend(tctx(t), maps.All(map[string]int{"a/0": 1, "b/5": 1, "c/9": 1})))
	reach(t, end, r)
	unfiltered := all.until(end)

	for name, x := range ranges {
		wd := ws[name]
		want := filterEvents(unfiltered, x.in)
		if len(want) == 0 {
			t.Fatalf("%s: no change in range, not even the Clear", name)
		}
		last := want[len(want)-1].Version // the last Clear, for the empty range
		got := wd.changed.until(last)
		sameEvents(t, name, got, want)
		gotI := wd.initial.until(last)
		sameEvents(t, name+" after Initial", gotI, want)
		replayMap(wd.state, gotI)
		if rangeState := maps.Collect(r.Range(x.kr)); !maps.Equal(wd.state, rangeState) {
			t.Fatalf("%s: replayed %v, Range holds %v", name, wd.state, rangeState)
		}
	}
}

// A key range's bounds convert to the Map's key type when nothing is lost;
// other bounds, and a key range on a Set or Vec, fail the watch.
func TestWatchRangeKeyTypes(t *testing.T) {
	type path string
	if kr, err := keyRangeOf[int64](Between(1, 10)); err != nil || kr != Between[int64](1, 10) {
		t.Fatalf("Between(1, 10) on int64 keys: %v, %v", kr, err)
	}
	if kr, err := keyRangeOf[path](Prefix("a")); err != nil || kr != Prefix[path]("a") {
		t.Fatalf("Prefix(\"a\") on path keys: %v, %v", kr, err)
	}
	if kr, err := keyRangeOf[float64](Below(3)); err != nil || kr != Below(3.0) {
		t.Fatalf("Below(3) on float64 keys: %v, %v", kr, err)
	}
	for what, err := range map[string]error{
		"-1 on uint8":           second(keyRangeOf[uint8](Between(-1, 10))),
		"300 on uint8":          second(keyRangeOf[uint8](AtLeast(300))),
		"1.5 on int":            second(keyRangeOf[int](Below(1.5))),
		"int on string":         second(keyRangeOf[string](Between(1, 2))),
		"string on int":         second(keyRangeOf[int](Prefix("1"))),
		"bool on int":           second(keyRangeOf[int](Below(true))),
		"struct on struct":      second(keyRangeOf[struct{ A int }](Below(struct{ B int }{1}))),
		"not a KeyRange at all": second(keyRangeOf[int](42)),
	} {
		isErr(t, err, ErrKeyRange, what)
	}

	tn := newTestNet(t)
	n := tn.node()
	mw := openMapW[int64, int](t, n, "ints")
	sw := openSetW[string](t, n, "set")
	vw := openVecW[string](t, n, "vec")
	online(t, mw)
	isErr(t, pull(t, sw.Watch(tctx(t), WatchRange(Prefix("a")))).err(), ErrKeyRange, "a key range on a Set")
	isErr(t, pull(t, vw.Watch(tctx(t), WatchRange(Between(1, 2)))).err(), ErrKeyRange, "a key range on a Vec")
	isErr(t, pull(t, mw.Watch(tctx(t), WatchRange(Prefix("1")))).err(), ErrKeyRange, "a prefix on int64 keys")

	p := pull(t, mw.Watch(tctx(t), FromVersion(mw.Version()), WatchRange(Between(-2, 3))))
	var last Version
	for i := range int64(8) {
		last = ok[Version](t)(mw.Insert(tctx(t), i-4, int(i)))
	}
	// Each entry of an Extend is a command of its own, at its own version.
	ok[Version](t)(mw.Extend(tctx(t), func(yield func(int64, int) bool) {
		_ = yield(-3, 9) && yield(2, 9) && yield(7, 9)
	}))
	last = ok[Version](t)(mw.Insert(tctx(t), 0, 9))
	var keys []int64
	for _, e := range p.until(last) {
		for _, c := range e.Changes {
			keys = append(keys, c.Key)
		}
	}
	if want := []int64{-2, -1, 0, 1, 2, 2, 0}; !slices.Equal(keys, want) {
		t.Fatalf("a watch of [-2, 3) on int64 keys saw %v, want %v", keys, want)
	}
}

func second[A, B any](_ A, b B) B { return b }

// Every replica yields the same ranges at the same version: a follower's,
// an observer's and the leader's reads agree.
func TestMapRangeCluster(t *testing.T) {
	tn := newTestNet(t)
	var ws []*MapWriter[string, int]
	for range 3 {
		ws = append(ws, openMapW[string, int](t, tn.node(), "m"))
	}
	r := openMapR[string, int](t, tn.node(), "m")
	online(t, ws[0], ws[1], ws[2], r)
	rng := seededRand(t, "range cluster")
	ranges := []KeyRange[string]{{}, Prefix("k1"), Between("k2", "k55"), AtLeast("k7"), Below("k3"), Between("k9", "k1")}
	for round := range 3 {
		for i := range 60 {
			w := ws[rng.IntN(len(ws))]
			k := fmt.Sprintf("k%d", rng.IntN(100))
			if rng.IntN(4) == 0 {
				ok[Version](t)(w.Remove(tctx(t), k))
				continue
			}
			ok[Version](t)(w.Insert(tctx(t), k, round*100+i))
		}
		v := settle(t, ws[0], ws[1], ws[2], r)
		for i, kr := range ranges {
			want := entries(ws[0].Range(kr))
			wantB := entries(ws[0].Backward(kr))
			for j, got := range [][]kv[string, int]{entries(ws[1].Range(kr)), entries(ws[2].Range(kr)), entries(r.Range(kr))} {
				if !slices.Equal(got, want) {
					t.Fatalf("round %d at %d, range %d: replica %d yields %v, the first %v", round, v, i, j+1, got, want)
				}
			}
			for j, got := range [][]kv[string, int]{entries(ws[1].Backward(kr)), entries(ws[2].Backward(kr)), entries(r.Backward(kr))} {
				if !slices.Equal(got, wantB) {
					t.Fatalf("round %d at %d, range %d backwards: replica %d yields %v, the first %v", round, v, i, j+1, got, wantB)
				}
			}
		}
		for _, h := range []waiter{ws[0], ws[1], ws[2], r} {
			if h.Version() != v {
				t.Fatalf("a replica moved from %d to %d during the reads", v, h.Version())
			}
		}
	}
}
