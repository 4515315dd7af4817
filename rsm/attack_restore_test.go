package rsm

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"time"
)

// TestAttackRestoreManySessionsIsQuadratic: a snapshot written before the
// session bound (sessions were only dropped after 2^20 commands and an
// hour idle) may hold far more than MaxSessions sessions. Restore evicts
// them one at a time, each eviction scanning every remaining session,
// under the machine's lock: O(n^2). 30,000 sessions take seconds; the
// decoder allows a million (hours), during which the member applies
// nothing and Raft waits on Restore.
func TestAttackRestoreManySessionsIsQuadratic(t *testing.T) {
	const n = 30000
	f := NewFSM[int64, struct{}, int64](&adder{}, nil)
	for i := range n {
		var s SessionID
		binary.BigEndian.PutUint64(s[:], uint64(i+1))
		f.sessions[s] = &session{Last: 1, Active: Index(i + 1)}
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var s sink
	if err := snap.Persist(&s); err != nil {
		t.Fatal(err)
	}
	g := NewFSM[int64, struct{}, int64](&adder{}, nil)
	start := time.Now()
	if err := g.Restore(io.NopCloser(bytes.NewReader(s.Bytes()))); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("restore of %d sessions took %v", n, took)
	if took > time.Second {
		t.Fatalf("restore of a %d-byte snapshot with %d sessions took %v (evictions scan all sessions each: quadratic)", len(s.Bytes()), n, took)
	}
}
