package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/internal/raftconf"
)

// Every decoder of bytes read from disk is fuzzed for one property: it
// never panics, and what it refuses it refuses with an error. Where it
// accepts, encoding what it decoded gives back what it read.

// FuzzDecodeLog: log entry records (keys.go decodeLog, checkLog).
func FuzzDecodeLog(f *testing.F) {
	for _, l := range []*raft.Log{mkLog(1), mkLog(77), {Index: 5, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(testConfiguration)}, {Index: 9}} {
		f.Add(encodeLog(nil, l), l.Index)
	}
	f.Add([]byte{}, uint64(0))
	f.Add(bytes.Repeat([]byte{0xff}, 40), uint64(1))
	f.Fuzz(func(t *testing.T, b []byte, index uint64) {
		var l raft.Log
		err := decodeLog(b, index, &l)
		if cerr := checkLog(b, index); cerr != nil && err == nil {
			t.Fatalf("checkLog refuses what decodeLog accepts: %v", cerr)
		}
		if err != nil {
			return
		}
		var again raft.Log
		if err := decodeLog(encodeLog(nil, &l), index, &again); err != nil || !equalLog(&l, &again) {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", l, again, err)
		}
	})
}

// FuzzDecodeChecked: the node record and stable-store values (keys.go
// decodeChecked).
func FuzzDecodeChecked(f *testing.F) {
	f.Add(keyNode, encodeChecked(keyNode, bytes.Repeat([]byte{7}, 32)))
	k := append(groupPrefix(groupID(1)), kindStable, 'T')
	f.Add(k, encodeChecked(k, binary.BigEndian.AppendUint64(nil, 42)))
	f.Add([]byte{}, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, key, b []byte) {
		val, err := decodeChecked(key, b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeChecked(key, val), b) {
			t.Fatalf("re-encoding %x gives other bytes", b)
		}
	})
}

// FuzzKeys: key parsers (keys.go logIndex, chunkKeyParts; snapshots.go
// snapshotSeq).
func FuzzKeys(f *testing.F) {
	v := newView(&DB{dir: "/fuzz"}, groupID(3))
	f.Add(logKey(v.logLo, 17))
	f.Add(v.chunkKey(nil, 2, 9))
	f.Add([]byte("7-100-3"))
	f.Add([]byte("-"))
	f.Fuzz(func(t *testing.T, key []byte) {
		if i, err := logIndex(key); err == nil && !bytes.Equal(logKey(key[:groupPrefixLen+1], i), key) {
			t.Fatalf("log key %x gives index %d", key, i)
		}
		if seq, n, err := chunkKeyParts(key); err == nil {
			if got := appendUint64(appendUint64(append([]byte(nil), key[:groupPrefixLen+1]...), seq), n); !bytes.Equal(got, key) {
				t.Fatalf("chunk key %x gives %d, %d", key, seq, n)
			}
		}
		snapshotSeq(string(key))
	})
}

// FuzzDecodeMeta: finished snapshots' metadata records (snapshots.go
// decodeMeta).
func FuzzDecodeMeta(f *testing.F) {
	v := newView(&DB{dir: "/fuzz"}, groupID(4))
	m := snapMeta{Format: snapMetaFormat, ID: snapshotID(2, 10, 1), Seq: 1, Version: 1, Index: 10, Term: 2,
		Configuration: testConfiguration, ConfigurationIndex: 9, Size: 5000, Chunks: 2, CRC: 77, Created: time.Unix(1700000000, 0).UTC()}
	body, _ := json.Marshal(&m)
	key := v.metaKey(1)
	f.Add(uint64(1), encodeChecked(key, body))
	f.Add(uint64(1), encodeChecked(key, []byte(`{"format":1,"id":"0-0-1","seq":1,"size":-1}`)))
	f.Add(uint64(0), encodeChecked(v.metaKey(0), []byte(`null`)))
	f.Fuzz(func(t *testing.T, seq uint64, raw []byte) {
		key := v.metaKey(seq)
		// Most inputs fail the checksum; also try the same body behind a
		// valid one, so the JSON decoding is reached.
		for _, r := range [][]byte{raw, encodeChecked(key, raw)} {
			got, err := v.decodeMeta(key, r)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("error does not wrap ErrCorrupt: %v", err)
				}
				continue
			}
			if got.Seq != seq || got.Size < 0 || got.ID != snapshotID(got.Term, got.Index, seq) {
				t.Fatalf("accepted %+v under #%d", got, seq)
			}
		}
	})
}

// FuzzSnapshotChunk: stored snapshot chunks (snapshots.go checkChunk).
func FuzzSnapshotChunk(f *testing.F) {
	v := newView(&DB{dir: "/fuzz"}, groupID(5))
	key := v.chunkKey(nil, 1, 0)
	data := []byte("some snapshot bytes")
	sum := crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, data)
	f.Add(key, binary.BigEndian.AppendUint32(bytes.Clone(data), sum))
	f.Add(key, []byte{1, 2})
	f.Fuzz(func(t *testing.T, key, val []byte) {
		data, err := checkChunk(key, val)
		if err == nil && len(data) != len(val)-4 {
			t.Fatalf("%d bytes of data from a %d-byte chunk", len(data), len(val))
		}
	})
}

