package collections

// Fuzz targets for every decoder of bytes that come from the network or
// the disk: commands as applied from the log, snapshots as restored, inspect
// requests as served and inspect replies (and the changes in them) as read.
// Properties: nothing panics; bad input is an error; a command, however
// bad, applies the same on every replica. Seed corpora are in
// testdata/fuzz/<target>; MOSAIK_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds
// writes them again.

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// fuzzMachine is what the targets need of a collection's machine.
type fuzzMachine[C any] interface {
	rsm.Replier[C]
	rsm.Publisher
	Snapshot() (rsm.Snapshot, error)
	Restore(io.Reader) error
}

// fuzzMaxCmds bounds the commands of one input, so that an input is fast.
const fuzzMaxCmds = 64

func snapshotBytes(t testing.TB, m interface{ Snapshot() (rsm.Snapshot, error) }) []byte {
	t.Helper()
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := s.Persist(&b); err != nil {
		t.Fatal(err)
	}
	s.Release()
	return b.Bytes()
}

// fuzzApply decodes data as a run of commands, as the log's bytes would
// be, and applies them on two replicas that start from the same state:
// their replies and states must be the same, and a snapshot of the result
// must restore to the same state.
func fuzzApply[C any, M fuzzMachine[C]](t *testing.T, data []byte, fresh func(history int) M, seed []C) {
	var cmds []C
	if err := rsm.Unmarshal(data, &cmds); err != nil {
		return // refused before Apply: the same on every replica
	}
	if len(cmds) > fuzzMaxCmds {
		cmds = cmds[:fuzzMaxCmds]
	}
	replica := func() (M, []reply) {
		m := fresh(8)
		idx := fakeCtx(1)
		for _, c := range seed {
			m.ApplyReply(c, idx)
			idx++
		}
		m.Publish()
		var rs []reply
		for _, c := range cmds {
			rs = append(rs, m.ApplyReply(c, idx).(reply))
			idx++
			if idx%7 == 0 {
				m.Publish()
			}
		}
		m.Publish()
		return m, rs
	}
	a, ra := replica()
	b, rb := replica()
	if !reflect.DeepEqual(ra, rb) {
		t.Fatalf("replies differ: %v / %v", ra, rb)
	}
	sa, sb := snapshotBytes(t, a), snapshotBytes(t, b)
	if !bytes.Equal(sa, sb) {
		t.Fatal("states differ")
	}
	c := fresh(8)
	if err := c.Restore(bytes.NewReader(sa)); err != nil {
		t.Fatalf("a snapshot of the result does not restore: %v", err)
	}
	if !bytes.Equal(snapshotBytes(t, c), sa) {
		t.Fatal("the restored state differs")
	}
}

// fuzzRestore restores data over a machine holding a state: a restore
// that fails leaves the state as it was; one that succeeds takes a state
// whose snapshot restores to itself.
func fuzzRestore[C any, M fuzzMachine[C]](t *testing.T, data []byte, fresh func(history int) M, seed []C) {
	m := fresh(8)
	for i, c := range seed {
		m.ApplyReply(c, fakeCtx(i+1))
	}
	m.Publish()
	before := snapshotBytes(t, m)
	if err := m.Restore(bytes.NewReader(data)); err != nil {
		if !bytes.Equal(snapshotBytes(t, m), before) {
			t.Fatalf("a failed restore (%v) changed the state", err)
		}
		return
	}
	s := snapshotBytes(t, m)
	again := fresh(8)
	if err := again.Restore(bytes.NewReader(s)); err != nil {
		t.Fatalf("a snapshot of a restored state does not restore: %v", err)
	}
	if !bytes.Equal(snapshotBytes(t, again), s) {
		t.Fatal("a restored snapshot differs from its source")
	}
}

func ptr[T any](v T) *T { return &v }

// mapSnapshotV2 is a Map snapshot in the format before per-key versions,
// as that code wrote it.
func mapSnapshotV2(t *testing.T) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", "map-v2.snapshot"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	fuzzMapSeed = []mapCmd[string, string]{
		{Op: mapInsert, Key: "a", Value: ptr("1")}, {Op: mapInsert, Key: "b", Value: ptr("2")},
		{Op: mapInsert, Key: "c", Value: ptr("3")}, {Op: mapRemove, Key: "b"},
	}
	fuzzVecSeed = []vecCmd[string]{
		{Op: vecPushBack, Value: ptr("x")}, {Op: vecPushFront, Value: ptr("y")}, {Op: vecInsert, I: 1, Value: ptr("z")},
	}
	fuzzSetSeed = []setCmd[string]{{Op: setInsert, Value: "p"}, {Op: setInsert, Value: "q"}}
)

