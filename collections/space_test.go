package collections

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/storage"
	"github.com/mosaik-go/mosaik/transport"
)

func openSpaceW[K comparable, V any](t testing.TB, n *transport.Network, name string, opts ...Option) *MapSpace[K, V] {
	t.Helper()
	return cleanup(t, must[*MapSpace[K, V]](t)(NewMapSpace[K, V](n, name, append(testOpts(), opts...)...)))
}

func openSpaceR[K comparable, V any](t testing.TB, n *transport.Network, name string, opts ...Option) *MapSpace[K, V] {
	t.Helper()
	return cleanup(t, must[*MapSpace[K, V]](t)(NewMapSpaceReader[K, V](n, name, append(testOpts(), opts...)...)))
}

// Maps of one space on three nodes: each holds its own entries, the same
// on every member, whichever node wrote them, and a reader of the space
// sees them too.
func TestMapSpaceMaps(t *testing.T) {
	tn := newTestNet(t)
	s1 := openSpaceW[string, int](t, tn.node(), "tenants")
	s2 := openSpaceW[string, int](t, tn.node(), "tenants")
	s3 := openSpaceR[string, int](t, tn.node(), "tenants")
	online(t, s1, s2, s3)

	a1 := ok[*MapWriter[string, int]](t)(s1.Writer("a"))
	b2 := ok[*MapWriter[string, int]](t)(s2.Writer("b"))
	a3 := ok[*MapReader[string, int]](t)(s3.Reader("a"))
	b3 := ok[*MapReader[string, int]](t)(s3.Reader("b"))
	online(t, a1, b2, a3, b3)
	if _, err := s3.Writer("a"); err == nil {
		t.Fatal("a reader space opened a writer")
	}

	va := ok[Version](t)(a1.Insert(tctx(t), "x", 1))
	vb := ok[Version](t)(b2.Insert(tctx(t), "x", 2))
	if va == vb {
		t.Fatalf("writes to two maps of a space share version %d", va)
	}
	ok[Version](t)(b2.Insert(tctx(t), "y", 3))
	reach(t, max(va, vb), a3, b3)
	reach(t, b2.Version(), b3)
	if got := entries(a3.All()); !slices.Equal(got, []kv[string, int]{{"x", 1}}) {
		t.Fatalf("map a on the reader: %v", got)
	}
	if got := entries(b3.All()); !slices.Equal(got, []kv[string, int]{{"x", 2}, {"y", 3}}) {
		t.Fatalf("map b on the reader: %v", got)
	}
	if v, ver, found := a3.GetWithVersion("x"); !found || v != 1 || ver != va {
		t.Fatalf("a[x] = %d at %d (%v), want 1 at %d", v, ver, found, va)
	}
	// A map's version is its last write's, not the space's.
	if a3.Version() != va {
		t.Fatalf("map a at version %d, want its write's %d", a3.Version(), va)
	}
	settle(t, s1, s2, s3)
	for i, s := range []*MapSpace[string, int]{s1, s2, s3} {
		if got := s.Maps(); !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("space %d: maps %v, want [a b]", i, got)
		}
	}
	// A map opened where nobody wrote it is empty, and a node may hold a
	// map it never opened: s2 holds a.
	empty := ok[*MapReader[string, int]](t)(s1.Reader("nobody"))
	if empty.Len() != 0 {
		t.Fatalf("an unwritten map holds %d entries", empty.Len())
	}
	a2 := ok[*MapReader[string, int]](t)(s2.Reader("a"))
	if got, _ := a2.Get("x"); got != 1 {
		t.Fatalf("a[x] on a node that had not opened a: %d", got)
	}
	if _, err := s1.Writer("a"); !errors.Is(err, ErrAlreadyOpen) {
		t.Fatalf("second handle on map a: %v, want ErrAlreadyOpen", err)
	}
}

