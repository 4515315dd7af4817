package groups

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/transport"
)

// Recovery is what Recover did and what it may have cost.
type Recovery struct {
	// Previous are the voters of the configuration before, ordered by
	// PeerID; Reachable those among them heard within DeadMemberTimeout
	// (this member included).
	Previous  []transport.PeerID
	Reachable []transport.PeerID
	// LogLast is this member's last log index, now the group's. Every
	// entry up to it counts as committed from now on, including the
	// Uncommitted entries after the commit index this member knew, which
	// were never acknowledged to their writers.
	LogLast      LogIndex
	LogCommitted LogIndex
	Uncommitted  uint64
	// LogHighest is the highest last log index any member ever announced
	// to this one (0 if it heard of none higher than its own), and
	// HighestPeer who announced it. Entries after LogLast up to it may
	// have been committed and are lost: MayBeLost of them.
	LogHighest  LogIndex
	HighestPeer transport.PeerID
	MayBeLost   uint64
}

// Recover reforms a group that lost a majority of its voters for good,
// from this member alone: it becomes the only voter, with its own log, and
// leads; the other members, old survivors and new ones, join it through
// the usual path (added as non-voters, promoted once caught up).
//
// It refuses with ErrQuorumReachable while a majority of the voters has
// been heard within DeadMemberTimeout, or a leader is heard; and with
// ErrRecoverElsewhere while another reachable voter has a longer log (or
// an equal one and a lower PeerID), so that of the survivors that hear
// each other only one recovers. Two survivors that cannot hear each other
// can both recover and both lead, unreported by Split; when they meet, one
// may take the other in, which then loses what it committed since. Members
// removed this way must not come back with their old state: a durable one
// must be emptied first.
//
// Recover shuts this member's Raft down, appends to its log a configuration
// naming it the only voter, in a term nobody used, and starts Raft again;
// commands in flight on this member fail meanwhile. ctx bounds the wait
// for Raft to elect it.
func (c *core) Recover(ctx context.Context) (Recovery, error) {
	rec, err := c.reform()
	if err != nil {
		return rec, err
	}
	// Raft elects this member, the only voter, after an election timeout.
	if _, err := c.when.until(ctx, func(s status) bool { return s.isLeader }); err != nil {
		return rec, fmt.Errorf("groups: recover: reformed, but not leading yet: %w", err)
	}
	return rec, nil
}

// reform checks that this member may recover the group, and does it.
func (c *core) reform() (Recovery, error) {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.isClosing() {
		return Recovery{}, ErrClosed
	}
	if c.cfg.Preference.IsObserver() {
		return Recovery{}, fmt.Errorf("%w: an observer never votes nor leads", ErrNotVoter)
	}
	rec, err := c.assessRecovery()
	if err != nil {
		return rec, err
	}
	old := c.raft.Load()
	c.raftReady.Store(false) // no Raft RPC is let through until the new Raft runs
	if err := old.Shutdown().Error(); err != nil {
		return rec, fmt.Errorf("groups: recover: shut down raft: %w", err)
	}
	old.DeregisterObserver(c.observer)
	werr := c.writeRecoveryConfiguration(old.CurrentTerm())
	// Start Raft again whatever happened: on failure it comes back as it
	// was. The machine keeps its state: Raft neither restores a snapshot
	// into it nor applies again what it applied (replayGuard).
	conf := c.raftConfig(c.fsm.CanSnapshot())
	conf.NoSnapshotRestoreOnStart = true
	if _, ok := c.raftFSM.(replayGuard); !ok {
		c.raftFSM = replayGuard{BatchingFSM: c.raftFSM, applied: c.fsm.AppliedRaft}
	}
	r, err := raft.NewRaft(conf, c.raftFSM, raftLogStore{c.stores.Log, c}, newRaftStableStore(c.stores.Stable, c), c.stores.Snapshots, c.raftTrans)
	if err != nil {
		// Without a Raft the member cannot go on: stop it. Not in wg:
		// Close waits for wg.
		c.log.Error("groups: recover: restart raft failed; the member stops", "err", err)
		go func() { _ = c.Close() }()
		return rec, fmt.Errorf("groups: recover: restart raft: %w", errors.Join(werr, err))
	}
	r.RegisterObserver(c.observer)
	c.raft.Store(r)
	c.raftReady.Store(true)
	if werr != nil {
		return rec, fmt.Errorf("groups: recover: %w", werr)
	}
	c.log.Warn("groups: recovered the group from this member alone",
		"previous", len(rec.Previous), "last_index", rec.LogLast, "uncommitted", rec.Uncommitted, "may_be_lost", rec.MayBeLost)
	c.announce()
	return rec, nil
}

