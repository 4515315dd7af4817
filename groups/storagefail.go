package groups

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// A store that fails under Raft ends this member, not the process.
// hashicorp/raft panics when it cannot store its term (setCurrentTerm) or
// read an entry it is about to apply (processLogs); after an fsync fails,
// storage.DB refuses everything, so a member on a failing disk would take
// its whole process down at its next term or commit. raftStableStore and raftLogStore
// stand between Raft and the stores (only Raft's calls: this package reads
// the stores directly): on such an error they stop the member
// (storageFailed) and, on Raft's main goroutine, end that goroutine
// (runtime.Goexit, which runs its deferred calls) instead of returning the
// error Raft would panic on. Raft's shutdown then finds its main loop gone
// and stops the rest. Elsewhere (a replication goroutine reading an entry
// to send) the error is returned: Raft logs it and tries again, until the
// member's stop shuts it down.
//
// Raft's term changes run on its main goroutine: a heartbeat of a newer
// term goes there rather than to Raft's heartbeat handler, which runs on a
// transport goroutine (heartbeatFast).
type raftStableStore struct {
	raft.StableStore
	c    *core
	term *atomic.Uint64 // the term last read or stored (keyCurrentTerm)
}

func newRaftStableStore(s raft.StableStore, c *core) raftStableStore {
	return raftStableStore{StableStore: s, c: c, term: new(atomic.Uint64)}
}

func (s raftStableStore) GetUint64(key []byte) (uint64, error) {
	v, err := s.StableStore.GetUint64(key)
	if err == nil && bytes.Equal(key, keyCurrentTerm) {
		s.term.Store(v)
	}
	return v, err
}

func (s raftStableStore) Set(key, val []byte) error {
	if err := s.StableStore.Set(key, val); err != nil {
		return s.c.storageFailed(fmt.Errorf("groups: store %q: %w", key, err), true)
	}
	return nil
}

// SetUint64 does not store the term again when it is the one stored:
// Raft rewrites it when a candidate steps down on a leader's message of
// its own term, which a heartbeat can carry outside the main loop (see
// heartbeatFast), where a failure could only end in Raft's panic.
func (s raftStableStore) SetUint64(key []byte, val uint64) error {
	isTerm := bytes.Equal(key, keyCurrentTerm)
	if isTerm && val == s.term.Load() && val != 0 {
		return nil
	}
	if err := s.StableStore.SetUint64(key, val); err != nil {
		return s.c.storageFailed(fmt.Errorf("groups: store %q: %w", key, err), true)
	}
	if isTerm {
		s.term.Store(val)
	}
	return nil
}

type raftLogStore struct {
	raft.LogStore
	c *core
}

func (l raftLogStore) GetLog(index uint64, e *raft.Log) error {
	err := l.LogStore.GetLog(index, e)
	if err != nil && !errors.Is(err, raft.ErrLogNotFound) {
		return l.c.storageFailed(fmt.Errorf("groups: read log entry %d: %w", index, err), true)
	}
	return err
}

// StoreLogs fails the member too, but returns the error: Raft answers it
// without a panic (a follower refuses the append, a leader steps down).
func (l raftLogStore) StoreLogs(logs []*raft.Log) error {
	if err := l.LogStore.StoreLogs(logs); err != nil {
		return l.c.storageFailed(fmt.Errorf("groups: store log entries: %w", err), false)
	}
	return nil
}

func (l raftLogStore) StoreLog(e *raft.Log) error { return l.StoreLogs([]*raft.Log{e}) }

// storageFailed records err as why this member stops, logs it once, and
// stops the member in the background. If exit, and the caller is Raft's
// main loop, it ends that goroutine; else it returns err.
func (c *core) storageFailed(err error, exit bool) error {
	if c.storageErr.CompareAndSwap(nil, &err) {
		c.log.Error("groups: this member's storage failed; the member stops (restart it on a working disk)", "err", err)
		// Not in wg: stop waits for wg, and for Raft, whose main loop may
		// be the caller.
		go c.closeOnce.Do(c.stop)
	}
	if exit && onRaftMainLoop() {
		runtime.Goexit()
	}
	return err
}

// untilAnswered makes the Raft call start and waits for its answer, or
// until done closes (answered false): Raft's main loop may be gone (its
// storage failed) and never take or answer the call. The goroutine that
// waits for the answer then ends when Raft shuts down, or never if the
// main loop took the call before it ended.
func untilAnswered(done <-chan struct{}, start func() raft.Future) (answered bool, err error) {
	errc := make(chan error, 1)
	go func() { errc <- start().Error() }()
	select {
	case err = <-errc:
		return true, err
	case <-done:
		return false, nil
	}
}

// heartbeatFast says whether a heartbeat of term may take Raft's fast path
// (transport.RaftTransport.SetHeartbeatFast): only if it is not newer than
// Raft's term. Terms only grow, so one let through can make Raft store only
// the term it holds (a candidate stepping down), which raftStableStore
// does not write again.
func (c *core) heartbeatFast(term uint64) bool {
	r := c.raft.Load()
	return r != nil && term <= r.CurrentTerm()
}

// StorageErr returns why this member's storage failed under Raft, which
// stopped the member, or nil.
func (c *core) StorageErr() error {
	if p := c.storageErr.Load(); p != nil {
		return *p
	}
	return nil
}

// onRaftMainLoop reports whether the calling goroutine is Raft's main loop
// (Raft.run), the one whose store errors Raft answers with a panic.
func onRaftMainLoop() bool {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		f, more := frames.Next()
		if strings.HasSuffix(f.Function, "hashicorp/raft.(*Raft).run") {
			return true
		}
		if !more {
			return false
		}
	}
}
