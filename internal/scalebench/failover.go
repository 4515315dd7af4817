package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// failoverRow is one failover: with n collections open on every node, the
// node leading c0 is cut off, and took is the time until a write to c0
// applies at another node.
type failoverRow struct {
	n    int
	led  int // collections the cut-off node led
	took time.Duration
	err  error
}

// failoverPhase measures a failover with one collection open, then with
// cfg.failN, each on a fresh set of handles of the same cluster.
func failoverPhase(ctx context.Context, cfg config, c *cluster) []failoverRow {
	var rows []failoverRow
	for _, n := range []int{1, cfg.failN} {
		r := failover(ctx, cfg, c, n)
		cfg.logf("failover with %d collections: %v (the node cut off led %d), err %v", n, r.took, r.led, r.err)
		rows = append(rows, r)
	}
	return rows
}

func failover(ctx context.Context, cfg config, c *cluster, n int) (r failoverRow) {
	r.n = n
	op := modes[cfg.mode](c)
	defer op.close()
	octx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	hs, err := openOnline(octx, cfg, op, n)
	if err != nil {
		r.err = err
		return r
	}
	l, err := agreedLeader(octx, c, hs, 0)
	if err != nil {
		r.err = err
		return r
	}
	for i := range n {
		if lead, ok := hs[l][i].Leader(); ok && lead == c.nets[l].ID() {
			r.led++
		}
	}
	w := hs[(l+1)%3][0]
	if _, err := w.Insert(octx, "before", 1); err != nil {
		r.err = err
		return r
	}
	c.faults[l].Isolate()
	defer c.faults[l].Heal()
	start := time.Now()
	for {
		wctx, cancel := context.WithTimeout(octx, time.Second)
		_, err := w.Insert(wctx, "after", 1)
		cancel()
		if err == nil {
			r.took = time.Since(start)
			return r
		}
		if octx.Err() != nil {
			r.err = fmt.Errorf("no write applied within %v of the cut: %w", cfg.timeout, err)
			return r
		}
	}
}

// failoverTable writes the failover rows as a markdown table.
func failoverTable(out io.Writer, rows []failoverRow) {
	fmt.Fprintln(out, "| collections open per node | the node cut off led | a write to c0 applies again after |")
	fmt.Fprintln(out, "|---|---|---|")
	for _, r := range rows {
		took := r.took.Round(time.Millisecond).String()
		if r.err != nil {
			took = "error: " + r.err.Error()
		}
		fmt.Fprintf(out, "| %d | %d | %s |\n", r.n, r.led, took)
	}
}
