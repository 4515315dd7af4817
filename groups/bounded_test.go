package groups

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// ExecuteApplied waits for the commit, then for this member to apply it.
// A member that cannot apply (here its machine is stuck; in the field, it
// lost its quorum right after the leader committed) must not hold the
// caller forever: within 3 × ForwardTimeout it returns ErrNotAppliedHere,
// which says the commands committed, with their indexes.
func TestExecuteAppliedBounded(t *testing.T) {
	c := newCluster(t)
	cfg := testConfig()
	cfg.ForwardTimeout = 500 * time.Millisecond
	nodes := []*node{c.add(cfg), c.add(cfg), c.add(cfg)}
	online(t, nodes...)
	leader := c.leader(nodes...)
	var f *node
	for _, nd := range nodes {
		if nd != leader {
			f = nd
		}
	}
	f.sm.mu.Lock() // the follower's machine cannot apply
	var unlock sync.Once
	release := func() { unlock.Do(f.sm.mu.Unlock) }
	t.Cleanup(release)

	type result struct {
		rs  []Reply[int64]
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		rs, err := ExecuteApplied[int64](context.Background(), f.g, []counterCmd{{Add: 1}})
		done <- result{rs, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		release()
		<-done
		t.Fatal("ExecuteApplied(context.Background()) still waited after 60 s; its bound is 3 × ForwardTimeout")
	}
	took := time.Since(start)
	release()
	if !errors.Is(r.err, ErrNotAppliedHere) {
		t.Fatalf("ExecuteApplied: %v after %v, want ErrNotAppliedHere", r.err, took)
	}
	if len(r.rs) != 1 || r.rs[0].Index == 0 {
		t.Fatalf("replies %+v: want the committed command's index", r.rs)
	}
	// Once the member applies, the index is there.
	if err := f.g.When().Applied(ctxT(t, 15*time.Second), r.rs[0].Index); err != nil {
		t.Fatal(err)
	}
}
