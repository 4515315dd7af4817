package replica

import (
	"bytes"
	"encoding/binary"
	"github.com/mosaik-go/mosaik/rsm"
	"io"
	"runtime"
	"testing"

	"github.com/hashicorp/raft"
)

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestRestoreDoesNotTrustLengthPrefix: eight bytes claiming a header of
// 200 MiB cost no more than what arrived.
func TestRestoreDoesNotTrustLengthPrefix(t *testing.T) {
	var in [8]byte
	copy(in[:], snapMagic[:])
	binary.BigEndian.PutUint32(in[4:], 200<<20)
	var err error
	n := allocated(func() {
		err = New[int64, struct{}, int64](&adder{}, nil).Restore(io.NopCloser(bytes.NewReader(in[:])))
	})
	if err == nil {
		t.Fatal("restore of a truncated snapshot succeeded")
	}
	if n > 1<<20 {
		t.Fatalf("restore of 8 bytes allocated %d bytes", n)
	}
}

// TestHugeEntryIsRefusedCheaply: an entry of a million empty commands costs
// about its own size to refuse, and every replica refuses it alike.
func TestHugeEntryIsRefusedCheaply(t *testing.T) {
	e := Entry{Session: SessionID{1}, Seq: 1, First: 1, Cmds: make([][]byte, 1<<20)}
	for i := range e.Cmds {
		e.Cmds[i] = []byte{}
	}
	data := mustEntry(t, e)
	var outs []Outcome
	for range 2 {
		p := &plain{}
		f := New[int64, struct{}, int64](p, nil)
		var o any
		n := allocated(func() { o = f.Apply(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: data}) })
		if n > 4<<20 {
			t.Errorf("applying a %d-byte entry allocated %d bytes", len(data), n)
		}
		if len(p.got) != 0 || f.Malformed() == 0 {
			t.Errorf("applied %d commands, malformed %d", len(p.got), f.Malformed())
		}
		outs = append(outs, outcome(t, o))
	}
	if outs[0].Status != StatusMalformed || outs[1].Status != outs[0].Status {
		t.Fatalf("outcomes %+v", outs)
	}
}

// TestEntryOverTheLimitsIsRefused: a decodable entry a buggy leader let
// through applies nothing, answers StatusTooLarge, and its session goes on.
func TestEntryOverTheLimitsIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmds [][]byte
	}{
		{"command", [][]byte{make([]byte, rsm.MaxCommandSize+1)}},
		{"batch", append(bytes.SplitAfter(make([]byte, MaxEntryBytes), make([]byte, rsm.MaxCommandSize)), []byte{1})},
	} {
		p := &plain{}
		f := New[int64, struct{}, int64](p, nil)
		l := &logs{t: t, term: 1}
		o := outcome(t, f.Apply(l.entry(Entry{Session: SessionID{1}, Seq: 1, First: 1, Cmds: tc.cmds})))
		if o.Status != StatusTooLarge || len(p.got) != 0 || f.Malformed() == 0 {
			t.Fatalf("%s: %+v, applied %v", tc.name, o, p.got)
		}
		if o := outcome(t, f.Apply(l.entry(Entry{Session: SessionID{1}, Seq: 2, Base: 1, First: 100, Cmds: cmds(t, 3)}))); o.Status != StatusApplied || len(p.got) != 1 {
			t.Fatalf("%s: next batch %+v", tc.name, o)
		}
	}
}

// TestSessionsAreBounded: the machine keeps at most MaxSessions sessions,
// forgetting the least recently used, alike on every replica; a retry
// from a forgotten session is refused as expired, never applied twice.
func TestSessionsAreBounded(t *testing.T) {
	p := &plain{}
	f := New[int64, struct{}, int64](p, nil)
	l := &logs{t: t, term: 1}
	for i := range MaxSessions + 1 {
		var s SessionID
		binary.BigEndian.PutUint64(s[:], uint64(i+1))
		f.Apply(l.entry(Entry{Session: s, Seq: 1, First: rsm.Index(i + 1), Cmds: cmds(t, 1)}))
	}
	if n := f.Sessions(); n != MaxSessions {
		t.Fatalf("%d sessions kept, want %d", n, MaxSessions)
	}
	var first SessionID
	binary.BigEndian.PutUint64(first[:], 1)
	if _, ok := f.SessionLast(first); ok {
		t.Fatal("the least recently used session was kept")
	}
	applied := len(p.got)
	// Its next batch, or a retry of its first, is refused.
	for _, e := range []Entry{{Session: first, Seq: 2, Base: 1, Cmds: cmds(t, 1)}, {Session: first, Seq: 1, Base: 1, Cmds: cmds(t, 1)}} {
		e.First = f.Applied() + 1
		if o := outcome(t, f.Apply(l.entry(e))); o.Status != StatusExpired {
			t.Fatalf("batch of a forgotten session: %+v", o)
		}
	}
	if len(p.got) != applied {
		t.Fatal("a forgotten session's batch applied")
	}
	// A new session (from batch 1) is fine.
	if o := outcome(t, f.Apply(l.entry(Entry{Session: SessionID{0xff}, Seq: 1, First: f.Applied() + 1, Cmds: cmds(t, 1)}))); o.Status != StatusApplied {
		t.Fatalf("new session: %+v", o)
	}
}
