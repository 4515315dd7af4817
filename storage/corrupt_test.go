package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// A corruption fixture: a data directory written through the public API,
// with some of it flushed to SSTs and the rest only in the WAL, captured
// as file contents so each case starts from the same bytes.
type corruptFixture struct {
	files map[string][]byte // path -> content
	dirs  []string
	want  corruptModel
}

// corruptModel is what the fixture stored, to compare reads against.
type corruptModel struct {
	node   [32]byte
	groups map[[32]byte]*groupModel
}

type groupModel struct {
	logs   map[uint64]*raft.Log
	first  uint64
	last   uint64
	stable map[string][]byte
	snaps  map[string][]byte // id -> content
}

const fixtureDir = "/data"

func buildCorruptFixture(t *testing.T) *corruptFixture {
	t.Helper()
	fs := vfs.NewMem()
	db, err := Open(fixtureDir, &Options{FS: fs, SnapshotChunkSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	model := corruptModel{node: db.NodeKey(), groups: map[[32]byte]*groupModel{}}
	sts := map[[32]byte]Stores{}
	store := func(g [32]byte, from, to uint64) {
		gm := model.groups[g]
		logs := mkLogs(from, to)
		for _, l := range logs {
			if l.Index%25 == 0 {
				l.Type = raft.LogConfiguration
				l.Data = raft.EncodeConfiguration(testConfiguration)
			}
			gm.logs[l.Index] = l
		}
		if err := sts[g].Log.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
		gm.first, gm.last = 1, to
	}
	for gi := byte(1); gi <= 2; gi++ {
		g := groupID(gi)
		st, err := db.Stores(g)
		if err != nil {
			t.Fatal(err)
		}
		sts[g] = st
		gm := &groupModel{logs: map[uint64]*raft.Log{}, stable: map[string][]byte{}, snaps: map[string][]byte{}}
		model.groups[g] = gm
		store(g, 1, 150)
		for _, kv := range [][2]string{{"CurrentTerm", "\x00\x00\x00\x00\x00\x00\x00\x07"}, {"LastVoteCand", "node-" + string('a'+rune(gi))}} {
			if err := st.Stable.Set([]byte(kv[0]), []byte(kv[1])); err != nil {
				t.Fatal(err)
			}
			gm.stable[kv[0]] = []byte(kv[1])
		}
		id, _ := writeSnapshot(t, st.Snapshots, 100, gi, 20_000, 1000)
		_, content, err := readSnapshotBytes(st.Snapshots, id)
		if err != nil {
			t.Fatal(err)
		}
		gm.snaps[id] = content
	}
	// Everything so far into the last level, then one table in L0, then
	// the rest only in the WAL. A manual compaction leaves nothing for a
	// background one to do, so the same files hold the same entries on
	// every run. Their bytes differ (the stale tail of a reused log by a
	// few bytes, and the synced offsets Pebble writes, which lag when its
	// flush goroutine is slow: see TestCorruptWALFirstRecordNoPromise), and
	// positions drawn from a file's size with them.
	if err := db.pdb.Compact(context.Background(), []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}
	store(groupID(1), 151, 200)
	if err := db.pdb.Flush(); err != nil {
		t.Fatal(err)
	}
	store(groupID(2), 151, 200)
	// The WAL's last record is one nothing reads: a damaged last record is
	// what a crash during its write leaves, and is dropped as such.
	if err := sts[groupID(2)].Stable.Set([]byte("Sentinel"), []byte("last write")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	fx := &corruptFixture{files: map[string][]byte{}, want: model}
	var walk func(dir string)
	walk = func(dir string) {
		fx.dirs = append(fx.dirs, dir)
		names, err := fs.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			p := fs.PathJoin(dir, n)
			st, err := fs.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st.IsDir() {
				walk(p)
				continue
			}
			f, err := fs.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			fx.files[p] = b
		}
	}
	walk(fixtureDir)
	return fx
}

func readSnapshotBytes(s raft.SnapshotStore, id string) (*raft.SnapshotMeta, []byte, error) {
	meta, rc, err := s.Open(id)
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return meta, b, err
}

// image writes the fixture into a new in-memory filesystem, with the
// content of file name replaced by data.
func (fx *corruptFixture) image(t *testing.T, name string, data []byte) vfs.FS {
	t.Helper()
	fs := vfs.NewMem()
	for _, d := range fx.dirs {
		if err := fs.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for p, b := range fx.files {
		if p == name {
			b = data
		}
		f, err := fs.Create(p, vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		// A copy: under the race detector (Pebble's invariants), MemFS
		// scribbles over the buffer it was handed.
		if _, err := f.Write(bytes.Clone(b)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return fs
}

func (fx *corruptFixture) names(kind string) []string {
	var out []string
	for p := range fx.files {
		base := p[strings.LastIndexByte(p, '/')+1:]
		switch {
		case kind == "sst" && strings.HasSuffix(base, ".sst"),
			kind == "wal" && strings.HasSuffix(base, ".log"),
			kind == "manifest" && strings.HasPrefix(base, "MANIFEST-"),
			kind == "options" && strings.HasPrefix(base, "OPTIONS-"),
			kind == "marker" && strings.HasPrefix(base, "marker."):
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// checker runs one public read path under recover, and checks that what it
// returns is either what was stored or an error wrapping ErrCorrupt.
type checker struct {
	t       *testing.T
	what    string
	corrupt int // reads that reported ErrCorrupt
	correct int
}

func (c *checker) run(path string, f func() error) {
	c.t.Helper()
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("PANIC: %v\n%s", r, debug.Stack())
			}
		}()
		err = f()
	}()
	switch {
	case err == nil:
		c.correct++
	case errors.Is(err, ErrCorrupt):
		c.corrupt++
	default:
		c.t.Errorf("%s: %s: %v", c.what, path, err)
	}
}

var errWrongData = errors.New("wrong data") // never wraps ErrCorrupt: fails the check

// exercise reads everything the fixture stored through every public path.
func (fx *corruptFixture) exercise(c *checker, fs vfs.FS) {
	var db *DB
	c.run("Open", func() error {
		var err error
		db, err = Open(fixtureDir, &Options{FS: fs, SnapshotChunkSize: 4096})
		if err == nil && db.NodeKey() != fx.want.node {
			return fmt.Errorf("%w: node key differs", errWrongData)
		}
		return err
	})
	if db == nil {
		return
	}
	defer db.Close()
	c.run("Groups", func() error {
		gs, err := db.Groups()
		if err == nil && len(gs) != len(fx.want.groups) {
			return fmt.Errorf("%w: %d groups", errWrongData, len(gs))
		}
		return err
	})
	for g, gm := range fx.want.groups {
		r := db.ReadGroup(g)
		fx.readLog(c, "ReadGroup", r.v, gm)
		c.run("GroupReader.Entries", func() error {
			n := uint64(0)
			for l, err := range r.Entries(0) {
				if err != nil {
					return err
				}
				n++
				if want := gm.logs[l.Index]; want == nil || !equalLog(l, want) || l.Index != n {
					return fmt.Errorf("%w: entry %d", errWrongData, l.Index)
				}
			}
			if n != gm.last {
				return fmt.Errorf("%w: %d entries", errWrongData, n)
			}
			return nil
		})
		c.run("GroupReader.Snapshots", func() error {
			list, err := r.Snapshots()
			if err == nil && len(list) != len(gm.snaps) {
				return fmt.Errorf("%w: %d snapshots", errWrongData, len(list))
			}
			return err
		})
		c.run("GroupReader.CheckConfigurations", r.CheckConfigurations)
		var st Stores
		c.run("Stores", func() error {
			var err error
			st, err = db.Stores(g)
			return err
		})
		if st.Log == nil {
			continue
		}
		fx.readLog(c, "Stores", st.Log.(*view), gm)
		c.run("Log.CheckConfigurations", st.Log.(*view).CheckConfigurations)
		c.run("Snapshots.List", func() error {
			list, err := st.Snapshots.List()
			if err == nil && len(list) != len(gm.snaps) {
				return fmt.Errorf("%w: %d snapshots", errWrongData, len(list))
			}
			return err
		})
		for id, want := range gm.snaps {
			c.run("Snapshots.Open+Read", func() error {
				_, got, err := readSnapshotBytes(st.Snapshots, id)
				if err == nil && !bytes.Equal(got, want) {
					return fmt.Errorf("%w: snapshot %s", errWrongData, id)
				}
				return err
			})
		}
		// A write after corruption: it may fail, but only with ErrCorrupt.
		c.run("StoreLogs", func() error { return st.Log.StoreLogs(mkLogs(gm.last+1, gm.last+3)) })
		_ = st.Release()
	}
	c.run("Close", db.Close)
}

func (fx *corruptFixture) readLog(c *checker, via string, v *view, gm *groupModel) {
	c.run(via+".FirstIndex", func() error {
		i, err := v.FirstIndex()
		if err == nil && i != gm.first {
			return fmt.Errorf("%w: first %d", errWrongData, i)
		}
		return err
	})
	c.run(via+".LastIndex", func() error {
		i, err := v.LastIndex()
		if err == nil && i != gm.last {
			return fmt.Errorf("%w: last %d", errWrongData, i)
		}
		return err
	})
	c.run(via+".GetLog", func() error {
		for i := gm.first; i <= gm.last; i++ {
			var l raft.Log
			if err := v.GetLog(i, &l); err != nil {
				return fmt.Errorf("entry %d: %w", i, err)
			}
			if !equalLog(&l, gm.logs[i]) {
				return fmt.Errorf("%w: entry %d", errWrongData, i)
			}
		}
		return nil
	})
	c.run(via+".GetLog-backwards", func() error {
		for i := int(gm.last); i >= int(gm.first); i -= 7 {
			var l raft.Log
			if err := v.GetLog(uint64(i), &l); err != nil {
				return fmt.Errorf("entry %d: %w", i, err)
			}
			if !equalLog(&l, gm.logs[uint64(i)]) {
				return fmt.Errorf("%w: entry %d", errWrongData, i)
			}
		}
		return nil
	})
	for k, want := range gm.stable {
		c.run(via+".Get", func() error {
			got, err := v.Get([]byte(k))
			if err == nil && !bytes.Equal(got, want) {
				return fmt.Errorf("%w: stable %q", errWrongData, k)
			}
			return err
		})
	}
}

// TestCorruptFiles flips bytes in every kind of file Pebble keeps, at
// positions drawn from fixed seeds, and reads everything back through
// every public path: nothing may panic, and every read returns either
// what was stored or an error wrapping ErrCorrupt.
func TestCorruptFiles(t *testing.T) {
	fx := buildCorruptFixture(t)
	t.Run("undamaged", func(t *testing.T) {
		c := &checker{t: t, what: "the undamaged fixture"}
		fx.exercise(c, fx.image(t, "", nil))
		if c.corrupt != 0 || c.correct == 0 {
			t.Fatalf("the undamaged fixture: %d reads correct, %d corrupt", c.correct, c.corrupt)
		}
	})
	// Pebble reuses the files of old logs: after the live chunks of a
	// log comes the stale tail of an older one, which nothing reads.
	// Damage there is no damage to the database.
	stale := 0
	for _, name := range fx.names("wal") {
		orig := fx.files[name]
		end := liveEnd(t, name, orig)
		if end+recordBlockSize > len(orig) {
			continue
		}
		stale++
		rng := rand.New(rand.NewPCG(uint64(len(orig)), uint64(end)))
		positions := []int{end, end + 1, end + 7, len(orig) - 1}
		for range 6 {
			positions = append(positions, end+rng.IntN(len(orig)-end))
		}
		for _, pos := range positions {
			what := fmt.Sprintf("%s stale tail byte %d of %d (live up to %d)", name, pos, len(orig), end)
			t.Run(strings.ReplaceAll(what, "/", "_"), func(t *testing.T) {
				data := bytes.Clone(orig)
				data[pos] ^= 0xff
				c := &checker{t: t, what: what}
				fx.exercise(c, fx.image(t, name, data))
				if c.corrupt != 0 {
					t.Fatalf("damage to the stale tail: %d reads corrupt", c.corrupt)
				}
			})
		}
	}
	if stale == 0 {
		t.Fatal("no write-ahead log of the fixture has a stale tail of a block or more")
	}
	for _, kind := range []string{"sst", "wal", "manifest", "options", "marker"} {
		names := fx.names(kind)
		if len(names) == 0 && kind != "marker" {
			t.Fatalf("the fixture has no %s file", kind)
		}
		for _, name := range names {
			orig := fx.files[name]
			if len(orig) == 0 {
				continue
			}
			rng := rand.New(rand.NewPCG(uint64(len(orig)), uint64(len(name))))
			positions := []int{0, len(orig) / 2, len(orig) - 1}
			for range 9 {
				positions = append(positions, rng.IntN(len(orig)))
			}
			// The live part of a recycled WAL is at its start.
			for range 6 {
				positions = append(positions, rng.IntN(min(len(orig), 6000)))
			}
			for _, pos := range positions {
				for _, mask := range []byte{0x01, 0xff} {
					what := fmt.Sprintf("%s byte %d of %d ^%02x", name, pos, len(orig), mask)
					t.Run(strings.ReplaceAll(what, "/", "_"), func(t *testing.T) {
						data := bytes.Clone(orig)
						data[pos] ^= mask
						c := &checker{t: t, what: what}
						fx.exercise(c, fx.image(t, name, data))
					})
				}
			}
		}
	}
}

// TestCorruptTruncatedFiles cuts files short, as a crash of a file system
// that does not order its writes might.
func TestCorruptTruncatedFiles(t *testing.T) {
	fx := buildCorruptFixture(t)
	for _, kind := range []string{"sst", "manifest"} {
		for _, name := range fx.names(kind) {
			orig := fx.files[name]
			for _, n := range []int{0, 1, len(orig) / 3, len(orig) - 1} {
				what := fmt.Sprintf("%s cut to %d of %d bytes", name, n, len(orig))
				t.Run(strings.ReplaceAll(what, "/", "_"), func(t *testing.T) {
					c := &checker{t: t, what: what}
					fx.exercise(c, fx.image(t, name, orig[:n]))
				})
			}
		}
	}
}

// TestCheckConfigurations stores what hashicorp/raft's NewRaft would
// panic on when it starts: a configuration entry that does not decode,
// and a hole in the log. Both are reported as ErrCorrupt naming the
// group and the index, before Raft sees them.
func TestCheckConfigurations(t *testing.T) {
	db, _ := memDB(t, nil)
	good := stores(t, db, groupID(1))
	logs := mkLogs(1, 30)
	logs[9].Type, logs[9].Data = raft.LogConfiguration, raft.EncodeConfiguration(testConfiguration)
	if err := good.Log.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := good.Log.(ConfigurationChecker).CheckConfigurations(); err != nil {
		t.Fatalf("CheckConfigurations of a good log: %v", err)
	}

	// A configuration entry with a valid checksum whose data is not a
	// configuration: Raft's DecodeConfiguration panics on it.
	bad := stores(t, db, groupID(2))
	logs = mkLogs(1, 30)
	logs[16].Type, logs[16].Data = raft.LogConfiguration, []byte{0xc1, 0xff, 0x00}
	if err := bad.Log.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	err := bad.Log.(ConfigurationChecker).CheckConfigurations()
	if !isCorrupt(err) || !strings.Contains(err.Error(), "log entry 17") || !strings.Contains(err.Error(), shortGroup(groupID(2))) {
		t.Fatalf("CheckConfigurations of a bad configuration entry: %v", err)
	}
	if err := db.ReadGroup(groupID(2)).CheckConfigurations(); !isCorrupt(err) {
		t.Fatalf("GroupReader.CheckConfigurations: %v", err)
	}
	bad.Release()
	if _, err := db.Stores(groupID(2)); !isCorrupt(err) || !strings.Contains(err.Error(), "log entry 17") {
		t.Fatalf("Stores of a group with a bad configuration entry: %v", err)
	}

	// A hole with no snapshot below it: NewRaft reads every entry from 1
	// to the last, and panics on the first one missing. (A hole below the
	// newest snapshot is fine: see TestCheckConfigurationsAfterSnapshot.)
	holed := stores(t, db, groupID(3))
	if err := holed.Log.StoreLogs(append(mkLogs(1, 11), mkLogs(14, 20)...)); err != nil {
		t.Fatal(err)
	}
	err = holed.Log.(ConfigurationChecker).CheckConfigurations()
	if !isCorrupt(err) || !strings.Contains(err.Error(), "log entry 12") || !strings.Contains(err.Error(), shortGroup(groupID(3))) {
		t.Fatalf("CheckConfigurations of a log with a hole: %v", err)
	}

	// What the check promises: where it passes, Raft's own decoding does
	// not panic.
	if err := db.ReadGroup(groupID(1)).CheckConfigurations(); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := good.Log.GetLog(10, &l); err != nil {
		t.Fatal(err)
	}
	if c := raft.DecodeConfiguration(l.Data); len(c.Servers) != 2 {
		t.Fatalf("decoded %+v", c)
	}
}

// TestPanicIsCorrupt: a panic inside a read (Pebble panics on some
// damaged files) reaches the caller as ErrCorrupt naming what was read.
func TestPanicIsCorrupt(t *testing.T) {
	db, _ := memDB(t, nil)
	err := db.guarded("group 01020304: log entry 7", func() error { panic("index out of range") })
	if !isCorrupt(err) || !strings.Contains(err.Error(), "log entry 7") || !strings.Contains(err.Error(), "index out of range") {
		t.Fatalf("guarded panic: %v", err)
	}
	v := newView(db, groupID(9))
	err = func() (err error) {
		defer v.recoverCorruptIndex(&err, "log entry", 12)
		panic(pebbleFatal{msg: "pebble: corrupt block"})
	}()
	if !isCorrupt(err) || !strings.Contains(err.Error(), "group "+v.short+": log entry 12") || !strings.Contains(err.Error(), "corrupt block") {
		t.Fatalf("recovered panic: %v", err)
	}
}

// liveEnd returns where the chunks of the write-ahead log name end in its
// content b: at the first chunk that is not a valid chunk of its own.
func liveEnd(t *testing.T, name string, b []byte) int {
	t.Helper()
	var num uint32
	if _, err := fmt.Sscanf(name[strings.LastIndexByte(name, '/')+1:], "%06d.log", &num); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for base := 0; base < len(b); base += recordBlockSize {
		blk := b[base:min(base+recordBlockSize, len(b))]
		for i := 0; i < len(blk); {
			if len(blk)-i < walSyncHdr && !slices.ContainsFunc(blk[i:], func(c byte) bool { return c != 0 }) {
				break
			}
			c := chunkAt(blk, i)
			if !c.valid || c.legacy() || c.logNum != num {
				return base + i
			}
			i = c.end
		}
	}
	return len(b)
}

// TestCorruptWALFirstRecordNoPromise: the failure TestCorruptFiles once
// showed under load. The fixture's newest log starts with the entries of
// group 2 from 151 on and ends with one more synced write; when the
// offset Pebble wrote into that last chunk lags (it releases a committer
// before it records how far its sync reached), no chunk promises that the
// first record was synced. Damage to the first record then made Open
// drop the log from it on, entries 151-200 with it, without an error.
// Here every offset in the live chunks is set to 0, as such a lag writes
// them, and byte 0 of the log is flipped: Open must refuse the directory
// with ErrCorrupt naming the log and the offset.
func TestCorruptWALFirstRecordNoPromise(t *testing.T) {
	fx := buildCorruptFixture(t)
	tested := 0
	for _, name := range fx.names("wal") {
		orig := bytes.Clone(fx.files[name])
		if zeroSyncOffsets(t, name, orig) < 2 {
			continue // no record after the first: damage to it is a torn end
		}
		tested++
		for _, mask := range []byte{0x01, 0xff} {
			what := fmt.Sprintf("%s byte 0 ^%02x, sync offsets 0", name, mask)
			t.Run(strings.ReplaceAll(what, "/", "_"), func(t *testing.T) {
				data := bytes.Clone(orig)
				data[0] ^= mask
				fs := fx.image(t, name, data)
				c := &checker{t: t, what: what}
				fx.exercise(c, fs)
				_, err := Open(fixtureDir, &Options{FS: fs, SnapshotChunkSize: 4096})
				base := name[strings.LastIndexByte(name, '/')+1:]
				if !isCorrupt(err) || !strings.Contains(err.Error(), base) || !strings.Contains(err.Error(), "offset 0") {
					t.Fatalf("Open: %v; want ErrCorrupt naming %s and offset 0", err, base)
				}
			})
		}
	}
	if tested == 0 {
		t.Fatal("no write-ahead log of the fixture holds two records of its own")
	}
}

// zeroSyncOffsets sets to 0 the synced offset of every live chunk of the
// write-ahead log name in b (recomputing their checksums), and returns
// how many records its live chunks hold.
func zeroSyncOffsets(t *testing.T, name string, b []byte) int {
	t.Helper()
	end := liveEnd(t, name, b)
	records := 0
	for base := 0; base < end; base += recordBlockSize {
		blk := b[base:min(base+recordBlockSize, len(b))]
		for i := 0; base+i < end; {
			c := chunkAt(blk, i)
			if !c.valid {
				break // the zeroed rest of a block
			}
			if c.typ >= walSyncFirst {
				clear(blk[i+11 : i+19])
				binary.LittleEndian.PutUint32(blk[i:], maskedCRC(blk[i+6:c.end]))
			}
			if t := c.typ % 4; t == 1 || t == 2 { // full or first (5/6, 9/10)
				records++
			}
			i = c.end
		}
	}
	return records
}

// TestCorruptFirstWALOfNewDirectory: the first write-ahead log of a new
// directory is written in Pebble's recyclable format (chunk types 5..8,
// seen with Pebble 2.1), whose chunks carry no synced offset, so nothing
// in it promises a damaged record was synced; it stays the live log until
// the first memtable flush. Damage to any record but the last of it, with synced entries
// after it, must make Open refuse the directory, not drop them.
func TestCorruptFirstWALOfNewDirectory(t *testing.T) {
	fs := vfs.NewMem()
	db, err := Open(fixtureDir, &Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	st := stores(t, db, groupID(1))
	for i := uint64(1); i <= 40; i += 10 {
		if err := st.Log.StoreLogs(mkLogs(i, i+9)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Stable.Set([]byte("Sentinel"), []byte("last write")); err != nil {
		t.Fatal(err)
	}
	st.Release()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	names, err := fs.List(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	var wal string
	for _, n := range names {
		if strings.HasSuffix(n, ".log") {
			wal = max(wal, n) // the newest: zero-padded numbers sort
		}
	}
	if wal == "" {
		t.Fatal("no write-ahead log")
	}
	f, err := fs.Open(fs.PathJoin(fixtureDir, wal))
	if err != nil {
		t.Fatal(err)
	}
	orig, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	name := fs.PathJoin(fixtureDir, wal)
	end := liveEnd(t, name, orig)
	// Records: the chunks of the live part, each a full record here.
	var at []int
	for i := 0; i < end; {
		c := chunkAt(orig[:min(len(orig), recordBlockSize)], i)
		if !c.valid {
			break
		}
		at = append(at, i)
		i = c.end
	}
	if len(at) < 4 {
		t.Fatalf("%s: %d records in its live part, want the four batches and more", wal, len(at))
	}
	for k, rec := range at[:len(at)-1] {
		for _, pos := range []int{rec, rec + walRecyclableHdr + 3} {
			t.Run(fmt.Sprintf("record %d byte %d", k, pos), func(t *testing.T) {
				data := bytes.Clone(orig)
				data[pos] ^= 0x01
				img := vfs.NewMem()
				if err := img.MkdirAll(fixtureDir, 0o700); err != nil {
					t.Fatal(err)
				}
				for _, n := range names {
					b := readMem(t, fs, fs.PathJoin(fixtureDir, n))
					if n == wal {
						b = data
					}
					memFile(t, img, fs.PathJoin(fixtureDir, n), b).Close()
				}
				db, err := Open(fixtureDir, &Options{FS: img})
				if err == nil {
					db.Close()
				}
				if !isCorrupt(err) || !strings.Contains(err.Error(), wal) || !strings.Contains(err.Error(), fmt.Sprintf("offset %d ", rec)) {
					t.Fatalf("Open: %v; want ErrCorrupt naming %s and offset %d", err, wal, rec)
				}
			})
		}
	}
}

func readMem(t *testing.T, fs vfs.FS, name string) []byte {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
