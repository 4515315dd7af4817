package groups

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// futures counts the Raft futures a member waits on. Raft is shut down only
// once each has its answer: hashicorp/raft drops committed entries still
// queued for its FSM at shutdown without ever answering their futures, so
// shutting down first would leave their waiters blocked for good.
type futures struct {
	mu      sync.RWMutex // held to start a call, taken to stop
	stopped atomic.Bool
	n       atomic.Int64
	drained chan struct{}
	once    sync.Once
}

func newFutures() *futures { return &futures{drained: make(chan struct{})} }

// watched is a Raft future being watched: one goroutine takes its answer
// (a raft future may only be waited on once) and closes done.
type watched[F raft.Future] struct {
	f    F
	done chan struct{}
	err  error
}

// raftCall starts a Raft call and watches its future, unless the member is
// stopping.
func raftCall[F raft.Future](c *core, start func() F) (*watched[F], error) {
	fs := c.futures
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	if fs.stopped.Load() {
		return nil, ErrClosed
	}
	fs.n.Add(1)
	p := &watched[F]{f: start(), done: make(chan struct{})}
	go func() {
		p.err = p.f.Error()
		close(p.done)
		fs.answered()
	}()
	return p, nil
}

// wait returns the future's error, or ctx's when it ends first.
func (p *watched[F]) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call starts a Raft call and waits for it.
func call[F raft.Future](ctx context.Context, c *core, start func() F) (F, error) {
	p, err := raftCall(c, start)
	if err != nil {
		var zero F
		return zero, err
	}
	return p.f, p.wait(ctx)
}

func (fs *futures) answered() {
	if fs.n.Add(-1) == 0 && fs.stopped.Load() {
		fs.once.Do(func() { close(fs.drained) })
	}
}

// drain refuses new calls and waits until every started one is answered, or
// until the timeout. With the transport closed a leader steps down within its
// lease, which answers what it could not commit.
func (fs *futures) drain(timeout time.Duration) bool {
	fs.mu.Lock()
	fs.stopped.Store(true)
	fs.mu.Unlock()
	if fs.n.Load() == 0 {
		return true
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-fs.drained:
		return true
	case <-t.C:
		return false
	}
}
