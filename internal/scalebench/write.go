package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/mosaik-go/mosaik/collections"
)

// writeResult is the write phase: the same writers spread over n
// collections, and on one of them.
type writeResult struct {
	n       int
	writers int
	leaders [3]int // collections each node leads
	spread  stat
	one     stat
}

// stat is the Inserts that started within a measured window and ended.
type stat struct {
	ops      int
	errs     int
	firstErr error
	window   time.Duration
	p50, p99 time.Duration
}

func (s stat) rate() float64 { return float64(s.ops) / s.window.Seconds() }

func (s stat) String() string {
	t := fmt.Sprintf("%.0f/s (p50 %v, p99 %v)", s.rate(), s.p50.Round(time.Microsecond), s.p99.Round(time.Microsecond))
	if s.errs > 0 {
		t += fmt.Sprintf(", %d errors: %v", s.errs, s.firstErr)
	}
	return t
}

// writePhase opens cfg.writeN collections on every node and measures
// Insert spread over them, each at its leader, then on the first one
// alone, at its leader, while the others stay open.
func writePhase(ctx context.Context, cfg config, c *cluster) (writeResult, error) {
	n := cfg.writeN
	res := writeResult{n: n, writers: cfg.writers}
	op := modes[cfg.mode](c)
	defer op.close()
	octx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	hs, up, err := openAll(octx, cfg, op, n)
	if err != nil {
		return res, err
	}
	for node := range 3 {
		if i := slices.Index(up[node], false); i >= 0 {
			return res, fmt.Errorf("%s on node %d is not online after %v", name(i), node, cfg.timeout)
		}
	}
	// at[i] is collection i's handle on the node all three agree leads it.
	at := make([]*collections.MapWriter[string, int], n)
	for i := range n {
		l, err := agreedLeader(octx, c, hs, i)
		if err != nil {
			return res, err
		}
		at[i] = hs[l][i]
		res.leaders[l]++
	}
	cfg.logf("write: %d collections online; leaders per node %v", n, res.leaders)
	res.spread = measure(ctx, cfg.writers, cfg.warmup, cfg.duration, func(ctx context.Context, w, i int) error {
		_, err := at[(w+i)%n].Insert(ctx, fmt.Sprintf("s%d-%d", w, i), i)
		return err
	})
	res.one = measure(ctx, cfg.writers, cfg.warmup, cfg.duration, func(ctx context.Context, w, i int) error {
		_, err := at[0].Insert(ctx, fmt.Sprintf("o%d-%d", w, i), i)
		return err
	})
	return res, ctx.Err()
}

// agreedLeader returns the node the three handles of collection i agree
// leads it.
func agreedLeader(ctx context.Context, c *cluster, hs [][]*collections.MapWriter[string, int], i int) (int, error) {
	for {
		if l, ok := hs[0][i].Leader(); ok {
			agree := true
			for node := 1; node < 3; node++ {
				if m, ok := hs[node][i].Leader(); !ok || m != l {
					agree = false
				}
			}
			for node, nt := range c.nets {
				if agree && nt.ID() == l {
					return node, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return 0, errors.New("no agreed leader of " + name(i))
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// measure runs conc writers calling f back to back for warm and then dur,
// and counts the calls that started after warm and before the end. Each
// writer owns its latencies until all have ended.
func measure(ctx context.Context, conc int, warm, dur time.Duration, f func(ctx context.Context, w, i int) error) stat {
	from := time.Now().Add(warm)
	end := from.Add(dur)
	type part struct {
		lat      []time.Duration
		errs     int
		firstErr error
	}
	parts := make([]part, conc)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			p := &parts[w]
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				err := f(ctx, w, i)
				switch {
				case t0.Before(from):
				case err != nil:
					p.errs++
					if p.firstErr == nil {
						p.firstErr = err
					}
				default:
					p.lat = append(p.lat, time.Since(t0))
				}
			}
		})
	}
	wg.Wait()
	s := stat{window: dur}
	var all []time.Duration
	for _, p := range parts {
		all = append(all, p.lat...)
		s.errs += p.errs
		if s.firstErr == nil {
			s.firstErr = p.firstErr
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

// writeTable writes the write phase as a markdown table and the ratio.
func writeTable(out io.Writer, w writeResult) {
	fmt.Fprintln(out, "| Insert, at the leader | throughput |")
	fmt.Fprintln(out, "|---|---|")
	fmt.Fprintf(out, "| %d writers over %d collections | %s |\n", w.writers, w.n, w.spread)
	fmt.Fprintf(out, "| %d writers on one collection (the others open) | %s |\n", w.writers, w.one)
	ratio := "?"
	if w.one.rate() > 0 {
		ratio = fmt.Sprintf("%.2f×", w.spread.rate()/w.one.rate())
	}
	fmt.Fprintf(out, "\nspread / one: %s; collections led by node 0, 1, 2: %d, %d, %d\n",
		ratio, w.leaders[0], w.leaders[1], w.leaders[2])
}
