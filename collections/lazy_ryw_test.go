package collections

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Three writers on three nodes write at once, so that batches follow each
// other and reads come at every point of them, some between a Publish and
// the next batch, some in its middle. After each of its writes returns, a
// writer's handle shows it (Get, GetWithVersion, Len, a Range called then
// and a Range whose loop begins later), a reader of another node shows it
// once When().Reaches its version, and Version is at least it.
func TestLazyReadYourWritesCluster(t *testing.T) {
	tn := newTestNet(t)
	ws := []*MapWriter[string, int]{
		openMapW[string, int](t, tn.node(), "ryw"),
		openMapW[string, int](t, tn.node(), "ryw"),
		openMapW[string, int](t, tn.node(), "ryw"),
	}
	r := openMapR[string, int](t, tn.node(), "ryw")
	online(t, ws[0], ws[1], ws[2], r)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		wg   sync.WaitGroup
		bad  atomic.Value
		done atomic.Int64
	)
	fail := func(f string, a ...any) { bad.CompareAndSwap(nil, fmt.Sprintf(f, a...)) }
	const perWriter = 80
	for j, w := range ws {
		wg.Go(func() {
			mine := 0 // this writer's keys, all distinct: Len is at least it
			for i := range perWriter {
				if ctx.Err() != nil || bad.Load() != nil {
					return
				}
				k := fmt.Sprintf("w%d-%04d", j, i)
				v, err := w.Insert(ctx, k, i)
				if err != nil {
					fail("writer %d: Insert: %v", j, err)
					return
				}
				mine++
				later := w.Range(Between(k, k+"\x00"))
				if got, ok := w.Get(k); !ok || got != i {
					fail("writer %d: Get(%s) after its write at %d: %d %v", j, k, v, got, ok)
					return
				}
				if got, ver, ok := w.GetWithVersion(k); !ok || got != i || ver != v {
					fail("writer %d: GetWithVersion(%s) after its write at %d: %d %d %v", j, k, v, got, ver, ok)
					return
				}
				if hv := w.Version(); hv < v {
					fail("writer %d: Version %d after its write at %d", j, hv, v)
					return
				}
				if n := w.Len(); n < mine {
					fail("writer %d: Len %d after %d writes of its own", j, n, mine)
					return
				}
				n := 0
				for range w.Range(Between(k, k+"\x00")) {
					n++
				}
				for range later {
					n++
				}
				if n != 2 {
					fail("writer %d: the Ranges over %s after its write at %d yield %d entries, want 1 each", j, k, v, n)
					return
				}
				if i%10 == 0 {
					if err := r.When().Reaches(ctx, v); err != nil {
						fail("reader reaches %d: %v", v, err)
						return
					}
					if got, ok := r.Get(k); !ok || got != i {
						fail("reader: Get(%s) once at %d: %d %v", k, v, got, ok)
						return
					}
				}
				done.Add(1)
			}
		})
	}
	// Readers on every handle, at every moment.
	stop := make(chan struct{})
	var rg sync.WaitGroup
	for _, h := range []mapReads[string, int]{ws[0].mapReads, ws[1].mapReads, ws[2].mapReads, r.mapReads} {
		rg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				h.Len()
				for range h.Range(AtLeast("w1")) {
					break
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	rg.Wait()
	if b := bad.Load(); b != nil {
		t.Fatal(b)
	}
	if n := done.Load(); n != 3*perWriter {
		t.Fatalf("%d writes checked, want %d", n, 3*perWriter)
	}
}
