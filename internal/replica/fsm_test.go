package replica

import (
	"bytes"
	"errors"
	"github.com/mosaik-go/mosaik/rsm"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// adder is a deterministic test machine: it sums commands, remembers the
// contexts it saw, replies with the running total, and snapshots.
type adder struct {
	sum  int64
	ctxs []rsm.Cursor
}

func (a *adder) Signature() string { return "test.adder" }
func (a *adder) Apply(c int64, ctx rsm.ApplyContext) {
	a.ApplyReply(c, ctx)
}
func (a *adder) ApplyReply(c int64, ctx rsm.ApplyContext) any {
	a.sum += c
	a.ctxs = append(a.ctxs, ctx.LogPosition())
	return a.sum
}
func (a *adder) Query(struct{}) int64 { return a.sum }
func (a *adder) Snapshot() (rsm.Snapshot, error) {
	b, _ := rsm.Marshal(a.sum)
	return persistBytes(b), nil
}
func (a *adder) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return rsm.Unmarshal(b, &a.sum)
}

type persistBytes []byte

func (p persistBytes) Persist(w io.Writer) error { _, err := w.Write(p); return err }
func (p persistBytes) Release()                  {}

// plain has neither rsm.Replier nor rsm.Snapshotter.
type plain struct{ got []int64 }

func (p *plain) Signature() string                 { return "test.plain" }
func (p *plain) Apply(c int64, _ rsm.ApplyContext) { p.got = append(p.got, c) }
func (p *plain) Query(struct{}) int64              { return int64(len(p.got)) }

// batcher implements rsm.BatchApplier.
type batcher struct {
	plain
	batches [][]int64
	pos     []rsm.Cursor
}

func (b *batcher) ApplyBatch(cs []int64, ctx rsm.ApplyContext) {
	b.batches = append(b.batches, slices.Clone(cs))
	b.pos = append(b.pos, ctx.LogPosition())
}

type logs struct {
	t     *testing.T
	index uint64
	term  uint64
}

func (l *logs) entry(e Entry) *raft.Log {
	l.t.Helper()
	b, err := rsm.Marshal(e)
	if err != nil {
		l.t.Fatal(err)
	}
	l.index++
	return &raft.Log{Index: l.index, Term: l.term, Type: raft.LogCommand, Data: b, AppendedAt: time.Unix(0, int64(l.index))}
}

