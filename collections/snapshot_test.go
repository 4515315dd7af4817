package collections

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/rsm"
)

// persist writes m's snapshot to a buffer.
func persist(t testing.TB, m rsm.Snapshotter) []byte {
	t.Helper()
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	var buf bytes.Buffer
	if err := s.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func dumpMap[K comparable, V any](m *mapMachine[K, V]) string {
	return fmt.Sprint(m.version(), entries(mapReads[K, V]{m: m}.All()))
}

func dumpVec[T any](m *vecMachine[T]) string {
	return fmt.Sprint(m.version(), entries(vecReads[T]{m: m}.All()))
}

func dumpSet[T comparable](m *setMachine[T]) string {
	return fmt.Sprint(m.version(), slices.Collect(setReads[T]{m: m}.All()))
}

type snapPoint struct {
	X, Y int
	Tag  string
}

// Snapshot then Restore into a fresh machine gives the same state and
// version, for every machine type, and the restored machine goes on
// applying.
func TestSnapshotRoundTrip(t *testing.T) {
	t.Run("map", func(t *testing.T) {
		m := newMapMachine[string, int](64)
		idx := 0
		apply := func(c mapCmd[string, int]) { idx++; applied(m, c, fakeCtx(idx)) }
		for i := range 1000 {
			apply(mapCmd[string, int]{Op: mapInsert, Key: fmt.Sprintf("k%04d", (i*7919)%1000), Value: new(i)})
		}
		for i := range 100 {
			apply(mapCmd[string, int]{Op: mapRemove, Key: fmt.Sprintf("k%04d", i*3)})
		}
		apply(mapCmd[string, int]{Op: mapCAS, Key: "k0001", Expected: nil, Value: new(5)}) // does not apply
		b := persist(t, m)
		n := newMapMachine[string, int](64)
		if err := n.Restore(bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		if dumpMap(n) != dumpMap(m) {
			t.Fatal("restored map differs")
		}
		if !bytes.Equal(persist(t, n), b) {
			t.Fatal("the restored map's snapshot differs from the original")
		}
		applied(n, mapCmd[string, int]{Op: mapInsert, Key: "new", Value: new(1)}, fakeCtx(idx+1))
		if v, ok := (mapReads[string, int]{m: n}).Get("new"); !ok || v != 1 || n.version() != Version(idx+1) {
			t.Fatal("the restored map does not apply")
		}
	})
	t.Run("map of structs and bytes", func(t *testing.T) {
		m := newMapMachine[snapPoint, []byte](64)
		for i := range 200 {
			applied(m, mapCmd[snapPoint, []byte]{Op: mapInsert, Key: snapPoint{i % 13, -i, fmt.Sprint(i % 3)}, Value: new([]byte(fmt.Sprint(i)))}, fakeCtx(i+1))
		}
		n := newMapMachine[snapPoint, []byte](64)
		if err := n.Restore(bytes.NewReader(persist(t, m))); err != nil {
			t.Fatal(err)
		}
		if dumpMap(n) != dumpMap(m) {
			t.Fatal("restored map differs")
		}
	})
	t.Run("empty map", func(t *testing.T) {
		m := newMapMachine[int, int](64)
		n := newMapMachine[int, int](64)
		applied(n, mapCmd[int, int]{Op: mapInsert, Key: 1, Value: new(1)}, fakeCtx(1))
		if err := n.Restore(bytes.NewReader(persist(t, m))); err != nil {
			t.Fatal(err)
		}
		if dumpMap(n) != dumpMap(m) {
			t.Fatalf("restoring an empty snapshot gives %s", dumpMap(n))
		}
	})
	t.Run("vec", func(t *testing.T) {
		m := newVecMachine[string](64)
		idx := 0
		apply := func(c vecCmd[string]) { idx++; applied(m, c, fakeCtx(idx)) }
		for i := range 500 {
			apply(vecCmd[string]{Op: vecPushBack + uint8(i%2), Value: new(fmt.Sprint(i))})
		}
		apply(vecCmd[string]{Op: vecSwap, I: 3, J: 400})
		apply(vecCmd[string]{Op: vecRemove, I: 10})
		apply(vecCmd[string]{Op: vecInsert, I: 7, Value: new("ins")})
		apply(vecCmd[string]{Op: vecTruncate, I: 450})
		n := newVecMachine[string](64)
		if err := n.Restore(bytes.NewReader(persist(t, m))); err != nil {
			t.Fatal(err)
		}
		if dumpVec(n) != dumpVec(m) {
			t.Fatal("restored vector differs")
		}
		applied(n, vecCmd[string]{Op: vecPopFront}, fakeCtx(idx+1))
		if n.cur.Load().l.Len() != 449 {
			t.Fatal("the restored vector does not apply")
		}
	})
	t.Run("set", func(t *testing.T) {
		m := newSetMachine[int](64)
		for i := range 500 {
			op := setInsert
			if i%5 == 0 {
				op = setRemove
			}
			applied(m, setCmd[int]{Op: op, Value: (i * 31) % 97}, fakeCtx(i+1))
		}
		n := newSetMachine[int](64)
		if err := n.Restore(bytes.NewReader(persist(t, m))); err != nil {
			t.Fatal(err)
		}
		if dumpSet(n) != dumpSet(m) {
			t.Fatal("restored set differs")
		}
	})
}

// A corrupt or truncated snapshot gives an error, never a panic, and
// leaves the machine as it was.
func TestSnapshotCorrupt(t *testing.T) {
	src := newMapMachine[string, string](64)
	for i := range 50 {
		applied(src, mapCmd[string, string]{Op: mapInsert, Key: fmt.Sprint("key", i), Value: new(fmt.Sprint("value", i))}, fakeCtx(i+1))
	}
	good := persist(t, src)

	dst := newMapMachine[string, string](64)
	applied(dst, mapCmd[string, string]{Op: mapInsert, Key: "mine", Value: new("kept")}, fakeCtx(7))
	before := dumpMap(dst)
	restore := func(what string, b []byte) error {
		t.Helper()
		err := dst.Restore(bytes.NewReader(b))
		if err != nil && dumpMap(dst) != before {
			t.Fatalf("%s: a failed restore changed the machine to %.80s", what, dumpMap(dst))
		}
		return err
	}
	for n := range len(good) {
		if err := restore(fmt.Sprintf("truncated to %d of %d bytes", n, len(good)), good[:n]); err == nil {
			t.Fatalf("a snapshot truncated to %d of %d bytes restored without error", n, len(good))
		}
	}
	field := func(b []byte) []byte { return append(binary.AppendUvarint(nil, uint64(len(b))), b...) }
	header := func(h snapshotHeader) []byte {
		b, err := rsm.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		return field(b)
	}
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"nothing", nil},
		{"garbage", []byte("this is not a snapshot at all, not even CBOR \xff\xfe\xfd")},
		{"wrong magic", header(snapshotHeader{Magic: "something.else", Count: 0})},
		{"negative count", header(snapshotHeader{Magic: snapshotMagic, Count: -1})},
		{"count beyond the items", append(header(snapshotHeader{Magic: snapshotMagic, Version: 9, Count: 1 << 40}), good[len(header(snapshotHeader{Magic: snapshotMagic, Version: src.version(), Count: 50})):]...)},
		{"a CBOR string claiming 2^60 bytes", append(header(snapshotHeader{Magic: snapshotMagic, Count: 1}), field([]byte{0x7b, 0x10, 0, 0, 0, 0, 0, 0, 0})...)},
		{"a field claiming 2^60 bytes", append(header(snapshotHeader{Magic: snapshotMagic, Count: 1}), binary.AppendUvarint(nil, 1<<60)...)},
		{"a field one byte over the limit", append(header(snapshotHeader{Magic: snapshotMagic, Count: 1}), field(make([]byte, maxSnapshotField+1))...)},
		{"a key that is not UTF-8", append(header(snapshotHeader{Magic: snapshotMagic, Count: 1}), slices.Concat(field([]byte{0x62, 0xff, 0xfe}), field([]byte{0x60}))...)},
		{"a version 1 header", header(snapshotHeader{Magic: "mosaik.collection.v1", Count: 0})},
		{"items of another type", persist(t, func() *vecMachine[int] {
			m := newVecMachine[int](4)
			applied(m, vecCmd[int]{Op: vecPushBack, Value: new(1)}, fakeCtx(1))
			return m
		}())},
	} {
		if err := restore(c.name, c.b); err == nil {
			t.Fatalf("%s: restored without error", c.name)
		}
	}
	// Flipped bytes: an error or a state, never a panic.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := slices.Clone(good)
		for range 1 + rng.IntN(3) {
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		}
		m := newMapMachine[string, string](4)
		_ = m.Restore(bytes.NewReader(b))
	}
	// Vec and Set refuse truncation too.
	vec := newVecMachine[string](4)
	set := newSetMachine[string](4)
	for i := range 20 {
		applied(vec, vecCmd[string]{Op: vecPushBack, Value: new(fmt.Sprint(i))}, fakeCtx(i+1))
		applied(set, setCmd[string]{Op: setInsert, Value: fmt.Sprint(i)}, fakeCtx(i+1))
	}
	vb, sb := persist(t, vec), persist(t, set)
	for n := range len(vb) {
		if err := newVecMachine[string](4).Restore(bytes.NewReader(vb[:n])); err == nil {
			t.Fatalf("a vector snapshot truncated to %d of %d bytes restored", n, len(vb))
		}
	}
	for n := range len(sb) {
		if err := newSetMachine[string](4).Restore(bytes.NewReader(sb[:n])); err == nil {
			t.Fatalf("a set snapshot truncated to %d of %d bytes restored", n, len(sb))
		}
	}
}

