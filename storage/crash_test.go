package storage

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/hashicorp/raft"
	"github.com/mosaik-go/mosaik/internal/faultfs"
)

// TestCrashKeepsAcknowledged writes from several groups at once (so Pebble
// groups their syncs), takes a crash image of the filesystem while writes
// are in flight, and opens the image: everything acknowledged before the
// image was taken must be there, as must the term, the vote and a
// finished snapshot. The image keeps a random share of the unsynced data,
// as a real crash might.
func TestCrashKeepsAcknowledged(t *testing.T) {
	for _, unsynced := range []int{0, 50, 100} {
		t.Run(map[int]string{0: "none-unsynced", 50: "half-unsynced", 100: "all-unsynced"}[unsynced], func(t *testing.T) {
			crashOnce(t, unsynced, uint64(unsynced)+1)
		})
	}
}

func crashOnce(t *testing.T, unsyncedPercent int, seed uint64) {
	const groups = 4
	fs := vfs.NewCrashableMem()
	opts := &Options{FS: fs, SnapshotChunkSize: 4096}
	db, err := Open("/data", opts)
	if err != nil {
		t.Fatal(err)
	}
	node := db.NodeID()
	var sts [groups]Stores
	for i := range sts {
		if sts[i], err = db.Stores(groupID(byte(i + 1))); err != nil {
			t.Fatal(err)
		}
	}
	st0 := sts[0]
	if err := st0.Stable.SetUint64([]byte("CurrentTerm"), 12); err != nil {
		t.Fatal(err)
	}
	if err := st0.Stable.SetUint64([]byte("LastVoteTerm"), 12); err != nil {
		t.Fatal(err)
	}
	if err := st0.Stable.Set([]byte("LastVoteCand"), []byte("candidate-b")); err != nil {
		t.Fatal(err)
	}
	snapID, snapSum := writeSnapshot(t, st0.Snapshots, 7, 3, 50_000, 4000)

	// Writers: each group appends batches of 4 entries and publishes the
	// last index acknowledged.
	var acked [groups]atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next := uint64(1); ; next += 4 {
				select {
				case <-stop:
					return
				default:
				}
				if err := sts[i].Log.StoreLogs(mkLogs(next, next+3)); err != nil {
					t.Error(err)
					return
				}
				acked[i].Store(next + 3)
			}
		}()
	}
	// Let some writes land, then read the acknowledgements and only then
	// take the crash image: everything read here was synced before it.
	deadline := time.Now().Add(30 * time.Second)
	for acked[0].Load() < 100 || acked[1].Load() < 100 || acked[2].Load() < 100 || acked[3].Load() < 100 {
		if time.Now().After(deadline) {
			t.Fatal("writers made no progress")
		}
		time.Sleep(time.Millisecond)
	}
	var want [groups]uint64
	for i := range want {
		want[i] = acked[i].Load()
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsyncedPercent, RNG: rand.New(rand.NewPCG(seed, seed))})
	close(stop)
	wg.Wait()
	for _, s := range sts {
		s.Release()
	}
	db.Close()

	opts.FS = crashed
	db, err = Open("/data", opts)
	if unsyncedPercent > 0 && unsyncedPercent < 100 && errors.Is(err, ErrCorrupt) && strings.Contains(err.Error(), "TruncateDamagedWAL") {
		// The image kept a later page of the unsynced tail and lost an
		// earlier one, which Open cannot tell from damage: cutting the log
		// there must keep everything acknowledged.
		t.Logf("open after crash: %v; opening with TruncateDamagedWAL", err)
		opts.TruncateDamagedWAL = true
		db, err = Open("/data", opts)
	}
	if err != nil {
		t.Fatalf("open after crash: %v", err)
	}
	defer db.Close()
	if db.NodeID() != node {
		t.Fatal("node id changed across the crash")
	}
	for i := range groups {
		s := stores(t, db, groupID(byte(i+1)))
		last, err := s.Log.LastIndex()
		if err != nil {
			t.Fatal(err)
		}
		if last < want[i] {
			t.Fatalf("group %d: last index %d after crash, but %d was acknowledged", i+1, last, want[i])
		}
		for idx := uint64(1); idx <= last; idx++ {
			mustLog(t, s.Log, mkLog(idx))
		}
		if i == 0 {
			if v, err := s.Stable.GetUint64([]byte("CurrentTerm")); err != nil || v != 12 {
				t.Fatalf("term after crash: %d, %v", v, err)
			}
			if v, err := s.Stable.GetUint64([]byte("LastVoteTerm")); err != nil || v != 12 {
				t.Fatalf("vote term after crash: %d, %v", v, err)
			}
			if v, err := s.Stable.Get([]byte("LastVoteCand")); err != nil || string(v) != "candidate-b" {
				t.Fatalf("vote after crash: %q, %v", v, err)
			}
			if _, sum, err := readAll(t, s.Snapshots, snapID); err != nil || !bytes.Equal(sum, snapSum) {
				t.Fatalf("snapshot after crash: %v", err)
			}
		}
		t.Logf("group %d: acknowledged %d, found %d", i+1, want[i], last)
	}
}

