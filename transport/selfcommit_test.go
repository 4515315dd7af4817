package transport

import (
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// selfCommitRequest makes a notice only from an append Raft took whose
// last entry is of the request's term and not yet told committed.
func TestSelfCommitRequest(t *testing.T) {
	hdr := raft.RPCHeader{ID: []byte("L"), Addr: []byte("L")}
	entries := func(terms ...uint64) []*raft.Log {
		var out []*raft.Log
		for i, term := range terms {
			out = append(out, &raft.Log{Index: uint64(5 + i), Term: term, Type: raft.LogCommand})
		}
		return out
	}
	ok := func(term uint64) raft.RPCResponse {
		return raft.RPCResponse{Response: &raft.AppendEntriesResponse{Term: term, Success: true}}
	}
	cases := []struct {
		name string
		req  *raft.AppendEntriesRequest
		r    raft.RPCResponse
		want bool
	}{
		{"taken", &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 3, Entries: entries(2, 3), LeaderCommitIndex: 4}, ok(3), true},
		{"no entries", &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 3, LeaderCommitIndex: 4}, ok(3), false},
		{"last entry of an older term", &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 3, Entries: entries(3, 2)}, ok(3), false},
		{"refused", &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 3, Entries: entries(3)},
			raft.RPCResponse{Response: &raft.AppendEntriesResponse{Term: 3}}, false},
		{"answered in a newer term", &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 3, Entries: entries(3)}, ok(4), false},
		{"failed", &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 3, Entries: entries(3)}, raft.RPCResponse{Error: ErrClosed}, false},
		{"commit already told", &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 3, Entries: entries(3, 3), LeaderCommitIndex: 6}, ok(3), false},
	}
	for _, c := range cases {
		n := selfCommitRequest(c.req, c.r)
		if (n != nil) != c.want {
			t.Errorf("%s: notice %+v, want one: %v", c.name, n, c.want)
			continue
		}
		if n == nil {
			continue
		}
		last := c.req.Entries[len(c.req.Entries)-1]
		if n.Term != c.req.Term || string(n.ID) != "L" || len(n.Entries) != 0 ||
			n.PrevLogEntry != last.Index || n.PrevLogTerm != last.Term || n.LeaderCommitIndex != last.Index {
			t.Errorf("%s: notice %+v, want term %d, previous entry %d of term %d, commit %d, no entries",
				c.name, n, c.req.Term, last.Index, last.Term, last.Index)
		}
	}
}