// snapshotOpts makes the log compact after a few entries. Extend puts up to
// groups.MaxBatchCommands commands in one log entry, so 100,000 entries
// make only about 25 log entries: the threshold must be below that. Raft
// checks the threshold every SnapshotInterval.
const snapshotThreshold = 8

func snapshotOpts() []Option {
	cfg := testGroupConfig()
	cfg.SnapshotThreshold = snapshotThreshold
	cfg.TrailingLogs = 4
	cfg.SnapshotInterval = 50 * time.Millisecond
	return []Option{WithGroupConfig(cfg)}
}

func fillMap(t testing.TB, w *MapWriter[string, string], n int) {
	t.Helper()
	ctx := ctxT(t, 60*time.Second)
	ok[Version](t)(w.Extend(ctx, func(yield func(string, string) bool) {
		for i := range n {
			if !yield(fmt.Sprintf("key-%08d", i), fmt.Sprintf("value-%d", i*i)) {
				return
			}
		}
	}))
}

// A late reader catches up a map of 100,000 entries: online and at the
// writer's version, holding every entry. How fast is BenchmarkMapCatchUp1M's
// business; the deadline here only bounds a hang, so a busy machine passes.
func TestMapLateReaderCatchesUp(t *testing.T) {
	const n = 100_000
	tn := newTestNet(t)
	w := openMapW[string, string](t, tn.node(), "big", snapshotOpts()...)
	online(t, w)
	fillMap(t, w, n)
	v := w.Version()
	rn := tn.node()
	start := time.Now()
	r := openMapR[string, string](t, rn, "big", snapshotOpts()...)
	ctx := ctxT(t, 60*time.Second)
	if err := r.When().Online(ctx); err != nil {
		t.Fatalf("online after %v: %v", time.Since(start), err)
	}
	if err := r.When().Reaches(ctx, v); err != nil {
		t.Fatalf("at version %d of %d after %v: %v", r.Version(), v, time.Since(start), err)
	}
	took := time.Since(start)
	t.Logf("a reader caught up %d entries in %v (%.0f keys/s)", n, took, n/took.Seconds())
	if r.Len() != n || r.Version() != w.Version() {
		t.Fatalf("reader holds %d entries at version %d; writer %d at %d", r.Len(), r.Version(), w.Len(), w.Version())
	}
	wi := entries(w.All())
	ri := entries(r.All())
	if !slices.Equal(wi, ri) {
		t.Fatal("the reader's entries differ from the writer's")
	}
}