func FuzzMapApply(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzApply(t, data, newMapMachine[string, string], fuzzMapSeed)
	})
}

func FuzzVecApply(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzApply(t, data, newVecMachine[string], fuzzVecSeed)
	})
}

func FuzzSetApply(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzApply(t, data, newSetMachine[string], fuzzSetSeed)
	})
}

func FuzzMapRestore(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRestore(t, data, newMapMachine[string, string], fuzzMapSeed)
	})
}

func FuzzVecRestore(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRestore(t, data, newVecMachine[string], fuzzVecSeed)
	})
}

func FuzzSetRestore(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRestore(t, data, newSetMachine[string], fuzzSetSeed)
	})
}

// FuzzInspectRequest serves a decoded request as the subscription's handler
// does, with no network: a dump start and the page the request names, and
// the changes it asks for. Whatever it asks, the answer is a reply and the
// slots it took come back.
func FuzzInspectRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := inspectwire.DecodeRequest(data)
		if err != nil {
			return
		}
		m := newMapMachine[string, string](8)
		for i, c := range fuzzMapSeed {
			m.ApplyReply(c, fakeCtx(i+1))
		}
		m.Publish()
		in := &inspector[MapChange[string, string]]{gate: newInspectGate("fuzz", slog.New(slog.DiscardHandler)), hist: m.hist,
			state: m.frozen, kick: make(chan struct{}, 1), sessions: map[uint64]*dumpSession[MapChange[string, string]]{}}
		var peer transport.PeerID
		peer[0] = 1
		first := in.dump(peer, inspectwire.Request{Op: inspectwire.OpDump, Limit: req.Limit})
		if first.Code != inspectwire.OK {
			t.Fatalf("a dump start: code %d %q", first.Code, first.Msg)
		}
		for range 3 {
			r := in.dump(peer, req)
			if r.Code == inspectwire.OK && r.Session != 0 && len(r.Items) > inspectPageItems {
				t.Fatalf("a page of %d items", len(r.Items))
			}
		}
		in.changes(req, pageLimit(req.Limit))
		in.mu.Lock()
		ids := make([]uint64, 0, len(in.sessions))
		for id, s := range in.sessions {
			s.timer.Stop()
			ids = append(ids, id)
		}
		in.mu.Unlock()
		for _, id := range ids {
			in.drop(id)
		}
		if d, p := in.gate.held(); d != 0 || p != 0 {
			t.Fatalf("slots held after every session dropped: %d dumps, %d polls", d, p)
		}
	})
}

// FuzzInspectReply decodes a reply as the inspect tool does, and the keys
// and values of the changes in it as a collection's types; a reply that
// decodes encodes again, as the tool's backup file does its changes.
func FuzzInspectReply(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := inspectwire.DecodeReply(data)
		if err != nil {
			return
		}
		items := r.Items
		for _, rec := range r.Records {
			items = append(items, rec.Changes...)
		}
		for _, c := range items {
			_ = c.Op.String()
			var k string
			_ = rsm.Unmarshal(c.Key, &k)
			var v int
			_ = rsm.Unmarshal(c.Value, &v)
			b, err := inspectwire.Marshal(c)
			if err != nil {
				t.Fatalf("a decoded change does not encode: %v", err)
			}
			if _, err := inspectwire.DecodeChange(b); err != nil {
				t.Fatalf("an encoded change does not decode: %v", err)
			}
		}
		if _, err := inspectwire.Marshal(r); err != nil {
			t.Fatalf("a decoded reply does not encode: %v", err)
		}
	})
}