// A follower's Raft takes a self-commit notice only while it still holds
// the entry the notice names, in the term the notice carries: one made moot
// by a new term or a replaced entry is refused and commits nothing.
func TestSelfCommitRefusedWhenMoot(t *testing.T) {
	_, lt := raft.NewInmemTransport("L")
	fa, ft := raft.NewInmemTransport("F")
	lt.Connect(fa, ft)
	conf := raft.DefaultConfig()
	conf.LocalID = "F"
	conf.HeartbeatTimeout, conf.ElectionTimeout, conf.LeaderLeaseTimeout = time.Hour, time.Hour, time.Hour
	conf.Logger = hclog.NewNullLogger()
	store := raft.NewInmemStore()
	fsm := &listFSM{}
	r, err := raft.NewRaft(conf, fsm, store, store, raft.NewInmemSnapshotStore(), ft)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown().Error() })
	hdr := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("L"), Addr: []byte("L")}
	send := func(req *raft.AppendEntriesRequest) raft.RPCResponse {
		t.Helper()
		var resp raft.AppendEntriesResponse
		if err := lt.AppendEntries("F", fa, req, &resp); err != nil {
			t.Fatal(err)
		}
		return raft.RPCResponse{Response: &resp}
	}
	cmd := func(i, term uint64, s string) *raft.Log {
		return &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: []byte(s)}
	}
	app := &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 2, Entries: []*raft.Log{cmd(1, 2, "a"), cmd(2, 2, "b")}}
	n := selfCommitRequest(app, send(app))
	if n == nil {
		t.Fatal("no notice for an append Raft took")
	}
	refused := func(what string, req *raft.AppendEntriesRequest) {
		t.Helper()
		resp := send(req).Response.(*raft.AppendEntriesResponse)
		if resp.Success {
			t.Errorf("%s: taken", what)
		}
		if c := r.CommitIndex(); c != 0 {
			t.Errorf("%s: commit index %d, want 0", what, c)
		}
	}
	stale := *n
	stale.Term = 1
	refused("an older term", &stale)
	other := *n
	other.PrevLogTerm = 1
	refused("another entry at its index", &other)
	beyond := *n
	beyond.PrevLogEntry, beyond.LeaderCommitIndex = 3, 3
	refused("an entry it does not hold", &beyond)

	// The notice as made: it commits and applies both entries at once.
	if resp := send(n).Response.(*raft.AppendEntriesResponse); !resp.Success {
		t.Fatal("the notice was refused")
	}
	if c := r.CommitIndex(); c != 2 {
		t.Fatalf("commit index %d after the notice, want 2", c)
	}
	eventually(t, "both applied", func() bool { return len(fsm.entries()) == 2 })

	// A new leader replaces an uncommitted entry: a notice of the old term
	// for it is refused.
	app3 := &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 2, PrevLogEntry: 2, PrevLogTerm: 2, LeaderCommitIndex: 2,
		Entries: []*raft.Log{cmd(3, 2, "c")}}
	n3 := selfCommitRequest(app3, send(app3))
	if n3 == nil {
		t.Fatal("no notice for the third entry")
	}
	newer := &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 4, PrevLogEntry: 2, PrevLogTerm: 2, LeaderCommitIndex: 2,
		Entries: []*raft.Log{cmd(3, 4, "d")}}
	if resp := send(newer).Response.(*raft.AppendEntriesResponse); !resp.Success {
		t.Fatal("the newer leader's append was refused")
	}
	if resp := send(n3).Response.(*raft.AppendEntriesResponse); resp.Success {
		t.Error("a notice of term 2 taken in term 4")
	}
	if c := r.CommitIndex(); c != 2 {
		t.Errorf("commit index %d, want 2: the replaced entry's notice committed the new one", c)
	}
}

// Over NATS, a follower whose policy allows it applies an entry as soon as
// it stored it, with the commit timeout far longer than the test and no
// notice from the leader; one whose policy refuses waits for the leader.
func TestSelfCommitOverNATS(t *testing.T) {
	nodes, leader := slowCommitCluster(t)
	var on, off *raftNode
	for _, n := range nodes {
		switch {
		case n == leader:
		case on == nil:
			on = n
		default:
			off = n
		}
	}
	lp, err := ParsePeerID(string(leader.id))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var asked []PeerID
	on.tr.SetSelfCommit(func(p PeerID) bool {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, p)
		return true
	})
	off.tr.SetSelfCommit(func(PeerID) bool { return false })
	for i, cmd := range []string{"a", "b", "c"} {
		if err := leader.raft.Apply([]byte(cmd), waitTimeout).Error(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the allowed follower applied it", func() bool { return len(on.fsm.entries()) == i+1 })
	}
	// An append sent after the other follower's answer committed its entry
	// tells the commit itself: no notice then.
	if got := on.tr.SelfCommits(); got == 0 {
		t.Error("no self-commit taken")
	}
	// The last entry was sent to both at once; the one that may not
	// commit it itself learns of it only with the leader's next append.
	if got := len(off.fsm.entries()); got >= 3 {
		t.Errorf("the refused follower applied %d entries with no append after them", got)
	}
	if got := off.tr.SelfCommits(); got != 0 {
		t.Errorf("the refused follower took %d self-commits", got)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range asked {
		if p != lp {
			t.Errorf("policy asked about %s, not the leader %s", p.Short(), lp.Short())
		}
	}
}
