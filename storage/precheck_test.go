package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// walChunk encodes one chunk of Pebble's WAL format, as walChunkAt parses
// it: a recyclable chunk (types 5..8) or a WAL-sync chunk (9..12), which
// also carries the offset the log was synced up to.
func walChunk(typ byte, logNum uint32, synced uint64, payload []byte) []byte {
	b := make([]byte, 6, walSyncHdr+len(payload))
	binary.LittleEndian.PutUint16(b[4:], uint16(len(payload)))
	b = append(b, typ)
	b = binary.LittleEndian.AppendUint32(b, logNum)
	if typ >= walSyncFirst {
		b = binary.LittleEndian.AppendUint64(b, synced)
	}
	b = append(b, payload...)
	binary.LittleEndian.PutUint32(b, maskedCRC(b[6:]))
	return b
}

// walFile lays records out as Pebble's writer does: a record that does
// not fit in what is left of a 32 KiB block is split into a first chunk,
// middle ones and a last one; a block with no room left for a header is
// zeroed to its end. at holds the offset of each record's first chunk.
type walFile struct {
	b  []byte
	at []int
}

// add appends a record of the given family (walRecyclableFirst or
// walSyncFirst) whose chunks carry synced, or if synced is negative the
// offset of the record's start.
func (w *walFile) add(family byte, logNum uint32, synced int64, payload []byte) {
	hdr := walRecyclableHdr
	if family == walSyncFirst {
		hdr = walSyncHdr
	}
	if synced < 0 {
		synced = int64(len(w.b))
	}
	for first := true; first || len(payload) > 0; first = false {
		left := recordBlockSize - len(w.b)%recordBlockSize
		if left < hdr {
			w.b = append(w.b, make([]byte, left)...)
			left = recordBlockSize
		}
		if first {
			w.at = append(w.at, len(w.b))
		}
		n := min(left-hdr, len(payload))
		last := n == len(payload)
		typ := family + 3 // last
		switch {
		case first && last:
			typ = family
		case first:
			typ = family + 1
		case !last:
			typ = family + 2
		}
		w.b = append(w.b, walChunk(typ, logNum, uint64(synced), payload[:n])...)
		payload = payload[n:]
	}
}

func checkWALBytes(t *testing.T, b []byte, logNum uint32) error {
	t.Helper()
	fs := vfs.NewMem()
	name := fmt.Sprintf("/%06d.log", logNum)
	memFile(t, fs, name, b).Close()
	return checkWAL(fs, name, logNum)
}

