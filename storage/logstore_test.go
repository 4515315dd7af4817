package storage

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// providers runs f against the in-memory provider and a Pebble DB, so both
// behave the way hashicorp/raft expects (the cases mirror raft-boltdb's
// store tests).
func providers(t *testing.T, f func(t *testing.T, p Provider)) {
	t.Run("memory", func(t *testing.T) { f(t, Memory()) })
	t.Run("pebble", func(t *testing.T) {
		db, _ := memDB(t, nil)
		f(t, db)
	})
}

func TestLogStoreEmpty(t *testing.T) {
	providers(t, func(t *testing.T, p Provider) {
		s := stores(t, p, groupID(1))
		mustIndexes(t, s.Log, 0, 0)
		var l raft.Log
		if err := s.Log.GetLog(1, &l); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog on empty store: %v, want raft.ErrLogNotFound", err)
		}
		has, err := raft.HasExistingState(s.Log, s.Stable, s.Snapshots)
		if err != nil || has {
			t.Fatalf("HasExistingState on a fresh store = %v, %v; want false, nil", has, err)
		}
	})
}

func TestLogStoreStoreGet(t *testing.T) {
	providers(t, func(t *testing.T, p Provider) {
		s := stores(t, p, groupID(1))
		if err := s.Log.StoreLog(mkLog(1)); err != nil {
			t.Fatal(err)
		}
		if err := s.Log.StoreLogs(mkLogs(2, 10)); err != nil {
			t.Fatal(err)
		}
		mustIndexes(t, s.Log, 1, 10)
		for i := uint64(1); i <= 10; i++ {
			mustLog(t, s.Log, mkLog(i))
		}
		var l raft.Log
		if err := s.Log.GetLog(11, &l); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog(11): %v, want raft.ErrLogNotFound", err)
		}
		// Overwriting an entry (a follower truncating a conflicting suffix
		// writes over the same indexes) replaces it.
		repl := mkLog(10)
		repl.Term, repl.Data = 99, []byte("replacement")
		if err := s.Log.StoreLogs([]*raft.Log{repl}); err != nil {
			t.Fatal(err)
		}
		mustLog(t, s.Log, repl)
		// Empty and nil payloads, zero time and every log type round-trip.
		odd := []*raft.Log{
			{Index: 11, Term: 100, Type: raft.LogNoop},
			{Index: 12, Term: 100, Type: raft.LogConfiguration, Data: []byte{}},
			{Index: 13, Term: 100, Type: raft.LogBarrier, Extensions: []byte{0}},
		}
		if err := s.Log.StoreLogs(odd); err != nil {
			t.Fatal(err)
		}
		for _, l := range odd {
			mustLog(t, s.Log, l)
		}
	})
}

func TestLogStoreDeleteRange(t *testing.T) {
	providers(t, func(t *testing.T, p Provider) {
		s := stores(t, p, groupID(1))
		if err := s.Log.StoreLogs(mkLogs(1, 100)); err != nil {
			t.Fatal(err)
		}
		// Compaction: a prefix.
		if err := s.Log.DeleteRange(1, 40); err != nil {
			t.Fatal(err)
		}
		mustIndexes(t, s.Log, 41, 100)
		var l raft.Log
		if err := s.Log.GetLog(40, &l); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog(40) after delete: %v", err)
		}
		mustLog(t, s.Log, mkLog(41))
		// Conflict truncation: a suffix.
		if err := s.Log.DeleteRange(91, 100); err != nil {
			t.Fatal(err)
		}
		mustIndexes(t, s.Log, 41, 90)
		// Everything (raft does so after installing a snapshot).
		if err := s.Log.DeleteRange(41, 90); err != nil {
			t.Fatal(err)
		}
		mustIndexes(t, s.Log, 0, 0)
		if err := s.Log.StoreLogs(mkLogs(500, 510)); err != nil {
			t.Fatal(err)
		}
		mustIndexes(t, s.Log, 500, 510)
	})
}

// Reading in order fills the read-ahead; a write over entries it holds
// must be seen by the next read.
func TestLogStoreReadAheadSeesWrites(t *testing.T) {
	db, _ := memDB(t, nil)
	s := stores(t, db, groupID(1))
	if err := s.Log.StoreLogs(mkLogs(1, 2000)); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 2000; i++ {
		mustLog(t, s.Log, mkLog(i))
	}
	for i := uint64(1); i <= 5; i++ {
		mustLog(t, s.Log, mkLog(i))
	}
	repl := mkLog(6)
	repl.Term, repl.Data = 77, []byte("new")
	if err := s.Log.DeleteRange(6, 2000); err != nil {
		t.Fatal(err)
	}
	if err := s.Log.StoreLogs([]*raft.Log{repl}); err != nil {
		t.Fatal(err)
	}
	mustLog(t, s.Log, repl)
	var l raft.Log
	if err := s.Log.GetLog(7, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(7) after truncation: %v, %+v", err, l)
	}
}

