package groups

import (
	"io"
	"sync"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mosaik-go/mosaik/internal/prom"
)

// groupMetrics are a member's Prometheus metrics, exported through its
// network's registry (transport.WithMetrics) with labels "group" and "peer"
// (short ids). Events are counted where they happen; Raft's own figures
// (term, indexes, configuration) are read when the registry is scraped. A
// nil *groupMetrics (no registry) does nothing.
type groupMetrics struct {
	c        *core
	counters *prom.Counters
	readings *prom.Readings

	elections, leaderChanges  prometheus.Counter
	forwarded, appended       prometheus.Counter
	snapsTaken, snapsRestored prometheus.Counter

	mu     sync.Mutex
	leader raft.ServerID // the last leader observed
}

func newGroupMetrics(c *core) *groupMetrics {
	reg := c.net.Metrics()
	if reg == nil {
		return nil
	}
	vec := func(name, help string) *prometheus.CounterVec {
		return prom.CounterVec(reg, "group", name, help, "group", "peer")
	}
	m := &groupMetrics{c: c}
	m.counters = prom.Bind([]string{c.id.Short(), c.self.Short()},
		prom.Child{Vec: vec("elections_total", "Elections the member started (transitions to candidate)."), To: &m.elections},
		prom.Child{Vec: vec("leader_changes_total", "Times the member learnt of a leader other than the last it knew."), To: &m.leaderChanges},
		prom.Child{Vec: vec("forwarded_commands_total", "Commands the member forwarded to the leader, counting resends."), To: &m.forwarded},
		prom.Child{Vec: vec("appended_commands_total", "Commands the member appended to the log as leader."), To: &m.appended},
		prom.Child{Vec: vec("snapshots_taken_total", "Snapshots of the state machine the member persisted."), To: &m.snapsTaken},
		prom.Child{Vec: vec("snapshots_restored_total", "Snapshots the member restored its state machine from."), To: &m.snapsRestored},
	)
	return m
}

// start follows the member's Raft: it observes elections and leaders, and
// exports Raft's figures. It runs once Raft is up.
func (m *groupMetrics) start() {
	if m == nil {
		return
	}
	r := m.c.raft.Load // Recover may replace it
	gauge := func(name, help string, read func() float64) prom.Reading {
		return prom.Reading{Name: name, Help: help, Type: prometheus.GaugeValue, Read: read}
	}
	counter := func(name, help string, read func() uint64) prom.Reading {
		return prom.Reading{Name: name, Help: help, Type: prometheus.CounterValue, Read: func() float64 { return float64(read()) }}
	}
	m.readings = prom.Register(m.c.net.Metrics(), "group", prometheus.Labels{"group": m.c.id.Short(), "peer": m.c.self.Short()},
		gauge("is_leader", "1 if the member leads its group, else 0.", func() float64 {
			if r().State() == raft.Leader {
				return 1
			}
			return 0
		}),
		gauge("term", "The member's current Raft term.", func() float64 { return float64(r().CurrentTerm()) }),
		gauge("last_index", "The last index in the member's Raft log.", func() float64 { return float64(r().LastIndex()) }),
		gauge("commit_index", "The highest Raft index the member knows committed.", func() float64 { return float64(r().CommitIndex()) }),
		// Raft's AppliedIndex moves when entries are queued for the
		// machine; the FSM's counter moves when they have applied.
		gauge("applied_index", "The highest Raft index the member applied to its state machine.", func() float64 { return float64(m.c.fsm.AppliedRaft()) }),
		gauge("apply_lag", "Entries committed but not yet applied by the member (commit_index - applied_index).", func() float64 {
			commit, applied := r().CommitIndex(), m.c.fsm.AppliedRaft()
			return float64(commit - min(applied, commit))
		}),
		counter("refused_batches_total", "Batches the member refused as leader for exceeding the size limits.", m.c.refused.batches.Load),
		counter("refused_entries_total", "Log entries and commands the member's machine refused: undecodable or over the limits.", m.c.refusedEntries),
		counter("dropped_peers_total", "Announced peers forgotten because the peer table was full.", m.c.refused.peers.Load),
		counter("busy_read_index_total", "Read-index requests refused because too many were in flight.", m.c.refused.readIndex.Load),
		counter("refused_sessions_total", "New sessions refused by this leader because their member opened too many.", m.c.refused.sessions.Load),
		counter("self_commits_total", "Commits the member took by itself, as a follower that with the leader is a majority of the voters, without waiting to hear of them.", m.c.trans.SelfCommits),
		counter("unsent_outcomes_total", "Applied outcomes the member, as leader, did not send to a follower that answers them at its own apply.", m.c.unsent.Load),
		counter("self_resolved_batches_total", "Forwarded batches the member answered at its own apply, before the leader's reply.", m.c.sub.selfResolved.Load),
		gauge("voters", "Voters in the group's configuration as the member knows it.", func() float64 { return float64(m.count(raft.Voter)) }),
		gauge("nonvoters", "Non-voters in the group's configuration as the member knows it.", func() float64 { return float64(m.count(raft.Nonvoter)) }),
	)
}