// assessRecovery says whether this member may recover the group and what
// that would cost. Called with lifeMu held.
func (c *core) assessRecovery() (Recovery, error) {
	r := c.raft.Load()
	fut := r.GetConfiguration()
	if err := fut.Error(); err != nil {
		return Recovery{}, fmt.Errorf("groups: recover: %w", err)
	}
	rec := Recovery{LogLast: LogIndex(r.LastIndex()), LogCommitted: LogIndex(r.CommitIndex())}
	rec.Uncommitted = uint64(rec.LogLast - min(rec.LogCommitted, rec.LogLast))
	now := time.Now()
	peers := c.peerTable()
	for p, ps := range peers {
		if ps.ann.LastIndex > max(rec.LogLast, rec.LogHighest) {
			rec.LogHighest, rec.HighestPeer = ps.ann.LastIndex, p
		}
	}
	if rec.LogHighest > rec.LogLast {
		rec.MayBeLost = uint64(rec.LogHighest - rec.LogLast)
	}
	selfIn := false
	var better transport.PeerID
	for _, s := range fut.Configuration().Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		p, err := transport.ParsePeerID(string(s.ID))
		if err != nil {
			continue
		}
		rec.Previous = append(rec.Previous, p)
		if p == c.self {
			selfIn = true
			rec.Reachable = append(rec.Reachable, p)
			continue
		}
		ps, ok := peers[p]
		if !ok || now.Sub(ps.heard) > c.cfg.DeadMemberTimeout || ps.ann.Leaving {
			continue
		}
		rec.Reachable = append(rec.Reachable, p)
		if ps.ann.LastIndex > rec.LogLast || (ps.ann.LastIndex == rec.LogLast && p.Compare(c.self) < 0) {
			if better.IsZero() {
				better = p
			}
		}
	}
	slices.SortFunc(rec.Previous, func(a, b transport.PeerID) int { return a.Compare(b) })
	slices.SortFunc(rec.Reachable, func(a, b transport.PeerID) int { return a.Compare(b) })
	if !selfIn {
		return rec, fmt.Errorf("%w: this member is not a voter of the group", ErrNotVoter)
	}
	if 2*len(rec.Reachable) > len(rec.Previous) {
		return rec, fmt.Errorf("%w: %d of %d voters heard within %v", ErrQuorumReachable, len(rec.Reachable), len(rec.Previous), c.cfg.DeadMemberTimeout)
	}
	for p, ps := range peers {
		if ps.ann.Leader == p && !ps.ann.Leaving && now.Sub(ps.heard) <= c.cfg.liveWindow() {
			return rec, fmt.Errorf("%w: %s announces itself leader", ErrQuorumReachable, p.Short())
		}
	}
	if !better.IsZero() {
		return rec, fmt.Errorf("%w: %s (reachable, a longer log or an equal one and a lower id)", ErrRecoverElsewhere, better.Short())
	}
	return rec, nil
}

// RemoveMember removes a member that is gone for good from the group's
// configuration. Only the leader can: elsewhere it fails with
// ErrNotLeader. It refuses, unless force, a member heard within
// DeadMemberTimeout, and a removal that would leave the voters without a
// live majority; it refuses this member itself (use Leave). A member that
// is not in the configuration is ErrNotMember.
func (c *core) RemoveMember(ctx context.Context, p transport.PeerID, force bool) error {
	if c.isClosing() {
		return ErrClosed
	}
	if p == c.self {
		return errors.New("groups: RemoveMember: this member removes itself with Leave")
	}
	if c.raft.Load().State() != raft.Leader {
		return ErrNotLeader
	}
	if !c.configured()[raft.ServerID(p.String())] {
		return fmt.Errorf("%w: %s", ErrNotMember, p.Short())
	}
	if !force {
		c.peersMu.Lock()
		ps := c.peers[p]
		live := ps != nil && time.Since(ps.heard) <= c.cfg.DeadMemberTimeout
		c.peersMu.Unlock()
		if live {
			return fmt.Errorf("%w: %s was heard within %v", ErrMemberAlive, p.Short(), c.cfg.DeadMemberTimeout)
		}
	}
	if err := c.removePeer(ctx, p, force); err != nil {
		if errors.Is(err, errRefused) {
			return fmt.Errorf("%w: %w", ErrMemberAlive, err)
		}
		return err
	}
	return nil
}

// writeRecoveryConfiguration appends to the stopped Raft's log a
// configuration with this member as the only voter. Raft takes the latest
// configuration in its log, committed or not, so at start this member is
// alone and elects itself. cur is the stopped Raft's current term. The entry's term is one nobody used (above every
// term this member saw or voted in), so no other member can hold a
// different entry at that index and term; the stable term is raised to it
// first. hashicorp/raft's RecoverCluster does the same through a snapshot,
// which a machine without snapshots cannot take.
func (c *core) writeRecoveryConfiguration(cur uint64) error {
	logs, stable := c.stores.Log, c.stores.Stable
	last, err := logs.LastIndex()
	if err != nil {
		return err
	}
	var lastTerm uint64
	if last > 0 {
		var e raft.Log
		if err := logs.GetLog(last, &e); err != nil {
			return err
		}
		lastTerm = e.Term
	}
	if snaps, err := c.stores.Snapshots.List(); err != nil {
		return err
	} else if len(snaps) > 0 && snaps[0].Index > last {
		last, lastTerm = snaps[0].Index, snaps[0].Term
	}
	term := max(cur, lastTerm) + 1
	if err := stable.SetUint64(keyCurrentTerm, term); err != nil {
		return err
	}
	conf := raft.Configuration{Servers: []raft.Server{c.server(c.self, raft.Voter)}}
	return logs.StoreLog(&raft.Log{Index: last + 1, Term: term, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(conf), AppendedAt: time.Now()})
}

// keyCurrentTerm is where hashicorp/raft keeps its current term in the
// stable store.
var keyCurrentTerm = []byte("CurrentTerm")

// replayGuard drops the log entries the machine applied already. Raft
// started again over a live machine (Recover) hands it every entry after
// its latest snapshot, or after index 0 without one, once more.
type replayGuard struct {
	raft.BatchingFSM
	applied func() uint64 // the last Raft index the machine applied
}

func (g replayGuard) Apply(l *raft.Log) any {
	if l.Index <= g.applied() {
		return nil
	}
	return g.BatchingFSM.Apply(l)
}

func (g replayGuard) ApplyBatch(logs []*raft.Log) []any {
	done := g.applied()
	i := 0
	for i < len(logs) && logs[i].Index <= done {
		i++
	}
	if i == 0 {
		return g.BatchingFSM.ApplyBatch(logs)
	}
	out := make([]any, len(logs))
	if i < len(logs) {
		copy(out[i:], g.BatchingFSM.ApplyBatch(logs[i:]))
	}
	return out
}
