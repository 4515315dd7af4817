package transport

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// fuzzFrom is the sender of every fuzzed RPC: fixed, so a corpus entry that
// names it keeps naming it.
var fuzzFrom = PeerID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}

// fuzzNode is a raft.Raft over a RaftTransport, in memory, bootstrapped as
// the only voter, shut down when the fuzz test ends. The fuzz target feeds
// it RPCs through its transport as the RPC handlers do.
func fuzzNode(f *testing.F) *RaftTransport {
	n := newNet(f)
	tr := newRaftTransport(f, sealedScope(n, "fuzz"), time.Second)
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(n.ID().String())
	conf.HeartbeatTimeout = 50 * time.Millisecond
	conf.ElectionTimeout = 50 * time.Millisecond
	conf.LeaderLeaseTimeout = 50 * time.Millisecond
	conf.CommitTimeout = time.Millisecond
	conf.TrailingLogs = 4
	conf.SnapshotThreshold = 16
	conf.SnapshotInterval = 100 * time.Millisecond
	conf.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: io.Discard})
	logs, snaps := raft.NewInmemStore(), raft.NewInmemSnapshotStore()
	self := raft.Server{ID: conf.LocalID, Address: tr.LocalAddr()}
	if err := raft.BootstrapCluster(conf, logs, logs, snaps, tr, raft.Configuration{Servers: []raft.Server{self}}); err != nil {
		f.Fatal(err)
	}
	r, err := raft.NewRaft(conf, &listFSM{}, logs, logs, snaps, tr)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		if err := r.Shutdown().Error(); err != nil {
			f.Errorf("raft shutdown: %v", err)
		}
	})
	return tr
}

// deliver hands an RPC that passed checkRPC to Raft as the transport's
// handlers do, and waits for Raft's answer.
func deliver(t *testing.T, tr *RaftTransport, cmd any, data []byte, heartbeat bool) {
	respCh := make(chan raft.RPCResponse, 1)
	rpc := raft.RPC{Command: cmd, RespChan: respCh}
	if data != nil {
		rpc.Reader = bytes.NewReader(data)
	}
	tr.hbMu.Lock()
	fn := tr.hbFn
	tr.hbMu.Unlock()
	if a, ok := cmd.(*raft.AppendEntriesRequest); ok && heartbeat && fn != nil && isHeartbeat(a) {
		fn(rpc)
	} else if !tr.dispatch(rpc) {
		t.Fatal("transport closed")
	}
	select {
	case <-respCh:
	case <-time.After(30 * time.Second):
		t.Fatalf("raft did not answer %#v", cmd)
	}
}