// TestOpenForgedSyncChunkInRecycledWAL: Pebble reuses the files of old
// write-ahead logs, so the newest log ends where its own chunks end and
// the stale chunks of an older log follow, holding the raw values stored
// back then. A value that embeds a well-formed WAL-sync chunk of a later
// log number must not make the directory look damaged: any member of a
// group can put such bytes into a command.
func TestOpenForgedSyncChunkInRecycledWAL(t *testing.T) {
	var forged []byte
	for n := uint32(1); n <= 64; n++ {
		forged = append(forged, walChunk(walSyncFirst, n, 1<<40, []byte("evil"))...)
	}
	fs := vfs.NewMem()
	db, err := Open("/data", &Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	st, err := db.Stores(groupID(1))
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]*raft.Log{}
	next := uint64(1)
	store := func(n int) {
		var logs []*raft.Log
		for range n {
			l := mkLog(next)
			l.Data = append(l.Data, forged...)
			logs = append(logs, l)
			want[next] = l
			next++
		}
		if err := st.Log.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
	}
	// Long logs, each flushed away so its file is kept for reuse, then a
	// short one written over the start of a reused file.
	for range 4 {
		for range 20 {
			store(5)
		}
		if err := db.pdb.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	store(1)
	st.Release()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if !hasStaleTail(t, fs, "/data") {
		t.Fatal("no write-ahead log holds a stale tail: the test proves nothing")
	}

	db, err = Open("/data", &Options{FS: fs})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	st = stores(t, db, groupID(1))
	mustIndexes(t, st.Log, 1, next-1)
	for i := uint64(1); i < next; i++ {
		mustLog(t, st.Log, want[i])
	}
}

// hasStaleTail reports whether a write-ahead log in dir holds chunks of an
// older log after its own.
func hasStaleTail(t *testing.T, fs vfs.FS, dir string) bool {
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		var num uint32
		if _, err := fmt.Sscanf(n, "%06d.log", &num); err != nil || !strings.HasSuffix(n, ".log") {
			continue
		}
		f, err := fs.Open(fs.PathJoin(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for base := 0; base < len(b); base += recordBlockSize {
			blk := b[base:min(base+recordBlockSize, len(b))]
			if len(blk) >= walRecyclableHdr && blk[6] >= walRecyclableFirst && blk[6] <= walSyncLast {
				if other := binary.LittleEndian.Uint32(blk[7:]); other != num && other != num+1 {
					return true
				}
			}
		}
	}
	return false
}

// TestCheckWALDamage: damage inside the synced part of a log is reported
// when a later chunk of the log promises the damaged one was synced; the
// torn end a crash leaves, and the stale chunks of a reused file, are not.
func TestCheckWALDamage(t *testing.T) {
	const logNum = 7
	payload := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1000) }
	var w walFile
	for i := range 80 { // three blocks and a bit
		w.add(walSyncFirst, logNum, -1, payload(i))
	}
	good, at := w.b, w.at
	if err := checkWALBytes(t, good, logNum); err != nil {
		t.Fatalf("an undamaged log: %v", err)
	}
	flip := func(pos int) []byte {
		b := bytes.Clone(good)
		b[pos] ^= 0x40
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		bad  bool
	}{
		{"payload, synced chunks in the same block", flip(at[2] + walSyncHdr + 10), true},
		{"payload, synced chunks in later blocks", flip(at[30] + walSyncHdr + 10), true},
		{"checksum of the first chunk", flip(at[0]), true},
		{"log number, synced chunks in later blocks", flip(at[31] + 8), true},
		{"torn last chunk", good[:at[79]+50], false},
		{"payload of the last chunk", flip(at[79] + walSyncHdr + 1), false},
		{"reused file", reused(logNum-2, good[:at[10]]), false},
		{"reused file, closed", reused(logNum-2, slices.Concat(good[:at[40]], walChunk(walRecyclableFirst, logNum+1, 0, nil))), false},
		{"reused file, damage before synced chunks", reused(logNum-2, flip(at[40] + walSyncHdr + 10)[:at[70]]), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkWALBytes(t, tc.b, logNum)
			var d *walDamage
			switch {
			case tc.bad && !errors.As(err, &d):
				t.Fatalf("got %v, want damage reported", err)
			case tc.bad && !d.promised:
				t.Fatalf("got %v, want the later chunks' promise noted", err)
			case !tc.bad && err != nil:
				t.Fatalf("got %v, want no error", err)
			}
		})
	}
}