// TestWriteFuzzSeeds writes the seed corpora, when MOSAIK_FUZZ_SEEDS is
// set.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("MOSAIK_FUZZ_SEEDS") == "" {
		t.Skip("set MOSAIK_FUZZ_SEEDS=1 to write testdata/fuzz")
	}
	enc := func(v any) []byte {
		b, err := rsm.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	snap := func(m interface{ Snapshot() (rsm.Snapshot, error) }) []byte { return snapshotBytes(t, m) }
	mm := newMapMachine[string, string](8)
	for i, c := range fuzzMapSeed {
		mm.ApplyReply(c, fakeCtx(i+1))
	}
	mm.Publish()
	vm := newVecMachine[string](8)
	for i, c := range fuzzVecSeed {
		vm.ApplyReply(c, fakeCtx(i+1))
	}
	vm.Publish()
	sm := newSetMachine[string](8)
	for i, c := range fuzzSetSeed {
		sm.ApplyReply(c, fakeCtx(i+1))
	}
	sm.Publish()
	wire := func(c wireChange) inspectwire.Change {
		w, err := c.wire()
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	change := wire(MapChange[string, string]{Op: OpInsert, Key: "k", Value: "v"})
	seeds := map[string][][]byte{
		"FuzzMapApply": {enc(fuzzMapSeed), enc([]mapCmd[string, string]{{Op: mapCAS, Key: "a", Value: ptr("9"), Expected: ptr("1")},
			{Op: mapCAS, Key: "z", Expected: ptr("1")}, {Op: mapClear}, {Op: 99, Key: "q"}}),
			enc([]mapCmd[string, string]{{Op: mapCASVersion, Key: "a", Version: 1, Value: ptr("x")}, {Op: mapCASVersion, Key: "z", Value: ptr("y")},
				{Op: mapCASVersion, Key: "c", Version: 3}, {Op: mapCASVersion, Key: "z", Version: 1 << 40}})},
		"FuzzVecApply": {enc(fuzzVecSeed), enc([]vecCmd[string]{{Op: vecPushBack}, {Op: 99, I: -1, J: 1 << 40}, {Op: vecSwap, I: 0, J: 2}, {Op: vecSwap, I: -1, J: 9}}),
			enc([]vecCmd[string]{{Op: vecInsert, I: 5, Value: ptr("o")}, {Op: vecRemove, I: -1}, {Op: vecTruncate, I: -3},
				{Op: vecPopBack}, {Op: vecPopFront}, {Op: vecClear}, {Op: vecPopBack}})},
		"FuzzSetApply":   {enc(fuzzSetSeed), enc([]setCmd[string]{{Op: setRemove, Value: "p"}, {Op: setClear}, {Op: 77}})},
		"FuzzMapRestore": {snap(mm), snap(newMapMachine[string, string](8)), mapSnapshotV2(t)},
		"FuzzVecRestore": {snap(vm)},
		"FuzzSetRestore": {snap(sm)},
		"FuzzInspectRequest": {enc(inspectwire.Request{Op: inspectwire.OpDump, Limit: 1}), enc(inspectwire.Request{Op: inspectwire.OpDump, Session: 1, Page: 1, Limit: 2}),
			enc(inspectwire.Request{Op: inspectwire.OpChanges, Since: 2, Limit: -1, Wait: -5}), enc(inspectwire.Request{Op: inspectwire.OpHead})},
		"FuzzInspectReply": {enc(inspectwire.Reply{Session: 3, Items: []inspectwire.Change{change}, Done: true}),
			enc(inspectwire.Reply{Records: []inspectwire.Record{{Version: 4, Changes: []inspectwire.Change{change, wire(VecChange[string]{Op: OpSet, Index: 2, Value: "x"}),
				wire(SetChange[string]{Op: OpRemove, Value: "s"}), wire(MapChange[string, string]{Op: OpClear})}}}}),
			enc(inspectwire.Reply{Code: inspectwire.Failed, Msg: "m", Recovery: &inspectwire.Recovery{Previous: []string{"a"}, HighestPeer: "b", MayBeLost: 1}})},
	}
	for name, list := range seeds {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, b := range list {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

var fuzzSpaceSeed = []spaceCmd[string, string]{
	{Map: "a", Cmd: fuzzMapSeed[0]}, {Map: "b", Cmd: fuzzMapSeed[1]},
	{Map: "a", Cmd: fuzzMapSeed[2]}, {Map: "b", Cmd: mapCmd[string, string]{Op: mapClear}},
}

func FuzzSpaceApply(f *testing.F) {
	for _, c := range fuzzSpaceSeed {
		b, err := rsm.Marshal([]spaceCmd[string, string]{c, {Map: "c", Cmd: fuzzMapSeed[3]}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzApply(t, data, newSpaceMachine[string, string], fuzzSpaceSeed)
	})
}

func FuzzSpaceRestore(f *testing.F) {
	m := newSpaceMachine[string, string](8)
	for i, c := range fuzzSpaceSeed {
		m.ApplyReply(c, fakeCtx(i+1))
	}
	m.ApplyReply(spaceCmd[string, string]{Map: "b", Cmd: fuzzMapSeed[0]}, fakeCtx(len(fuzzSpaceSeed)+1))
	m.Publish()
	f.Add(snapshotBytes(f, m))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRestore(t, data, newSpaceMachine[string, string], fuzzSpaceSeed)
	})
}
