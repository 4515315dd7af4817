package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

func TestReopenKeepsEverything(t *testing.T) {
	for _, disk := range []bool{false, true} {
		t.Run(map[bool]string{false: "memfs", true: "disk"}[disk], func(t *testing.T) {
			opts := &Options{SnapshotChunkSize: 4096}
			dir := "/data"
			if disk {
				dir = filepath.Join(t.TempDir(), "node")
			} else {
				opts.FS = vfs.NewMem()
			}
			db, err := Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			node := db.NodeID()
			if node == ([32]byte{}) {
				t.Fatal("zero node id")
			}
			g1, g2 := groupID(1), groupID(2)
			s1, err := db.Stores(g1)
			if err != nil {
				t.Fatal(err)
			}
			s2, err := db.Stores(g2)
			if err != nil {
				t.Fatal(err)
			}
			if err := s1.Log.StoreLogs(mkLogs(1, 50)); err != nil {
				t.Fatal(err)
			}
			if err := s1.Log.DeleteRange(1, 9); err != nil {
				t.Fatal(err)
			}
			// A log that starts past 1 is one Raft can start from only
			// above a snapshot (Stores checks that; see scanLog).
			writeSnapshot(t, s2.Snapshots, 6, 5, 100, 100)
			if err := s2.Log.StoreLogs(mkLogs(7, 8)); err != nil {
				t.Fatal(err)
			}
			if err := s1.Stable.SetUint64([]byte("CurrentTerm"), 9); err != nil {
				t.Fatal(err)
			}
			if err := s1.Stable.Set([]byte("LastVoteCand"), []byte("me")); err != nil {
				t.Fatal(err)
			}
			id, sum := writeSnapshot(t, s1.Snapshots, 40, 4, 30_000, 999)
			s1.Release()
			s2.Release()
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			db, err = Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if db.NodeID() != node {
				t.Fatalf("node id changed across reopen: %x -> %x", node, db.NodeID())
			}
			s1 = stores(t, db, g1)
			s2 = stores(t, db, g2)
			mustIndexes(t, s1.Log, 10, 50)
			mustIndexes(t, s2.Log, 7, 8)
			for i := uint64(10); i <= 50; i++ {
				mustLog(t, s1.Log, mkLog(i))
			}
			if v, err := s1.Stable.GetUint64([]byte("CurrentTerm")); err != nil || v != 9 {
				t.Fatalf("CurrentTerm = %d, %v", v, err)
			}
			if v, err := s1.Stable.Get([]byte("LastVoteCand")); err != nil || string(v) != "me" {
				t.Fatalf("LastVoteCand = %q, %v", v, err)
			}
			list, err := s1.Snapshots.List()
			if err != nil || len(list) != 1 || list[0].ID != id {
				t.Fatalf("snapshots after reopen: %v, %v", metaIDs(list), err)
			}
			if _, got, err := readAll(t, s1.Snapshots, id); err != nil || !bytes.Equal(got, sum) {
				t.Fatalf("snapshot after reopen: %v", err)
			}
		})
	}
}

func TestSecondOpenFails(t *testing.T) {
	t.Run("memfs", func(t *testing.T) {
		db, fs := memDB(t, nil)
		_, err := Open("/data", &Options{FS: fs})
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("second Open: %v, want ErrLocked", err)
		}
		t.Logf("error reads: %v", err)
		db.Close()
		db2, err := Open("/data", &Options{FS: fs})
		if err != nil {
			t.Fatalf("Open after Close: %v", err)
		}
		db2.Close()
	})
	t.Run("disk", func(t *testing.T) {
		dir := t.TempDir()
		db, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		_, err = Open(dir, nil)
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("second Open: %v, want ErrLocked", err)
		}
		t.Logf("error reads: %v", err)
	})
}

// TestLockAcrossProcesses opens a directory here and again in a child
// process (this test binary), which must fail with ErrLocked.
func TestLockAcrossProcesses(t *testing.T) {
	if dir := os.Getenv("MOSAIK_STORAGE_LOCK_CHILD"); dir != "" {
		db, err := Open(dir, nil)
		switch {
		case errors.Is(err, ErrLocked):
			fmt.Println("child: locked:", err)
		case err == nil:
			db.Close()
			fmt.Println("child: opened")
		default:
			fmt.Println("child: other error:", err)
		}
		return
	}
	dir := t.TempDir()
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockAcrossProcesses$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MOSAIK_STORAGE_LOCK_CHILD="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("child: locked:")) {
		t.Fatalf("the child process opened a locked directory:\n%s", out)
	}
	t.Logf("%s", bytes.SplitN(out, []byte("\n"), 2)[0])
}