// FuzzRaftRPC decodes bytes as the wire does, checks them as the transport
// does, and hands what passes to a real Raft node, as the RPC handler
// would. kind is the RPC's kind byte; for a snapshot begin, data is the
// snapshot. Nothing may panic and Raft must answer.
func FuzzRaftRPC(f *testing.F) {
	from := fuzzFrom.String()
	hdr := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(from), Addr: []byte(from)}
	conf := raft.EncodeConfiguration(raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(from), Address: raft.ServerAddress(from)}}})
	add := func(kind byte, v any, data []byte) {
		var b []byte
		var err error
		if a, ok := v.(*raft.AppendEntriesRequest); ok {
			b, err = encodeAppend(a)
		} else {
			b, err = marshal(kind, v)
		}
		if err != nil {
			f.Fatal(err)
		}
		f.Add(kind, b[1:], data, false)
	}
	add(kindAppend, &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 5, PrevLogEntry: 0, Entries: []*raft.Log{
		{Index: 1, Term: 5, Type: raft.LogCommand, Data: []byte("x")},
		{Index: 2, Term: 5, Type: raft.LogConfiguration, Data: conf},
	}, LeaderCommitIndex: 2}, nil)
	add(kindAppend, &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 6, PrevLogEntry: 2, PrevLogTerm: 5, LeaderCommitIndex: 9}, nil)
	add(kindVote, &raft.RequestVoteRequest{RPCHeader: hdr, Term: 7, LastLogIndex: 100, LastLogTerm: 7}, nil)
	add(kindPreVote, &raft.RequestPreVoteRequest{RPCHeader: hdr, Term: 8, LastLogIndex: 100, LastLogTerm: 7}, nil)
	add(kindTimeoutNow, &raft.TimeoutNowRequest{RPCHeader: hdr}, nil)
	snap := []byte(`["a","b"]`)
	add(kindSnapBegin, snapBegin{ID: 1, Request: &raft.InstallSnapshotRequest{
		RPCHeader: hdr, SnapshotVersion: 1, Term: 10, Leader: []byte(from), LastLogIndex: 50, LastLogTerm: 9,
		Configuration: conf, ConfigurationIndex: 3, Size: int64(len(snap)),
	}}, snap)
	add(kindSnapBegin, snapBegin{ID: 2, Request: &raft.InstallSnapshotRequest{
		RPCHeader: hdr, SnapshotVersion: 1, Term: 10, LastLogIndex: 50, LastLogTerm: 9, ConfigurationIndex: 3, Size: 0,
	}}, nil)
	f.Add(kindAppend, []byte{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []byte(nil), true)

	tr := fuzzNode(f)
	f.Fuzz(func(t *testing.T, kind byte, body, data []byte, heartbeat bool) {
		var cmd any
		if kind == kindSnapBegin {
			b, err := decodeSnapBegin(body)
			if err != nil {
				return
			}
			cmd = b.Request
			// The receiver hands Raft a snapshot only once it has Size
			// bytes.
			if b.Request.Size != int64(len(data)) {
				return
			}
			if data == nil {
				data = []byte{}
			}
		} else {
			var err error
			if cmd, err = decodeRPC(kind, body); err != nil {
				return
			}
			data = nil
		}
		if checkRPC(fuzzFrom, cmd) != nil {
			return
		}
		deliver(t, tr, cmd, data, heartbeat)
	})
}

// FuzzSplitAppend: whatever the entries and the budget, the parts of a
// split AppendEntries are the entries in order, chained, none empty, each
// within budget unless it holds a single entry.
func FuzzSplitAppend(f *testing.F) {
	f.Add(uint16(1000), []byte{1, 2, 200, 3, 255, 0})
	f.Add(uint16(0), []byte{10})
	f.Add(uint16(300), []byte{})
	f.Fuzz(func(t *testing.T, budget uint16, sizes []byte) {
		args := &raft.AppendEntriesRequest{Term: 3, PrevLogEntry: 10, PrevLogTerm: 2, LeaderCommitIndex: 12}
		for i, s := range sizes {
			args.Entries = append(args.Entries, &raft.Log{Index: 11 + uint64(i), Term: 3, Data: make([]byte, int(s)*8)})
		}
		parts := splitAppend(args, int(budget))
		if parts == nil {
			parts = []*raft.AppendEntriesRequest{args} // within budget: as it is
		}
		var all []*raft.Log
		prev, prevTerm := args.PrevLogEntry, args.PrevLogTerm
		for i, p := range parts {
			if len(parts) > 1 && len(p.Entries) == 0 {
				t.Fatalf("part %d empty", i)
			}
			if p.PrevLogEntry != prev || p.PrevLogTerm != prevTerm {
				t.Fatalf("part %d not chained", i)
			}
			if len(p.Entries) > 1 {
				enc, err := encodeAppend(p)
				if err != nil {
					t.Fatal(err)
				}
				if len(parts) > 1 && len(enc) > int(budget) {
					t.Fatalf("part %d of %d entries is %d bytes, budget %d", i, len(p.Entries), len(enc), budget)
				}
			}
			if n := len(p.Entries); n > 0 {
				prev, prevTerm = p.Entries[n-1].Index, p.Entries[n-1].Term
				if i < len(parts)-1 && p.LeaderCommitIndex > prev {
					t.Fatalf("part %d commits %d past its last entry %d", i, p.LeaderCommitIndex, prev)
				}
			}
			all = append(all, p.Entries...)
		}
		if len(all) != len(args.Entries) {
			t.Fatalf("%d entries in parts, %d sent", len(all), len(args.Entries))
		}
		for i := range all {
			if all[i] != args.Entries[i] {
				t.Fatalf("entry %d out of place", i)
			}
		}
		if parts[len(parts)-1].LeaderCommitIndex != args.LeaderCommitIndex {
			t.Fatal("the last part lost the commit index")
		}
	})
}
