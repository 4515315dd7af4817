package main

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
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

	// Per operation, warm-up included (mosaik only: NATS KV's servers
	// share the process): the messages the nodes sent, and the CPU time
	// of the whole process, servers included.
	msgsPerOp  float64
	cpuPerOpUs float64
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
// and counts what started after warm. Until one operation started after
// warm, they go on past dur (an operation slower than the whole window,
// on a loaded machine), and the window extends to the last start. Each
// worker owns its own slice of latencies until they are merged after all
// have ended.
func measure(ctx context.Context, conc int, warm, dur time.Duration, f op) stat {
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
	s := stat{window: dur}
	var all []time.Duration
	for _, r := range res {
		s.window = max(s.window, r.lastStart.Sub(from))
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
