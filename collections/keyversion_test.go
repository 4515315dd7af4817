package collections

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/mosaik-go/mosaik/rsm"
)

// verEntry is a model entry: a value and the version it was set at.
type verEntry[V any] struct {
	v   V
	ver Version
}

// versionsOf lists a tree's entries with their versions, in key order.
func versionsOf[K comparable, V any](t *btree[K, V]) []kv[K, verEntry[V]] {
	var out []kv[K, verEntry[V]]
	t.AllVersioned(func(k K, v V, ver Version) bool {
		out = append(out, kv[K, verEntry[V]]{k, verEntry[V]{v, ver}})
		return true
	})
	return out
}

func sortedModel[K cmp.Ordered, V any](m map[K]verEntry[V]) []kv[K, verEntry[V]] {
	out := make([]kv[K, verEntry[V]], 0, len(m))
	for k, e := range m {
		out = append(out, kv[K, verEntry[V]]{k, e})
	}
	slices.SortFunc(out, func(a, b kv[K, verEntry[V]]) int { return cmp.Compare(a.K, b.K) })
	return out
}

// A versioned tree keeps each entry's version through inserts, splits,
// deletes that merge and shift leaves, freezes (copy on write) and clears,
// and frozen trees never see a later edit.
func TestBTreeVersionedModel(t *testing.T) {
	rng := btreeRand(t)
	c := comparerFor[int]()
	ed := newVersionedBTree[int, int](c).Edit()
	model := map[int]verEntry[int]{}
	type kept struct {
		t    *btree[int, int]
		want []kv[int, verEntry[int]]
	}
	var frozen []kept
	check := func(op int) {
		t.Helper()
		if err := btreeCheck(c, ed.root, ed.Len()); err != nil {
			t.Fatalf("op %d: %v", op, err)
		}
		view := &btree[int, int]{cmp: c, root: ed.root, len: ed.len, vers: true}
		if got, want := versionsOf(view), sortedModel(model); !slices.Equal(got, want) {
			t.Fatalf("op %d: the editor holds %v, model %v", op, got, want)
		}
		for i, f := range frozen {
			if err := btreeCheck(c, f.t.root, f.t.Len()); err != nil {
				t.Fatalf("op %d: frozen %d: %v", op, i, err)
			}
			if got := versionsOf(f.t); !slices.Equal(got, f.want) {
				t.Fatalf("op %d: frozen tree %d changed", op, i)
			}
		}
	}
	const space, ops = 3000, 60000
	setP := 90
	for op := range ops {
		if op%4000 == 0 && op > 8000 {
			setP = []int{90, 50, 10}[rng.IntN(3)]
		}
		k := rng.IntN(space)
		ver := Version(op + 1)
		switch r := rng.IntN(100); {
		case rng.IntN(20000) == 0:
			ed.Clear()
			clear(model)
		case rng.IntN(50) == 0:
			f := ed.Freeze()
			if len(frozen) < 16 {
				frozen = append(frozen, kept{f, sortedModel(model)})
			} else {
				frozen[rng.IntN(16)] = kept{f, sortedModel(model)}
			}
		case r < 10:
			v, got, ok := ed.GetVersioned(k)
			if e, mok := model[k]; ok != mok || v != e.v || got != e.ver {
				t.Fatalf("op %d: GetVersioned(%d) = %d, %d, %v; model %v, %v", op, k, v, got, ok, e, mok)
			}
		case r < 10+setP*90/100:
			v := rng.IntN(5) // values repeat: only the version tells writes apart
			ed.SetAt(k, v, ver)
			model[k] = verEntry[int]{v, ver}
		default:
			ed.Delete(k)
			delete(model, k)
		}
		if (op+1)%5000 == 0 {
			check(op)
		}
	}
	check(ops)

	// The loader, as a restore fills a tree, in order and out of it.
	for _, order := range []string{"ascending", "shuffled"} {
		want := sortedModel(model)
		in := slices.Clone(want)
		if order == "shuffled" {
			rng.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
		}
		l := newVersionedTreeLoader[int, int](c)
		for _, e := range in {
			l.setAt(e.K, e.V.v, e.V.ver)
		}
		tr := l.edit().Freeze()
		if err := btreeCheck(c, tr.root, tr.Len()); err != nil {
			t.Fatalf("%s load: %v", order, err)
		}
		if got := versionsOf(tr); !slices.Equal(got, want) {
			t.Fatalf("%s load differs", order)
		}
	}
}