// TestCrashLosesUnsyncedWithNoSync shows the crash image is a real test:
// with NoSync, writes acknowledged are lost when the unsynced data is.
func TestCrashLosesUnsyncedWithNoSync(t *testing.T) {
	fs := vfs.NewCrashableMem()
	db, err := Open("/data", &Options{FS: fs, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := db.Stores(groupID(1))
	if err := s.Log.StoreLogs(mkLogs(1, 50)); err != nil {
		t.Fatal(err)
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{})
	s.Release()
	db.Close()
	db, err = Open("/data", &Options{FS: crashed})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	last, err := stores(t, db, groupID(1)).Log.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if last == 50 {
		t.Fatal("with NoSync every write survived a crash that drops unsynced data; the crash test proves nothing")
	}
}

// TestSyncFailureSurfaces injects a failed fsync of the write-ahead log:
// the writer gets the error, every operation after it fails, and a crash
// image opened afterwards holds exactly what was acknowledged.
func TestSyncFailureSurfaces(t *testing.T) {
	ops := []struct {
		name string
		op   func(Stores) error
	}{
		{"StoreLogs", func(s Stores) error { return s.Log.StoreLogs(mkLogs(11, 20)) }},
		{"SetUint64", func(s Stores) error { return s.Stable.SetUint64([]byte("CurrentTerm"), 99) }},
		{"Set", func(s Stores) error { return s.Stable.Set([]byte("LastVoteCand"), []byte("x")) }},
		{"DeleteRange", func(s Stores) error { return s.Log.DeleteRange(1, 5) }},
	}
	for _, c := range ops {
		t.Run(c.name, func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			inj := faultfs.WALSyncFailure()
			db, err := Open("/data", &Options{FS: errorfs.Wrap(mem, inj)})
			if err != nil {
				t.Fatal(err)
			}
			s, _ := db.Stores(groupID(1))
			if err := s.Log.StoreLogs(mkLogs(1, 10)); err != nil {
				t.Fatal(err)
			}
			if err := s.Stable.SetUint64([]byte("CurrentTerm"), 5); err != nil {
				t.Fatal(err)
			}
			inj.On()
			err = c.op(s)
			if !errors.Is(err, ErrFailed) || !errors.Is(err, errorfs.ErrInjected) {
				t.Fatalf("%s with a failing fsync: %v; want ErrFailed wrapping the injected error", c.name, err)
			}
			t.Logf("error reads: %v", err)
			// Nothing is served from memory that did not reach the disk.
			var l raft.Log
			if err := s.Log.GetLog(1, &l); !errors.Is(err, ErrFailed) {
				t.Fatalf("GetLog after the failure: %v, want ErrFailed", err)
			}
			if _, err := s.Log.LastIndex(); !errors.Is(err, ErrFailed) {
				t.Fatalf("LastIndex after the failure: %v", err)
			}
			if err := s.Log.StoreLogs(mkLogs(21, 21)); !errors.Is(err, ErrFailed) {
				t.Fatalf("StoreLogs after the failure: %v", err)
			}
			if err := db.Err(); !errors.Is(err, ErrFailed) {
				t.Fatalf("DB.Err after the failure: %v", err)
			}
			if _, err := db.Stores(groupID(2)); !errors.Is(err, ErrFailed) {
				t.Fatalf("Stores after the failure: %v", err)
			}
			crashed := mem.CrashClone(vfs.CrashCloneCfg{})
			s.Release()
			_ = db.Close() // may report the failed log too
			_ = db.Close()

			db, err = Open("/data", &Options{FS: crashed})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			s = stores(t, db, groupID(1))
			mustIndexes(t, s.Log, 1, 10)
			if v, err := s.Stable.GetUint64([]byte("CurrentTerm")); err != nil || v != 5 {
				t.Fatalf("term after reopen: %d, %v", v, err)
			}
			if _, err := s.Stable.Get([]byte("LastVoteCand")); err != ErrKeyNotFound {
				t.Fatalf("unacknowledged vote after reopen: %v", err)
			}
		})
	}
}

// TestSnapshotSyncFailure: a snapshot whose final sync fails is reported
// to Raft by Close and is not listed after reopening.
func TestSnapshotSyncFailure(t *testing.T) {
	mem := vfs.NewCrashableMem()
	inj := faultfs.WALSyncFailure()
	db, err := Open("/data", &Options{FS: errorfs.Wrap(mem, inj), SnapshotChunkSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := db.Stores(groupID(1))
	sink, err := s.Snapshots.Create(1, 10, 1, testConfiguration, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write(bytes.Repeat([]byte("x"), 10_000)); err != nil {
		t.Fatal(err)
	}
	inj.On()
	if err := sink.Close(); !errors.Is(err, ErrFailed) {
		t.Fatalf("sink.Close with a failing fsync: %v", err)
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	s.Release()
	db.Close()
	db, err = Open("/data", &Options{FS: crashed})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if list, err := stores(t, db, groupID(1)).Snapshots.List(); err != nil || len(list) != 0 {
		t.Fatalf("snapshot whose sync failed is listed: %v, %v", metaIDs(list), err)
	}
}