// With a snapshot threshold far below the log's length, the log is
// compacted and a late reader catches up from a snapshot, not by replaying
// the whole log. A replica restored from a snapshot keeps no changes from
// before it, so a watch from version 0 (with enough history kept to hold
// every change otherwise) reports ErrCompacted exactly when the reader was
// restored from a snapshot.
func TestMapLateReaderUsesSnapshot(t *testing.T) {
	tn := newTestNet(t)
	w := openMapW[string, string](t, tn.node(), "big", snapshotOpts()...)
	online(t, w)
	fillMap(t, w, 40_000) // ten log entries
	for i := range 20 {   // and twenty more
		ok[Version](t)(w.Insert(tctx(t), fmt.Sprint("more", i), "x"))
	}
	r := openMapR[string, string](t, tn.node(), "big", append(snapshotOpts(), WithHistory(1<<20))...)
	online(t, r)
	reach(t, w.Version(), r)
	for _, err := range r.Watch(tctx(t), FromVersion(0)) {
		if !errors.Is(err, ErrCompacted) {
			t.Fatalf("the reader replayed the whole log (watch from 0: %v): the log was never compacted", err)
		}
		break
	}
}

// The fast paths of writeField and readField agree with CBOR: a field holds
// exactly what rsm.Marshal makes of the value, and reads back as
// rsm.Unmarshal reads it, also for forms only a decoder would accept.
func TestSnapshotFieldsMatchCBOR(t *testing.T) {
	var values []any
	for _, n := range []int{0, 1, 23, 24, 255, 256, 65535, 65536} {
		values = append(values, strings.Repeat("x", n), bytes.Repeat([]byte{7}, n))
	}
	values = append(values, "héllo, 世界", []byte(nil), []byte{}, 42, -7, snapPoint{1, 2, "p"}, []string{"a", ""}, map[string]int{"a": 1})
	for _, x := range values {
		want, err := rsm.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		switch x := x.(type) {
		case string:
			got = roundTripField(t, x)
		case []byte:
			got = roundTripField(t, x)
		case int:
			got = roundTripField(t, x)
		case snapPoint:
			got = roundTripField(t, x)
		case []string:
			got = roundTripField(t, x)
		case map[string]int:
			got = roundTripField(t, x)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%T %.20v: field % x, CBOR % x", x, x, got[:min(len(got), 12)], want[:min(len(want), 12)])
		}
	}
	// Forms the fast paths do not take, read as a decoder reads them.
	for _, raw := range [][]byte{
		{0x7f, 0x61, 'a', 0x61, 'b', 0xff}, // indefinite-length text
		{0x5f, 0x41, 1, 0x41, 2, 0xff},     // indefinite-length bytes
		{0xf6},                             // null
		{0x62, 0xff, 0xfe},                 // text that is not UTF-8
		{0x78, 1, 'a'},                     // a longer head than needed
		{0x63, 'a'},                        // text shorter than its head says
		{0x41, 1, 2},                       // bytes followed by more
		{0x01},                             // an integer
	} {
		compareRead[string](t, raw)
		compareRead[[]byte](t, raw)
	}
}

