package storage

import (
	"bytes"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

// A snapshot being written is invisible until its sink closes; a cancelled
// one never appears; the latest closed one is what Open returns.
func TestMemorySnapshotsPublishOnClose(t *testing.T) {
	st, err := Memory().Stores([32]byte{})
	if err != nil {
		t.Fatal(err)
	}
	s := st.Snapshots
	first, err := s.Create(raft.SnapshotVersionMax, 10, 2, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Fatalf("a snapshot still being written is listed: %+v", list[0])
	}
	if _, err := first.Write([]byte(" and done")); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	cancelled, _ := s.Create(raft.SnapshotVersionMax, 20, 2, raft.Configuration{}, 1, nil)
	_, _ = cancelled.Write([]byte("never"))
	_ = cancelled.Cancel()

	list, _ := s.List()
	if len(list) != 1 || list[0].Index != 10 || list[0].Size != int64(len("partial and done")) {
		t.Fatalf("listed %+v", list)
	}
	meta, rc, err := s.Open(list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	if string(b) != "partial and done" || meta.Term != 2 {
		t.Fatalf("opened %q at %+v", b, meta)
	}
	if _, _, err := s.Open(cancelled.ID()); err == nil {
		t.Fatal("a cancelled snapshot opens")
	}
}

// Snapshots larger than a chunk, written in pieces that straddle chunk
// boundaries, read back byte for byte.
func TestMemorySnapshotsRoundTrip(t *testing.T) {
	st, err := Memory().Stores([32]byte{})
	if err != nil {
		t.Fatal(err)
	}
	s := st.Snapshots
	for i, size := range []int64{0, 1, memChunk - 1, memChunk, memChunk + 1, 3*memChunk + 17} {
		id, sum := writeSnapshot(t, s, uint64(10+i), byte(size), size, 100_003)
		meta, got, err := readAll(t, s, id)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !bytes.Equal(got, sum) || meta.Size != size {
			t.Fatalf("size %d: content or size (%d) differs", size, meta.Size)
		}
	}
}