// close removes the member's metrics. It may be called before start.
func (m *groupMetrics) close() {
	if m == nil {
		return
	}
	m.readings.Unregister()
	m.counters.Delete()
}

func (m *groupMetrics) count(s raft.ServerSuffrage) int {
	fut := m.c.raft.Load().GetConfiguration()
	if fut.Error() != nil {
		return 0
	}
	n := 0
	for _, srv := range fut.Configuration().Servers {
		if srv.Suffrage == s {
			n++
		}
	}
	return n
}

// observe counts elections and leader changes; the member's observer
// filter calls it for every observation, on Raft's goroutine.
func (m *groupMetrics) observe(o *raft.Observation) {
	if m == nil {
		return
	}
	switch d := o.Data.(type) {
	case raft.RaftState:
		if d == raft.Candidate {
			m.elections.Inc()
		}
	case raft.LeaderObservation:
		if d.LeaderID == "" {
			break
		}
		m.mu.Lock()
		changed := d.LeaderID != m.leader
		m.leader = d.LeaderID
		m.mu.Unlock()
		if changed {
			m.leaderChanges.Inc()
		}
	}
}

// forwardedCommands counts n commands sent to the leader.
func (m *groupMetrics) forwardedCommands(n int) {
	if m != nil {
		m.forwarded.Add(float64(n))
	}
}

// appendedCommands counts n commands this leader appended.
func (m *groupMetrics) appendedCommands(n int) {
	if m != nil {
		m.appended.Add(float64(n))
	}
}

// wrap returns the FSM Raft should drive: fsm, counting its snapshots.
func (m *groupMetrics) wrap(fsm raft.BatchingFSM) raft.BatchingFSM {
	if m == nil {
		return fsm
	}
	return meteredFSM{BatchingFSM: fsm, m: m}
}

type meteredFSM struct {
	raft.BatchingFSM
	m *groupMetrics
}

func (f meteredFSM) Snapshot() (raft.FSMSnapshot, error) {
	s, err := f.BatchingFSM.Snapshot()
	if err != nil {
		return nil, err
	}
	return meteredSnapshot{FSMSnapshot: s, m: f.m}, nil
}

func (f meteredFSM) Restore(rc io.ReadCloser) error {
	err := f.BatchingFSM.Restore(rc)
	if err == nil {
		f.m.snapsRestored.Inc()
	}
	return err
}

type meteredSnapshot struct {
	raft.FSMSnapshot
	m *groupMetrics
}

func (s meteredSnapshot) Persist(sink raft.SnapshotSink) error {
	err := s.FSMSnapshot.Persist(sink)
	if err == nil {
		s.m.snapsTaken.Inc()
	}
	return err
}