// TestCheckWALDamageNoPromise: the offsets Pebble writes into WAL-sync
// chunks lag behind what was synced (its flush goroutine releases a
// committer before it records the offset the sync reached, and does not
// count the full blocks it writes), and the first log of a new directory
// has recyclable chunks, which carry none. A damaged record followed by a
// valid record of the same log is reported all the same: a record is
// appended only after the ones before it, so they were written, and with
// a synced write acknowledged; a crash tears only the end.
func TestCheckWALDamageNoPromise(t *testing.T) {
	const logNum = 7
	for _, family := range []byte{walSyncFirst, walRecyclableFirst} {
		var w walFile
		for i := range 80 { // three blocks and a bit; every promise is 0
			w.add(family, logNum, 0, bytes.Repeat([]byte{byte(i)}, 1000))
		}
		good, at := w.b, w.at
		hdr := walRecyclableHdr
		if family == walSyncFirst {
			hdr = walSyncHdr
		}
		flip := func(pos int, mask byte) []byte {
			b := bytes.Clone(good)
			b[pos] ^= mask
			return b
		}
		for _, tc := range []struct {
			name string
			b    []byte
			bad  bool
		}{
			{"undamaged", good, false},
			{"checksum of the first chunk ^01", flip(0, 0x01), true},
			{"checksum of the first chunk ^ff", flip(0, 0xff), true},
			{"payload of the first chunk", flip(hdr+3, 0x40), true},
			{"payload, records after it in the same block", flip(at[2]+hdr+10, 0x40), true},
			{"payload, records after it in later blocks only", flip(at[31]+hdr+10, 0x40), true},
			{"log number of a chunk", flip(at[40]+8, 0x40), true},
			{"torn last chunk", good[:at[79]+50], false},
			{"payload of the last chunk", flip(at[79]+hdr+1, 0x40), false},
			{"reused file", reused(logNum-2, good[:at[10]]), false},
			{"reused file, closed", reused(logNum-2, slices.Concat(good[:at[40]], walChunk(walRecyclableFirst, logNum+1, 0, nil))), false},
			{"reused file, damage before more records", reused(logNum-2, flip(at[5]+hdr+10, 0x40)[:at[9]]), true},
		} {
			t.Run(fmt.Sprintf("type %d: %s", family, tc.name), func(t *testing.T) {
				err := checkWALBytes(t, tc.b, logNum)
				var d *walDamage
				switch {
				case tc.bad && !errors.As(err, &d):
					t.Fatalf("got %v, want damage reported", err)
				case tc.bad && d.promised:
					t.Fatalf("got %v: no chunk promised the damaged one was synced", err)
				case !tc.bad && err != nil:
					t.Fatalf("got %v, want no error", err)
				}
			})
		}
	}
}

// reused is the file of an older log other, whose values embed WAL-sync
// chunks forged for the log numbers around it, with prefix written over
// its start.
func reused(other uint32, prefix []byte) []byte {
	var forged []byte
	for n := other; n < other+8; n++ {
		forged = append(forged, walChunk(walSyncFirst, n, 1<<40, []byte("evil"))...)
	}
	var w walFile
	for i := range 150 {
		w.add(walRecyclableFirst, other, 0, slices.Concat(forged, bytes.Repeat([]byte{byte(i)}, 500)))
	}
	copy(w.b, prefix)
	return w.b
}

