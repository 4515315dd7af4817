package replica

import (
	"bytes"
	"encoding/binary"
	"github.com/mosaik-go/mosaik/rsm"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

// rich is a command with the shapes decoding has to deal with: strings,
// bytes, nested slices and maps.
type rich struct {
	Name  string
	Data  []byte
	Items []rich
	Tags  map[string]int64
	N     *int64
}

type richMachine struct{ n int }

func (m *richMachine) Signature() string                { return "test.rich" }
func (m *richMachine) Apply(c rich, _ rsm.ApplyContext) { m.n += len(c.Items) + 1 }
func (m *richMachine) Query(struct{}) int               { return m.n }
func (m *richMachine) ApplyReply(c rich, _ rsm.ApplyContext) any {
	m.n++
	return rich{Name: c.Name}
}

// FuzzApply: any bytes as a log entry apply without panic, alike on every
// replica, for every kind of machine; an entry that does not decode applies
// nothing and answers StatusMalformed.
func FuzzApply(f *testing.F) {
	b, _ := rsm.Marshal(Entry{Session: SessionID{1}, Seq: 1, First: 1, Cmds: [][]byte{{0x01}}})
	f.Add(b)
	b, _ = rsm.Marshal(Entry{Cluster: make([]byte, 16)})
	f.Add(b)
	f.Add([]byte{0x86})
	f.Add([]byte{0x86, 0x50, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		l := &raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: data}
		var outs []Outcome
		for _, fsm := range []interface{ Apply(*raft.Log) any }{
			New[int64, struct{}, int64](&adder{}, nil),
			New[int64, struct{}, int64](&adder{}, nil),
			New[int64, struct{}, int64](&batcher{}, nil),
			New[int64, struct{}, int64](&plain{}, nil),
		} {
			o, ok := fsm.Apply(l).(Outcome)
			if !ok {
				t.Fatal("no outcome")
			}
			outs = append(outs, o)
		}
		for _, o := range outs[1:] {
			if o.Status != outs[0].Status || o.First != outs[0].First || o.Count != outs[0].Count {
				t.Fatalf("machines differ: %+v vs %+v", outs[0], o)
			}
		}
		if _, err := DecodeEntry(data); err != nil && outs[0].Status != StatusMalformed {
			t.Fatalf("undecodable entry answered %+v", outs[0])
		}
	})
}

// FuzzSessions: replicas that apply the same batches agree on every outcome
// and end in the same state, though one of them is snapshotted and restored
// after every batch, with the session table full so that sessions are
// forgotten (evictions, the forgotten mark, expired and new sessions).
// Each op is three bytes: which session (one of the table's, or a new one
// recording a chosen index), the batch number, and what it says is known
// applied.
func FuzzSessions(f *testing.F) {
	f.Add([]byte{0, 1, 0, 200, 1, 0, 0, 1, 0})
	f.Add([]byte{130, 1, 0, 130, 2, 1, 255, 1, 0, 3, 2, 1})
	f.Add([]byte{1, 1, 0, 129, 1, 0, 1, 1, 0, 1, 2, 1})
	full := New[int64, struct{}, int64](&adder{}, nil)
	var table []SessionID
	for i := range MaxSessions {
		var id SessionID
		binary.BigEndian.PutUint64(id[:8], uint64(i))
		binary.BigEndian.PutUint64(id[8:], uint64(i)+1)
		full.sessions.byID[id] = &session{Last: 1, Active: rsm.Index(i + 1)}
		table = append(table, id)
	}
	full.last = rsm.Cursor{Term: 1, Index: MaxSessions}
	f.Fuzz(func(t *testing.T, ops []byte) {
		a, b := restored(t, full), restored(t, full)
		l := &logs{t: t, index: MaxSessions, term: 1}
		for i := 0; i+2 < len(ops) && i < 3*64; i += 3 {
			var id SessionID
			if sel := ops[i]; sel < 128 {
				id = table[int(sel)*8%len(table)]
			} else {
				binary.BigEndian.PutUint64(id[:8], uint64(sel-128)*16) // what it had seen
				id[15] = byte(i)
			}
			e := Entry{Session: id, Seq: uint64(ops[i+1]%4) + 1, Base: uint64(ops[i+2] % 3), First: a.Applied() + 1, Cmds: cmds(t, int64(i))}
			log := l.entry(e)
			oa, ob := outcome(t, a.Apply(log)), outcome(t, b.Apply(log))
			if oa.Status != ob.Status || oa.First != ob.First || oa.Count != ob.Count {
				t.Fatalf("op %d: replicas differ: %+v vs %+v (restored)", i/3, oa, ob)
			}
			b = restored(t, b)
		}
		if !bytes.Equal(snapshotBytes(t, a), snapshotBytes(t, b)) {
			t.Fatalf("replicas hold different state (sessions %d vs %d, forgotten %d vs %d)", a.Sessions(), b.Sessions(), a.sessions.forgotten, b.sessions.forgotten)
		}
	})
}

