// Package replica turns a group's log into calls of its state machine:
// the log entry format, the table of submitters' sessions that makes every
// batch apply exactly once and in order, and the raft.FSM that wraps the
// machine and its snapshots. The group's leader admits batches by the same
// rule the machine applies them by (Judge).
package replica

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/rsm"
)

// ErrNoSnapshots is returned when Raft asks a machine without
// rsm.Snapshotter for a snapshot. Such groups never compact their log.
var ErrNoSnapshots = errors.New("replica: machine does not implement rsm.Snapshotter; it catches up by log replay")

// FSM is the untyped part of the adapter between Raft and a machine: it
// decodes entries, drops repeated and out-of-order batches, numbers
// commands, keeps the outcomes, and wraps the machine's snapshots with its
// own state. It owns the session table and everything under mu; the typed
// side (Machine) runs only under mu. It is safe for concurrent use.
type FSM struct {
	m      machine
	notify func()

	mu       sync.Mutex
	cluster  ClusterID
	last     rsm.Cursor
	raftIdx  uint64
	sessions sessions
	ctx      applyCtx

	applied     atomic.Uint64
	appliedRaft atomic.Uint64
	malformed   atomic.Uint64
}

var _ raft.BatchingFSM = (*FSM)(nil)

// machine is the typed side of an FSM. Its methods run under the FSM's
// lock.
type machine interface {
	// apply decodes and applies commands numbered from ctx's position,
	// returning replies for a Replier; it counts what does not decode.
	apply(raw [][]byte, ctx *applyCtx, first rsm.Index, malformed *atomic.Uint64) [][]byte
	publish()
	snapshotter() rsm.Snapshotter // nil without one
}

// Machine is an FSM together with the typed machine it wraps.
type Machine[C, Q, R any] struct {
	*FSM
	sm      rsm.StateMachine[C, Q, R]
	replier rsm.Replier[C]
	batcher rsm.BatchApplier[C]
	pub     rsm.Publisher
	snapper rsm.Snapshotter
}

// New wraps sm. notify, if not nil, is called after every applied batch of
// log entries, without locks held.
func New[C, Q, R any](sm rsm.StateMachine[C, Q, R], notify func()) *Machine[C, Q, R] {
	m := &Machine[C, Q, R]{sm: sm}
	m.replier, _ = sm.(rsm.Replier[C])
	m.batcher, _ = sm.(rsm.BatchApplier[C])
	m.pub, _ = sm.(rsm.Publisher)
	m.snapper, _ = sm.(rsm.Snapshotter)
	m.FSM = &FSM{m: m, notify: notify, sessions: sessions{byID: map[SessionID]*session{}}}
	return m
}

// Machine returns the wrapped machine.
func (m *Machine[C, Q, R]) Machine() rsm.StateMachine[C, Q, R] { return m.sm }

// Query runs q against the machine, never concurrently with Apply.
func (m *Machine[C, Q, R]) Query(q Q) R {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sm.Query(q)
}

func (m *Machine[C, Q, R]) publish() {
	if m.pub != nil {
		m.pub.Publish()
	}
}

func (m *Machine[C, Q, R]) snapshotter() rsm.Snapshotter { return m.snapper }

func (m *Machine[C, Q, R]) apply(raw [][]byte, ctx *applyCtx, first rsm.Index, malformed *atomic.Uint64) [][]byte {
	decode := func(b []byte, c *C) bool {
		if err := rsm.Unmarshal(b, c); err != nil {
			malformed.Add(1)
			return false
		}
		return true
	}
	switch {
	case m.replier != nil:
		replies := make([][]byte, len(raw))
		for i, b := range raw {
			var c C
			if !decode(b, &c) {
				continue
			}
			ctx.pos = rsm.Cursor{Term: ctx.term, Index: first + rsm.Index(i)}
			if enc, err := rsm.Marshal(m.replier.ApplyReply(c, ctx)); err == nil {
				replies[i] = enc
			} else {
				malformed.Add(1)
			}
		}
		return replies
	case m.batcher != nil:
		cmds := make([]C, 0, len(raw))
		for _, b := range raw {
			var c C
			if decode(b, &c) {
				cmds = append(cmds, c)
			}
		}
		ctx.pos = rsm.Cursor{Term: ctx.term, Index: first + rsm.Index(len(raw)) - 1}
		m.batcher.ApplyBatch(cmds, ctx)
	default:
		for i, b := range raw {
			var c C
			if decode(b, &c) {
				ctx.pos = rsm.Cursor{Term: ctx.term, Index: first + rsm.Index(i)}
				m.sm.Apply(c, ctx)
			}
		}
	}
	return nil
}

// CanSnapshot reports whether the machine implements rsm.Snapshotter.
func (f *FSM) CanSnapshot() bool { return f.m.snapshotter() != nil }

// Applied returns the index of the last applied command.
func (f *FSM) Applied() rsm.Index { return rsm.Index(f.applied.Load()) }

