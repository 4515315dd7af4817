package collections

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"
)

// puller steps through a watch one event at a time. A watch starts when
// iteration starts, so the tests pass FromVersion(h.Version()) to watch
// from the moment Watch is called.
type puller[C any] struct {
	t    testing.TB
	next func() (Event[C], error, bool)
}

func pull[C any](t testing.TB, seq iter.Seq2[Event[C], error]) *puller[C] {
	next, stop := iter.Pull2(seq)
	t.Cleanup(stop)
	return &puller[C]{t: t, next: next}
}

// event returns the next event; an error or the end fails the test.
func (p *puller[C]) event() Event[C] {
	p.t.Helper()
	e, err, ok := p.next()
	if !ok {
		p.t.Fatal("the watch ended")
	}
	if err != nil {
		p.t.Fatalf("the watch failed: %v", err)
	}
	return e
}

// err returns the error the watch yields next; an event fails the test.
func (p *puller[C]) err() error {
	p.t.Helper()
	e, err, ok := p.next()
	if !ok {
		p.t.Fatal("the watch ended without an error")
	}
	if err == nil {
		p.t.Fatalf("the watch yields an event at %d, want an error", e.Version)
	}
	if _, _, ok := p.next(); ok {
		p.t.Fatal("the watch goes on after its error")
	}
	return err
}

// until collects Changed events up to and including version v, checking
// that versions only grow.
func (p *puller[C]) until(v Version) []Event[C] {
	p.t.Helper()
	var out []Event[C]
	last := Version(0)
	for last < v {
		e := p.event()
		if e.Kind != Changed {
			p.t.Fatalf("a %v event at %d, want changed", e.Kind, e.Version)
		}
		if e.Version <= last {
			p.t.Fatalf("event at version %d after %d: out of order or repeated", e.Version, last)
		}
		if len(e.Changes) == 0 {
			p.t.Fatalf("an event at %d without changes", e.Version)
		}
		last = e.Version
		out = append(out, e)
	}
	if last != v {
		p.t.Fatalf("the watch passed %d: its last event is at %d", v, last)
	}
	return out
}

func replayMap[K comparable, V any](m map[K]V, events []Event[MapChange[K, V]]) {
	for _, e := range events {
		for _, c := range e.Changes {
			switch c.Op {
			case OpInsert:
				m[c.Key] = c.Value
			case OpRemove:
				delete(m, c.Key)
			case OpClear:
				clear(m)
			default:
				panic(fmt.Sprintf("map change %v", c.Op))
			}
		}
	}
}

func replayVec[T any](s []T, events []Event[VecChange[T]]) []T {
	for _, e := range events {
		for _, c := range e.Changes {
			switch c.Op {
			case OpInsert:
				s = slices.Insert(s, c.Index, c.Value)
			case OpRemove:
				s = slices.Delete(s, c.Index, c.Index+1)
			case OpSet:
				s[c.Index] = c.Value
			case OpTruncate:
				s = s[:c.Index]
			case OpClear:
				s = s[:0]
			default:
				panic(fmt.Sprintf("vec change %v", c.Op))
			}
		}
	}
	return s
}

func replaySet[T comparable](s map[T]bool, events []Event[SetChange[T]]) {
	for _, e := range events {
		for _, c := range e.Changes {
			switch c.Op {
			case OpInsert:
				s[c.Value] = true
			case OpRemove:
				delete(s, c.Value)
			case OpClear:
				clear(s)
			default:
				panic(fmt.Sprintf("set change %v", c.Op))
			}
		}
	}
}

func sameEvents[C any](t testing.TB, what string, a, b []Event[C]) {
	t.Helper()
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("%s: the event streams differ:\n%v\n%v", what, a, b)
	}
}

