package collections

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/internal/logtest"
	"github.com/mosaik-go/mosaik/rsm"
)

type pqMachineT = pqMachine[int, string, string]

// pqFilled returns a machine holding n entries, of priorities that repeat.
func pqFilled(t testing.TB, n, capacity int) *pqMachineT {
	m := newPQMachine[int, string, string](64, capacity)
	t.Cleanup(m.closeIndex)
	for i := range n {
		applied(m, pqCmd[int, string, string]{Op: pqInsert, Priority: new(i % 7), Key: fmt.Sprint("key", i), Value: new(fmt.Sprint("value", i))}, fakeCtx(i+1))
	}
	return m
}

func dumpPQ(m *pqMachineT) string {
	return fmt.Sprint(m.version(), slices.Collect(pqReads[int, string, string]{m: m}.All()))
}

// A snapshot restores to the same entries, version and key index, and is
// the same bytes again.
func TestPQSnapshotRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 300} {
		src := pqFilled(t, n, 0)
		b := snapshotBytes(t, src)
		dst := newPQMachine[int, string, string](64, 0)
		t.Cleanup(dst.closeIndex)
		if err := dst.Restore(bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		if dumpPQ(dst) != dumpPQ(src) {
			t.Fatalf("%d entries: restored %s\nfrom %s", n, dumpPQ(dst), dumpPQ(src))
		}
		if !bytes.Equal(snapshotBytes(t, dst), b) {
			t.Fatalf("%d entries: the restored snapshot differs", n)
		}
		r := pqReads[int, string, string]{m: dst}
		for i := range n {
			if v, p, ok := r.Get(fmt.Sprint("key", i)); !ok || p != i%7 || v != fmt.Sprint("value", i) {
				t.Fatalf("restored Get(key%d) = %q, %d, %v", i, v, p, ok)
			}
		}
		// The restored machine applies on: a pop takes the first entry.
		if n > 0 {
			r := applied(dst, pqCmd[int, string, string]{Op: pqPopMin}, fakeCtx(n+1))
			if es, _ := replyEntry[int, string, string](r); len(es) != 1 || es[0].Key != "key0" {
				t.Fatalf("the first pop after a restore took %+v", es)
			}
		}
	}
}

// A snapshot that is damaged, out of order, holds a key twice or more
// entries than the capacity is refused and changes nothing.
func TestPQSnapshotCorrupt(t *testing.T) {
	good := snapshotBytes(t, pqFilled(t, 40, 0))
	dst := pqFilled(t, 3, 10)
	before := dumpPQ(dst)
	restore := func(what string, b []byte) {
		t.Helper()
		err := dst.Restore(bytes.NewReader(b))
		if err == nil {
			t.Fatalf("%s: restored without error", what)
		}
		if dumpPQ(dst) != before {
			t.Fatalf("%s: a failed restore (%v) changed the machine to %s", what, err, dumpPQ(dst))
		}
	}
	for n := range len(good) {
		restore(fmt.Sprintf("truncated to %d of %d bytes", n, len(good)), good[:n])
	}
	field := func(x any) []byte {
		b, err := rsm.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
	}
	snap := func(v Version, count int, recs ...pqE) []byte {
		b := field(snapshotHeader{Magic: pqSnapshotMagic, Version: v, Count: count})
		for _, e := range recs {
			b = slices.Concat(b, field(e.Priority), field(e.Key), field(fmt.Sprint(e.Value)))
		}
		return b
	}
	a, b, c := pqE{1, "a", 1}, pqE{2, "b", 2}, pqE{3, "c", 3}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"nothing", nil},
		{"another magic", append(field(snapshotHeader{Magic: cellSnapshotMagic, Version: 2}), good[len(field(snapshotHeader{Magic: pqSnapshotMagic, Version: 40, Count: 40})):]...)},
		{"a map's snapshot", snapshotBytes(t, bigMapMachine(t, 3))},
		{"out of order", snap(9, 3, a, c, b)},
		{"equal places", snap(9, 2, a, a)},
		{"a key twice", snap(9, 2, a, pqE{5, "a", 5})},
		{"over the capacity", snap(99, 11, slices.Collect(func(yield func(pqE) bool) {
			for i := range 11 {
				yield(pqE{i, fmt.Sprint(i), i})
			}
		})...)},
		{"entries at version 0", snap(0, 1, a)},
		{"negative count", snap(9, -1)},
		{"count beyond the entries", snap(9, 4, a, b, c)},
		{"a priority of another type", slices.Concat(field(snapshotHeader{Magic: pqSnapshotMagic, Version: 9, Count: 1}), field("x"), field("a"), field("v"))},
		{"a field claiming 2^60 bytes", append(field(snapshotHeader{Magic: pqSnapshotMagic, Version: 9, Count: 1}), binary.AppendUvarint(nil, 1<<60)...)},
	} {
		restore(tc.name, tc.b)
	}
	// A snapshot at the capacity restores.
	if err := dst.Restore(bytes.NewReader(snap(9, 3, a, b, c))); err != nil {
		t.Fatal(err)
	}
	// Flipped bytes: an error or a state, never a panic.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := slices.Clone(good)
		for range 1 + rng.IntN(3) {
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		}
		m := newPQMachine[int, string, string](4, 0)
		_ = m.Restore(bytes.NewReader(b))
	}
}

