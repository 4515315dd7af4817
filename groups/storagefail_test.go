package groups

import (
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/hashicorp/raft"
	"github.com/mosaik-go/mosaik/internal/faultfs"
	"github.com/mosaik-go/mosaik/storage"
)

// TestStorageFailureStopsMember: a member whose disk fails (a failed fsync
// of the write-ahead log) stops with the storage error instead of taking
// the process down (hashicorp/raft panics when it cannot store its term or
// read an entry to apply), and the other two go on. As a follower it meets
// the failure storing a new term; as the leader, storing a write; as an
// observer (no vote requests), storing the term of the new leader's first
// append. (A heartbeat of a newer term arriving first is
// TestStorageFailureCandidateHeartbeat's last step.)
func TestStorageFailureStopsMember(t *testing.T) {
	for _, role := range []string{"follower", "leader", "observer"} {
		t.Run(role, func(t *testing.T) { testStorageFailure(t, role) })
	}
}

func testStorageFailure(t *testing.T, role string) {
	leads := role == "leader"
	cfg := testConfig()
	if role == "observer" {
		cfg.Preference = Observer
	}
	inj, bad, a, b := failingTrio(t, cfg)
	nodes := []*dnode[counterCmd, struct{}, int64]{bad, a, b}
	if _, err := a.g.Execute(ctxFor(t, 10*time.Second), counterCmd{Add: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the failing member to apply the first write", func() bool { return bad.g.fsm.Applied() > 0 })
	l := leaderOf(t, nodes...)
	switch {
	case leads && l != bad:
		transferLead(t, l, bad)
	case !leads && l == bad:
		transferLead(t, bad, a)
	}
	l = leaderOf(t, nodes...)
	inj.On()
	if leads {
		// The leader fails storing this write; the caller is told it
		// failed or may have applied, never that it applied.
		if _, err := bad.g.Execute(ctxFor(t, 20*time.Second), counterCmd{Add: 10}); err == nil {
			t.Fatal("a write the failing leader could not store was acknowledged")
		}
	} else {
		// A new term, which the failing follower must store.
		other := a
		if l == a {
			other = b
		}
		transferLead(t, l, other)
	}
	expectStopped(t, bad, a, b)
}

// failingTrio starts three durable members; the first (bad, with cfg)
// keeps its data on a file system whose write-ahead log syncs fail once
// inj is switched on.
func failingTrio(t *testing.T, cfg *Config) (inj *errorfs.Toggle, bad, a, b *dnode[counterCmd, struct{}, int64]) {
	t.Helper()
	c := newCluster(t)
	inj = faultfs.WALSyncFailure()
	bad = startDurableOn(t, c, "/data", &storage.Options{FS: errorfs.Wrap(vfs.NewMem(), inj)}, &counter{}, cfg)
	a = startDurable(t, c, t.TempDir(), &counter{}, nil)
	b = startDurable(t, c, t.TempDir(), &counter{}, nil)
	onlineAll(t, bad, a, b)
	return inj, bad, a, b
}

// transferLead makes from, the leader, hand leadership to to.
func transferLead(t *testing.T, from, to *dnode[counterCmd, struct{}, int64]) {
	t.Helper()
	id := to.id().String()
	if err := from.g.raft.Load().LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(id)).Error(); err != nil {
		t.Fatal(err)
	}
}

// expectStopped waits until bad, whose storage failed, stopped and says
// why, and checks that the other two members still take writes.
func expectStopped(t *testing.T, bad, a, b *dnode[counterCmd, struct{}, int64]) {
	t.Helper()
	select {
	case <-bad.g.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("the member whose storage failed is still running (storage error: %v)", bad.g.StorageErr())
	}
	if err := bad.g.StorageErr(); !errors.Is(err, storage.ErrFailed) {
		t.Fatalf("storage error %v, want storage.ErrFailed", err)
	}
	if err := bad.g.Close(); !errors.Is(err, storage.ErrFailed) {
		t.Errorf("Close of the failed member: %v, want it to say storage.ErrFailed", err)
	}
	bad.once.Do(func() { bad.net.Close(); _ = bad.db.Close() })
	leaderOf(t, a, b)
	if _, err := a.g.Execute(ctxFor(t, 20*time.Second), counterCmd{Add: 2}); err != nil {
		t.Fatalf("a write after one of three members failed: %v", err)
	}
}

// TestHeartbeatFastFollowsTerm: a heartbeat takes Raft's fast path only if
// its term is not newer than Raft's, so Raft never stores a term there.
func TestHeartbeatFastFollowsTerm(t *testing.T) {
	c := newCluster(t)
	nd := c.add(nil)
	c.leader(nd)
	term := nd.g.raft.Load().CurrentTerm()
	if !nd.g.heartbeatFast(term) || !nd.g.heartbeatFast(term-1) {
		t.Errorf("a heartbeat of the current term %d or older does not take the fast path", term)
	}
	if nd.g.heartbeatFast(term + 1) {
		t.Errorf("a heartbeat of term %d, newer than Raft's %d, takes the fast path", term+1, term)
	}
}

// TestStorageFailureCandidateHeartbeat: a pre-vote candidate that hears a
// heartbeat of its own term steps down on Raft's fast path, outside the
// main loop, and Raft stores the term it holds again there. With the disk
// failed (here by another group's write on the shared database, which this
// member's Raft never saw fail) that store must not reach Raft's panic; the
// member stops at its next term instead, which a heartbeat of a newer term
// brings to Raft's main loop (found by review: the process died with
// "failed to save current term" from onHeartbeat, 4 of 4 runs).
func TestStorageFailureCandidateHeartbeat(t *testing.T) {
	inj, bad, a, b := failingTrio(t, nil)
	nodes := []*dnode[counterCmd, struct{}, int64]{bad, a, b}
	if leaderOf(t, nodes...) == bad {
		transferLead(t, bad, a)
	}
	l := leaderOf(t, nodes...)
	o := a
	if l == a {
		o = b
	}
	inj.On()
	if err := bad.g.stores.Stable.SetUint64([]byte("another group's key"), 1); !errors.Is(err, storage.ErrFailed) {
		t.Fatalf("a write on the failing disk: %v, want storage.ErrFailed", err)
	}
	bad.faults.Partition(l.id())
	waitFor(t, 20*time.Second, "the cut-off member to become a candidate", func() bool { return bad.g.raft.Load().State() == raft.Candidate })
	term := bad.g.raft.Load().CurrentTerm()
	oid := o.id().String()
	hb := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(oid), Addr: []byte(oid)}, Term: term}
	var resp raft.AppendEntriesResponse
	if err := o.g.trans.AppendEntries(raft.ServerID(bad.id().String()), raft.ServerAddress(bad.id().String()), hb, &resp); err != nil {
		t.Fatalf("a heartbeat of term %d to the candidate: %v", term, err)
	}
	// Still alive. A heartbeat of a newer term, which Raft must store, goes
	// to its main loop, where the failure stops the member (on Raft's fast
	// path it would have panicked).
	hb.Term = term + 1
	_ = o.g.trans.AppendEntries(raft.ServerID(bad.id().String()), raft.ServerAddress(bad.id().String()), hb, &resp)
	bad.faults.Heal()
	expectStopped(t, bad, a, b)
}