func cmds(t *testing.T, vs ...int64) [][]byte {
	var out [][]byte
	for _, v := range vs {
		b, err := rsm.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func outcome(t *testing.T, v any) Outcome {
	t.Helper()
	o, ok := v.(Outcome)
	if !ok {
		t.Fatalf("apply returned %T", v)
	}
	return o
}

func TestSessionsApplyOnceInOrder(t *testing.T) {
	a := &adder{}
	f := New[int64, struct{}, int64](a, nil)
	l := &logs{t: t, term: 1}
	s1, s2 := SessionID{1}, SessionID{2}

	o := outcome(t, f.Apply(l.entry(Entry{Session: s1, Seq: 1, First: 1, Cmds: cmds(t, 1, 2)})))
	if o.Status != StatusApplied || o.Range() != (rsm.IndexRange{First: 1, Last: 2}) {
		t.Fatalf("first batch: %+v", o)
	}
	var r int64
	if err := rsm.Unmarshal(o.Replies[1], &r); err != nil || r != 3 {
		t.Fatalf("reply %d, %v", r, err)
	}
	// A repeat answers the original outcome and applies nothing.
	if rep := outcome(t, f.Apply(l.entry(Entry{Session: s1, Seq: 1, First: 3, Cmds: cmds(t, 1, 2)}))); rep.Status != StatusApplied || rep.First != 1 || !bytes.Equal(rep.Replies[1], o.Replies[1]) {
		t.Fatalf("repeat: %+v", rep)
	}
	if a.sum != 3 {
		t.Fatalf("sum %d after a repeat", a.sum)
	}
	// A gap applies nothing, and its indexes are passed over.
	if g := outcome(t, f.Apply(l.entry(Entry{Session: s1, Seq: 3, First: 5, Cmds: cmds(t, 100)}))); g.Status != StatusGap {
		t.Fatalf("gap: %+v", g)
	}
	if a.sum != 3 || f.Applied() != 5 {
		t.Fatalf("after a gap: sum %d applied %d", a.sum, f.Applied())
	}
	// An unknown session that claims applied batches (Base > 0) was
	// forgotten: nothing applies, its indexes are passed over.
	if g := outcome(t, f.Apply(l.entry(Entry{Session: s2, Seq: 7, Base: 5, First: 6, Cmds: cmds(t, 10)}))); g.Status != StatusExpired {
		t.Fatalf("unknown session past its base: %+v", g)
	}
	if o := outcome(t, f.Apply(l.entry(Entry{Session: s2, Seq: 6, Base: 5, First: 7, Cmds: cmds(t, 10)}))); o.Status != StatusExpired || f.Applied() != 7 {
		t.Fatalf("unknown session at its base: %+v", o)
	}
	// Indexes never go back, even if a leader stamps too low.
	if o := outcome(t, f.Apply(l.entry(Entry{Session: s1, Seq: 2, First: 2, Cmds: cmds(t, 5)}))); o.First != 8 {
		t.Fatalf("low stamp applied at %d, want 8", o.First)
	}
	if a.sum != 8 {
		t.Fatalf("sum %d, want 8", a.sum)
	}
	if last, ok := f.SessionLast(s1); !ok || last != 2 {
		t.Fatalf("session 1 last %d %v", last, ok)
	}
}

func TestRepeatsBeyondTheWindowAreStale(t *testing.T) {
	f := New[int64, struct{}, int64](&adder{}, nil)
	l := &logs{t: t, term: 1}
	s := SessionID{9}
	for seq := uint64(1); seq <= SessionWindow+5; seq++ {
		f.Apply(l.entry(Entry{Session: s, Seq: seq, First: rsm.Index(seq), Cmds: cmds(t, 1)}))
	}
	if o := outcome(t, f.Apply(l.entry(Entry{Session: s, Seq: 2, Cmds: cmds(t, 1)}))); o.Status != StatusStale {
		t.Fatalf("old repeat: %+v", o)
	}
	if _, ok := f.SessionOutcome(s, SessionWindow+5); !ok {
		t.Fatal("latest outcome forgotten")
	}
}

func TestApplyContextAndBatches(t *testing.T) {
	b := &batcher{}
	f := New[int64, struct{}, int64](b, nil)
	l := &logs{t: t, term: 4}
	f.Apply(l.entry(Entry{Session: SessionID{1}, Seq: 1, First: 10, Cmds: cmds(t, 1, 2, 3)}))
	if !slices.Equal(b.batches[0], []int64{1, 2, 3}) || b.pos[0] != (rsm.Cursor{Term: 4, Index: 12}) {
		t.Fatalf("batch %v at %v", b.batches, b.pos)
	}
	a := &adder{}
	fa := New[int64, struct{}, int64](a, nil)
	fa.ApplyBatch([]*raft.Log{
		l.entry(Entry{Session: SessionID{1}, Seq: 1, First: 1, Cmds: cmds(t, 1, 1)}),
		{Index: 100, Term: 4, Type: raft.LogConfiguration},
		l.entry(Entry{Session: SessionID{1}, Seq: 2, First: 3, Cmds: cmds(t, 1)}),
	})
	want := []rsm.Cursor{{Term: 4, Index: 1}, {Term: 4, Index: 2}, {Term: 4, Index: 3}}
	if !slices.Equal(a.ctxs, want) {
		t.Fatalf("contexts %v, want %v", a.ctxs, want)
	}
	if fa.Last() != (rsm.Cursor{Term: 4, Index: 3}) || fa.Applied() != 3 {
		t.Fatalf("last %v applied %d", fa.Last(), fa.Applied())
	}
}

func TestMalformedEntriesNeverPanic(t *testing.T) {
	p := &plain{}
	f := New[int64, struct{}, int64](p, nil)
	l := &logs{t: t, term: 1}
	for _, data := range [][]byte{nil, {0xff}, {0x80}, []byte("garbage"), {0x86, 0x50}} {
		l.index++
		if o := outcome(t, f.Apply(&raft.Log{Index: l.index, Type: raft.LogCommand, Data: data})); o.Status != StatusMalformed {
			t.Fatalf("%x: %+v", data, o)
		}
	}
	// A batch with one undecodable command applies the others.
	bad := append(cmds(t, 1), []byte{0xff}, cmds(t, 2)[0])
	if o := outcome(t, f.Apply(l.entry(Entry{Session: SessionID{1}, Seq: 1, First: 1, Cmds: bad}))); o.Status != StatusApplied || o.Count != 3 {
		t.Fatalf("mixed batch: %+v", o)
	}
	if !slices.Equal(p.got, []int64{1, 2}) || f.Malformed() == 0 {
		t.Fatalf("applied %v, malformed %d", p.got, f.Malformed())
	}
}

type sink struct {
	bytes.Buffer
	cancelled bool
}

func (s *sink) ID() string    { return "test" }
func (s *sink) Cancel() error { s.cancelled = true; return nil }
func (s *sink) Close() error  { return nil }

func TestSnapshotRestore(t *testing.T) {
	a := &adder{}
	f := New[int64, struct{}, int64](a, nil)
	l := &logs{t: t, term: 2}
	var cid ClusterID
	cid[0] = 7
	f.Apply(l.entry(Entry{Cluster: cid[:]}))
	f.Apply(l.entry(Entry{Session: SessionID{1}, Seq: 1, First: 1, Cmds: cmds(t, 5, 6)}))
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var s sink
	if err := snap.Persist(&s); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	b := &adder{}
	notified := 0
	g := New[int64, struct{}, int64](b, func() { notified++ })
	if err := g.Restore(io.NopCloser(bytes.NewReader(s.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if b.sum != 11 || g.Last() != f.Last() || g.Applied() != 2 || g.Cluster() != cid || g.AppliedRaft() != 2 || notified != 1 {
		t.Fatalf("restored sum %d last %v cluster %v raft %d", b.sum, g.Last(), g.Cluster(), g.AppliedRaft())
	}
	// Sessions survive: a repeat is still recognised.
	if o := outcome(t, g.Apply(l.entry(Entry{Session: SessionID{1}, Seq: 1, Cmds: cmds(t, 5, 6)}))); o.First != 1 || b.sum != 11 {
		t.Fatalf("repeat after restore: %+v sum %d", o, b.sum)
	}
	// Garbage and truncation are errors, not panics.
	for _, bad := range [][]byte{nil, []byte("MRS1"), []byte("XXXXXXXX"), s.Bytes()[:10]} {
		if err := New[int64, struct{}, int64](&adder{}, nil).Restore(io.NopCloser(bytes.NewReader(bad))); err == nil {
			t.Fatalf("restore of %q succeeded", bad)
		}
	}
}

func TestWithoutSnapshotter(t *testing.T) {
	f := New[int64, struct{}, int64](&plain{}, nil)
	if f.CanSnapshot() {
		t.Fatal("plain machine claims snapshots")
	}
	if _, err := f.Snapshot(); !errors.Is(err, ErrNoSnapshots) {
		t.Fatalf("snapshot: %v", err)
	}
	if err := f.Restore(io.NopCloser(bytes.NewReader(nil))); !errors.Is(err, ErrNoSnapshots) {
		t.Fatalf("restore: %v", err)
	}
}

func TestIdleSessionsAreForgotten(t *testing.T) {
	f := New[int64, struct{}, int64](&plain{}, nil)
	l := &logs{t: t, term: 1}
	old := SessionID{1}
	f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: mustEntry(t, Entry{Session: old, Seq: 1, First: 1, Cmds: cmds(t, 1)}), AppendedAt: time.Unix(0, 0)})
	l.index = 1
	// Another session applies a long run of commands, much later.
	big := make([][]byte, 1<<12)
	for i := range big {
		big[i] = cmds(t, 1)[0]
	}
	at := time.Unix(0, 0).Add(2 * sessionIdleTime)
	next := rsm.Index(2)
	for seq := uint64(1); next < sessionIdleCommands+2*sessionGCEvery; seq++ {
		l.index++
		f.Apply(&raft.Log{Index: l.index, Type: raft.LogCommand, Data: mustEntry(t, Entry{Session: SessionID{2}, Seq: seq, First: next, Cmds: big}), AppendedAt: at})
		next += rsm.Index(len(big))
	}
	if _, ok := f.SessionLast(old); ok {
		t.Fatal("idle session kept")
	}
	if _, ok := f.SessionLast(SessionID{2}); !ok {
		t.Fatal("active session dropped")
	}
}

func mustEntry(t *testing.T, e Entry) []byte {
	b, err := rsm.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publisher records, at each Publish, how many commands it had applied.
type publisher struct {
	plain
	at []int
}

func (p *publisher) Publish() { p.at = append(p.at, len(p.got)) }

func TestPublishAfterEveryBatch(t *testing.T) {
	p := &publisher{}
	f := New[int64, struct{}, int64](p, nil)
	l := &logs{t: t, term: 1}
	f.ApplyBatch([]*raft.Log{
		l.entry(Entry{Session: SessionID{1}, Seq: 1, First: 1, Cmds: cmds(t, 1, 2)}),
		l.entry(Entry{Session: SessionID{1}, Seq: 2, First: 3, Cmds: cmds(t, 3)}),
	})
	f.Apply(l.entry(Entry{Session: SessionID{1}, Seq: 3, First: 4, Cmds: cmds(t, 4)}))
	if !slices.Equal(p.at, []int{3, 4}) {
		t.Fatalf("published after %v commands, want after [3 4]", p.at)
	}
}