// mapVersions lists a map machine's entries with their versions.
func mapVersions[K comparable, V any](m *mapMachine[K, V]) []kv[K, verEntry[V]] {
	return versionsOf(m.cur.Load().m)
}

// Each command sets the version of the keys it sets to its own index; a
// version compare-exchange matches only the version, so a value that
// changed and changed back does not match its first version.
func TestMapKeyVersionsApply(t *testing.T) {
	m := newMapMachine[string, string](64)
	idx := 0
	apply := func(c mapCmd[string, string]) (Version, bool) {
		idx++
		return Version(idx), applied(m, c, fakeCtx(idx)).Applied
	}
	r := mapReads[string, string]{m: m}
	want := func(k string, wv string, wver Version, wok bool) {
		t.Helper()
		v, ver, ok := r.GetWithVersion(k)
		if v != wv || ver != wver || ok != wok {
			t.Fatalf("GetWithVersion(%q) = %q, %d, %v; want %q, %d, %v", k, v, ver, ok, wv, wver, wok)
		}
	}
	casv := func(k string, ver Version, rep *string) (Version, bool) {
		return apply(mapCmd[string, string]{Op: mapCASVersion, Key: k, Version: ver, Value: rep})
	}
	first, _ := apply(mapCmd[string, string]{Op: mapInsert, Key: "k", Value: ptr("A")})
	want("k", "A", first, true)
	second, _ := apply(mapCmd[string, string]{Op: mapInsert, Key: "k", Value: ptr("B")})
	third, _ := apply(mapCmd[string, string]{Op: mapInsert, Key: "k", Value: ptr("A")})
	want("k", "A", third, true)
	if _, ok := casv("k", first, ptr("C")); ok {
		t.Fatal("a compare-exchange on the first A's version applied to the second A")
	}
	if _, ok := casv("k", second, ptr("C")); ok {
		t.Fatal("a compare-exchange on B's version applied to A")
	}
	if _, ok := casv("k", 0, ptr("C")); ok {
		t.Fatal("a compare-exchange on version 0 applied to a present key")
	}
	want("k", "A", third, true)
	fourth, ok := casv("k", third, ptr("C"))
	if !ok {
		t.Fatal("a compare-exchange on the current version did not apply")
	}
	want("k", "C", fourth, true)
	// Removal by version, then creation on version 0.
	if _, ok := casv("k", fourth, nil); !ok {
		t.Fatal("a removing compare-exchange on the current version did not apply")
	}
	want("k", "", 0, false)
	if _, ok := casv("k", fourth, ptr("D")); ok {
		t.Fatal("a compare-exchange on a removed key's last version applied")
	}
	if _, ok := casv("k", 0, nil); !ok {
		t.Fatal("compare-exchange(0, nil) on an absent key did not apply")
	}
	want("k", "", 0, false)
	created, ok := casv("k", 0, ptr("E"))
	if !ok {
		t.Fatal("compare-exchange(0, E) on an absent key did not create it")
	}
	want("k", "E", created, true)
	// A value compare-exchange that applies sets the version too; a
	// remove, a clear, and a write of another key leave versions alone.
	vcas, _ := apply(mapCmd[string, string]{Op: mapCAS, Key: "k", Expected: ptr("E"), Value: ptr("E")})
	want("k", "E", vcas, true)
	other, _ := apply(mapCmd[string, string]{Op: mapInsert, Key: "other", Value: ptr("x")})
	apply(mapCmd[string, string]{Op: mapRemove, Key: "missing"})
	want("k", "E", vcas, true)
	want("other", "x", other, true)
	apply(mapCmd[string, string]{Op: mapClear})
	want("k", "", 0, false)
	if _, ok := casv("k", vcas, ptr("F")); ok {
		t.Fatal("a compare-exchange on a cleared key's version applied")
	}
	// The watch reports each set key's new version.
	recs, _, err := m.hist.since(0, 100)
	if err != nil || len(recs) == 0 {
		t.Fatalf("history: %d records, %v", len(recs), err)
	}
	inserts := 0
	for _, rec := range recs {
		for _, c := range rec.changes {
			if c.Op == OpInsert {
				inserts++
				if c.Version != rec.v {
					t.Fatalf("a change at %d reports version %d", rec.v, c.Version)
				}
			}
		}
	}
	if inserts < 5 {
		t.Fatalf("%d inserts in the history", inserts)
	}
}

