package storage

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

var testConfiguration = raft.Configuration{Servers: []raft.Server{
	{Suffrage: raft.Voter, ID: "a", Address: "a"},
	{Suffrage: raft.Nonvoter, ID: "b", Address: "b"},
}}

// writeSnapshot stores n pattern bytes as a snapshot at index and returns
// its id and the SHA-256 of its content.
func writeSnapshot(t testing.TB, s raft.SnapshotStore, index uint64, seed byte, n int64, piece int) (string, []byte) {
	t.Helper()
	sink, err := s.Create(1, index, 2, testConfiguration, index-1, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := newPattern(seed, n, piece)
	buf := make([]byte, piece)
	if _, err := io.CopyBuffer(struct{ io.Writer }{sink}, p, buf); err != nil {
		sink.Cancel()
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	return sink.ID(), p.sum.Sum(nil)
}

func readAll(t testing.TB, s raft.SnapshotStore, id string) (*raft.SnapshotMeta, []byte, error) {
	t.Helper()
	meta, rc, err := s.Open(id)
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	h := sha256.New()
	_, err = io.CopyBuffer(h, struct{ io.Reader }{rc}, make([]byte, 100_000))
	return meta, h.Sum(nil), err
}

func TestSnapshotRoundTrip(t *testing.T) {
	db, _ := memDB(t, &Options{SnapshotChunkSize: 4096})
	s := stores(t, db, groupID(1)).Snapshots
	if list, err := s.List(); err != nil || len(list) != 0 {
		t.Fatalf("List on a fresh store = %v, %v", list, err)
	}
	for _, size := range []int64{0, 1, 4095, 4096, 4097, 3*4096 + 17} {
		id, sum := writeSnapshot(t, s, 100+uint64(size), byte(size), size, 1000)
		meta, got, err := readAll(t, s, id)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !bytes.Equal(got, sum) {
			t.Fatalf("size %d: content differs", size)
		}
		if meta.ID != id || meta.Size != size || meta.Index != 100+uint64(size) || meta.Term != 2 ||
			meta.Version != 1 || meta.ConfigurationIndex != meta.Index-1 || len(meta.Configuration.Servers) != 2 ||
			meta.Configuration.Servers[1] != testConfiguration.Servers[1] {
			t.Fatalf("size %d: meta %+v", size, meta)
		}
	}
	if _, err := s.Create(0, 1, 1, testConfiguration, 1, nil); err == nil {
		t.Fatal("Create of snapshot version 0 succeeded")
	}
	if _, _, err := s.Open("1-2-999"); !errors.Is(err, ErrSnapshotNotFound) {
		t.Fatalf("Open of an unknown id: %v", err)
	}
	if _, _, err := s.Open("nonsense"); !errors.Is(err, ErrSnapshotNotFound) {
		t.Fatalf("Open of a malformed id: %v", err)
	}
}

func TestSnapshotRetentionAndCancel(t *testing.T) {
	db, _ := memDB(t, &Options{SnapshotChunkSize: 4096, RetainSnapshots: 2})
	st := stores(t, db, groupID(1))
	s := st.Snapshots
	var ids []string
	for i := range 4 {
		id, _ := writeSnapshot(t, s, uint64(10*(i+1)), byte(i), 20_000, 3000)
		ids = append(ids, id)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != ids[3] || list[1].ID != ids[2] {
		t.Fatalf("List after 4 snapshots, keeping 2: %v", metaIDs(list))
	}
	for _, id := range ids[:2] {
		if _, _, err := s.Open(id); !errors.Is(err, ErrSnapshotNotFound) {
			t.Fatalf("pruned snapshot %s opens: %v", id, err)
		}
	}
	v := st.Log.(*view)
	if n := countChunks(t, v); n != 2*5 {
		t.Fatalf("%d chunk keys left, want 10", n)
	}
	// Cancel leaves nothing behind.
	sink, err := s.Create(1, 99, 3, testConfiguration, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(sink, newPattern(9, 50_000, 5000)); err != nil {
		t.Fatal(err)
	}
	if err := sink.Cancel(); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(); len(list) != 2 {
		t.Fatalf("a cancelled snapshot is listed: %v", metaIDs(list))
	}
	if n := countChunks(t, v); n != 10 {
		t.Fatalf("cancel left chunks: %d", n)
	}
}

func metaIDs(list []*raft.SnapshotMeta) []string {
	var out []string
	for _, m := range list {
		out = append(out, m.ID)
	}
	return out
}

func countChunks(t testing.TB, v *view) int {
	t.Helper()
	it, err := v.db.pdb.NewIter(&pebble.IterOptions{LowerBound: v.chunkLo, UpperBound: v.chunkHi})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n
}

// A snapshot whose writer died before Close is not listed, and its chunks
// go away when the group's stores are next handed out.
func TestSnapshotUnfinishedIsDropped(t *testing.T) {
	db, _ := memDB(t, &Options{SnapshotChunkSize: 4096})
	st, err := db.Stores(groupID(1))
	if err != nil {
		t.Fatal(err)
	}
	writeSnapshot(t, st.Snapshots, 5, 1, 10_000, 1000)
	sink, err := st.Snapshots.Create(1, 10, 1, testConfiguration, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(sink, newPattern(2, 3<<20, 1<<16)); err != nil {
		t.Fatal(err)
	}
	// The sink is abandoned: no Close, no Cancel.
	if n := countChunks(t, st.Log.(*view)); n <= 3 {
		t.Fatalf("expected committed chunks of the unfinished snapshot, have %d", n)
	}
	st.Release()
	st = stores(t, db, groupID(1))
	list, err := st.Snapshots.List()
	if err != nil || len(list) != 1 || list[0].Index != 5 {
		t.Fatalf("List = %v, %v", metaIDs(list), err)
	}
	if n := countChunks(t, st.Log.(*view)); n != 3 {
		t.Fatalf("%d chunk keys after reopening, want the finished snapshot's 3", n)
	}
	// New snapshots never reuse the abandoned one's number.
	id, _ := writeSnapshot(t, st.Snapshots, 20, 3, 100, 100)
	if seq, _ := snapshotSeq(id); seq != 2 {
		t.Fatalf("new snapshot %s, want number 2", id)
	}
}

func TestSnapshotCorruption(t *testing.T) {
	const chunk = 4096
	setup := func(t *testing.T) (*DB, *view, raft.SnapshotStore, string) {
		db, _ := memDB(t, &Options{SnapshotChunkSize: chunk})
		st := stores(t, db, groupID(1))
		id, _ := writeSnapshot(t, st.Snapshots, 10, 1, 5*chunk+100, 777)
		return db, st.Log.(*view), st.Snapshots, id
	}
	seqOf := func(id string) uint64 { s, _ := snapshotSeq(id); return s }
	deleteKey := func(t *testing.T, db *DB, key []byte) {
		b := db.pdb.NewBatch()
		defer b.Close()
		b.Delete(key, nil)
		if err := db.commit(b, db.wo); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("chunk bit flip", func(t *testing.T) {
		db, v, s, id := setup(t)
		corruptKey(t, db, v.chunkKey(nil, seqOf(id), 2), func(b []byte) []byte { b[100] ^= 1; return b })
		_, rc, err := s.Open(id)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		n, err := io.Copy(io.Discard, rc)
		if !isCorrupt(err) {
			t.Fatalf("read: %v, want ErrCorrupt", err)
		}
		if n != 2*chunk {
			t.Fatalf("read handed out %d bytes, want only the %d of the good chunks", n, 2*chunk)
		}
		t.Logf("error reads: %v", err)
		// The error sticks.
		if _, err := rc.Read(make([]byte, 10)); !isCorrupt(err) {
			t.Fatalf("second read: %v", err)
		}
	})
	t.Run("chunk missing", func(t *testing.T) {
		db, v, s, id := setup(t)
		deleteKey(t, db, v.chunkKey(nil, seqOf(id), 3))
		_, _, err := readAll(t, s, id)
		if !isCorrupt(err) {
			t.Fatalf("read: %v, want ErrCorrupt", err)
		}
		t.Logf("error reads: %v", err)
	})
	t.Run("last chunk missing", func(t *testing.T) {
		db, v, s, id := setup(t)
		deleteKey(t, db, v.chunkKey(nil, seqOf(id), 5))
		_, _, err := readAll(t, s, id)
		if !isCorrupt(err) {
			t.Fatalf("read: %v, want ErrCorrupt", err)
		}
		t.Logf("error reads: %v", err)
	})
	t.Run("chunk truncated", func(t *testing.T) {
		db, v, s, id := setup(t)
		corruptKey(t, db, v.chunkKey(nil, seqOf(id), 1), func(b []byte) []byte { return b[:3] })
		if _, _, err := readAll(t, s, id); !isCorrupt(err) {
			t.Fatalf("read: %v, want ErrCorrupt", err)
		}
	})
	t.Run("whole-stream checksum", func(t *testing.T) {
		db, v, s, id := setup(t)
		// Rewrite the metadata with a valid record checksum but the wrong
		// stream checksum: only the end-of-stream check can see it.
		key := v.metaKey(seqOf(id))
		corruptKey(t, db, key, func(raw []byte) []byte {
			var m snapMeta
			if err := json.Unmarshal(raw[4:], &m); err != nil {
				t.Fatal(err)
			}
			m.CRC++
			body, _ := json.Marshal(&m)
			return encodeChecked(key, body)
		})
		_, _, err := readAll(t, s, id)
		if !isCorrupt(err) {
			t.Fatalf("read: %v, want ErrCorrupt", err)
		}
		t.Logf("error reads: %v", err)
	})
	t.Run("metadata bit flip", func(t *testing.T) {
		db, v, s, id := setup(t)
		corruptKey(t, db, v.metaKey(seqOf(id)), func(b []byte) []byte { b[10] ^= 4; return b })
		if _, err := s.List(); !isCorrupt(err) {
			t.Fatalf("List: %v, want ErrCorrupt", err)
		}
		if _, _, err := s.Open(id); !isCorrupt(err) {
			t.Fatalf("Open: %v, want ErrCorrupt", err)
		}
		has, err := raft.HasExistingState(v, v, s)
		if err == nil {
			t.Fatalf("HasExistingState over corrupt metadata = %v, nil", has)
		}
	})
}

// TestSnapshotLargeStreams writes and reads an 80 MiB snapshot in pieces
// on a real directory and checks that the heap never holds a large part of
// it.
func TestSnapshotLargeStreams(t *testing.T) {
	const size = 80 << 20
	const piece = 100_003 // not a multiple of the chunk size
	db, err := Open(t.TempDir(), &Options{MemTableSize: 4 << 20, CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := stores(t, db, groupID(1))
	s := st.Snapshots

	base, peak := heapSampler()
	sink, err := s.Create(1, 1000, 3, testConfiguration, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := newPattern(7, size, piece)
	buf := make([]byte, piece)
	for i := 0; ; i++ {
		n, err := p.Read(buf)
		if err == io.EOF {
			break
		}
		if _, err := sink.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if i%20 == 0 {
			peak()
		}
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	writeGrowth := peak() - base

	base, peak = heapSampler()
	meta, rc, err := s.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	if meta.Size != size {
		t.Fatalf("meta.Size = %d", meta.Size)
	}
	h := sha256.New()
	for i := 0; ; i++ {
		n, err := rc.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%20 == 0 {
			peak()
		}
	}
	rc.Close()
	readGrowth := peak() - base
	if !bytes.Equal(h.Sum(nil), p.sum.Sum(nil)) {
		t.Fatal("content read back differs")
	}
	t.Logf("heap growth: write %d MiB, read %d MiB, for a %d MiB snapshot", writeGrowth>>20, readGrowth>>20, size>>20)
	if limit := uint64(size / 4); writeGrowth > limit || readGrowth > limit {
		t.Fatalf("heap grew by %d MiB writing and %d MiB reading a %d MiB snapshot; streaming should stay far below", writeGrowth>>20, readGrowth>>20, size>>20)
	}
}

// heapSampler returns the live heap, and a function that returns the
// largest live heap seen by any of its calls. Each call collects garbage
// first, so what it measures is what the code holds on to, not garbage
// the collector has yet to reclaim (which the race detector inflates).
func heapSampler() (uint64, func() uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, max := ms.HeapAlloc, ms.HeapAlloc
	return base, func() uint64 {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > max {
			max = ms.HeapAlloc
		}
		return max
	}
}

func TestSnapshotReaderAfterClose(t *testing.T) {
	fsDB, _ := memDB(t, &Options{SnapshotChunkSize: 4096})
	s := stores(t, fsDB, groupID(1)).Snapshots
	id, _ := writeSnapshot(t, s, 3, 1, 20_000, 1000)
	_, rc, err := s.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Read(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if err := fsDB.Close(); err != nil {
		t.Fatalf("Close with a reader open: %v", err)
	}
	if _, err := rc.Read(make([]byte, 100)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after DB.Close: %v", err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(); !errors.Is(err, ErrClosed) {
		t.Fatalf("List after DB.Close: %v", err)
	}
}
