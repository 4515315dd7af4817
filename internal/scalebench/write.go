package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/internal/loadgen"
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

// stat is what one write workload measured.
type stat struct{ loadgen.Stat }

func (s stat) String() string {
	t := fmt.Sprintf("%.0f/s (p50 %v, p99 %v)", s.Rate(), s.P50.Round(time.Microsecond), s.P99.Round(time.Microsecond))
	if s.Errs > 0 {
		t += fmt.Sprintf(", %d errors: %v", s.Errs, s.FirstErr)
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
	hs, err := openOnline(octx, cfg, op, n)
	if err != nil {
		return res, err
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
	res.spread = insert(ctx, cfg, func(ctx context.Context, w, i int) error {
		_, err := at[(w+i)%n].Insert(ctx, fmt.Sprintf("s%d-%d", w, i), i)
		return err
	})
	res.one = insert(ctx, cfg, func(ctx context.Context, w, i int) error {
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

// insert measures cfg.writers writers calling f.
func insert(ctx context.Context, cfg config, f func(ctx context.Context, w, i int) error) stat {
	return stat{loadgen.Measure(ctx, cfg.writers, cfg.warmup, cfg.duration, func(ctx context.Context, w, i int) (int, error) {
		return 0, f(ctx, w, i)
	})}
}

// writeTable writes the write phase as a markdown table and the ratio.
func writeTable(out io.Writer, w writeResult) {
	fmt.Fprintln(out, "| Insert, at the leader | throughput |")
	fmt.Fprintln(out, "|---|---|")
	fmt.Fprintf(out, "| %d writers over %d collections | %s |\n", w.writers, w.n, w.spread)
	fmt.Fprintf(out, "| %d writers on one collection (the others open) | %s |\n", w.writers, w.one)
	ratio := "?"
	if w.one.Rate() > 0 {
		ratio = fmt.Sprintf("%.2f×", w.spread.Rate()/w.one.Rate())
	}
	fmt.Fprintf(out, "\nspread / one: %s; collections led by node 0, 1, 2: %d, %d, %d\n",
		ratio, w.leaders[0], w.leaders[1], w.leaders[2])
}

// openOnline is openAll for a phase that needs every handle: it fails
// unless all opened and came online.
func openOnline(ctx context.Context, cfg config, op opener, n int) ([][]*collections.MapWriter[string, int], error) {
	hs, up, failed, err := openAll(ctx, cfg, op, n)
	if err != nil {
		return nil, fmt.Errorf("%d opens failed, the first: %w", failed, err)
	}
	for node := range 3 {
		if i := slices.Index(up[node], false); i >= 0 {
			return nil, fmt.Errorf("%s on node %d is not online after %v", name(i), node, cfg.timeout)
		}
	}
	return hs, nil
}