// TestCheckManifestTornTail: a MANIFEST's torn last record is no damage,
// even when its payload holds a well-formed chunk (records carry keys,
// which may hold anything); a damaged record followed by valid ones is.
func TestCheckManifestTornTail(t *testing.T) {
	embedded := slices.Concat([]byte{0, 0, 0, 0, 5, 0, 1}, []byte("hello"))
	binary.LittleEndian.PutUint32(embedded, maskedCRC(embedded[6:]))
	var buf bytes.Buffer
	w := record.NewWriter(&buf)
	var starts []int64
	for i := range 20 {
		starts = append(starts, w.Size())
		if _, err := w.WriteRecord(slices.Concat(bytes.Repeat([]byte{byte(i)}, 300), embedded, bytes.Repeat([]byte{byte(i)}, 300))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	check := func(b []byte) error {
		fs := vfs.NewMem()
		f := memFile(t, fs, "/MANIFEST-000001", b)
		defer f.Close()
		return checkManifestFile(f)
	}
	if err := check(good); err != nil {
		t.Fatalf("an undamaged MANIFEST: %v", err)
	}
	// Cut in the last record, after the chunk embedded in it.
	if err := check(good[:starts[19]+recordHeaderSize+int64(300+len(embedded)+10)]); err != nil {
		t.Fatalf("a torn last record: %v", err)
	}
	damaged := bytes.Clone(good)
	damaged[starts[5]+recordHeaderSize+10] ^= 1
	if err := check(damaged); !errors.Is(err, errDamaged) {
		t.Fatalf("a damaged record followed by valid ones: %v", err)
	}
}

// TestTruncateDamagedWAL: a write-ahead log that lost a page of its
// unsynced tail with valid pages of the same log after it (what a crash on
// a disk that writes pages out of order can leave) is refused by Open,
// with the way out named; with Options.TruncateDamagedWAL it opens, every
// record before the lost page intact, and the directory opens again
// without the option. (Where the cut falls: TestTruncateDamagedWALNewestOnly.)
func TestTruncateDamagedWAL(t *testing.T) {
	fs := vfs.NewMem()
	const synced, total = 200, 600
	rec := func(i uint64) *raft.Log {
		l := mkLog(i)
		l.Data = bytes.Repeat([]byte{byte(i)}, 1000)
		return l
	}
	// The first records synced, in one log; the rest never synced (NoSync),
	// in the next.
	for _, run := range []struct {
		from, to uint64
		noSync   bool
	}{{1, synced, false}, {synced + 1, total, true}} {
		db, err := Open("/data", &Options{FS: fs, NoSync: run.noSync})
		if err != nil {
			t.Fatal(err)
		}
		st := stores(t, db, groupID(1))
		for i := run.from; i <= run.to; i++ {
			if err := st.Log.StoreLogs([]*raft.Log{rec(i)}); err != nil {
				t.Fatal(err)
			}
		}
		st.Release()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	wal := newestWAL(t, fs, "/data")
	size := int64(len(readMem(t, fs, wal)))
	lost := size / 2 &^ 4095 // a page in the middle of the log
	if size < lost+2*recordBlockSize {
		t.Fatalf("write-ahead log %s holds %d bytes: too short for the test", wal, size)
	}
	losePage(t, fs, wal, lost)

	_, err := Open("/data", &Options{FS: fs})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "TruncateDamagedWAL") {
		t.Fatalf("open with a lost page: got %v, want ErrCorrupt naming TruncateDamagedWAL", err)
	}
	if _, err := Open("/data", &Options{FS: fs, TruncateDamagedWAL: true, ReadOnly: true}); err == nil {
		t.Fatal("TruncateDamagedWAL with ReadOnly: no error")
	}
	var kept uint64
	for _, opts := range []*Options{{FS: fs, TruncateDamagedWAL: true}, {FS: fs}} {
		db, err := Open("/data", opts)
		if err != nil {
			t.Fatalf("open (TruncateDamagedWAL %v): %v", opts.TruncateDamagedWAL, err)
		}
		st := stores(t, db, groupID(1))
		last, err := st.Log.LastIndex()
		if err != nil {
			t.Fatal(err)
		}
		if kept == 0 {
			kept = last
		}
		// Each record holds over 1000 bytes: those before the lost page stay.
		if last != kept || last >= total || last < synced || last < total-uint64(size-lost)/1000-1 {
			t.Fatalf("last index %d (first open %d), want only the records from the lost page on (at most %d of %d) dropped",
				last, kept, (size-lost)/1000+1, total)
		}
		for i := uint64(1); i <= last; i++ {
			mustLog(t, st.Log, rec(i))
		}
		st.Release()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTruncateDamagedWALRefusesPromised: damage that a later chunk of the
// log records as synced is refused even with Options.TruncateDamagedWAL,
// and the log is left as it was.
func TestTruncateDamagedWALRefusesPromised(t *testing.T) {
	const logNum = 7
	b := damagedWAL(logNum, walSyncFirst)
	fs := vfs.NewMem()
	if err := fs.MkdirAll("/data", 0o700); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("/data/%06d.log", logNum)
	memFile(t, fs, name, b).Close()
	err := checkWALs(fs, "/data", true, slog.New(slog.DiscardHandler))
	if !errors.Is(err, ErrCorrupt) || strings.Contains(err.Error(), "TruncateDamagedWAL") {
		t.Fatalf("got %v, want ErrCorrupt without the TruncateDamagedWAL hint", err)
	}
	if !bytes.Equal(readMem(t, fs, name), b) {
		t.Fatal("the log changed")
	}
}

// newestWAL returns the path of the write-ahead log with the highest
// number in dir.
func newestWAL(t *testing.T, fs vfs.FS, dir string) string {
	t.Helper()
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	newest := ""
	for _, n := range names {
		if strings.HasSuffix(n, ".log") && n > newest {
			newest = n
		}
	}
	if newest == "" {
		t.Fatalf("no write-ahead log in %s: %v", dir, names)
	}
	return fs.PathJoin(dir, newest)
}

// TestTruncateDamagedWALNewestOnly: Options.TruncateDamagedWAL cuts only
// the newest write-ahead log. Pebble synced an older one when it closed
// it, so damage there is no crash's lost page: it is refused, without the
// hint, and the log is left as it was.
func TestTruncateDamagedWALNewestOnly(t *testing.T) {
	fs := vfs.NewMem()
	if err := fs.MkdirAll("/data", 0o700); err != nil {
		t.Fatal(err)
	}
	older, newer := damagedWAL(7, walRecyclableFirst), damagedWAL(9, walRecyclableFirst)
	memFile(t, fs, "/data/000007.log", older).Close()
	memFile(t, fs, "/data/000009.log", newer).Close()
	err := checkWALs(fs, "/data", true, slog.New(slog.DiscardHandler))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "000007.log") || strings.Contains(err.Error(), "TruncateDamagedWAL") {
		t.Fatalf("got %v, want ErrCorrupt for 000007.log without the TruncateDamagedWAL hint", err)
	}
	if !bytes.Equal(readMem(t, fs, "/data/000007.log"), older) {
		t.Fatal("the older log was changed")
	}
	// Alone, the newest one is cut.
	if err := fs.Remove("/data/000007.log"); err != nil {
		t.Fatal(err)
	}
	if err := checkWALs(fs, "/data", true, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("the newest log alone: %v", err)
	}
	// Cut: everything before the damaged chunk as it was, zeros from it to
	// the end.
	var d *walDamage
	if !errors.As(checkWALBytes(t, newer, 9), &d) {
		t.Fatal("the newest log is not damaged: the test proves nothing")
	}
	got := readMem(t, fs, "/data/000009.log")
	if len(got) != len(newer) || !bytes.Equal(got[:d.at], newer[:d.at]) || !allZero(got[d.at:]) {
		t.Fatalf("the newest log is not cut at offset %d, the damaged chunk", d.at)
	}
}

// TestTruncateDamagedWALRefusalCutsNothing: when Open refuses one log, the
// newest one, which Options.TruncateDamagedWAL would cut, is left as it
// was too, whatever order the directory lists them in.
func TestTruncateDamagedWALRefusalCutsNothing(t *testing.T) {
	// The newest log's damage is cuttable (no chunk promises it was
	// synced); the older one's is promised.
	older, newer := damagedWAL(7, walSyncFirst), damagedWAL(9, walRecyclableFirst)
	for i := range 20 {
		fs := vfs.NewMem()
		if err := fs.MkdirAll("/data", 0o700); err != nil {
			t.Fatal(err)
		}
		memFile(t, fs, "/data/000007.log", older).Close()
		memFile(t, fs, "/data/000009.log", newer).Close()
		err := checkWALs(fs, "/data", true, slog.New(slog.DiscardHandler))
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "000007.log") {
			t.Fatalf("try %d: got %v, want ErrCorrupt for 000007.log", i, err)
		}
		if !bytes.Equal(readMem(t, fs, "/data/000009.log"), newer) {
			t.Fatalf("try %d: the newest log changed although Open refused", i)
		}
	}
}

// TestOpenChecksManifest: Open reads the directory's MANIFEST before Pebble
// does, and refuses one with a damaged record that valid ones follow.
func TestOpenChecksManifest(t *testing.T) {
	fs := manifestDir(t, 0)
	damageManifest(t, fs)
	db, err := Open("/data", &Options{FS: fs})
	if err == nil {
		db.Close()
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "MANIFEST") || !strings.Contains(err.Error(), "a valid record follows") {
		t.Fatalf("open with a damaged MANIFEST record valid ones follow: got %v, want ErrCorrupt from the pre-check", err)
	}
}

// manifestDir returns a filesystem with a directory /data whose MANIFEST
// holds several records, and whose write-ahead logs hold tail records of
// 1000 bytes, never synced, after them.
func manifestDir(t *testing.T, tail uint64) vfs.FS {
	t.Helper()
	fs := vfs.NewMem()
	// NoSync: the tail is never synced, and so is damage there a crash
	// can leave.
	db, err := Open("/data", &Options{FS: fs, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	st := stores(t, db, groupID(1))
	// Each flush adds a record to the MANIFEST.
	for run := range 4 {
		for i := uint64(1); i <= 50; i++ {
			if err := st.Log.StoreLogs([]*raft.Log{mkLog(uint64(run)*50 + i)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.pdb.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	for i := uint64(1); i <= tail; i++ {
		l := mkLog(200 + i)
		l.Data = make([]byte, 1000) // random: it does not compress
		_, _ = rand.NewChaCha8([32]byte{byte(i), byte(i >> 8)}).Read(l.Data)
		if err := st.Log.StoreLogs([]*raft.Log{l}); err != nil {
			t.Fatal(err)
		}
	}
	st.Release()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return fs
}

// damageManifest flips a bit in a record in the middle of the MANIFEST of
// /data: Pebble alone would open the database as the records before it
// describe.
func damageManifest(t *testing.T, fs vfs.FS) {
	t.Helper()
	desc, err := pebble.Peek("/data", fs)
	if err != nil || desc.ManifestFilename == "" {
		t.Fatalf("peek: %v %+v", err, desc)
	}
	f, err := fs.OpenReadWrite(desc.ManifestFilename, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var starts []int64
	rr := record.NewReader(f, 0)
	for {
		start := rr.Offset()
		r, err := rr.Next()
		if err != nil {
			break
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			t.Fatal(err)
		}
		starts = append(starts, start)
	}
	if len(starts) < 3 {
		t.Fatalf("the MANIFEST holds %d records: too few for the test", len(starts))
	}
	at := starts[len(starts)/2] + recordHeaderSize + 2
	b := []byte{0}
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

// TestTruncateDamagedWALManifestRefused: Open refusing a damaged MANIFEST
// leaves the write-ahead log as it was, although Options.TruncateDamagedWAL
// would have cut it.
func TestTruncateDamagedWALManifestRefused(t *testing.T) {
	fs := manifestDir(t, 300)
	// The newest log loses a page in its middle: cuttable.
	wal := newestWAL(t, fs, "/data")
	b := readMem(t, fs, wal)
	if len(b) < 2*recordBlockSize {
		t.Fatalf("write-ahead log %s holds %d bytes: too short for the test", wal, len(b))
	}
	losePage(t, fs, wal, 8192)
	b = readMem(t, fs, wal)
	if err := checkWALs(fs, "/data", false, slog.New(slog.DiscardHandler)); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "TruncateDamagedWAL") {
		t.Fatalf("the log's damage is not cuttable (%v): the test damages it wrongly", err)
	}
	damageManifest(t, fs)
	_, err := Open("/data", &Options{FS: fs, TruncateDamagedWAL: true})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "MANIFEST") {
		t.Fatalf("open: got %v, want ErrCorrupt for the MANIFEST", err)
	}
	if !bytes.Equal(readMem(t, fs, wal), b) {
		t.Fatal("the write-ahead log was cut although Open refused")
	}
}

// damagedWAL is a write-ahead log of 80 records of 1000 bytes in the given
// family (walSyncFirst: each chunk promises its record's start was synced;
// walRecyclableFirst: no promises), with a bit flipped in record 30.
func damagedWAL(logNum uint32, family byte) []byte {
	var w walFile
	for i := range 80 {
		w.add(family, logNum, -1, bytes.Repeat([]byte{byte(i)}, 1000))
	}
	b := bytes.Clone(w.b)
	b[w.at[30]+walSyncHdr+10] ^= 0x40
	return b
}

// losePage zeroes the 4 KiB page of name at offset at, as a crash that lost
// that page of an unsynced write leaves it.
func losePage(t *testing.T, fs vfs.FS, name string, at int64) {
	t.Helper()
	f, err := fs.OpenReadWrite(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, 4096), at); err != nil {
		t.Fatal(err)
	}
}