// FuzzConfiguration: configuration entries, decoded as Raft does on start
// (internal/raftconf Decode, which logstore.go scanLog uses).
func FuzzConfiguration(f *testing.F) {
	f.Add(raft.EncodeConfiguration(testConfiguration))
	f.Add(raft.EncodeConfiguration(raft.Configuration{}))
	f.Add([]byte{0xc1})
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := raftconf.Decode(b)
		if err != nil {
			return
		}
		if again := raft.DecodeConfiguration(raft.EncodeConfiguration(c)); len(again.Servers) != len(c.Servers) {
			t.Fatalf("re-encoded %+v decodes to %+v", c, again)
		}
	})
}

// FuzzCheckManifest: MANIFEST files read before Pebble opens them
// (precheck.go checkManifestFile, validChunkAfter).
func FuzzCheckManifest(f *testing.F) {
	fx := seedFiles(f)
	for name, b := range fx {
		if bytes.Contains([]byte(name), []byte("MANIFEST-")) {
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fs := vfs.NewMem()
		file := memFile(t, fs, "/MANIFEST-000001", b)
		defer file.Close()
		_ = checkManifestFile(file)
	})
}

// FuzzCheckWAL: write-ahead logs read before Pebble replays them
// (precheck.go checkWAL, findAfterDamage). The log number is part of the
// input: only chunks of that log are walked past and can promise a sync.
func FuzzCheckWAL(f *testing.F) {
	for name, b := range seedFiles(f) {
		var num uint32
		if _, err := fmt.Sscanf(name, "%06d.log", &num); err == nil && len(b) > 0 {
			f.Add(b[:min(len(b), 6000)], num)
		}
	}
	// Damage followed by a chunk that says it was synced: in the same
	// block, and in the next one.
	var w walFile
	for i := range 40 {
		w.add(walSyncFirst, 3, -1, bytes.Repeat([]byte{byte(i)}, 1000))
	}
	for _, at := range []int{w.at[1] + walSyncHdr, w.at[20] + 2} {
		b := bytes.Clone(w.b)
		b[at] ^= 1
		f.Add(b, uint32(3))
	}
	// A reused file: the stale tail of log 1, whose values hold chunks
	// forged for log 3, after log 3's own chunks; cut mid-chunk, and
	// after the EOF trailer Pebble writes when it closes a log.
	f.Add(reused(1, w.b[:w.at[3]+100])[:40000], uint32(3))
	f.Add(reused(1, slices.Concat(w.b[:w.at[3]], walChunk(walRecyclableFirst, 4, 0, nil)))[:40000], uint32(3))
	// Damage, then chunks whose promise does not reach it.
	var early walFile
	for i := range 10 {
		early.add(walSyncFirst, 3, 0, bytes.Repeat([]byte{byte(i)}, 100))
	}
	b := bytes.Clone(early.b)
	b[early.at[2]+walSyncHdr] ^= 1
	f.Add(b, uint32(3))
	// A log in the legacy format, which only Pebble checks.
	legacy := slices.Concat([]byte{0, 0, 0, 0, 5, 0, 1}, []byte("hello"))
	binary.LittleEndian.PutUint32(legacy, maskedCRC(legacy[6:]))
	f.Add(legacy, uint32(3))
	f.Add([]byte{}, uint32(0))
	f.Fuzz(func(t *testing.T, b []byte, logNum uint32) {
		fs := vfs.NewMem()
		memFile(t, fs, "/000001.log", b).Close()
		if err := checkWAL(fs, "/000001.log", logNum); err != nil && !errors.Is(err, errDamaged) {
			t.Fatalf("checkWAL fails with an error that is not damage: %v", err)
		}
	})
}

// seedFiles writes a small database and returns its files.
func seedFiles(f *testing.F) map[string][]byte {
	fs := vfs.NewMem()
	db, err := Open("/data", &Options{FS: fs})
	if err != nil {
		f.Fatal(err)
	}
	st, err := db.Stores(groupID(1))
	if err != nil {
		f.Fatal(err)
	}
	for i := uint64(1); i <= 40; i += 10 {
		if err := st.Log.StoreLogs(mkLogs(i, i+9)); err != nil {
			f.Fatal(err)
		}
		if i == 21 {
			if err := db.pdb.Flush(); err != nil {
				f.Fatal(err)
			}
		}
	}
	st.Release()
	if err := db.Close(); err != nil {
		f.Fatal(err)
	}
	names, err := fs.List("/data")
	if err != nil {
		f.Fatal(err)
	}
	out := map[string][]byte{}
	for _, n := range names {
		file, err := fs.Open("/data/" + n)
		if err != nil {
			f.Fatal(err)
		}
		st, err := file.Stat()
		if err != nil || st.IsDir() {
			file.Close()
			continue
		}
		b := make([]byte, st.Size())
		if _, err := file.ReadAt(b, 0); err != nil && len(b) > 0 {
			f.Fatal(err)
		}
		file.Close()
		out[n] = b
	}
	return out
}

func memFile(t *testing.T, fs vfs.FS, name string, b []byte) vfs.File {
	t.Helper()
	w, err := fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	// A copy: under the race detector (Pebble's invariants), MemFS
	// scribbles over the buffer it was handed.
	if _, err := w.Write(bytes.Clone(b)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