// concurrently runs f(writer, i) for n i on each writer at once.
func concurrently[W any](t testing.TB, n int, ws []W, f func(w W, g, i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(ws))
	for g, w := range ws {
		wg.Go(func() {
			for i := range n {
				if err := f(w, g, i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Under two concurrent writers, watches on every replica see every change
// once, in version order, the same stream everywhere, and replaying it
// gives the final state.
func TestMapWatchConcurrentWriters(t *testing.T) {
	tn := newTestNet(t)
	w1 := openMapW[string, int](t, tn.node(), "m")
	w2 := openMapW[string, int](t, tn.node(), "m")
	r := openMapR[string, int](t, tn.node(), "m")
	online(t, w1, w2, r)
	onReader := pull(t, r.Watch(tctx(t), FromVersion(r.Version())))
	onWriter := pull(t, w1.Watch(tctx(t), FromVersion(w1.Version())))
	concurrently(t, 120, []*MapWriter[string, int]{w1, w2}, func(w *MapWriter[string, int], g, i int) error {
		ctx := tctx(t)
		k := fmt.Sprintf("k%02d", (i*7+g)%29)
		var err error
		switch {
		case i%61 == 60:
			_, err = w.Clear(ctx)
		case i%5 == 1:
			_, err = w.Remove(ctx, k)
		case i%5 == 2:
			_, _, err = w.CompareExchange(ctx, k, nil, &i)
		case i%5 == 3:
			cur, present := w.Get(k)
			exp := &cur
			if !present {
				exp = nil
			}
			_, _, err = w.CompareExchange(ctx, k, exp, nil)
		case i%5 == 4:
			_, err = w.Extend(ctx, maps.All(map[string]int{k: i, k + "x": -i}))
		default:
			_, err = w.Insert(ctx, k, g*1000+i)
		}
		return err
	})
	end := ok[Version](t)(w2.Insert(tctx(t), "end", 1))
	reach(t, end, w1, r)
	fromReader := onReader.until(end)
	fromWriter := onWriter.until(end)
	sameEvents(t, "reader and writer", fromReader, fromWriter)
	fromZero := pull(t, w2.Watch(tctx(t), FromVersion(0))).until(end)
	sameEvents(t, "live and replayed from 0", fromReader, fromZero)

	replayed := map[string]int{}
	replayMap(replayed, fromReader)
	want := maps.Collect(r.All())
	if !maps.Equal(replayed, want) {
		t.Fatalf("replaying the watch gives\n%v\nthe reader holds\n%v", replayed, want)
	}
}

// All the changes of one command arrive together, in one event at its
// version; a command that changes nothing yields no event.
func TestWatchChangesOfOneCommand(t *testing.T) {
	tn := newTestNet(t)
	n := tn.node()
	mw := openMapW[string, int](t, n, "m")
	vw := openVecW[string](t, n, "v")
	sw := openSetW[string](t, n, "s")
	online(t, mw, vw, sw)

	ok[Version](t)(vw.Extend(tctx(t), slices.Values([]string{"a", "b", "c", "d"})))
	vwatch := pull(t, vw.Watch(tctx(t), FromVersion(vw.Version())))
	ok[Version](t)(vw.Swap(tctx(t), 2, 2)) // changes nothing
	v := ok[Version](t)(vw.Swap(tctx(t), 0, 3))
	e := vwatch.event()
	want := []VecChange[string]{{Op: OpSet, Index: 0, Value: "d"}, {Op: OpSet, Index: 3, Value: "a"}}
	if e.Version != v || !slices.Equal(e.Changes, want) {
		t.Fatalf("Swap yields %+v, want one event at %d with %+v", e, v, want)
	}
	v = ok[Version](t)(vw.Truncate(tctx(t), 1))
	if e := vwatch.event(); e.Version != v || !slices.Equal(e.Changes, []VecChange[string]{{Op: OpTruncate, Index: 1}}) {
		t.Fatalf("Truncate yields %+v", e)
	}
	_, v, err := vw.PopBack(tctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if e := vwatch.event(); e.Version != v || !slices.Equal(e.Changes, []VecChange[string]{{Op: OpRemove, Index: 0}}) {
		t.Fatalf("PopBack yields %+v", e)
	}

	ok[Version](t)(mw.Extend(tctx(t), maps.All(map[string]int{"a": 1, "b": 2})))
	mwatch := pull(t, mw.Watch(tctx(t), FromVersion(mw.Version())))
	ok[Version](t)(mw.Remove(tctx(t), "missing"))
	v = ok[Version](t)(mw.Clear(tctx(t)))
	if e := mwatch.event(); e.Version != v || !slices.Equal(e.Changes, []MapChange[string, int]{{Op: OpClear}}) {
		t.Fatalf("Clear yields %+v", e)
	}
	ok[Version](t)(mw.Clear(tctx(t))) // changes nothing
	v = ok[Version](t)(mw.Insert(tctx(t), "x", 1))
	if e := mwatch.event(); e.Version != v || !slices.Equal(e.Changes, []MapChange[string, int]{{Op: OpInsert, Key: "x", Value: 1, Version: v}}) {
		t.Fatalf("Insert yields %+v", e)
	}
	v, applied, err := mw.CompareExchange(tctx(t), "x", new(1), nil)
	if err != nil || !applied {
		t.Fatal(applied, err)
	}
	if e := mwatch.event(); e.Version != v || !slices.Equal(e.Changes, []MapChange[string, int]{{Op: OpRemove, Key: "x"}}) {
		t.Fatalf("CompareExchange delete yields %+v", e)
	}

	swatch := pull(t, sw.Watch(tctx(t), FromVersion(sw.Version())))
	ok[Version](t)(sw.Insert(tctx(t), "a"))
	ok[Version](t)(sw.Insert(tctx(t), "a")) // changes nothing
	v = ok[Version](t)(sw.Remove(tctx(t), "a"))
	if e := swatch.event(); !slices.Equal(e.Changes, []SetChange[string]{{Op: OpInsert, Value: "a"}}) {
		t.Fatalf("Set Insert yields %+v", e)
	}
	if e := swatch.event(); e.Version != v || !slices.Equal(e.Changes, []SetChange[string]{{Op: OpRemove, Value: "a"}}) {
		t.Fatalf("Set Remove yields %+v, want at %d", e, v)
	}
}

// FromVersion(v) yields exactly the events after v, on the writer and on a
// reader.
func TestWatchResume(t *testing.T) {
	w, r := mapPair(t)
	var vs []Version
	for i := range 10 {
		vs = append(vs, ok[Version](t)(w.Insert(tctx(t), fmt.Sprint("k", i), i)))
	}
	reach(t, vs[9], r)
	for _, h := range []interface {
		Watch(context.Context, ...WatchOption) iter.Seq2[Event[MapChange[string, int]], error]
	}{w, r} {
		for _, from := range []int{0, 4, 8} {
			p := pull(t, h.Watch(tctx(t), FromVersion(vs[from])))
			for i := from + 1; i < 10; i++ {
				e := p.event()
				if e.Version != vs[i] || len(e.Changes) != 1 || e.Changes[0].Value != i {
					t.Fatalf("from %d: event %+v, want the insert of %d at %d", vs[from], e, i, vs[i])
				}
			}
		}
		// From the current version: only what comes next.
		p := pull(t, h.Watch(tctx(t), FromVersion(h.(waiter).Version())))
		v := ok[Version](t)(w.Insert(tctx(t), "next", 1))
		if e := p.event(); e.Version != v || e.Changes[0].Key != "next" {
			t.Fatalf("from the current version: %+v, want the insert at %d", e, v)
		}
		reach(t, ok[Version](t)(w.Remove(tctx(t), "next")), r)
	}
}

// FromVersion older than the kept history yields ErrCompacted; the oldest
// version still kept resumes.
func TestWatchCompacted(t *testing.T) {
	w, r := mapPair(t, WithHistory(8))
	var vs []Version
	for i := range 20 {
		vs = append(vs, ok[Version](t)(w.Insert(tctx(t), fmt.Sprint("k", i), i)))
	}
	reach(t, vs[19], r)
	for who, h := range map[string]interface {
		Watch(context.Context, ...WatchOption) iter.Seq2[Event[MapChange[string, int]], error]
	}{"writer": w, "reader": r} {
		isErr(t, pull(t, h.Watch(tctx(t), FromVersion(vs[0]))).err(), ErrCompacted, who+" from the first version")
		isErr(t, pull(t, h.Watch(tctx(t), FromVersion(0))).err(), ErrCompacted, who+" from 0")
		isErr(t, pull(t, h.Watch(tctx(t), FromVersion(vs[10]))).err(), ErrCompacted, who+" from just before the history")
		// The last 8 commands are kept: resuming after vs[11] needs vs[12..19].
		p := pull(t, h.Watch(tctx(t), FromVersion(vs[11])))
		for i := 12; i < 20; i++ {
			if e := p.event(); e.Version != vs[i] {
				t.Fatalf("%s: event at %d, want %d", who, e.Version, vs[i])
			}
		}
	}
}

// WithInitial yields the state as Initial events at one version, then one
// CaughtUp event, then Changed events; replaying them, under a concurrent
// writer, gives the final state.
func TestWatchInitial(t *testing.T) {
	w, r := mapPair(t)
	const n = 2500 // more than two pages
	ok[Version](t)(w.Extend(tctx(t), func(yield func(string, int) bool) {
		for i := range n {
			if !yield(fmt.Sprintf("k%05d", i), i) {
				return
			}
		}
	}))
	reach(t, w.Version(), r)

	// A quiet map: the Initial events hold exactly its state.
	p := pull(t, r.Watch(tctx(t), WithInitial()))
	state := map[string]int{}
	var initial []Event[MapChange[string, int]]
	var e Event[MapChange[string, int]]
	for e = p.event(); e.Kind == Initial; e = p.event() {
		if e.Version != r.Version() {
			t.Fatalf("Initial event at %d, state at %d", e.Version, r.Version())
		}
		for _, c := range e.Changes {
			if c.Op != OpInsert {
				t.Fatalf("Initial change %v", c.Op)
			}
		}
		initial = append(initial, e)
	}
	replayMap(state, initial)
	if e.Kind != CaughtUp || e.Version != r.Version() || len(e.Changes) != 0 {
		t.Fatalf("after the Initial events: %v at %d with %d changes", e.Kind, e.Version, len(e.Changes))
	}
	if len(initial) < 3 || !maps.Equal(state, maps.Collect(r.All())) {
		t.Fatalf("%d Initial events hold %d entries, want %d", len(initial), len(state), r.Len())
	}
	v := ok[Version](t)(w.Insert(tctx(t), "after", 1))
	replayMap(state, p.until(v))
	if state["after"] != 1 {
		t.Fatal("the insert after CaughtUp is missing")
	}

	// Under a concurrent writer: Initial + Changed replays to the final state.
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			if _, err := w.Insert(tctx(t), fmt.Sprintf("k%05d", (i*37)%n), -i); err != nil {
				t.Error(err)
				return
			}
		}
	})
	p = pull(t, r.Watch(tctx(t), WithInitial()))
	state = map[string]int{}
	var at Version
	for e = p.event(); e.Kind == Initial; e = p.event() {
		replayMap(state, []Event[MapChange[string, int]]{e})
		at = e.Version
	}
	if e.Kind != CaughtUp || e.Version != at {
		t.Fatalf("CaughtUp %v at %d after Initial events at %d", e.Kind, e.Version, at)
	}
	wg.Wait()
	end := ok[Version](t)(w.Insert(tctx(t), "end", 1))
	reach(t, end, r)
	replayMap(state, p.until(end))
	if !maps.Equal(state, maps.Collect(r.All())) {
		t.Fatal("Initial and Changed events under a concurrent writer do not replay to the final state")
	}
}

// A watch ends with the context's error when it is cancelled, and with
// ErrClosed when the handle closes.
func TestWatchEnds(t *testing.T) {
	w, r := mapPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	p := pull(t, w.Watch(ctx, FromVersion(w.Version())))
	v := ok[Version](t)(w.Insert(tctx(t), "a", 1))
	p.until(v)
	done := make(chan error, 1)
	go func() {
		for _, err := range w.Watch(ctx) {
			if err != nil {
				done <- err
				return
			}
		}
		done <- errors.New("ended without an error")
	}()
	cancel()
	isErr(t, p.err(), context.Canceled, "a cancelled watch")
	isErr(t, <-done, context.Canceled, "a cancelled watch, waiting")

	reach(t, v, r)
	rp := pull(t, r.Watch(tctx(t), FromVersion(r.Version())))
	go func() {
		done <- closeOf(t, r)
	}()
	isErr(t, rp.err(), ErrClosed, "a watch on a closing reader")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A watch started after Close ends with ErrClosed: at once from the
	// current version, after the history it still holds from an older one.
	isErr(t, pull(t, r.Watch(tctx(t))).err(), ErrClosed, "a watch opened after Close")
	isErr(t, watchEndOf(r.Watch(tctx(t), FromVersion(0))), ErrClosed, "a watch from 0 opened after Close")
}

// A watcher that does not consume never blocks writes. When it resumes it
// gets every change in order; one that fell out of the kept history gets
// ErrCompacted, not a silent gap.
func TestWatchPausedNeverBlocksWrites(t *testing.T) {
	tn := newTestNet(t)
	w := openMapW[string, int](t, tn.node(), "m")
	short := openMapR[string, int](t, tn.node(), "m", WithHistory(16))
	online(t, w, short)
	first := ok[Version](t)(w.Insert(tctx(t), "first", 0))
	reach(t, first, short)
	paused := pull(t, w.Watch(tctx(t), FromVersion(0)))
	pausedShort := pull(t, short.Watch(tctx(t), FromVersion(0)))
	if e := paused.event(); e.Version != first {
		t.Fatalf("first event at %d", e.Version)
	}
	if e := pausedShort.event(); e.Version != first {
		t.Fatalf("first event at %d", e.Version)
	}
	// Both watchers are now suspended inside the watch; write thousands of
	// entries.
	start := time.Now()
	ctx := ctxT(t, 20*time.Second)
	const batches, per = 40, 100
	for b := range batches {
		ok[Version](t)(w.Extend(ctx, func(yield func(string, int) bool) {
			for i := range per {
				if !yield(fmt.Sprintf("k%02d-%03d", b, i), b*per+i) {
					return
				}
			}
		}))
	}
	var last Version
	for i := range 200 {
		last = ok[Version](t)(w.Insert(ctx, fmt.Sprint("single", i), i))
	}
	t.Logf("%d writes with two paused watchers took %v", batches*per+200, time.Since(start))
	reach(t, last, short)

	events := paused.until(last)
	if len(events) != batches*per+200 {
		t.Fatalf("the resumed watcher got %d events, want %d", len(events), batches*per+200)
	}
	replayed := map[string]int{"first": 0}
	replayMap(replayed, events)
	if !maps.Equal(replayed, maps.Collect(w.All())) {
		t.Fatal("the resumed watcher's events do not replay to the state")
	}
	isErr(t, pausedShort.err(), ErrCompacted, "a watcher that fell out of a 16-command history")
}

// Vec and Set watches under two concurrent writers: one stream on every
// replica, replaying to the final state.
func TestVecWatchConcurrentWriters(t *testing.T) {
	tn := newTestNet(t)
	w1 := openVecW[int](t, tn.node(), "v")
	w2 := openVecW[int](t, tn.node(), "v")
	r := openVecR[int](t, tn.node(), "v")
	online(t, w1, w2, r)
	onReader := pull(t, r.Watch(tctx(t), FromVersion(r.Version())))
	onWriter := pull(t, w2.Watch(tctx(t), FromVersion(w2.Version())))
	k := kinds[1]
	concurrently(t, 80, []*VecWriter[int]{w1, w2}, func(w *VecWriter[int], g, i int) error {
		if i%40 == 39 {
			_, err := w.Truncate(tctx(t), 3)
			return err
		}
		_, err := k.write(tctx(t), w, g*1000+i)
		return err
	})
	end := ok[Version](t)(w1.PushBack(tctx(t), -1))
	reach(t, end, w2, r)
	fromReader := onReader.until(end)
	sameEvents(t, "reader and writer", fromReader, onWriter.until(end))
	sameEvents(t, "live and replayed from 0", fromReader, pull(t, w1.Watch(tctx(t), FromVersion(0))).until(end))
	got := replayVec(nil, fromReader)
	want := slices.Collect(func(yield func(int) bool) {
		for _, x := range r.All() {
			if !yield(x) {
				return
			}
		}
	})
	if !slices.Equal(got, want) {
		t.Fatalf("replaying the watch gives\n%v\nthe reader holds\n%v", got, want)
	}
}

func TestSetWatchConcurrentWriters(t *testing.T) {
	tn := newTestNet(t)
	w1 := openSetW[string](t, tn.node(), "s")
	w2 := openSetW[string](t, tn.node(), "s")
	r := openSetR[string](t, tn.node(), "s")
	online(t, w1, w2, r)
	onReader := pull(t, r.Watch(tctx(t), FromVersion(r.Version())))
	k := kinds[2]
	concurrently(t, 80, []*SetWriter[string]{w1, w2}, func(w *SetWriter[string], g, i int) error {
		if i%50 == 49 {
			_, err := w.Clear(tctx(t))
			return err
		}
		_, err := k.write(tctx(t), w, g*7+i)
		return err
	})
	end := ok[Version](t)(w1.Insert(tctx(t), "end"))
	reach(t, end, w2, r)
	fromReader := onReader.until(end)
	sameEvents(t, "live and replayed from 0", fromReader, pull(t, w2.Watch(tctx(t), FromVersion(0))).until(end))
	got := map[string]bool{}
	replaySet(got, fromReader)
	if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, slices.Collect(r.All())) {
		t.Fatalf("replaying the watch gives %v; the reader holds %v", keys, slices.Collect(r.All()))
	}
}