// A map's Updated and Watch see its own changes only, not those of the
// other maps of its space.
func TestMapSpaceMapChangesOnly(t *testing.T) {
	tn := newTestNet(t)
	s := openSpaceW[string, int](t, tn.node(), "s")
	online(t, s)
	a := ok[*MapWriter[string, int]](t)(s.Writer("a"))
	b := ok[*MapWriter[string, int]](t)(s.Writer("b"))
	va := ok[Version](t)(a.Insert(tctx(t), "k", 1))

	ctx, cancel := context.WithCancel(tctx(t))
	defer cancel()
	events := make(chan Event[MapChange[string, int]], 16)
	go func() {
		for ev, err := range a.Watch(ctx, FromVersion(va)) {
			if err != nil {
				close(events)
				return
			}
			events <- ev
		}
	}()
	ok[Version](t)(b.Insert(tctx(t), "k", 2)) // not a's
	short, stop := context.WithTimeout(tctx(t), 300*time.Millisecond)
	defer stop()
	if err := a.When().Updated(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("map a's Updated after a write to map b: %v, want the deadline", err)
	}
	va2 := ok[Version](t)(a.Insert(tctx(t), "k", 3))
	select {
	case ev := <-events:
		if ev.Version != va2 || len(ev.Changes) != 1 || ev.Changes[0].Value != 3 {
			t.Fatalf("map a's watch saw %+v, want its own write at %d", ev, va2)
		}
	case <-tctx(t).Done():
		t.Fatal("map a's watch saw nothing")
	}
}

