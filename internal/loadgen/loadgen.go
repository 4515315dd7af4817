// Package loadgen runs workers against an operation for a measured window
// and sums up what they did, for the benchmark programs (kvbench,
// scalebench).
package loadgen

import (
	"context"
	"fmt"
	"slices"
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
// worker owns its own slice of latencies until they are merged after all
// have ended.
func Measure(ctx context.Context, conc int, warm, dur time.Duration, f Op) Stat {
	start := time.Now()
	from, end := start.Add(warm), start.Add(warm+dur)
	type result struct {
		lat       []time.Duration
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
				r.lat = append(r.lat, time.Since(t0))
				r.retries += int64(n)
			}
		})
	}
	wg.Wait()
	s := Stat{Window: dur}
	var all []time.Duration
	for _, r := range res {
		s.Window = max(s.Window, r.lastStart.Sub(from))
		all = append(all, r.lat...)
		s.Errs += r.errs
		s.Retries += r.retries
		if s.FirstErr == nil {
			s.FirstErr = r.firstErr
		}
	}
	s.Ops = len(all)
	if len(all) > 0 {
		slices.Sort(all)
		s.P50 = all[len(all)/2]
		s.P99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return s
}