// Commands no writer sends (missing fields, unknown ops) change nothing
// and panic nowhere.
func TestPQHostileCommands(t *testing.T) {
	m := pqFilled(t, 5, 0)
	entries := func() string { return fmt.Sprint(slices.Collect(pqReads[int, string, string]{m: m}.All())) }
	before := entries()
	for i, c := range []pqCmd[int, string, string]{
		{Op: pqInsert, Key: "x"}, {Op: pqInsert, Key: "x", Priority: new(1)}, {Op: pqInsert, Key: "x", Value: new("v")},
		{Op: pqUpdatePriority, Key: "key1"}, {Op: pqUpdateValue, Key: "key1"}, {Op: pqCAS, Key: "key1", Value: new("v")},
		{Op: pqRemoveRange, Lo: new(5), Hi: new(1)}, {Op: pqRemoveRange, Lo: new(3), Hi: new(3), Ends: pqLoExcl},
		{Op: pqRemoveRange, Lo: new(3), Hi: new(3), Ends: 0xff}, {Op: 0}, {Op: 200, Key: "key1"},
	} {
		if r := applied(m, c, fakeCtx(100+i)); r.Value != nil {
			t.Fatalf("command %d %+v replied %+v", i, c, r)
		}
	}
	if entries() != before {
		t.Fatalf("hostile commands changed the entries from %s to %s", before, entries())
	}
	if m.version() != 110 {
		t.Fatalf("version %d after the commands", m.version())
	}
}

var fuzzPQSeed = []pqCmd[int, string, string]{
	{Op: pqInsert, Key: "a", Priority: new(3), Value: new("x")}, {Op: pqInsert, Key: "b", Priority: new(1), Value: new("y")},
	{Op: pqInsert, Key: "c", Priority: new(3), Value: new("z")},
}

// fuzzPQMachine is a bounded queue, so that inputs evict too.
func fuzzPQMachine(history int) *pqMachineT { return newPQMachine[int, string, string](history, 4) }

func FuzzPQueueApply(f *testing.F) {
	for _, cmds := range [][]pqCmd[int, string, string]{fuzzPQSeed, {
		{Op: pqInsert, Key: "d", Priority: new(0), Value: new("w")}, {Op: pqInsert, Key: "e", Priority: new(9), Value: new("v")},
		{Op: pqUpdatePriority, Key: "a", Priority: new(-1)}, {Op: pqUpdateValue, Key: "b", Value: new("u")},
		{Op: pqCAS, Key: "c", Expected: new("z"), Value: new("t")}, {Op: pqCAS, Key: "c", Expected: new("t")},
		{Op: pqRemoveRange, Lo: new(1), Hi: new(5), Ends: pqHiExcl}, {Op: pqPopMax}, {Op: pqPopMin}, {Op: pqPopMin},
		{Op: pqRemove, Key: "zz"}, {Op: pqClear}, {Op: 99},
	}} {
		f.Add(must[[]byte](f)(rsm.Marshal(cmds)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzApply(t, data, fuzzPQMachine, fuzzPQSeed)
	})
}

func FuzzPQueueRestore(f *testing.F) {
	m := fuzzPQMachine(8)
	for i, c := range fuzzPQSeed {
		applied(m, c, fakeCtx(i+1))
	}
	f.Add(snapshotBytes(f, m))
	f.Add(snapshotBytes(f, fuzzPQMachine(8)))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRestore(t, data, fuzzPQMachine, fuzzPQSeed)
	})
}