func TestOpenRefusesForeignDirectories(t *testing.T) {
	t.Run("other files", func(t *testing.T) {
		fs := vfs.NewMem()
		fs.MkdirAll("/home", 0o755)
		f, _ := fs.Create("/home/notes.txt", vfs.WriteCategoryUnspecified)
		f.Write([]byte("hello"))
		f.Close()
		_, err := Open("/home", &Options{FS: fs})
		if !errors.Is(err, ErrNotDataDir) || !strings.Contains(err.Error(), "notes.txt") {
			t.Fatalf("Open of a directory with other files: %v", err)
		}
		t.Logf("error reads: %v", err)
		names, _ := fs.List("/home")
		if len(names) != 1 {
			t.Fatalf("Open wrote into a foreign directory: %v", names)
		}
	})
	t.Run("a file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "file")
		os.WriteFile(path, []byte("x"), 0o644)
		if _, err := Open(path, nil); err == nil {
			t.Fatal("Open of a regular file succeeded")
		} else {
			t.Logf("error reads: %v", err)
		}
	})
	t.Run("foreign pebble", func(t *testing.T) {
		fs := vfs.NewMem()
		pdb, err := pebble.Open("/db", &pebble.Options{FS: fs, Logger: pebbleLogger{slog.New(slog.DiscardHandler)}})
		if err != nil {
			t.Fatal(err)
		}
		pdb.Set([]byte("user-key"), []byte("v"), pebble.Sync)
		pdb.Close()
		_, err = Open("/db", &Options{FS: fs})
		if !errors.Is(err, ErrNotDataDir) {
			t.Fatalf("Open of another program's Pebble DB: %v", err)
		}
		t.Logf("error reads: %v", err)
	})
	t.Run("other format", func(t *testing.T) {
		db, fs := memDB(t, nil)
		b := db.pdb.NewBatch()
		b.Set(keyFormat, []byte("mosaik.storage.v9"), nil)
		if err := db.commit(b, pebble.Sync); err != nil {
			t.Fatal(err)
		}
		b.Close()
		db.Close()
		_, err := Open("/data", &Options{FS: fs})
		if !errors.Is(err, ErrNotDataDir) || !strings.Contains(err.Error(), "v9") {
			t.Fatalf("Open of another format: %v", err)
		}
		t.Logf("error reads: %v", err)
	})
	t.Run("node id lost", func(t *testing.T) {
		db, fs := memDB(t, nil)
		b := db.pdb.NewBatch()
		b.Delete(keyNode, nil)
		if err := db.commit(b, pebble.Sync); err != nil {
			t.Fatal(err)
		}
		b.Close()
		db.Close()
		_, err := Open("/data", &Options{FS: fs})
		if !isCorrupt(err) {
			t.Fatalf("Open without a node id: %v", err)
		}
		t.Logf("error reads: %v", err)
	})
	t.Run("node id corrupt", func(t *testing.T) {
		db, fs := memDB(t, nil)
		corruptKey(t, db, keyNode, func(b []byte) []byte { b[9] ^= 1; return b })
		db.Close()
		if _, err := Open("/data", &Options{FS: fs}); !isCorrupt(err) {
			t.Fatalf("Open with a corrupt node id: %v", err)
		}
	})
}

func TestOptionsValidate(t *testing.T) {
	var nilOpts *Options
	if err := nilOpts.Validate(); err != nil {
		t.Fatalf("nil Options: %v", err)
	}
	if err := (&Options{}).Validate(); err != nil {
		t.Fatalf("zero Options: %v", err)
	}
	d := nilOpts.EnsureDefaults()
	if d.FS != vfs.Default || d.RetainSnapshots != DefaultRetainSnapshots || d.SnapshotChunkSize != DefaultSnapshotChunkSize ||
		d.MemTableSize != DefaultMemTableSize || d.CacheSize != DefaultCacheSize || d.NoSync {
		t.Fatalf("defaults: %+v", d)
	}
	bad := &Options{RetainSnapshots: -1, SnapshotChunkSize: 10, MemTableSize: 5, CacheSize: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad Options validate")
	}
	for _, want := range []string{"RetainSnapshots -1", "SnapshotChunkSize 10", "MemTableSize 5", "CacheSize -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate does not report %q:\n%v", want, err)
		}
	}
	if n := len(strings.Split(err.Error(), "\n")); n != 4 {
		t.Errorf("Validate reports %d problems, want 4:\n%v", n, err)
	}
	// A chunk size valid on its own but too large for the memtable.
	if err := (&Options{SnapshotChunkSize: 4 << 20, MemTableSize: 8 << 20}).Validate(); err == nil {
		t.Error("a chunk of half the memtable validates")
	}
	if _, err := Open("/x", &Options{FS: vfs.NewMem(), RetainSnapshots: -1}); err == nil || !strings.Contains(err.Error(), "RetainSnapshots") {
		t.Errorf("Open with invalid options: %v", err)
	}
	if _, err := Open("", nil); err == nil {
		t.Error("Open of an empty path succeeded")
	}
}

