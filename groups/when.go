package groups

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// notifier wakes every waiter on each broadcast. It only allocates a new
// channel when someone is waiting on the current one.
type notifier struct {
	mu    sync.Mutex
	ch    chan struct{}
	taken bool
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

// wait returns a channel closed at the next broadcast.
func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.taken = true
	return n.ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	if n.taken {
		close(n.ch)
		n.ch = make(chan struct{})
		n.taken = false
	}
	n.mu.Unlock()
}

// status is what When waits on.
type status struct {
	leader   transport.PeerID // zero: none known
	isLeader bool             // this member leads and has applied its predecessors' log
	member   bool             // this member is in the group's configuration
	closed   bool
}

// When waits for a group's status to reach a condition. Every method blocks
// until the condition holds, ctx ends (its error is returned) or the group
// closes (ErrClosed). It is safe for concurrent use.
type When struct {
	self    transport.PeerID
	mu      sync.Mutex
	st      status
	changed *notifier
	applied *notifier
	index   func() rsm.Index

	// readIndex asks the leader for its commit index (set by the core);
	// caught records that Online once waited until this member applied it.
	readIndex func(context.Context) (rsm.Index, error)
	caught    atomic.Bool
	explain   func(ctxErr error) error // why not online; set before use
}

func newWhen(self transport.PeerID, index func() rsm.Index) *When {
	return &When{self: self, changed: newNotifier(), applied: newNotifier(), index: index}
}

func (w *When) get() status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st
}

func (w *When) set(f func(*status)) {
	w.mu.Lock()
	old := w.st
	f(&w.st)
	changed := w.st != old
	w.mu.Unlock()
	if changed {
		w.changed.broadcast()
	}
}

func (w *When) until(ctx context.Context, cond func(status) bool) (status, error) {
	for {
		ch := w.changed.wait()
		st := w.get()
		if st.closed {
			return st, ErrClosed
		}
		if cond(st) {
			return st, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
}

// LeaderElected resolves once a leader is known and returns it.
func (w *When) LeaderElected(ctx context.Context) (transport.PeerID, error) {
	st, err := w.until(ctx, func(s status) bool { return !s.leader.IsZero() })
	return st.leader, err
}

// LeaderChanged resolves once a leader other than the one known at the call
// (or any, if none was) is known, and returns it.
func (w *When) LeaderChanged(ctx context.Context) (transport.PeerID, error) {
	was := w.get().leader
	st, err := w.until(ctx, func(s status) bool { return !s.leader.IsZero() && s.leader != was })
	return st.leader, err
}

// LeaderIs resolves once p is the known leader.
func (w *When) LeaderIs(ctx context.Context, p transport.PeerID) error {
	_, err := w.until(ctx, func(s status) bool { return s.leader == p })
	return err
}

// IsLeader resolves once this member leads and is ready to serve.
func (w *When) IsLeader(ctx context.Context) error {
	_, err := w.until(ctx, func(s status) bool { return s.isLeader })
	return err
}

// IsFollower resolves once this member is in the group and follows another
// member's leadership.
func (w *When) IsFollower(ctx context.Context) error {
	_, err := w.until(ctx, func(s status) bool { return s.member && !s.leader.IsZero() && s.leader != w.self })
	return err
}

// Online resolves once a leader is known, this member is part of the
// group, and it has applied every command the leader had committed when
// Online first asked (a read index): a member that restarts or joins does
// not come online showing old state. Commands and strong queries can go
// through. The catching up is asked for once: later calls still wait for a
// known leader and membership, but not for a new read index, so after a
// leader change Online resolves as soon as the new leader is known.
// When ctx ends first, the error is a *NotOnlineError that says why, as far
// as this member can tell, and wraps ctx's error.
func (w *When) Online(ctx context.Context) error {
	err := w.waitOnline(ctx)
	if err != nil && err == ctx.Err() && w.explain != nil {
		return w.explain(err)
	}
	return err
}

func (w *When) waitOnline(ctx context.Context) error {
	s, err := w.until(ctx, w.online)
	if err != nil {
		return err
	}
	if s.isLeader || w.caught.Load() || w.readIndex == nil {
		return nil // a leader has applied its predecessors' log before it says so
	}
	idx, err := w.readIndex(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if err := w.Applied(ctx, idx); err != nil {
		return err
	}
	w.caught.Store(true)
	return nil
}

func (w *When) online(s status) bool {
	return !s.leader.IsZero() && s.member && (s.leader != w.self || s.isLeader)
}

// Offline resolves once no leader is known.
func (w *When) Offline(ctx context.Context) error {
	_, err := w.until(ctx, func(s status) bool { return s.leader.IsZero() })
	return err
}

// Applied resolves once this member has applied every command up to index.
func (w *When) Applied(ctx context.Context, index rsm.Index) error {
	for {
		ch := w.applied.wait()
		if w.index() >= index {
			return nil
		}
		if w.get().closed {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (w *When) close() {
	w.set(func(s *status) { *s = status{closed: true} })
	w.applied.broadcast()
}