// Closing a map's handle ends its waits and watches, not the space; the
// map can be opened again. Closing the space closes its maps' handles.
func TestMapSpaceClose(t *testing.T) {
	tn := newTestNet(t)
	s := openSpaceW[string, int](t, tn.node(), "s")
	online(t, s)
	a := ok[*MapWriter[string, int]](t)(s.Writer("a"))
	ok[Version](t)(a.Insert(tctx(t), "k", 1))

	waited := make(chan error, 1)
	go func() { waited <- a.When().Reaches(tctx(t), 1<<40) }()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; !errors.Is(err, ErrClosed) {
		t.Fatalf("a wait on a closed map: %v, want ErrClosed", err)
	}
	if _, err := a.Insert(tctx(t), "k", 2); !errors.Is(err, ErrClosed) {
		t.Fatalf("a write on a closed map: %v, want ErrClosed", err)
	}
	if got, _ := a.Get("k"); got != 1 {
		t.Fatalf("a closed map reads %d, want its last state 1", got)
	}
	a = ok[*MapWriter[string, int]](t)(s.Writer("a"))
	ok[Version](t)(a.Insert(tctx(t), "k", 2))

	b := ok[*MapWriter[string, int]](t)(s.Writer("b"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*MapWriter[string, int]{a, b} {
		if _, err := w.Insert(tctx(t), "k", 3); !errors.Is(err, ErrClosed) {
			t.Fatalf("a write after the space closed: %v, want ErrClosed", err)
		}
		if err := w.When().Updated(tctx(t)); !errors.Is(err, ErrClosed) {
			t.Fatalf("a wait after the space closed: %v, want ErrClosed", err)
		}
	}
	if _, err := s.Writer("c"); !errors.Is(err, ErrClosed) {
		t.Fatalf("a map opened on a closed space: %v, want ErrClosed", err)
	}
}

// A member that joins late catches up every map of the space from a
// snapshot.
func TestMapSpaceLateReaderUsesSnapshot(t *testing.T) {
	tn := newTestNet(t)
	s := openSpaceW[string, string](t, tn.node(), "s", snapshotOpts()...)
	online(t, s)
	want := map[string][]kv[string, string]{}
	for i := range 30 {
		name := fmt.Sprint("m", i%7)
		w, err := s.Writer(name)
		if errors.Is(err, ErrAlreadyOpen) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for j := range 3 {
			k, v := fmt.Sprint("k", j), fmt.Sprint(i, "-", j)
			ok[Version](t)(w.Insert(tctx(t), k, v))
			want[name] = append(want[name], kv[string, string]{k, v})
		}
	}
	last := s.Version()
	gone := ok[*MapWriter[string, string]](t)(s.Writer("gone"))
	ok[Version](t)(gone.Insert(tctx(t), "k", "v"))
	ok[Version](t)(gone.Clear(tctx(t)))
	// Write on until a snapshot holds every map's writes.
	i := 0
	eventually(t, "a snapshot of every map", func() bool {
		i++
		ok[Version](t)(gone.Remove(tctx(t), fmt.Sprint(i)))
		return uint64(s.g.Status().LogSnapshot) >= uint64(last)
	})

	r := openSpaceR[string, string](t, tn.node(), "s", append(snapshotOpts(), WithHistory(1<<20))...)
	online(t, r)
	reach(t, s.Version(), r)
	if got := r.Maps(); !slices.Equal(got, s.Maps()) || len(got) != 7 {
		t.Fatalf("the late reader holds maps %v, the writer %v", got, s.Maps())
	}
	for name, kvs := range want {
		m := ok[*MapReader[string, string]](t)(r.Reader(name))
		if got := entries(m.All()); !slices.Equal(got, kvs) {
			t.Fatalf("map %s on the late reader: %v, want %v", name, got, kvs)
		}
		for ev, err := range m.Watch(tctx(t), FromVersion(0)) {
			if !errors.Is(err, ErrCompacted) {
				t.Fatalf("map %s replayed from the log (watch from 0: %+v, %v): no snapshot", name, ev, err)
			}
			break
		}
	}
}

// The space's machine restores what it snapshotted, whole, into a member
// that held other maps; a damaged snapshot changes nothing.
func TestMapSpaceSnapshotRoundTrip(t *testing.T) {
	src := newSpaceMachine[string, int](16)
	at := 0
	apply := func(m *spaceMachine[string, int], name string, cmd mapCmd[string, int]) {
		at++
		m.ApplyReply(spaceCmd[string, int]{Map: name, Cmd: cmd}, fakeCtx(at))
		m.Publish()
	}
	one, two := 1, 2
	for i := range 50 {
		apply(src, fmt.Sprint("m", i%5), mapCmd[string, int]{Op: mapInsert, Key: fmt.Sprint("k", i), Value: &one})
	}
	apply(src, "m1", mapCmd[string, int]{Op: mapClear})
	apply(src, "", mapCmd[string, int]{Op: mapInsert, Key: "k", Value: &one}) // no map: not applied

	var buf bytes.Buffer
	s, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Persist(&buf); err != nil {
		t.Fatal(err)
	}

	dst := newSpaceMachine[string, int](16)
	apply(dst, "local", mapCmd[string, int]{Op: mapInsert, Key: "x", Value: &two})
	apply(dst, "m0", mapCmd[string, int]{Op: mapInsert, Key: "x", Value: &two})
	before := dst.mapNamed("m0").cur.Load()
	for _, cut := range []int{1, buf.Len() / 3, buf.Len() / 2, buf.Len() - 1} {
		if err := dst.Restore(bytes.NewReader(buf.Bytes()[:cut])); err == nil {
			t.Fatalf("a snapshot cut at %d of %d bytes restored", cut, buf.Len())
		}
		if dst.mapNamed("m0").cur.Load() != before {
			t.Fatalf("a damaged snapshot (cut at %d) changed the state", cut)
		}
	}
	if err := dst.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got, want := dst.written(), src.written(); !slices.Equal(got, want) {
		t.Fatalf("restored maps %v, want %v", got, want)
	}
	for _, name := range src.written() {
		got := entries(dst.mapNamed(name).cur.Load().m.All())
		want := entries(src.mapNamed(name).cur.Load().m.All())
		if !slices.Equal(got, want) {
			t.Fatalf("map %s restored as %v, want %v", name, got, want)
		}
	}
	if n := dst.mapNamed("local").cur.Load().m.Len(); n != 0 {
		t.Fatalf("a map the snapshot does not hold kept %d entries", n)
	}
	if dst.version() != src.version() {
		t.Fatalf("restored at version %d, want %d", dst.version(), src.version())
	}
}

// Many maps of a space on three nodes, a writer each: the node holding the
// space's leader is cut off; the space comes back online and every map
// keeps every write that was acknowledged.
func TestMapSpaceLeaderLost(t *testing.T) {
	const maps = 200
	tn := newTestNet(t)
	faults := []*transport.Faults{transport.NewFaults(), transport.NewFaults(), transport.NewFaults()}
	var spaces []*MapSpace[string, int]
	for _, f := range faults {
		n, err := transport.New(context.Background(), transport.WithURL(tn.hub.URL()), transport.WithFaults(f))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		spaces = append(spaces, openSpaceW[string, int](t, n, "many"))
	}
	for _, s := range spaces {
		online(t, s)
	}
	writers := make([][]*MapWriter[string, int], len(spaces))
	for i, s := range spaces {
		for m := range maps {
			writers[i] = append(writers[i], ok[*MapWriter[string, int]](t)(s.Writer(fmt.Sprint("m", m))))
		}
	}
	leader := -1
	for i, s := range spaces {
		if s.g.IsLeader() {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("no leader among the spaces")
	}

	// Every map has a writer on every node; write through the followers,
	// while the leader is cut off halfway.
	var (
		mu    sync.Mutex
		acked = map[string]map[string]int{}
		wg    sync.WaitGroup
	)
	ctx := ctxT(t, 60*time.Second)
	for m := range maps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := writers[(leader+1+m%2)%3][m]
			for j := range 4 {
				k := fmt.Sprint("k", j)
				for {
					_, err := w.Insert(ctx, k, j)
					if err == nil {
						mu.Lock()
						if acked[w.Name()] == nil {
							acked[w.Name()] = map[string]int{}
						}
						acked[w.Name()][k] = j
						mu.Unlock()
						break
					}
					if ctx.Err() != nil {
						t.Errorf("map %s: %v", w.Name(), err)
						return
					}
				}
			}
		}()
		if m == maps/2 {
			faults[leader].Isolate()
		}
	}
	wg.Wait()
	var rest []waiter
	for i, s := range spaces {
		if i != leader {
			rest = append(rest, s)
		}
	}
	online(t, rest...)
	v := settle(t, rest...)
	for i, s := range spaces {
		if i == leader {
			continue
		}
		reach(t, v, s)
		for m := range maps {
			name := fmt.Sprint("m", m)
			r := writers[i][m]
			for k, want := range acked[name] {
				if got, found := r.Get(k); !found || got != want {
					t.Fatalf("node %d, map %s: %s = %d (%v), acknowledged %d", i, name, k, got, found, want)
				}
			}
		}
	}
	faults[leader].Heal()
}

// A durable space restarts with every map it held: from its snapshot and
// the log after it.
func TestMapSpaceDurableRestart(t *testing.T) {
	dir := t.TempDir()
	tn := newTestNet(t)
	life := func(do func(s *MapSpace[string, int])) {
		db, err := storage.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		id, err := transport.IdentityFromSeed(db.NodeKey())
		if err != nil {
			t.Fatal(err)
		}
		n, err := transport.New(context.Background(), transport.WithURL(tn.hub.URL()), transport.WithIdentity(id))
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		s, err := NewMapSpace[string, int](n, "durable", append(snapshotOpts(), WithStorage(db))...)
		if err != nil {
			t.Fatal(err)
		}
		defer closeOf(t, s)
		online(t, s)
		do(s)
	}
	want := map[string]map[string]int{}
	life(func(s *MapSpace[string, int]) {
		for m := range 5 {
			name := fmt.Sprint("m", m)
			w := ok[*MapWriter[string, int]](t)(s.Writer(name))
			want[name] = map[string]int{}
			for k := range 6 { // 30 writes: past the snapshot threshold
				ok[Version](t)(w.Insert(tctx(t), fmt.Sprint("k", k), m*10+k))
				want[name][fmt.Sprint("k", k)] = m*10 + k
			}
		}
		eventually(t, "a snapshot", func() bool { return s.g.Status().LogSnapshot > 0 })
	})
	life(func(s *MapSpace[string, int]) {
		if got := s.Maps(); len(got) != len(want) {
			t.Fatalf("after the restart the space holds maps %v", got)
		}
		for name, kvs := range want {
			r := ok[*MapReader[string, int]](t)(s.Reader(name))
			if r.Len() != len(kvs) {
				t.Fatalf("map %s holds %d entries after the restart, want %d", name, r.Len(), len(kvs))
			}
			for k, v := range kvs {
				if got, _ := r.Get(k); got != v {
					t.Fatalf("map %s: %s = %d after the restart, want %d", name, k, got, v)
				}
			}
		}
	})
}

// A closed map handle's waits fail with ErrClosed, as a closed Map's do,
// though its space is still online.
func TestMapSpaceClosedMapWhen(t *testing.T) {
	tn := newTestNet(t)
	s := openSpaceW[string, int](t, tn.node(), "s")
	online(t, s)
	a := ok[*MapWriter[string, int]](t)(s.Writer("a"))
	v := ok[Version](t)(a.Insert(tctx(t), "k", 1))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.When().Online(tctx(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Online on a closed map: %v, want ErrClosed", err)
	}
	if err := a.When().Offline(tctx(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Offline on a closed map: %v, want ErrClosed", err)
	}
	if err := a.When().Reaches(tctx(t), v+1000); !errors.Is(err, ErrClosed) {
		t.Fatalf("Reaches on a closed map: %v, want ErrClosed", err)
	}
	if err := a.When().Updated(tctx(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Updated on a closed map: %v, want ErrClosed", err)
	}
}

// A map name that is not UTF-8 cannot travel in a command (the log's
// decoder refuses it): opening such a map fails, rather than its writes
// being acknowledged and dropped.
func TestMapSpaceNameNotUTF8(t *testing.T) {
	tn := newTestNet(t)
	s := openSpaceW[string, int](t, tn.node(), "s")
	online(t, s)
	w, err := s.Writer("\xff")
	if err == nil {
		v, err := w.Insert(tctx(t), "k", 1)
		t.Fatalf("a map named %q opened; its insert returned version %d, %v, and it holds %d entries", "\xff", v, err, w.Len())
	}
	if _, err := s.Reader("a\xc0"); err == nil {
		t.Fatal("a reader of a map whose name is not UTF-8 opened")
	}
}

// A map that the snapshot a member restores does not hold (it was emptied
// before the snapshot) has lost its changes before the snapshot on that
// member: a watch resuming from before it yields ErrCompacted, as for a
// map restored from a snapshot, whether the map's handle opened before
// the restore or after.
func TestMapSpaceWatchAcrossRestoreOfAbsentMap(t *testing.T) {
	src := newSpaceMachine[string, int](16)
	one := 1
	cmds := []spaceCmd[string, int]{
		{Map: "e", Cmd: mapCmd[string, int]{Op: mapInsert, Key: "k", Value: &one}},
		{Map: "e", Cmd: mapCmd[string, int]{Op: mapClear}},
		{Map: "x", Cmd: mapCmd[string, int]{Op: mapInsert, Key: "k", Value: &one}},
	}
	for i, c := range cmds {
		src.ApplyReply(c, fakeCtx(i+1))
		src.Publish()
	}
	snap := snapshotBytes(t, src)

	gone, cancel := context.WithCancel(context.Background())
	cancel() // a watch that is not compacted waits, and ends with this
	resume := func(m *mapMachine[string, int], from Version) error {
		for _, err := range watch(gone, nil, m.hist, m.version, m.state, []WatchOption{FromVersion(from)}) {
			return err
		}
		return nil
	}
	for _, early := range []bool{false, true} {
		dst := newSpaceMachine[string, int](16)
		var e *mapMachine[string, int]
		if early { // a handle opened e before the member caught up
			e = dst.mapNamed("e")
		}
		if err := dst.Restore(bytes.NewReader(snap)); err != nil {
			t.Fatal(err)
		}
		if !early {
			e = dst.mapNamed("e")
		}
		for _, from := range []Version{0, 1} {
			if err := resume(e, from); !errors.Is(err, ErrCompacted) {
				t.Fatalf("opened before the restore %v: a watch of e from %d: %v, want ErrCompacted (the insert at 1 and the clear at 2 are not kept)", early, from, err)
			}
		}
		// A watch from now waits for e's next change, which it sees.
		if err := resume(e, e.version()); !errors.Is(err, context.Canceled) {
			t.Fatalf("a watch of e from its version %d: %v, want it to wait", e.version(), err)
		}
		dst.ApplyReply(spaceCmd[string, int]{Map: "e", Cmd: mapCmd[string, int]{Op: mapInsert, Key: "j", Value: &one}}, fakeCtx(4))
		dst.Publish()
		recs, _, err := e.hist.since(3, 10)
		if err != nil || len(recs) != 1 || recs[0].v != 4 {
			t.Fatalf("e's history after a write at 4: %v, %v", recs, err)
		}
	}
}

type countingWriter struct{ writes int }

func (c *countingWriter) Write(b []byte) (int, error) { c.writes++; return len(b), nil }

// A space's snapshot goes to its sink in buffers, not in a write per map:
// a small one in one write.
func TestMapSpaceSnapshotWrites(t *testing.T) {
	m := newSpaceMachine[string, string](8)
	defer m.closeIndexes()
	v := "v"
	for i := range 100 {
		m.ApplyReply(spaceCmd[string, string]{Map: fmt.Sprint("m", i), Cmd: mapCmd[string, string]{Op: mapInsert, Key: "k", Value: &v}}, fakeCtx(i+1))
	}
	m.Publish()
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var c countingWriter
	if err := s.Persist(&c); err != nil {
		t.Fatal(err)
	}
	if c.writes != 1 {
		t.Fatalf("a snapshot of 100 small maps took %d writes, want 1", c.writes)
	}
}

// mapNamed returns the map called name, made empty if there is none.
func (s *spaceMachine[K, V]) mapNamed(name string) *mapMachine[K, V] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mapLocked(name)
}

// Maps that are empty and held by no handle are dropped, so commands that
// name many maps, or maps written and emptied, leave nothing behind; a
// held map stays, and a map made after a drop starts at the drop's
// version with no history.
func TestMapSpaceDropsEmptyMaps(t *testing.T) {
	s := newSpaceMachine[string, int](16)
	at := 0
	apply := func(name string, cmd mapCmd[string, int]) {
		at++
		s.ApplyReply(spaceCmd[string, int]{Map: name, Cmd: cmd}, fakeCtx(at))
		s.Publish()
	}
	one := 1
	for i := range 1000 {
		apply(fmt.Sprint("m", i), mapCmd[string, int]{Op: mapRemove, Key: "k"})
	}
	apply("full", mapCmd[string, int]{Op: mapInsert, Key: "k", Value: &one})
	apply("emptied", mapCmd[string, int]{Op: mapInsert, Key: "k", Value: &one})
	apply("emptied", mapCmd[string, int]{Op: mapRemove, Key: "k"})
	held := s.hold("held")
	apply("held", mapCmd[string, int]{Op: mapInsert, Key: "k", Value: &one})
	apply("held", mapCmd[string, int]{Op: mapClear})
	if got := len(s.maps); got != 2 {
		t.Fatalf("%d maps kept, want 2 (full, held): %v", got, slices.Sorted(maps.Keys(s.maps)))
	}
	if s.maps["held"] != held {
		t.Fatal("a held map was replaced")
	}
	s.release("held")
	apply("full", mapCmd[string, int]{Op: mapInsert, Key: "k2", Value: &one})
	if _, ok := s.maps["held"]; ok || len(s.maps) != 1 {
		t.Fatalf("after its handle closed, the empty map stays: %v", slices.Sorted(maps.Keys(s.maps)))
	}
	again := s.hold("emptied")
	if again.version() < Version(at-1) {
		t.Fatalf("a map made after a drop starts at version %d, before the drop (%d)", again.version(), at-1)
	}
	if _, _, err := again.hist.since(0, 10); !errors.Is(err, ErrCompacted) {
		t.Fatalf("a map made after a drop resumes from 0: %v, want ErrCompacted", err)
	}
}