// The version compare-exchange travels with its expected version; every
// other command encodes as four fields, as before per-key versions, so
// logs of older code decode and older code decodes them.
func TestMapCmdCodec(t *testing.T) {
	old := []byte{0x84, 0x01, 0x61, 'k', 0x61, 'v', 0xf6} // Insert("k", "v") as today's code writes it
	var c mapCmd[string, string]
	if err := rsm.Unmarshal(old, &c); err != nil || c.Op != mapInsert || c.Key != "k" || *c.Value != "v" || c.Version != 0 {
		t.Fatalf("an old command decodes as %+v, %v", c, err)
	}
	if b, err := rsm.Marshal(c); err != nil || !bytes.Equal(b, old) {
		t.Fatalf("an insert encodes as %x, %v; want %x", b, err, old)
	}
	cas := mapCmd[string, string]{Op: mapCASVersion, Key: "k", Value: ptr("v"), Version: 1 << 40}
	b, err := rsm.Marshal([]mapCmd[string, string]{cas, {Op: mapRemove, Key: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	var back []mapCmd[string, string]
	if err := rsm.Unmarshal(b, &back); err != nil || len(back) != 2 || back[0].Version != cas.Version || *back[0].Value != "v" || back[1].Key != "x" {
		t.Fatalf("decoded %+v, %v", back, err)
	}
	for _, bad := range [][]byte{{0x85}, {0x85, 0x05, 0x61, 'k', 0xf6, 0xf6, 0x3a}, {0x86, 0, 0, 0, 0, 0, 0}, {0x85, 0x05, 0x61, 'k', 0xf6, 0xf6, 0x1b, 1, 2, 3}} {
		var x mapCmd[string, string]
		if err := rsm.Unmarshal(bad, &x); err == nil {
			t.Fatalf("%x decoded as %+v", bad, x)
		}
	}
}

// Snapshots carry per-key versions and restore them exactly; a snapshot in
// the format before per-key versions (written by that code, kept in
// testdata) still restores, every key at the snapshot's version.
func TestMapKeyVersionSnapshot(t *testing.T) {
	m := newMapMachine[string, string](64)
	for i := range 3000 {
		applied(m, mapCmd[string, string]{Op: mapInsert, Key: fmt.Sprint("k", (i*7919)%1000), Value: ptr(strconv.Itoa(i % 3))}, fakeCtx(i+1))
		if i%10 == 0 {
			applied(m, mapCmd[string, string]{Op: mapRemove, Key: fmt.Sprint("k", i%1000)}, fakeCtx(i+1))
		}
	}
	b := persist(t, m)
	n := newMapMachine[string, string](64)
	if err := n.Restore(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(mapVersions(n), mapVersions(m)) || n.version() != m.version() {
		t.Fatal("restored per-key versions differ")
	}
	if !bytes.Equal(persist(t, n), b) {
		t.Fatal("a restored map's snapshot differs from the original")
	}

	old, err := os.ReadFile("testdata/map-v2.snapshot")
	if err != nil {
		t.Fatal(err)
	}
	o := newMapMachine[string, string](64)
	if err := o.Restore(bytes.NewReader(old)); err != nil {
		t.Fatalf("an old-format snapshot: %v", err)
	}
	wantOld := []kv[string, verEntry[string]]{{"alpha", verEntry[string]{"4", 6}}, {"delta", verEntry[string]{"5", 6}}, {"gamma", verEntry[string]{"3", 6}}}
	if got := mapVersions(o); !slices.Equal(got, wantOld) || o.version() != 6 {
		t.Fatalf("an old-format snapshot restores as %v at %d, want %v at 6", got, o.version(), wantOld)
	}
	// It goes on applying, and its own snapshot is in the new format.
	applied(o, mapCmd[string, string]{Op: mapCASVersion, Key: "alpha", Version: 6, Value: ptr("9")}, fakeCtx(7))
	if v, ver, _ := (mapReads[string, string]{m: o}).GetWithVersion("alpha"); v != "9" || ver != 7 {
		t.Fatalf("after a compare-exchange on the restored version: %q at %d", v, ver)
	}
	again := newMapMachine[string, string](64)
	if err := again.Restore(bytes.NewReader(persist(t, o))); err != nil || !slices.Equal(mapVersions(again), mapVersions(o)) {
		t.Fatalf("a re-persisted old snapshot: %v", err)
	}
}

// Hostile per-key versions are refused, and leave the machine as it was.
func TestMapKeyVersionSnapshotCorrupt(t *testing.T) {
	dst := newMapMachine[string, string](8)
	applied(dst, mapCmd[string, string]{Op: mapInsert, Key: "mine", Value: ptr("kept")}, fakeCtx(3))
	before := mapVersions(dst)
	field := func(b []byte) []byte { return append(binary.AppendUvarint(nil, uint64(len(b))), b...) }
	enc := func(x any) []byte {
		b, err := rsm.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		return field(b)
	}
	header := func(magic string, v Version, n int) []byte {
		return enc(snapshotHeader{Magic: magic, Version: v, Count: n})
	}
	rec := func(k string, ver []byte) []byte { return slices.Concat(enc(k), enc("v"), ver) }
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"version 0", slices.Concat(header(mapSnapshotMagic, 9, 1), rec("a", []byte{0}))},
		{"version above the snapshot's", slices.Concat(header(mapSnapshotMagic, 9, 1), rec("a", []byte{10}))},
		{"version missing", slices.Concat(header(mapSnapshotMagic, 9, 1), rec("a", nil))},
		{"version cut short", slices.Concat(header(mapSnapshotMagic, 1<<20, 1), rec("a", []byte{0x80, 0x80}))},
		{"version over 64 bits", slices.Concat(header(mapSnapshotMagic, 9, 1), rec("a", bytes.Repeat([]byte{0xff}, 11)))},
		{"second record bad", slices.Concat(header(mapSnapshotMagic, 9, 2), rec("a", []byte{3}), rec("b", []byte{11}))},
		{"old format with entries at version 0", slices.Concat(header(snapshotMagic, 0, 1), enc("a"), enc("v"))},
		{"huge count", slices.Concat(header(mapSnapshotMagic, 9, 1<<50), rec("a", []byte{3}))},
	} {
		if err := dst.Restore(bytes.NewReader(c.b)); err == nil {
			t.Fatalf("%s: restored", c.name)
		}
		if !slices.Equal(mapVersions(dst), before) {
			t.Fatalf("%s: a failed restore changed the machine", c.name)
		}
	}
	good := slices.Concat(header(mapSnapshotMagic, 9, 2), rec("a", []byte{9}), rec("b", []byte{1}))
	if err := dst.Restore(bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	if got := mapVersions(dst); len(got) != 2 || got[0].V.ver != 9 || got[1].V.ver != 1 {
		t.Fatalf("restored %v", got)
	}
}

// mapVersionReads is what wantVersions reads of a replica.
type mapVersionReads interface {
	GetWithVersion(string) (int, Version, bool)
	Version() Version
}

// wantVersions checks a replica's per-key versions against a model: every
// key in it at its version, a few others absent at version 0.
func wantVersions(t testing.TB, who string, m mapVersionReads, vers map[string]Version) {
	t.Helper()
	for k, want := range vers {
		if _, ver, ok := m.GetWithVersion(k); !ok || ver != want {
			t.Fatalf("%s at %d: %q at version %d, %v; model %d", who, m.Version(), k, ver, ok, want)
		}
	}
	for _, k := range []string{"\xffmissing", "k99"} {
		if _, ver, ok := m.GetWithVersion(k); ok || ver != 0 {
			t.Fatalf("%s: missing %q at version %d, %v", who, k, ver, ok)
		}
	}
}

// mapVersionsOf lists every key of a replica with its version, in key order.
func mapVersionsOf[V any](m interface {
	All() iter.Seq2[string, V]
	GetWithVersion(string) (V, Version, bool)
}) []kv[string, Version] {
	var out []kv[string, Version]
	for k := range m.All() {
		_, ver, _ := m.GetWithVersion(k)
		out = append(out, kv[string, Version]{k, ver})
	}
	return out
}

// On a cluster: the leader and a follower report the same per-key
// versions, a version compare-exchange is not fooled by A, B, A, and a
// reader that catches up from a snapshot, after the log was compacted,
// holds the same versions.
func TestMapKeyVersionsCluster(t *testing.T) {
	tn := newTestNet(t)
	w1 := openMapW[string, string](t, tn.node(), "kv", snapshotOpts()...)
	n2 := tn.node()
	w2 := openMapW[string, string](t, n2, "kv", snapshotOpts()...)
	online(t, w1, w2)
	leader, follower := w1, w2
	if id, ok := w1.Leader(); ok && id == n2.ID() {
		leader, follower = w2, w1
	}
	for _, w := range []*MapWriter[string, string]{leader, follower} {
		first := ok[Version](t)(w.Insert(tctx(t), "aba", "A"))
		ok[Version](t)(w.Insert(tctx(t), "aba", "B"))
		third := ok[Version](t)(w.Insert(tctx(t), "aba", "A"))
		if _, ver, _ := w.GetWithVersion("aba"); ver != third {
			t.Fatalf("the writer reads version %d after writing at %d", ver, third)
		}
		if _, applied, err := w.CompareVersionExchange(tctx(t), "aba", first, new("C")); err != nil || applied {
			t.Fatalf("a compare-exchange on the first A's version: applied %v, %v", applied, err)
		}
		v, applied, err := w.CompareVersionExchange(tctx(t), "aba", third, new("C"))
		if err != nil || !applied {
			t.Fatalf("a compare-exchange on the current version: applied %v, %v", applied, err)
		}
		if got, ver, _ := w.GetWithVersion("aba"); got != "C" || ver != v {
			t.Fatalf("after it: %q at %d, want C at %d", got, ver, v)
		}
		if _, applied, err := w.CompareVersionExchange(tctx(t), "aba", v, nil); err != nil || !applied {
			t.Fatalf("a removing compare-exchange: applied %v, %v", applied, err)
		}
	}
	fillMap(t, leader, 40_000) // ten log entries and more: the log is compacted
	for i := range 30 {
		w := []*MapWriter[string, string]{leader, follower}[i%2]
		ok[Version](t)(w.Insert(tctx(t), fmt.Sprintf("key-%08d", i*997), "again"))
	}
	reach(t, max(leader.Version(), follower.Version()), leader, follower)
	want := mapVersionsOf[string](leader)
	if got := mapVersionsOf[string](follower); !slices.Equal(got, want) {
		t.Fatal("the follower's per-key versions differ from the leader's")
	}
	r := openMapR[string, string](t, tn.node(), "kv", append(snapshotOpts(), WithHistory(1<<20))...)
	online(t, r)
	reach(t, leader.Version(), r)
	for _, err := range r.Watch(tctx(t), FromVersion(0)) {
		if !errors.Is(err, ErrCompacted) {
			t.Fatalf("the reader replayed the whole log (watch from 0: %v), not a snapshot", err)
		}
		break
	}
	if got := mapVersionsOf[string](r); !slices.Equal(got, want) {
		t.Fatal("a reader caught up by snapshot holds other per-key versions")
	}
	if _, ver, _ := r.GetWithVersion("key-00000997"); ver <= 40_000 {
		t.Fatalf("a key written after the fill is at version %d", ver)
	}
}
