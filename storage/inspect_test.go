package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// fsDigest digests the names and contents of every file under dir.
func fsDigest(t *testing.T, fsys vfs.FS, dir string) string {
	t.Helper()
	h := sha256.New()
	var walk func(string)
	walk = func(dir string) {
		names, err := fsys.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(names)
		for _, n := range names {
			p := fsys.PathJoin(dir, n)
			st, err := fsys.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			h.Write([]byte(p + "\x00"))
			if st.IsDir() {
				walk(p)
				continue
			}
			f, err := fsys.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	walk(dir)
	return hex.EncodeToString(h.Sum(nil))
}

// A read-only Open reads everything a node wrote, including what is only
// in the write-ahead log, changes no byte of the directory, and refuses
// every write.
func TestReadOnlyOpen(t *testing.T) {
	fsys := vfs.NewMem()
	db, err := Open("/data", &Options{FS: fsys, SnapshotChunkSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	node := db.NodeID()
	s := stores(t, db, groupID(1))
	if err := s.Log.StoreLogs(mkLogs(1, 10)); err != nil {
		t.Fatal(err)
	}
	if err := s.Stable.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	id, sum := writeSnapshot(t, s.Snapshots, 8, 1, 10_000, 1000)
	// A snapshot whose writer died: its chunks are on disk, and a
	// read-write Stores would delete them.
	sink, err := s.Snapshots.Create(1, 10, 2, testConfiguration, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write(make([]byte, 3<<20)); err != nil {
		t.Fatal(err)
	}
	s.Release()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before := fsDigest(t, fsys, "/")

	ro, err := Open("/data", &Options{FS: fsys, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if ro.NodeID() != node {
		t.Errorf("NodeID %x, want %x", ro.NodeID(), node)
	}
	if gs, err := ro.Groups(); err != nil || len(gs) != 1 || gs[0] != groupID(1) {
		t.Errorf("Groups = %x, %v", gs, err)
	}
	if _, err := Open("/data", &Options{FS: fsys}); !errors.Is(err, ErrLocked) {
		t.Errorf("read-write Open beside a read-only one: %v, want ErrLocked", err)
	}
	rs := stores(t, ro, groupID(1))
	mustIndexes(t, rs.Log, 1, 10)
	mustLog(t, rs.Log, mkLog(7))
	if v, err := rs.Stable.GetUint64([]byte("CurrentTerm")); err != nil || v != 3 {
		t.Errorf("CurrentTerm = %d, %v", v, err)
	}
	if _, got, err := readAll(t, rs.Snapshots, id); err != nil || string(got) != string(sum) {
		t.Errorf("snapshot %s: %v", id, err)
	}
	if n := countChunks(t, rs.Log.(*view)); n <= 3 {
		t.Errorf("%d chunks stored; the unfinished snapshot's are gone", n)
	}
	writes := map[string]error{
		"StoreLogs":   rs.Log.StoreLogs(mkLogs(11, 12)),
		"DeleteRange": rs.Log.DeleteRange(1, 2),
		"Set":         rs.Stable.Set([]byte("k"), []byte("v")),
	}
	sink, err = rs.Snapshots.Create(1, 10, 2, testConfiguration, 1, nil)
	if err == nil {
		_, _ = sink.Write([]byte("data"))
		err = sink.Close()
	}
	writes["snapshot"] = err
	for what, err := range writes {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s on a read-only DB: %v, want ErrReadOnly", what, err)
		}
	}
	mustIndexes(t, rs.Log, 1, 10)
	rs.Release()
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if after := fsDigest(t, fsys, "/"); after != before {
		t.Error("a read-only Open changed the directory")
	}
}

// A read-only Open creates nothing: it fails on a missing directory, an
// empty one, a file, and a Pebble database that never got a node id.
func TestReadOnlyOpenRefuses(t *testing.T) {
	fsys := vfs.NewMem()
	ro := &Options{FS: fsys, ReadOnly: true}
	_, err := Open("/missing", ro)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "/missing") {
		t.Errorf("missing directory: %v", err)
	}
	if _, serr := fsys.Stat("/missing"); serr == nil {
		t.Error("a read-only Open created the directory")
	}
	t.Logf("missing: %v", err)
	if err := fsys.MkdirAll("/empty", 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = Open("/empty", ro)
	if !errors.Is(err, ErrNotDataDir) || !strings.Contains(err.Error(), "holds no database") {
		t.Errorf("empty directory: %v", err)
	}
	if names, err := fsys.List("/empty"); err != nil || len(names) != 0 {
		t.Errorf("a read-only Open wrote %v into an empty directory (%v)", names, err)
	}
	t.Logf("empty: %v", err)
	f, err := fsys.Create("/empty/file", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := Open("/empty/file", ro); !errors.Is(err, ErrNotDataDir) {
		t.Errorf("a file: %v", err)
	}
	if _, err := Open("/empty", ro); !errors.Is(err, ErrNotDataDir) || !strings.Contains(err.Error(), "file") {
		t.Errorf("directory with another file: %v", err)
	}
	// A first Open that stopped after Pebble created its files.
	pdb, err := pebble.Open("/half", &pebble.Options{FS: fsys, Logger: pebbleLogger{slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	pdb.Close()
	_, err = Open("/half", ro)
	if !errors.Is(err, ErrNotDataDir) || !strings.Contains(err.Error(), "empty database") {
		t.Errorf("database without a node id: %v", err)
	}
	t.Logf("half: %v", err)
	// A read-write Open holds the lock against a read-only one.
	db, err := Open("/data", &Options{FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := Open("/data", &Options{FS: fsys, ReadOnly: true}); !errors.Is(err, ErrLocked) {
		t.Errorf("read-only Open of a directory in use: %v, want ErrLocked", err)
	}
}

// entries collects what r.Entries(from) yields, stopping at the first
// error.
func entries(r *GroupReader, from uint64) ([]*raft.Log, error) {
	var out []*raft.Log
	for l, err := range r.Entries(from) {
		if err != nil {
			return out, err
		}
		out = append(out, l)
	}
	return out, nil
}

func indexes(logs []*raft.Log) []uint64 {
	out := make([]uint64, len(logs))
	for i, l := range logs {
		out[i] = l.Index
	}
	return out
}

func span(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestGroupReader(t *testing.T) {
	db, _ := memDB(t, &Options{SnapshotChunkSize: 4096})
	g := groupID(1)
	s := stores(t, db, g) // held: a reader works beside a running member
	if err := s.Log.StoreLogs(mkLogs(1, 1300)); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]uint64{"CurrentTerm": 4, "LastVoteTerm": 3} {
		if err := s.Stable.SetUint64([]byte(k), v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Stable.Set([]byte("LastVoteCand"), []byte("peer-a")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	writeSnapshot(t, s.Snapshots, 900, 1, 5000, 1000)
	id, _ := writeSnapshot(t, s.Snapshots, 1000, 2, 10_000, 1000)

	r := db.ReadGroup(g)
	if r.ID() != g {
		t.Errorf("ID %x", r.ID())
	}
	if f, err := r.FirstIndex(); err != nil || f != 1 {
		t.Errorf("FirstIndex = %d, %v", f, err)
	}
	if l, err := r.LastIndex(); err != nil || l != 1300 {
		t.Errorf("LastIndex = %d, %v", l, err)
	}
	if v, err := r.GetUint64([]byte("CurrentTerm")); err != nil || v != 4 {
		t.Errorf("CurrentTerm = %d, %v", v, err)
	}
	if v, err := r.Get([]byte("LastVoteCand")); err != nil || string(v) != "peer-a" {
		t.Errorf("LastVoteCand = %q, %v", v, err)
	}
	if _, err := r.Get([]byte("nothing")); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Get of a key never set: %v", err)
	}
	snaps, err := r.Snapshots()
	if err != nil || len(snaps) != 2 {
		t.Fatalf("Snapshots = %v, %v", snaps, err)
	}
	if sn := snaps[0]; sn.ID != id || sn.Index != 1000 || sn.Term != 2 || sn.Size != 10_000 || sn.ConfigurationIndex != 999 ||
		len(sn.Configuration.Servers) != 2 || sn.Configuration.Servers[1] != testConfiguration.Servers[1] ||
		sn.Created.Before(start.Add(-time.Second)) || time.Since(sn.Created) > time.Minute {
		t.Errorf("newest snapshot %+v", sn)
	}
	if snaps[1].Index != 900 {
		t.Errorf("snapshots not newest first: %d, %d", snaps[0].Index, snaps[1].Index)
	}

	// All of it, across several reads, and from within and past the log.
	all, err := entries(r, 0)
	if err != nil || !slices.Equal(indexes(all), span(1, 1300)) {
		t.Fatalf("Entries(0): %d entries, %v", len(all), err)
	}
	for _, l := range all {
		if !equalLog(l, mkLog(l.Index)) {
			t.Fatalf("entry %d = %+v", l.Index, *l)
		}
	}
	if got, err := entries(r, 1290); err != nil || !slices.Equal(indexes(got), span(1290, 1300)) {
		t.Errorf("Entries(1290) = %v, %v", indexes(got), err)
	}
	if got, err := entries(r, 1301); err != nil || len(got) != 0 {
		t.Errorf("Entries(1301) = %v, %v", indexes(got), err)
	}
	// Stopping early: the sequence must not yield again after a break (the
	// runtime panics if it does) and must have yielded what it read.
	n := 0
	for range r.Entries(1) {
		if n++; n == 3 {
			break
		}
	}
	if n != 3 {
		t.Errorf("Entries(1) yielded %d entries before the break, want 3", n)
	}

	// A compacted log starts later; a hole is skipped.
	if err := s.Log.DeleteRange(1, 99); err != nil {
		t.Fatal(err)
	}
	if err := s.Log.DeleteRange(500, 1100); err != nil {
		t.Fatal(err)
	}
	want := append(span(100, 499), span(1101, 1300)...)
	if got, err := entries(r, 0); err != nil || !slices.Equal(indexes(got), want) {
		t.Errorf("Entries(0) with a hole: %d entries, %v", len(got), err)
	}
	if got, err := entries(r, 600); err != nil || !slices.Equal(indexes(got), span(1101, 1300)) {
		t.Errorf("Entries(600) in the hole: %d entries, %v", len(got), err)
	}

	// An empty group.
	e := db.ReadGroup(groupID(9))
	if f, err := e.FirstIndex(); err != nil || f != 0 {
		t.Errorf("FirstIndex of an empty group = %d, %v", f, err)
	}
	if got, err := entries(e, 0); err != nil || len(got) != 0 {
		t.Errorf("Entries of an empty group = %v, %v", indexes(got), err)
	}
	if sn, err := e.Snapshots(); err != nil || len(sn) != 0 {
		t.Errorf("Snapshots of an empty group = %v, %v", sn, err)
	}
	if _, err := e.GetUint64([]byte("CurrentTerm")); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("CurrentTerm of an empty group: %v", err)
	}

	// A corrupt entry ends the listing with an error naming it.
	corruptKey(t, db, logKey(r.v.logLo, 200), func(b []byte) []byte { b[len(b)-5] ^= 1; return b })
	got, err := entries(r, 150)
	if !isCorrupt(err) || !strings.Contains(err.Error(), "log entry 200") || !slices.Equal(indexes(got), span(150, 199)) {
		t.Errorf("Entries over a corrupt entry: %v after %d entries", err, len(got))
	}
	t.Logf("corrupt: %v", err)
	if got, err := entries(r, 200); !isCorrupt(err) || len(got) != 0 {
		t.Errorf("Entries from a corrupt entry: %v after %d entries", err, len(got))
	}

	s.Release()
	db.Close()
	if _, err := r.FirstIndex(); !errors.Is(err, ErrClosed) {
		t.Errorf("FirstIndex after Close: %v", err)
	}
	if _, err := r.Snapshots(); !errors.Is(err, ErrClosed) {
		t.Errorf("Snapshots after Close: %v", err)
	}
	if _, err := entries(r, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Entries after Close: %v", err)
	}
}
