// Package loadgen runs workers against an operation for a measured window
// and sums up what they did, for the benchmark programs (kvbench,
// scalebench).
package loadgen

import (
	"context"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// Stat is what one workload measured: operations that started within the
// measured window and ended, their latencies, and the errors.
type Stat struct {
	Ops      int
	Errs     int
	FirstErr error
	Window   time.Duration
	P50, P99 time.Duration
	Retries  int64 // attempts that did not apply (a compare-and-swap's), as the Op said
}

// Sane reports what is wrong with s as a run's result: no operations,
// errors, or percentiles out of order. It says nothing about speed.
func (s Stat) Sane() error {
	if s.Ops == 0 || s.Errs > 0 || s.P50 <= 0 || s.P99 < s.P50 {
		return fmt.Errorf("%d ops, %d errors (%v), p50 %v, p99 %v", s.Ops, s.Errs, s.FirstErr, s.P50, s.P99)
	}
	return nil
}

// Rate is the operations per second over the window.
func (s Stat) Rate() float64 {
	if s.Window <= 0 {
		return 0
	}
	return float64(s.Ops) / s.Window.Seconds()
}

// Op is one operation of worker w, its i-th. It returns how many times it
// had to retry (a compare-and-swap), or an error.
type Op func(ctx context.Context, w, i int) (retries int, err error)

// Measure runs conc workers calling f back to back for warm and then dur,
// and counts what started after warm. Until one operation started after
// warm, they go on past dur (an operation slower than the whole window,
// on a loaded machine), and the window extends to the last start. Each
// worker counts its own latencies until they are merged after all have
// ended.
func Measure(ctx context.Context, conc int, warm, dur time.Duration, f Op) Stat {
	start := time.Now()
	from, end := start.Add(warm), start.Add(warm+dur)
	type result struct {
		lat       hist
		errs      int
		firstErr  error
		retries   int64
		lastStart time.Time
	}
	res := make([]result, conc)
	var started atomic.Int64 // operations started after warm
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			r := &res[w]
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if !t0.Before(end) && started.Load() > 0 {
					return
				}
				if !t0.Before(from) {
					started.Add(1)
				}
				n, err := f(ctx, w, i)
				if t0.Before(from) {
					continue
				}
				r.lastStart = t0
				if err != nil {
					r.errs++
					if r.firstErr == nil {
						r.firstErr = err
					}
					continue
				}
				r.lat.add(time.Since(t0))
				r.retries += int64(n)
			}
		})
	}
	wg.Wait()
	s := Stat{Window: dur}
	var all hist
	for _, r := range res {
		s.Window = max(s.Window, r.lastStart.Sub(from))
		all.merge(&r.lat)
		s.Errs += r.errs
		s.Retries += r.retries
		if s.FirstErr == nil {
			s.FirstErr = r.firstErr
		}
	}
	s.Ops = all.n
	if all.n > 0 {
		s.P50 = all.at(all.n / 2)
		s.P99 = all.at(min(all.n-1, all.n*99/100))
	}
	return s
}

// hist counts latencies in buckets at most 1/128 of their lower bound
// wide, so a percentile read from it is within 0.4% of the exact one, in a
// few KB however many operations a worker does. Keeping every latency in
// one growing slice took hundreds of MB at millions of local reads per
// second, and growing it (one copy the runtime cannot interrupt, which
// also started a garbage collection waiting on that goroutine) froze the
// whole process for 0.3-1 s: long enough for Raft's leaders to lose
// their followers in the middle of a read-only workload.
type hist struct {
	counts []uint64 // by bucket (see bucket), grown as needed
	n      int
}

// subBits sets the precision: 2^subBits buckets per power of two.
const subBits = 7

// bucket returns d's bucket: below 2^subBits ns each value has its own,
// above each power of two is cut into 2^subBits equal parts.
func bucket(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - 1 - subBits
	return (shift+1)<<subBits + int(v>>shift)&(1<<subBits-1)
}

// middle returns the middle of bucket i.
func middle(i int) time.Duration {
	if i < 1<<subBits {
		return time.Duration(i)
	}
	shift := i>>subBits - 1
	low := uint64(1<<subBits+i&(1<<subBits-1)) << shift
	return time.Duration(low + (uint64(1)<<shift)/2)
}

func (h *hist) add(d time.Duration) {
	i := bucket(d)
	if i >= len(h.counts) {
		h.counts = append(h.counts, make([]uint64, i+1-len(h.counts))...)
	}
	h.counts[i]++
	h.n++
}

func (h *hist) merge(o *hist) {
	if len(o.counts) > len(h.counts) {
		h.counts = append(h.counts, make([]uint64, len(o.counts)-len(h.counts))...)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// at returns the k-th smallest latency counted (from 0), as its bucket's
// middle.
func (h *hist) at(k int) time.Duration {
	seen := uint64(0)
	for i, c := range h.counts {
		seen += c
		if seen > uint64(k) {
			return middle(i)
		}
	}
	return 0
}