// AppliedRaft returns the Raft index of the last applied log entry.
func (f *FSM) AppliedRaft() uint64 { return f.appliedRaft.Load() }

// Last returns the position of the last applied command.
func (f *FSM) Last() rsm.Cursor {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// Cluster returns the cluster's id, or the zero id before the founding
// entry applied.
func (f *FSM) Cluster() ClusterID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cluster
}

// Sessions returns how many sessions the machine remembers.
func (f *FSM) Sessions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sessions.byID)
}

// Malformed counts entries and commands that could not be decoded.
func (f *FSM) Malformed() uint64 { return f.malformed.Load() }

// SessionLast returns the highest applied batch number of a session.
func (f *FSM) SessionLast(id SessionID) (uint64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sessions.byID[id]
	if s == nil {
		return 0, false
	}
	return s.Last, true
}

// SessionOutcome tells what became of batch seq of a session: its outcome
// while the session remembers it, StatusStale for an older batch that
// applied, StatusExpired once the session was forgotten (as Apply would
// answer it). It reports false while the batch has not applied: sent
// again, it may.
func (f *FSM) SessionOutcome(id SessionID, seq uint64) (Outcome, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sessions.outcome(id, seq)
}

// Apply implements raft.FSM. Command entries return an Outcome.
func (f *FSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	out := f.applyLog(l)
	f.publish()
	f.mu.Unlock()
	if f.notify != nil {
		f.notify()
	}
	return out
}

// ApplyBatch implements raft.BatchingFSM.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	outs := make([]any, len(logs))
	f.mu.Lock()
	for i, l := range logs {
		outs[i] = f.applyLog(l)
	}
	f.publish()
	f.mu.Unlock()
	if f.notify != nil {
		f.notify()
	}
	return outs
}

func (f *FSM) publish() {
	f.m.publish()
	f.applied.Store(uint64(f.last.Index))
	f.appliedRaft.Store(f.raftIdx)
}

func (f *FSM) applyLog(l *raft.Log) any {
	if l.Index > f.raftIdx {
		f.raftIdx = l.Index
	}
	if l.Type != raft.LogCommand {
		return nil
	}
	e, err := DecodeEntry(l.Data)
	if err != nil {
		f.malformed.Add(1)
		return Outcome{Status: StatusMalformed}
	}
	if e.Seq == 0 {
		if len(e.Cluster) != len(f.cluster) {
			f.malformed.Add(1)
			return Outcome{Status: StatusMalformed}
		}
		if f.cluster == (ClusterID{}) {
			f.cluster = ClusterID(e.Cluster) // the first founding entry wins
		}
		return Outcome{Status: StatusApplied}
	}
	s := f.sessions.byID[e.Session]
	if s == nil && f.sessions.expired(e.Session, e.Base) {
		f.skip(e, l.Term)
		return Outcome{Status: StatusExpired, First: f.sessions.forgotten}
	}
	var last uint64
	if s != nil {
		last = s.Last
	}
	switch Judge(last, s != nil, e.Seq, e.Base) {
	case Repeat:
		f.skip(e, l.Term)
		if o, ok := s.recall(e.Seq); ok {
			return o
		}
		return Outcome{Status: StatusStale}
	case Gap:
		f.skip(e, l.Term)
		return Outcome{Status: StatusGap}
	}
	out := Outcome{Status: StatusApplied}
	if !WithinLimits(e.Cmds) {
		// Only a buggy leader appends this: refuse it alike everywhere and
		// let the session go on past it.
		f.malformed.Add(1)
		f.skip(e, l.Term)
		out.Status = StatusTooLarge
	} else if n := len(e.Cmds); n > 0 {
		first := max(e.First, f.last.Index+1)
		out.First, out.Count = first, n
		f.ctx.committed, f.ctx.term = f.last, rsm.Term(l.Term)
		out.Replies = f.m.apply(e.Cmds, &f.ctx, first, &f.malformed)
		f.last = rsm.Cursor{Term: rsm.Term(l.Term), Index: first + rsm.Index(n) - 1}
	}
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	f.sessions.record(e.Session, e.Seq, out, f.last.Index, at)
	return out
}

// skip moves past the indexes a refused entry was given, so that indexes
// the leader handed out are always reached.
func (f *FSM) skip(e Entry, term uint64) {
	if n := len(e.Cmds); n > 0 && e.First+rsm.Index(n)-1 > f.last.Index {
		f.last = rsm.Cursor{Term: rsm.Term(term), Index: e.First + rsm.Index(n) - 1}
	}
}

type applyCtx struct {
	committed, pos rsm.Cursor
	term           rsm.Term
}

func (c *applyCtx) Committed() rsm.Cursor   { return c.committed }
func (c *applyCtx) LogPosition() rsm.Cursor { return c.pos }
func (c *applyCtx) CurrentTerm() rsm.Term   { return c.term }