// roundTripField writes x as a field, checks that it reads back as CBOR
// would decode it, and returns the field's CBOR.
func roundTripField[T any](t *testing.T, x T) []byte {
	t.Helper()
	var buf bytes.Buffer
	sw := &snapshotWriter{bw: bufio.NewWriter(&buf)}
	if err := writeField(sw, x); err != nil {
		t.Fatal(err)
	}
	if err := sw.bw.Flush(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	n, k := binary.Uvarint(b)
	if k <= 0 || int(n) != len(b)-k {
		t.Fatalf("%T: field length %d in %d bytes", x, n, len(b))
	}
	compareRead[T](t, b[k:])
	return b[k:]
}

// compareRead reads raw as a field into a T and as CBOR into another, and
// fails unless both give the same value or both fail.
func compareRead[T any](t *testing.T, raw []byte) {
	t.Helper()
	var got, want T
	sr := &snapshotReader{br: bufio.NewReader(bytes.NewReader(append(binary.AppendUvarint(nil, uint64(len(raw))), raw...)))}
	gotErr := readField(sr, &got)
	wantErr := rsm.Unmarshal(raw, &want)
	if (gotErr == nil) != (wantErr == nil) || (gotErr == nil && !reflect.DeepEqual(got, want)) {
		t.Errorf("% x into %T: field gives %#v (%v), CBOR %#v (%v)", raw[:min(len(raw), 12)], got, got, gotErr, want, wantErr)
	}
}

// Apply takes a value over MaxValueSize (only the writer handles check it),
// and a snapshot of that state restores.
func TestSnapshotOfOversizeValue(t *testing.T) {
	m := newMapMachine[string, []byte](64)
	applied(m, mapCmd[string, []byte]{Op: mapInsert, Key: "k", Value: new(make([]byte, MaxValueSize+1))}, fakeCtx(1))
	if _, ok := (mapReads[string, []byte]{m: m}).Get("k"); !ok {
		t.Fatal("not applied")
	}
	b := persist(t, m)
	n := newMapMachine[string, []byte](64)
	if err := n.Restore(bytes.NewReader(b)); err != nil {
		t.Fatalf("a state Apply accepted does not restore: %v", err)
	}
}

// A snapshot whose keys are out of order or repeated restores as the editor
// would have built it (the last value of a key wins).
func TestRestoreUnordered(t *testing.T) {
	rng := seededRand(t, "unordered restore")
	for _, n := range []int{0, 1, 33, 1000, 40000} {
		keys := make([]int, n)
		for i := range keys {
			keys[i] = i * 2
		}
		// ascending prefix, then random
		cut := rng.IntN(n + 1)
		for i := cut; i < n; i++ {
			keys[i] = rng.IntN(3 * n)
		}
		var buf bytes.Buffer
		if err := writeSnapshot(&buf, 7, n, func(sw *snapshotWriter) error {
			for i, k := range keys {
				if err := writeField(sw, k); err != nil {
					return err
				}
				if err := writeField(sw, i); err != nil {
					return err
				}
				sw.records++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		model := map[int]int{}
		for i, k := range keys {
			model[k] = i
		}
		m := newMapMachine[int, int](8)
		if err := m.Restore(&buf); err != nil {
			t.Fatal(err)
		}
		st := m.cur.Load()
		if err := btreeCheck(st.m.cmp, st.m.root, st.m.Len()); err != nil {
			t.Fatalf("n=%d cut=%d: %v", n, cut, err)
		}
		if err := btreeSame(st.m, btreeSorted(model), nil); err != nil {
			t.Fatalf("n=%d cut=%d: %v", n, cut, err)
		}
		m.closeIndex()
	}
}

// Writing a string or byte slice field allocates nothing: a snapshot of a
// large map costs no garbage per entry.
func TestSnapshotFieldWritesDoNotAllocate(t *testing.T) {
	sw := &snapshotWriter{bw: bufio.NewWriter(io.Discard)}
	k, v := "0000000000000001", make([]byte, 100)
	if n := testing.AllocsPerRun(1000, func() { _ = writeField(sw, k); _ = writeField(sw, v) }); n != 0 {
		t.Fatalf("%v allocations per record", n)
	}
}

// TestSnapshotCorruptLength: a field whose length says a megabyte but whose
// bytes stop short fails, and the restore allocated as the bytes came, not
// as the length said.
func TestSnapshotCorruptLength(t *testing.T) {
	var buf bytes.Buffer
	sw := &snapshotWriter{bw: bufio.NewWriter(&buf)}
	if err := writeField(sw, snapshotHeader{Magic: snapshotMagic, Version: 7, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if err := sw.bw.Flush(); err != nil {
		t.Fatal(err)
	}
	b := binary.AppendUvarint(buf.Bytes(), maxSnapshotField) // a field of the largest length
	b = append(b, make([]byte, 100)...)                      // of which 100 bytes came
	for _, kind := range []string{"map", "vec", "set"} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var err error
		switch kind {
		case "map":
			err = newMapMachine[string, []byte](4).Restore(bytes.NewReader(b))
		case "vec":
			err = newVecMachine[[]byte](4).Restore(bytes.NewReader(b))
		case "set":
			err = newSetMachine[string](4).Restore(bytes.NewReader(b))
		}
		runtime.ReadMemStats(&after)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: restore of a cut field: %v, want %v", kind, err, io.ErrUnexpectedEOF)
		}
		got := after.TotalAlloc - before.TotalAlloc
		if got > 512<<10 {
			t.Errorf("%s: restore allocated %d bytes for %d bytes of snapshot", kind, got, len(b))
		}
		t.Logf("%s: restore allocated %d bytes (its reader's buffer is 256 KiB)", kind, got)
	}
}
