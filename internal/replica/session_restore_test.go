package replica

import (
	"bytes"
	"encoding/binary"
	"github.com/mosaik-go/mosaik/rsm"
	"io"
	"testing"
)

// A snapshot written before the session bound may hold far more than
// MaxSessions sessions. Restore keeps the most recently active ones, as
// evictions one by one would, and remembers the latest it forgot, so that a
// forgotten session's first batch sent again is refused. (Restore used to
// evict one at a time, scanning all each time: 30,000 took 6 s.)
func TestRestoreTrimsSessions(t *testing.T) {
	const n = 30000
	f := New[int64, struct{}, int64](&adder{}, nil)
	for i := range n {
		var s SessionID
		binary.BigEndian.PutUint64(s[:], uint64(i+1))
		f.sessions.byID[s] = &session{Last: 1, Active: rsm.Index(i + 1)}
	}
	g := restored(t, f)
	if g.Sessions() != MaxSessions {
		t.Fatalf("%d sessions after restore, want %d", g.Sessions(), MaxSessions)
	}
	for id, ss := range g.sessions.byID {
		if ss.Active <= n-MaxSessions {
			t.Fatalf("kept session %x active at %d, an older one than the %d newest", id[:8], ss.Active, MaxSessions)
		}
	}
	if g.sessions.forgotten != n-MaxSessions {
		t.Fatalf("forgotten = %d, want %d", g.sessions.forgotten, n-MaxSessions)
	}
	// The watermark survives a second snapshot.
	h := restored(t, g)
	if h.sessions.forgotten != g.sessions.forgotten {
		t.Fatalf("forgotten = %d after a round trip, want %d", h.sessions.forgotten, g.sessions.forgotten)
	}
	old, err := NewSessionID(rsm.Index(n - MaxSessions))
	if err != nil {
		t.Fatal(err)
	}
	l := &logs{t: t, term: 1}
	if o := outcome(t, h.Apply(l.entry(Entry{Session: old, Seq: 1, First: n + 1, Cmds: cmds(t, 1)}))); o.Status != StatusExpired {
		t.Fatalf("a session made before the last forgotten one: %+v, want StatusExpired", o)
	}
}

// snapshotBytes returns a snapshot of f as Raft would store it.
func snapshotBytes(t *testing.T, f *Machine[int64, struct{}, int64]) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var s sink
	if err := snap.Persist(&s); err != nil {
		t.Fatal(err)
	}
	return s.Bytes()
}

// restored returns a new machine restored from a snapshot of f.
func restored(t *testing.T, f *Machine[int64, struct{}, int64]) *Machine[int64, struct{}, int64] {
	t.Helper()
	g := New[int64, struct{}, int64](&adder{}, nil)
	if err := g.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, f)))); err != nil {
		t.Fatal(err)
	}
	return g
}

// Snapshots written before the forgotten-session mark (format MRS1) still
// restore, with nothing forgotten.
func TestRestoreVersion1Snapshot(t *testing.T) {
	a := &adder{}
	f := New[int64, struct{}, int64](a, nil)
	l := &logs{t: t, term: 1}
	f.Apply(l.entry(Entry{Session: SessionID{1}, Seq: 1, First: 1, Cmds: cmds(t, 5, 6)}))
	// Rewrite the header as the older build wrote it.
	b := snapshotBytes(t, f)
	n := binary.BigEndian.Uint32(b[4:8])
	var h snapHeader
	if err := rsm.DecMode().Unmarshal(b[8:8+n], &h); err != nil {
		t.Fatal(err)
	}
	old, err := rsm.EncMode().Marshal(snapHeaderV1{Cluster: h.Cluster, Last: h.Last, RaftIdx: h.RaftIdx, LastGC: h.LastGC, Sessions: h.Sessions})
	if err != nil {
		t.Fatal(err)
	}
	v1 := append([]byte("MRS1"), binary.BigEndian.AppendUint32(nil, uint32(len(old)))...)
	v1 = append(append(v1, old...), b[8+n:]...)

	b2 := &adder{}
	g := New[int64, struct{}, int64](b2, nil)
	if err := g.Restore(io.NopCloser(bytes.NewReader(v1))); err != nil {
		t.Fatalf("restore of a version 1 snapshot: %v", err)
	}
	if b2.sum != 11 || g.Last() != f.Last() || g.Sessions() != 1 || g.sessions.forgotten != 0 {
		t.Fatalf("restored sum %d last %v sessions %d forgotten %d", b2.sum, g.Last(), g.Sessions(), g.sessions.forgotten)
	}
	if o := outcome(t, g.Apply(l.entry(Entry{Session: SessionID{1}, Seq: 1, Cmds: cmds(t, 5, 6)}))); o.First != 1 || b2.sum != 11 {
		t.Fatalf("repeat after restore: %+v sum %d", o, b2.sum)
	}
}