func TestLogStoreDeleteToMax(t *testing.T) {
	db, _ := memDB(t, nil)
	s := stores(t, db, groupID(1))
	if err := s.Log.StoreLogs(mkLogs(1, 10)); err != nil {
		t.Fatal(err)
	}
	if err := s.Log.StoreLogs([]*raft.Log{mkLog(math.MaxUint64)}); err != nil {
		t.Fatal(err)
	}
	mustIndexes(t, s.Log, 1, math.MaxUint64)
	if err := s.Log.DeleteRange(5, math.MaxUint64); err != nil {
		t.Fatal(err)
	}
	mustIndexes(t, s.Log, 1, 4)
	if err := s.Log.DeleteRange(7, 3); err != nil {
		t.Fatalf("empty range: %v", err)
	}
	mustIndexes(t, s.Log, 1, 4)
}

func TestStableStore(t *testing.T) {
	providers(t, func(t *testing.T, p Provider) {
		s := stores(t, p, groupID(1))
		// What Raft asks of a fresh store: CurrentTerm missing must read as
		// "not found", which Raft recognises by text.
		if _, err := s.Stable.GetUint64([]byte("CurrentTerm")); err != nil && err.Error() != "not found" {
			t.Fatalf("GetUint64 of a missing key: %v; raft needs nil or \"not found\"", err)
		}
		if v, err := s.Stable.Get([]byte("LastVoteCand")); (err != nil && err.Error() != "not found") || v != nil {
			t.Fatalf("Get of a missing key = %q, %v", v, err)
		}
		if err := s.Stable.Set([]byte("LastVoteCand"), []byte("peer-a")); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Stable.Get([]byte("LastVoteCand")); err != nil || string(v) != "peer-a" {
			t.Fatalf("Get = %q, %v", v, err)
		}
		if err := s.Stable.SetUint64([]byte("CurrentTerm"), 42); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Stable.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
			t.Fatalf("GetUint64 = %d, %v", v, err)
		}
		if err := s.Stable.SetUint64([]byte("CurrentTerm"), math.MaxUint64); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Stable.GetUint64([]byte("CurrentTerm")); err != nil || v != math.MaxUint64 {
			t.Fatalf("GetUint64 = %d, %v", v, err)
		}
		has, err := raft.HasExistingState(s.Log, s.Stable, s.Snapshots)
		if err != nil || !has {
			t.Fatalf("HasExistingState with a term = %v, %v", has, err)
		}
	})
}

func TestStableMissingIsErrKeyNotFound(t *testing.T) {
	db, _ := memDB(t, nil)
	s := stores(t, db, groupID(1))
	if _, err := s.Stable.Get([]byte("x")); err != ErrKeyNotFound || err.Error() != "not found" {
		t.Fatalf("Get: %v", err)
	}
	if _, err := s.Stable.GetUint64([]byte("x")); err != ErrKeyNotFound {
		t.Fatalf("GetUint64: %v", err)
	}
}

func TestGroupIsolation(t *testing.T) {
	db, _ := memDB(t, nil)
	a := stores(t, db, groupID(0xaa))
	b := stores(t, db, groupID(0xab))
	// Neighbouring ids, and ones whose prefix is all 0xff or 0x00, must not
	// leak into each other through range scans.
	lo := stores(t, db, groupID(0x00))
	hi := stores(t, db, groupID(0xff))
	if err := a.Log.StoreLogs(mkLogs(1, 20)); err != nil {
		t.Fatal(err)
	}
	if err := a.Stable.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if err := hi.Log.StoreLogs(mkLogs(50, 60)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Stores{b, lo} {
		mustIndexes(t, s.Log, 0, 0)
		var l raft.Log
		if err := s.Log.GetLog(5, &l); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("other group sees entry 5: %v", err)
		}
		if _, err := s.Stable.GetUint64([]byte("CurrentTerm")); err != ErrKeyNotFound {
			t.Fatalf("other group sees CurrentTerm: %v", err)
		}
	}
	mustIndexes(t, a.Log, 1, 20)
	mustIndexes(t, hi.Log, 50, 60)
	// Deleting everything of one group leaves the others alone.
	if err := b.Log.DeleteRange(0, math.MaxUint64); err != nil {
		t.Fatal(err)
	}
	if err := hi.Log.DeleteRange(0, math.MaxUint64); err != nil {
		t.Fatal(err)
	}
	mustIndexes(t, a.Log, 1, 20)
	mustIndexes(t, hi.Log, 0, 0)
	if err := lo.Log.StoreLogs(mkLogs(1, 1)); err != nil {
		t.Fatal(err)
	}
	groups, err := db.Groups()
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 || groups[0] != groupID(0x00) || groups[1] != groupID(0xaa) {
		t.Fatalf("Groups() = %x", groups)
	}
}

func TestGroupInUse(t *testing.T) {
	db, _ := memDB(t, nil)
	s := stores(t, db, groupID(1))
	if _, err := db.Stores(groupID(1)); !errors.Is(err, ErrGroupInUse) {
		t.Fatalf("second Stores of one group: %v, want ErrGroupInUse", err)
	}
	if err := s.Release(); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	var l raft.Log
	if err := s.Log.GetLog(1, &l); !errors.Is(err, ErrClosed) {
		t.Fatalf("GetLog after Release: %v, want ErrClosed", err)
	}
	stores(t, db, groupID(1))
}