func TestCloseIdempotent(t *testing.T) {
	db, _ := memDB(t, nil)
	s := stores(t, db, groupID(1))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Log.LastIndex(); !errors.Is(err, ErrClosed) {
		t.Fatalf("LastIndex after Close: %v", err)
	}
	if err := s.Log.StoreLogs(mkLogs(1, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("StoreLogs after Close: %v", err)
	}
	if _, err := s.Stable.Get([]byte("k")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if _, err := db.Stores(groupID(2)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Stores after Close: %v", err)
	}
	if err := s.Release(); err != nil {
		t.Fatalf("Release after Close: %v", err)
	}
}

// sumFSM is a minimal raft.FSM with snapshots: the sum of the entries.
type sumFSM struct {
	sum, n uint64
}

func (f *sumFSM) Apply(l *raft.Log) any {
	var v uint64
	fmt.Sscan(string(l.Data), &v)
	f.sum += v
	f.n++
	return nil
}

func (f *sumFSM) Snapshot() (raft.FSMSnapshot, error) { return sumSnap{*f}, nil }

func (f *sumFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	_, err := fmt.Fscan(rc, &f.sum, &f.n)
	return err
}

type sumSnap struct{ s sumFSM }

func (s sumSnap) Persist(sink raft.SnapshotSink) error {
	if _, err := fmt.Fprintf(sink, "%d %d", s.s.sum, s.s.n); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (sumSnap) Release() {}

// TestRaftRestart runs a one-node Raft on the stores, takes a snapshot,
// writes past it, restarts on a reopened DB and finds the same state: the
// snapshot restored and the log after it replayed.
func TestRaftRestart(t *testing.T) {
	fs := vfs.NewMem()
	opts := &Options{FS: fs}
	start := func(db *DB) (*raft.Raft, *sumFSM, Stores) {
		st, err := db.Stores(groupID(1))
		if err != nil {
			t.Fatal(err)
		}
		cfg := raft.DefaultConfig()
		cfg.LocalID = "a"
		cfg.Logger = hclog.NewNullLogger()
		cfg.HeartbeatTimeout = 50 * time.Millisecond
		cfg.ElectionTimeout = 50 * time.Millisecond
		cfg.LeaderLeaseTimeout = 50 * time.Millisecond
		cfg.TrailingLogs = 5
		_, tr := raft.NewInmemTransport("a")
		fsm := &sumFSM{}
		r, err := raft.NewRaft(cfg, fsm, st.Log, st.Stable, st.Snapshots, tr)
		if err != nil {
			t.Fatal(err)
		}
		return r, fsm, st
	}
	db, err := Open("/data", opts)
	if err != nil {
		t.Fatal(err)
	}
	r, _, st := start(db)
	if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: "a", Address: "a"}}}).Error(); err != nil {
		t.Fatal(err)
	}
	apply := func(r *raft.Raft, from, to int) {
		for i := from; i <= to; i++ {
			if err := r.Apply([]byte(fmt.Sprint(i)), 5*time.Second).Error(); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitLeader := func(r *raft.Raft) {
		deadline := time.Now().Add(10 * time.Second)
		for r.State() != raft.Leader {
			if time.Now().After(deadline) {
				t.Fatal("no leader")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitLeader(r)
	apply(r, 1, 100)
	if err := r.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	apply(r, 101, 120)
	first, _ := st.Log.FirstIndex()
	if first <= 1 {
		t.Fatalf("log not compacted after snapshot: first index %d", first)
	}
	if err := r.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	st.Release()
	db.Close()

	db, err = Open("/data", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, fsm, st := start(db)
	defer st.Release()
	defer r.Shutdown()
	waitLeader(r)
	if err := r.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	if want := uint64(120 * 121 / 2); fsm.sum != want || fsm.n != 120 {
		t.Fatalf("after restart sum=%d n=%d, want %d, 120", fsm.sum, fsm.n, want)
	}
}

// TestOpenForeignPebbleIsNotCorrupt: a directory Pebble refuses for
// another reason than damage (a newer format major version; options that
// name another comparer) is not reported as ErrCorrupt, and the error says
// what Pebble said.
func TestOpenForeignPebbleIsNotCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(fs vfs.FS, name string) bool
		says   string
	}{
		{"newer format", func(fs vfs.FS, n string) bool {
			i := strings.LastIndexByte(n, '.')
			if !strings.HasPrefix(n, "marker.format-version.") || i < 0 {
				return false
			}
			if err := fs.Rename("/data/"+n, "/data/"+n[:i+1]+"999"); err != nil {
				t.Fatal(err)
			}
			return true
		}, "format major version 999"},
		{"another comparer", func(fs vfs.FS, n string) bool {
			if !strings.HasPrefix(n, "OPTIONS-") {
				return false
			}
			f, err := fs.Open("/data/" + n)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.ReplaceAll(b, []byte("comparer=leveldb.BytewiseComparator"), []byte("comparer=other.Comparer"))
			w, err := fs.Create("/data/"+n, vfs.WriteCategoryUnspecified)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(b); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			return true
		}, "other.Comparer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			db, err := Open("/data", &Options{FS: fs})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			names, err := fs.List("/data")
			if err != nil {
				t.Fatal(err)
			}
			changed := false
			for _, n := range names {
				changed = tc.change(fs, n) || changed
			}
			if !changed {
				t.Fatalf("nothing to change among %v", names)
			}
			for _, ro := range []bool{false, true} {
				_, err := Open("/data", &Options{FS: fs, ReadOnly: ro})
				if err == nil || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.says) {
					t.Errorf("ReadOnly %v: %v", ro, err)
				}
			}
		})
	}
}