// FuzzCommands: any bytes as commands of a well-formed entry decode into a
// rich command type, or are counted malformed, without panic.
func FuzzCommands(f *testing.F) {
	seed, _ := rsm.Marshal(rich{Name: "a", Data: []byte{1}, Items: []rich{{Name: "b"}}, Tags: map[string]int64{"x": 1}})
	f.Add(seed, uint8(1))
	f.Add([]byte{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint8(2))
	f.Add([]byte{0xbf, 0x61, 0x61, 0x01, 0xff}, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, parts uint8) {
		n := int(parts%8) + 1
		var cmds [][]byte
		for i := range n {
			lo, hi := len(data)*i/n, len(data)*(i+1)/n
			cmds = append(cmds, data[lo:hi])
		}
		entry, err := rsm.Marshal(Entry{Session: SessionID{1}, Seq: 1, First: 1, Cmds: cmds})
		if err != nil {
			t.Fatal(err)
		}
		l := &raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: entry}
		m := &richMachine{}
		o := New[rich, struct{}, int](m, nil).Apply(l).(Outcome)
		if o.Status != StatusApplied && o.Status != StatusTooLarge {
			t.Fatalf("well-formed entry: %+v", o)
		}
		var c rich
		_ = rsm.Unmarshal(data, &c)
	})
}

// FuzzRestore: any bytes as a snapshot restore or fail, without panic and
// without allocating what a length prefix claims.
func FuzzRestore(f *testing.F) {
	fsm := New[int64, struct{}, int64](&adder{}, nil)
	e, _ := rsm.Marshal(Entry{Session: SessionID{1}, Seq: 1, First: 1, Cmds: [][]byte{{0x01}}})
	fsm.Apply(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: e})
	snap, _ := fsm.Snapshot()
	var s sink
	_ = snap.Persist(&s)
	f.Add(s.Bytes())
	var huge [8]byte
	copy(huge[:], snapMagic[:])
	binary.BigEndian.PutUint32(huge[4:], 1<<28)
	f.Add(huge[:])
	f.Add([]byte("MRS1\x00\x00\x00\x01\xa0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g := New[int64, struct{}, int64](&adder{}, nil)
		if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err == nil {
			if g.Sessions() > MaxSessions {
				t.Fatalf("%d sessions restored", g.Sessions())
			}
			// A restored machine keeps applying.
			g.Apply(&raft.Log{Index: g.AppliedRaft() + 1, Term: 1, Type: raft.LogCommand, Data: data})
		}
	})
}

// FuzzOutcome: outcomes and entries as they travel back to submitters
// decode or fail without panic.
func FuzzOutcome(f *testing.F) {
	b, _ := rsm.Marshal(Outcome{Status: StatusApplied, First: 1, Count: 2, Replies: [][]byte{{1}, {2}}})
	f.Add(b)
	f.Add([]byte{0x84, 0x01, 0x01, 0x02, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var o Outcome
		if rsm.Unmarshal(data, &o) == nil {
			_ = o.Range().Len()
		}
	})
}