// corrupt overwrites the raw value of key.
func corruptKey(t *testing.T, db *DB, key []byte, mutate func([]byte) []byte) {
	t.Helper()
	raw, found, err := db.get(key)
	if err != nil || !found {
		t.Fatalf("raw key %x: %v, %v", key, found, err)
	}
	b := db.pdb.NewBatch()
	defer b.Close()
	if err := b.Set(key, mutate(raw), nil); err != nil {
		t.Fatal(err)
	}
	if err := db.commit(b, db.wo); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptRecords(t *testing.T) {
	db, _ := memDB(t, nil)
	g := groupID(3)
	s := stores(t, db, g)
	if err := s.Log.StoreLogs(mkLogs(1, 5)); err != nil {
		t.Fatal(err)
	}
	if err := s.Stable.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Stable.Set([]byte("Short"), []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	v := s.Log.(*view)
	flip := func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }
	cases := []struct {
		name  string
		key   []byte
		bad   func([]byte) []byte
		check func() error
	}{
		{"log bit flip", logKey(v.logLo, 2), flip, func() error { var l raft.Log; return s.Log.GetLog(2, &l) }},
		{"log truncated", logKey(v.logLo, 3), func(b []byte) []byte { return b[:len(b)-7] }, func() error { var l raft.Log; return s.Log.GetLog(3, &l) }},
		{"log under another index", logKey(v.logLo, 4), func([]byte) []byte { return encodeLog(nil, mkLog(5)) }, func() error { var l raft.Log; return s.Log.GetLog(4, &l) }},
		{"log garbage", logKey(v.logLo, 5), func([]byte) []byte { return []byte("hello") }, func() error { var l raft.Log; return s.Log.GetLog(5, &l) }},
		{"stable bit flip", v.stableKey([]byte("CurrentTerm")), flip, func() error { _, err := s.Stable.GetUint64([]byte("CurrentTerm")); return err }},
		{"stable wrong length", v.stableKey([]byte("Short")), func(b []byte) []byte { return b }, func() error { _, err := s.Stable.GetUint64([]byte("Short")); return err }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			corruptKey(t, db, c.key, c.bad)
			err := c.check()
			if !isCorrupt(err) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
			t.Logf("error reads: %v", err)
		})
	}
	// An entry whose trailer was altered into a valid-looking CRC of other
	// content is still refused: the CRC covers the index.
	good := encodeLog(nil, mkLog(1))
	if err := decodeLog(good, 1, new(raft.Log)); err != nil {
		t.Fatal(err)
	}
	if err := decodeLog(good, 2, new(raft.Log)); err == nil {
		t.Fatal("a record decoded under the wrong index")
	}
	// Handing the stores out again checks the whole log: the first corrupt
	// entry is named, before Raft (which panics on an unreadable entry)
	// ever starts.
	s.Release()
	if _, err := db.Stores(g); !isCorrupt(err) || !strings.Contains(err.Error(), "log entry 2") {
		t.Fatalf("Stores over a corrupt log: %v", err)
	} else {
		t.Logf("Stores: %v", err)
	}
}

func TestLogRoundTripTime(t *testing.T) {
	l := mkLog(7)
	l.AppendedAt = time.Date(2026, 11, 3, 4, 5, 6, 7, time.UTC)
	var got raft.Log
	if err := decodeLog(encodeLog(nil, l), 7, &got); err != nil {
		t.Fatal(err)
	}
	if !equalLog(&got, l) {
		t.Fatalf("round trip: %+v != %+v", got, *l)
	}
}

// TestGetLogAllocs: Raft calls GetLog once per entry it replicates or
// replays. An entry read ahead costs no allocation; one read on its own
// costs only what Pebble's Get and the decoding need, the same at every
// index (nothing is formatted unless a read panics).
func TestGetLogAllocs(t *testing.T) {
	db, _ := memDB(t, nil)
	st := stores(t, db, groupID(1))
	if err := st.Log.StoreLogs(mkLogs(1, 1000)); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	get := func(i uint64) {
		if err := st.Log.GetLog(i, &l); err != nil {
			t.Fatal(err)
		}
	}
	get(700)
	get(701) // in order: reads ahead
	if n := testing.AllocsPerRun(100, func() { get(702) }); n != 0 {
		t.Errorf("GetLog of an entry read ahead: %v allocations, want 0", n)
	}
	alone := func(i uint64) float64 {
		return testing.AllocsPerRun(100, func() {
			get(3) // out of order: the next is read on its own
			get(i)
		})
	}
	if low, high := alone(5), alone(300); high != low {
		t.Errorf("GetLog on its own: %v allocations at index 300, %v at index 5", high, low)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := st.Stable.Get([]byte("missing")); !errors.Is(err, ErrKeyNotFound) {
			t.Fatal(err)
		}
	}); n > 2 {
		// The key passed through the interface, and the key with the
		// group's prefix.
		t.Errorf("Get of a missing key: %v allocations, want at most 2", n)
	}
}
