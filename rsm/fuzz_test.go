package rsm

import (
	"bytes"
	"encoding/binary"
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

func (m *richMachine) Signature() string            { return "test.rich" }
func (m *richMachine) Apply(c rich, _ ApplyContext) { m.n += len(c.Items) + 1 }
func (m *richMachine) Query(struct{}) int           { return m.n }
func (m *richMachine) ApplyReply(c rich, _ ApplyContext) rich {
	m.n++
	return rich{Name: c.Name}
}

// FuzzApply: any bytes as a log entry apply without panic, alike on every
// replica, for every kind of machine; an entry that does not decode applies
// nothing and answers StatusMalformed.
func FuzzApply(f *testing.F) {
	b, _ := Marshal(Entry{Session: SessionID{1}, Seq: 1, First: 1, Cmds: [][]byte{{0x01}}})
	f.Add(b)
	b, _ = Marshal(Entry{Cluster: make([]byte, 16)})
	f.Add(b)
	f.Add([]byte{0x86})
	f.Add([]byte{0x86, 0x50, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		l := &raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: data}
		var outs []Outcome
		for _, fsm := range []interface{ Apply(*raft.Log) any }{
			NewFSM[int64, struct{}, int64](&adder{}, nil),
			NewFSM[int64, struct{}, int64](&adder{}, nil),
			NewFSM[int64, struct{}, int64](&batcher{}, nil),
			NewFSM[int64, struct{}, int64](&plain{}, nil),
		} {
			o, ok := fsm.Apply(l).(Outcome)
			if !ok {
				t.Fatal("no outcome")
			}
			outs = append(outs, o)
		}
		if outs[0].Status != outs[1].Status || outs[0].First != outs[1].First || outs[0].Count != outs[1].Count {
			t.Fatalf("replicas differ: %+v vs %+v", outs[0], outs[1])
		}
		if _, err := DecodeEntry(data); err != nil && outs[0].Status != StatusMalformed {
			t.Fatalf("undecodable entry answered %+v", outs[0])
		}
	})
}

// FuzzCommands: any bytes as commands of a well-formed entry decode into a
// rich command type, or are counted malformed, without panic.
func FuzzCommands(f *testing.F) {
	seed, _ := Marshal(rich{Name: "a", Data: []byte{1}, Items: []rich{{Name: "b"}}, Tags: map[string]int64{"x": 1}})
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
		entry, err := Marshal(Entry{Session: SessionID{1}, Seq: 1, First: 1, Cmds: cmds})
		if err != nil {
			t.Fatal(err)
		}
		l := &raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: entry}
		m := &richMachine{}
		o := NewFSM[rich, struct{}, int](m, nil).Apply(l).(Outcome)
		if o.Status != StatusApplied && o.Status != StatusTooLarge {
			t.Fatalf("well-formed entry: %+v", o)
		}
		var c rich
		_ = Unmarshal(data, &c)
	})
}

// FuzzRestore: any bytes as a snapshot restore or fail, without panic and
// without allocating what a length prefix claims.
func FuzzRestore(f *testing.F) {
	fsm := NewFSM[int64, struct{}, int64](&adder{}, nil)
	e, _ := Marshal(Entry{Session: SessionID{1}, Seq: 1, First: 1, Cmds: [][]byte{{0x01}}})
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
		g := NewFSM[int64, struct{}, int64](&adder{}, nil)
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
	b, _ := Marshal(Outcome{Status: StatusApplied, First: 1, Count: 2, Replies: [][]byte{{1}, {2}}})
	f.Add(b)
	f.Add([]byte{0x84, 0x01, 0x01, 0x02, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var o Outcome
		if Unmarshal(data, &o) == nil {
			_ = o.Range().Len()
		}
	})
}
