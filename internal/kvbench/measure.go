package main

import (
	"context"
	"slices"
	"sync"
	"time"
)

// stat is what one workload measured: operations that started within the
// measured window and ended, their latencies, and the errors.
type stat struct {
	ops      int
	errs     int
	firstErr error
	window   time.Duration
	p50, p99 time.Duration
	retries  int64 // compare-and-swap attempts that did not apply
	moved    bool  // the leader was another node after the run
}

func (s stat) rate() float64 {
	if s.window <= 0 {
		return 0
	}
	return float64(s.ops) / s.window.Seconds()
}

// op is one operation of worker w, its i-th. It returns how many times it
// had to retry (compare-and-swap), or an error.
type op func(ctx context.Context, w, i int) (retries int, err error)

// measure runs conc workers calling f back to back for warm and then dur,
// and counts what started after warm. Each worker owns its own slice of
// latencies until they are merged after all have ended.
func measure(ctx context.Context, conc int, warm, dur time.Duration, f op) stat {
	start := time.Now()
	from, end := start.Add(warm), start.Add(warm+dur)
	type result struct {
		lat      []time.Duration
		errs     int
		firstErr error
		retries  int64
	}
	res := make([]result, conc)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			r := &res[w]
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				n, err := f(ctx, w, i)
				if t0.Before(from) {
					continue
				}
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
	s := stat{window: dur}
	var all []time.Duration
	for _, r := range res {
		all = append(all, r.lat...)
		s.errs += r.errs
		s.retries += r.retries
		if s.firstErr == nil {
			s.firstErr = r.firstErr
		}
	}
	s.ops = len(all)
	if len(all) > 0 {
		slices.Sort(all)
		s.p50 = all[len(all)/2]
		s.p99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return s
}
