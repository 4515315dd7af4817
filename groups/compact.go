package groups

import (
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// compactor takes snapshots by the bytes of the log, where Raft counts
// entries only (SnapshotThreshold, TrailingLogs). A log of few, large
// entries (Extends of thousands of commands each) is otherwise never
// compacted, and every newcomer replays all of it, command by command,
// where installing the state would take a fraction of the time.
//
// It asks for a snapshot when the commands applied since the last one hold
// at least Config.SnapshotLogBytes and half the size of that snapshot (so
// the snapshots written stay within a small multiple of the log written
// while the state grows), and keeps about SnapshotLogBytes of the log
// after it (at most TrailingLogs entries).
//
// The FSM wrapper counts what is applied (on Raft's FSM goroutine); the
// compactor's goroutine, one per member, owns the rest and talks to Raft.
type compactor struct {
	c     *core
	bytes atomic.Uint64 // command bytes applied since the last snapshot began
	count atomic.Uint64 // entries applied since then
	wake  chan struct{} // poked by applies past threshold
	// threshold is the bytes that wake the compactor: SnapshotLogBytes
	// after a snapshot, then what due found due, so that applies below it
	// do not make it list the snapshots again.
	threshold atomic.Uint64
	// lastSize is the size of the latest snapshot this member took or
	// installed, as its store lists it; the compactor's goroutine only.
	lastSize uint64
	// take asks Raft for the snapshot (snapshot; tests replace it).
	take func() error
}

// A snapshot that fails is asked for again no sooner than a back-off that
// doubles from compactRetryMin up to SnapshotInterval: one that Raft
// refuses before the machine's Snapshot runs (a configuration change not
// yet applied) leaves the count where it was, and every apply would ask
// again.
const compactRetryMin = 10 * time.Millisecond

func newCompactor(c *core) *compactor {
	k := &compactor{c: c, wake: make(chan struct{}, 1)}
	k.take = k.snapshot
	k.threshold.Store(c.cfg.SnapshotLogBytes)
	return k
}

// restart counts from zero: a snapshot began or was installed.
func (k *compactor) restart() {
	k.bytes.Store(0)
	k.count.Store(0)
	k.threshold.Store(k.c.cfg.SnapshotLogBytes)
}

// compactingFSM counts the bytes Raft applies, for the compactor.
type compactingFSM struct {
	raft.BatchingFSM
	k *compactor
}

func (f compactingFSM) Apply(l *raft.Log) any {
	f.k.applied([]*raft.Log{l})
	return f.BatchingFSM.Apply(l)
}

func (f compactingFSM) ApplyBatch(logs []*raft.Log) []any {
	f.k.applied(logs)
	return f.BatchingFSM.ApplyBatch(logs)
}

// Snapshot starts counting again: the snapshot Raft asks for now holds
// everything applied so far. (If it fails, the bytes it would have
// covered are not counted again: the next snapshot, by entries or by
// bytes, covers them.)
func (f compactingFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.k.restart()
	return f.BatchingFSM.Snapshot()
}

// Restore starts counting again too: the log before the installed state
// is no longer this member's to replace.
func (f compactingFSM) Restore(rc io.ReadCloser) error {
	f.k.restart()
	return f.BatchingFSM.Restore(rc)
}

func (k *compactor) applied(logs []*raft.Log) {
	n := 0
	for _, l := range logs {
		if l.Type == raft.LogCommand {
			n += len(l.Data)
		}
	}
	k.count.Add(uint64(len(logs)))
	if k.bytes.Add(uint64(n)) >= k.threshold.Load() {
		select {
		case k.wake <- struct{}{}:
		default:
		}
	}
}

func (k *compactor) run() {
	var backoff time.Duration
	for {
		select {
		case <-k.c.closing:
			return
		case <-k.wake:
		}
		if !k.due() {
			continue
		}
		// A Raft shut down is not the end: Recover starts another, whose
		// snapshots are still due; a member that closes ends the loop by
		// closing.
		err := k.take()
		if err == nil || errors.Is(err, raft.ErrRaftShutdown) {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, compactRetryMin), max(k.c.cfg.SnapshotInterval, compactRetryMin))
		k.c.log.Debug("groups: snapshot by log size failed", "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-k.c.closing:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// due reports whether the log since the last snapshot is large enough to
// replace.
func (k *compactor) due() bool {
	if metas, err := k.c.stores.Snapshots.List(); err == nil && len(metas) > 0 {
		k.lastSize = uint64(max(metas[0].Size, 0))
	}
	due := max(k.c.cfg.SnapshotLogBytes, k.lastSize/2)
	k.threshold.Store(due)
	return k.bytes.Load() >= due
}

// snapshot has Raft take a snapshot now, keeping about SnapshotLogBytes
// of the log after it.
func (k *compactor) snapshot() error {
	r := k.c.raft.Load()
	b, n := k.bytes.Load(), max(k.count.Load(), 1)
	trail := k.c.cfg.TrailingLogs
	if perEntry := max(b/n, 1); k.c.cfg.SnapshotLogBytes/perEntry < trail {
		trail = max(k.c.cfg.SnapshotLogBytes/perEntry, 1)
	}
	rc := r.ReloadableConfig()
	if rc.TrailingLogs != trail {
		restore := rc
		rc.TrailingLogs = trail
		if err := r.ReloadConfig(rc); err != nil {
			return err
		}
		defer func() { _ = r.ReloadConfig(restore) }()
	}
	err := r.Snapshot().Error()
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil
	}
	return err
}
