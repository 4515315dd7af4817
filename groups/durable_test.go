package groups

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/storage"
	"github.com/mosaik-go/mosaik/transport"
)

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestDurableRestartAll stops every member of a 3-node group and starts
// them again on their data directories: they come back as the same
// members, elect a leader without founding anew, and replay their logs to
// the state they had.
func TestDurableRestartAll(t *testing.T) {
	c := newCluster(t)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	start := func() []*dnode[counterCmd, struct{}, int64] {
		var out []*dnode[counterCmd, struct{}, int64]
		for _, dir := range dirs {
			out = append(out, startDurable(t, c, dir, &counter{}, nil))
		}
		return out
	}
	nodes := start()
	onlineAll(t, nodes...)
	var ids []transport.PeerID
	for _, nd := range nodes {
		ids = append(ids, nd.id())
	}
	var sum int64
	for i := range 60 {
		v := int64(i + 1)
		if _, err := nodes[i%3].g.Execute(ctxFor(t, 10*time.Second), counterCmd{Add: v}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		sum += v
	}
	before := convergeAll(t, 15*time.Second, nodes...)
	history := nodes[0].g.fsm.Machine().(*counter).history()
	for _, nd := range nodes {
		nd.stop()
	}

	nodes = start()
	for i, nd := range nodes {
		if nd.id() != ids[i] {
			t.Fatalf("node %d came back as %s, was %s", i, nd.id().Short(), ids[i].Short())
		}
	}
	onlineAll(t, nodes...)
	leader := leaderOf(t, nodes...)
	waitFor(t, 20*time.Second, "the state to come back on every member", func() bool {
		for _, nd := range nodes {
			if nd.g.fsm.Machine().(*counter).Query(struct{}{}) != sum {
				return false
			}
		}
		return true
	})
	for _, nd := range nodes {
		if h := nd.g.fsm.Machine().(*counter).history(); !slices.Equal(h, history) {
			t.Fatalf("%s replayed %v, want %v", nd.id().Short(), h, history)
		}
		if got := nd.g.Applied(); got < before {
			t.Fatalf("%s applied up to %d after restart, had %d", nd.id().Short(), got, before)
		}
	}
	ms := leader.g.Members()
	if len(ms) != 3 {
		t.Fatalf("members after restart: %+v", ms)
	}
	for _, m := range ms {
		if !slices.Contains(ids, m.Peer) || !m.Voter {
			t.Fatalf("member %s (voter %v) after restart; want the same three voters", m.Peer.Short(), m.Voter)
		}
	}
	if _, err := nodes[1].g.Execute(ctxFor(t, 10*time.Second), counterCmd{Add: 1000}); err != nil {
		t.Fatalf("write after restart: %v", err)
	}
	waitFor(t, 10*time.Second, "the write after restart everywhere", func() bool {
		for _, nd := range nodes {
			if nd.g.fsm.Machine().(*counter).Query(struct{}{}) != sum+1000 {
				return false
			}
		}
		return true
	})
}

// TestDurableRestartFromSnapshot restarts every member of a group whose
// machine snapshots: each restores its latest snapshot and replays the log
// after it.
func TestDurableRestartFromSnapshot(t *testing.T) {
	c := newCluster(t)
	cfg := testConfig()
	cfg.TrailingLogs = 4
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	start := func() []*dnode[ledgerCmd, struct{}, ledgerState] {
		var out []*dnode[ledgerCmd, struct{}, ledgerState]
		for _, dir := range dirs {
			out = append(out, startDurable(t, c, dir, &ledger{Pad: 1 << 20}, cfg))
		}
		return out
	}
	nodes := start()
	onlineAll(t, nodes...)
	write := func(from, to int) {
		for i := from; i <= to; i++ {
			if _, err := nodes[i%3].g.Execute(ctxFor(t, 10*time.Second), ledgerCmd{V: int64(i)}); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
	}
	write(1, 40)
	convergeAll(t, 15*time.Second, nodes...)
	for _, nd := range nodes {
		snapshotNow(t, nd)
	}
	write(41, 50)
	convergeAll(t, 15*time.Second, nodes...)
	want := nodes[0].g.fsm.Machine().(*ledger).state()
	for _, nd := range nodes {
		nd.stop()
	}

	nodes = start()
	for _, nd := range nodes {
		if r := nd.g.fsm.Machine().(*ledger).restores.Load(); r != 1 {
			t.Fatalf("%s restored %d snapshots on start, want 1", nd.id().Short(), r)
		}
	}
	onlineAll(t, nodes...)
	leaderOf(t, nodes...)
	waitFor(t, 20*time.Second, "the state to come back on every member", func() bool {
		for _, nd := range nodes {
			if nd.g.fsm.Machine().(*ledger).state() != want {
				return false
			}
		}
		return true
	})
	if want.N != 50 {
		t.Fatalf("state has %d commands, want 50", want.N)
	}
}

// TestDurableFollowerCatchesUpBySnapshot isolates a follower while the
// others write and compact their logs past its position; once back it
// receives a snapshot, replays the log after it, and ends identical.
func TestDurableFollowerCatchesUpBySnapshot(t *testing.T) {
	c := newCluster(t)
	cfg := testConfig()
	cfg.TrailingLogs = 8
	cfg.SnapshotThreshold = 16
	// Long enough that the isolated follower is not removed as dead: the
	// point is the compacted log, not re-adding a member.
	cfg.DeadMemberTimeout = time.Minute
	var nodes []*dnode[ledgerCmd, struct{}, ledgerState]
	for range 3 {
		nodes = append(nodes, startDurable(t, c, t.TempDir(), &ledger{}, cfg))
	}
	onlineAll(t, nodes...)
	leader := leaderOf(t, nodes...)
	var away, other *dnode[ledgerCmd, struct{}, ledgerState]
	for _, nd := range nodes {
		switch {
		case nd == leader:
		case away == nil:
			away = nd
		default:
			other = nd
		}
	}
	for i := range 10 {
		if _, err := leader.g.Execute(ctxFor(t, 10*time.Second), ledgerCmd{V: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	convergeAll(t, 15*time.Second, nodes...)

	away.faults.Isolate()
	for i := range 100 {
		if _, err := leader.g.Execute(ctxFor(t, 10*time.Second), ledgerCmd{V: int64(100 + i)}); err != nil {
			t.Fatalf("write %d with a follower away: %v", i, err)
		}
	}
	snapshotNow(t, leader)
	snapshotNow(t, other)
	first, err := leader.g.stores.Log.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	behind := away.g.raft.Load().LastIndex()
	if first <= behind+1 {
		t.Fatalf("leader's log starts at %d, the follower is at %d: not compacted past it", first, behind)
	}
	t.Logf("follower at %d, leader's log compacted to start at %d", behind, first)

	away.faults.Heal()
	convergeAll(t, 30*time.Second, nodes...)
	want := leader.g.fsm.Machine().(*ledger).state()
	for _, nd := range nodes {
		if got := nd.g.fsm.Machine().(*ledger).state(); got != want {
			t.Fatalf("%s: state %+v, want %+v", nd.id().Short(), got, want)
		}
	}
	if r := away.g.fsm.Machine().(*ledger).restores.Load(); r < 1 {
		t.Fatal("the follower caught up without restoring a snapshot")
	}
	list, err := away.g.stores.Snapshots.List()
	if err != nil || len(list) == 0 {
		t.Fatalf("the follower's store holds no snapshot: %v, %v", list, err)
	}
	// And it keeps up afterwards.
	if _, err := away.g.Execute(ctxFor(t, 10*time.Second), ledgerCmd{V: 7}); err != nil {
		t.Fatal(err)
	}
	convergeAll(t, 15*time.Second, nodes...)
	want = leader.g.fsm.Machine().(*ledger).state()
	if got := away.g.fsm.Machine().(*ledger).state(); got != want || want.N != 111 {
		t.Fatalf("after one more write: %+v, want %+v with 111 commands", got, want)
	}
}

// TestDurableLargeSnapshotToNewMember transfers a snapshot of more than
// 64 MiB to a member that joins after the log was compacted.
func TestDurableLargeSnapshotToNewMember(t *testing.T) {
	if testing.Short() {
		t.Skip("transfers 72 MiB")
	}
	const pad = 72 << 20
	c := newCluster(t)
	cfg := testConfig()
	cfg.TrailingLogs = 4
	cfg.DeadMemberTimeout = time.Minute
	// Writing 72 MiB keeps a loaded machine busy: slower heartbeats keep
	// the leader from being voted out meanwhile.
	cfg.HeartbeatInterval = 50 * time.Millisecond
	cfg.ElectionTimeout = time.Second
	var nodes []*dnode[ledgerCmd, struct{}, ledgerState]
	for range 3 {
		nodes = append(nodes, startDurable(t, c, t.TempDir(), &ledger{Pad: pad}, cfg))
	}
	onlineAll(t, nodes...)
	leader := leaderOf(t, nodes...)
	for i := range 20 {
		if _, err := leader.g.Execute(ctxFor(t, 10*time.Second), ledgerCmd{V: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Every member compacts, so whoever leads next sends a snapshot.
	for _, nd := range nodes {
		snapshotNow(t, nd)
	}
	for i := range 3 {
		if _, err := leader.g.Execute(ctxFor(t, 10*time.Second), ledgerCmd{V: int64(50 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range nodes {
		if first, _ := nd.g.stores.Log.FirstIndex(); first <= 1 {
			t.Fatalf("%s: log not compacted (first index %d)", nd.id().Short(), first)
		}
	}

	began := time.Now()
	late := startDurable(t, c, t.TempDir(), &ledger{Pad: pad}, cfg)
	all := append(nodes, late)
	waitFor(t, raceSlowdown*90*time.Second, "the new member to restore the snapshot", func() bool {
		return late.g.fsm.Machine().(*ledger).restores.Load() > 0
	})
	convergeAll(t, raceSlowdown*30*time.Second, all...)
	took := time.Since(began)
	want := leader.g.fsm.Machine().(*ledger).state()
	if got := late.g.fsm.Machine().(*ledger).state(); got != want || want.N != 23 {
		t.Fatalf("new member's state %+v, want %+v", got, want)
	}
	list, err := late.g.stores.Snapshots.List()
	if err != nil || len(list) == 0 || list[0].Size <= 64<<20 {
		t.Fatalf("new member's snapshots: %+v, %v", list, err)
	}
	t.Logf("%d MiB snapshot: joined and caught up in %v (%.0f MB/s end to end)", list[0].Size>>20, took.Round(time.Millisecond),
		float64(list[0].Size)/1e6/took.Seconds())
}

// Durable storage keeps its node's key; a network of another identity is
// refused at Join with what to do, rather than never coming online.
func TestJoinStorageOfAnotherNode(t *testing.T) {
	c := newCluster(t)
	db, err := storage.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := testConfig()
	cfg.Storage = db
	_, err = c.join(cfg)
	if err == nil || !strings.Contains(err.Error(), "WithIdentity") {
		t.Fatalf("Join with another node's storage = %v, want a refusal naming WithIdentity", err)
	}
}
