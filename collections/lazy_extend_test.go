package collections

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// README: "A replica publishes a new snapshot once per applied batch of log
// entries, never part of one: an Extend run is seen whole or not at all."
// Every write here is an Extend of run fresh keys, so every state a read
// may see holds a multiple of run entries. A read that comes while a batch
// applies, after a Publish nobody read, must wait for the batch's Publish
// (freezeDirty), not freeze the commands applied so far: part of a run.
func TestLazyExtendSeenWhole(t *testing.T) {
	const run = 64
	tn := newTestNet(t)
	w := openMapW[string, int](t, tn.node(), "extend-whole")
	online(t, w)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var (
		wg   sync.WaitGroup
		bad  atomic.Value
		runs atomic.Int64
	)
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil && bad.Load() == nil; i++ {
				if _, err := w.Extend(ctx, func(yield func(string, int) bool) {
					for j := range run {
						if !yield(fmt.Sprintf("g%d-%06d-%02d", g, i, j), j) {
							return
						}
					}
				}); err != nil {
					if ctx.Err() == nil {
						bad.CompareAndSwap(nil, fmt.Sprintf("Extend: %v", err))
					}
					return
				}
				runs.Add(1)
			}
		})
	}
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(7, 7))
		for ctx.Err() == nil && bad.Load() == nil {
			if n := w.Len(); n%run != 0 {
				bad.CompareAndSwap(nil, fmt.Sprintf("Len %d at version %d: part of an Extend run of %d (%d runs written)", n, w.Version(), run, runs.Load()))
				return
			}
			// Read at scattered moments, not right after every Publish.
			for range rng.IntN(20_000) {
				if ctx.Err() != nil {
					return
				}
			}
		}
	})
	// Stop after enough runs, or at the first bad read.
	for ctx.Err() == nil && bad.Load() == nil && runs.Load() < 2000 {
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	wg.Wait()
	if b := bad.Load(); b != nil {
		t.Fatal(b)
	}
	t.Logf("%d runs, every read whole", runs.Load())
}