// Queues of one name with different capacities are different
// collections: each comes online alone and warns of the other, naming
// both capacities.
func TestPQCapacityMismatch(t *testing.T) {
	tn := newTestNet(t)
	l1, l2 := logtest.New(), logtest.New()
	w1 := openPQW[int, string, string](t, tn.node(), "bounded", WithCapacity(10), logged(l1))
	w2 := openPQW[int, string, string](t, tn.node(), "bounded", WithCapacity(20), logged(l2))
	online(t, w1, w2)
	for _, l := range []*logtest.Log{l1, l2} {
		trWait(t, 15*time.Second, "a warning", func() bool {
			return len(l.Find(slog.LevelWarn, "with other settings", "capacity=10", "capacity=20")) > 0
		})
	}
	r := openPQR[int, string, string](t, tn.node(), "bounded")
	trWait(t, 15*time.Second, "the reader to hear both", func() bool { return len(r.g.Status().Mismatches) == 2 })
	err := r.When().Online(ctxT(t, time.Second))
	if no := notOnline(t, err); no.Reason != groups.ReasonMismatch {
		t.Fatalf("reason %v", no.Reason)
	}
	if !strings.Contains(err.Error(), "capacity=10") {
		t.Fatalf("error %q does not name the capacity", err)
	}
	if w1.Capacity() != 10 || r.Capacity() != 0 {
		t.Fatalf("capacities %d, %d", w1.Capacity(), r.Capacity())
	}
}

// WithCapacity belongs to a PriorityQueue only.
func TestWithCapacityElsewhere(t *testing.T) {
	tn := newTestNet(t)
	if _, err := NewMapWriter[string, int](tn.node(), "m", WithCapacity(3)); err == nil {
		t.Fatal("a map opened with a capacity")
	}
	if _, err := NewPriorityQueueWriter[int, string, int](tn.node(), "q", WithCapacity(0)); err == nil {
		t.Fatal("a queue opened with capacity 0")
	}
}

// A late reader of a queue whose log was compacted catches up from the
// queue's snapshot, not by replaying the log.
func TestPQLateReaderUsesSnapshot(t *testing.T) {
	tn := newTestNet(t)
	w := openPQW[int, string, string](t, tn.node(), "q", append(snapshotOpts(), WithCapacity(30))...)
	online(t, w)
	n := writeUntilSnapshot(t, w.handle, func(i int) error {
		_, _, err := w.Insert(tctx(t), i%11, fmt.Sprint("key", i), fmt.Sprint("value", i))
		return err
	})
	if _, _, err := w.PopMin(tctx(t)); err != nil {
		t.Fatal(err)
	}
	r := openPQR[int, string, string](t, tn.node(), "q", append(snapshotOpts(), WithHistory(1<<20), WithCapacity(30))...)
	restoredLate(t, w, r, r.Watch)
	want, got := slices.Collect(w.All()), slices.Collect(r.All())
	if len(want) != min(n, 30)-1 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after %d inserts the late reader holds %d entries\n%v\nthe writer %d\n%v", n, len(got), got, len(want), want)
	}
	for _, e := range want {
		if v, p, ok := r.Get(e.Key); !ok || v != e.Value || p != e.Priority {
			t.Fatalf("the late reader's Get(%q) = %q, %d, %v", e.Key, v, p, ok)
		}
	}
}

// Watch reports each write's changes: inserts and moves as inserts, every
// removal (a pop, an eviction) with the entry removed, and no event for a
// write that changed nothing (an insert that evicted itself).
func TestPQWatch(t *testing.T) {
	ws, rs := pqNodes(t, 1, 1, WithCapacity(2))
	w, r := ws[0], rs[0]
	start := ins(t, w, 10, 1, 100, r)
	ctx, cancel := context.WithCancel(tctx(t))
	defer cancel()
	events := watchEvents(r.Watch(ctx, WithInitial()))
	ins(t, w, 5, 2, 200)
	ins(t, w, 7, 3, 300) // full: (5, 2) goes
	ins(t, w, 1, 4, 400) // full, and the lowest: itself, no change
	updated(t, "UpdatePriority(1, 20)", true)(w.UpdatePriority(tctx(t), 1, 20))
	wrote(t, must[Version](t)(w.Remove(tctx(t), 99)), nil)
	if _, _, err := w.PopMin(tctx(t)); err != nil {
		t.Fatal(err)
	}
	wrote(t, must[Version](t)(w.Clear(tctx(t))), nil)
	want := []string{"initial [{insert 10 1 100}]", "caught-up []", "changed [{insert 5 2 200}]",
		"changed [{remove 5 2 200} {insert 7 3 300}]", "changed [{insert 20 1 100}]", "changed [{remove 7 3 300}]", "changed [{clear 0 0 0}]"}
	wantEvents(t, events, want...)
	// Resuming after the first insert reports the same changes.
	var resumed []string
	for e, err := range r.Watch(tctx(t), FromVersion(start)) {
		if err != nil {
			t.Fatal(err)
		}
		resumed = append(resumed, fmt.Sprintf("%v %v", e.Kind, e.Changes))
		if len(resumed) == len(want)-2 {
			break
		}
	}
	if fmt.Sprint(resumed) != fmt.Sprint(want[2:]) {
		t.Fatalf("resumed watch: %v", resumed)
	}
}
