package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/internal/loadgen"
)

// config selects what a run measures.
type config struct {
	ns       []int         // collections per node, one idle row each
	idle     time.Duration // idle window of a row
	timeout  time.Duration // the longest a row waits for its handles to come online
	openConc int           // collections a node opens at a time
	mode     string        // a key of modes

	write    bool          // run the write phase
	writeN   int           // collections of the write phase
	writers  int           // concurrent writers
	duration time.Duration // measured window of each write workload
	warmup   time.Duration // before the window, not counted

	failN int // with this many collections, and with one, cut off the leader of c0 and time its failover; 0: none

	profileN         int    // the row the profiles are of
	cpuProfile       string // file for the CPU profile of that row's idle window, or ""
	goroutineProfile string // file for its goroutines, grouped by stack, or ""
	subjects         bool   // after that row's idle window, count its messages by subject

	progress io.Writer // a line per step as it ends; may be nil
}

// results is what a run measured. base is the goroutines of the three
// bare nodes, before any collection opened.
type results struct {
	base     int
	idle     []idleRow
	write    *writeResult
	failover []failoverRow
}

// idleRow is one N of the idle table.
type idleRow struct {
	n        int
	online   int                // handles online, of 3n
	opened   int                // handles opened (the others failed or were not tried in time)
	failed   int                // opens that returned an error
	toOnline time.Duration      // from the first open to the last handle online (or to the timeout)
	written  int                // handles that wrote their key
	window   time.Duration      // the idle window as measured
	cpu      float64            // % of one core over the window; <0 when unknown
	heap     uint64             // HeapAlloc after a GC at the end of the window
	gs       int                // goroutines then
	in, out  float64            // server messages per second over the window
	closed   time.Duration      // time to close every handle
	leftover int                // goroutines above the bare nodes' a minute after close
	subjects map[string]float64 // messages per second by kind of subject, when counted
	err      error              // what stopped the row early, if anything
}

func (r idleRow) complete() bool { return r.online == 3*r.n }

func (c config) logf(format string, args ...any) {
	if c.progress != nil {
		fmt.Fprintf(c.progress, format+"\n", args...)
	}
}

// run starts the three nodes, measures an idle row for each N and then
// the write phase, and closes everything. A row that cannot finish is
// kept with what it reached and the run goes on; an error ends the run
// (with the rows measured so far) only when the nodes themselves fail or
// ctx ends.
func run(ctx context.Context, cfg config) (results, error) {
	var res results
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	c, err := startCluster(sctx)
	cancel()
	if err != nil {
		return res, err
	}
	defer c.close()
	res.base = runtime.NumGoroutine()
	cfg.logf("three nodes up: %d goroutines", res.base)
	for _, n := range cfg.ns {
		r := idleMeasure(ctx, cfg, c, n, res.base)
		res.idle = append(res.idle, r)
		cfg.logf("%s", r.progress())
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	if cfg.write {
		w, err := writePhase(ctx, cfg, c)
		if err != nil {
			return res, fmt.Errorf("write: %w", err)
		}
		res.write = &w
		cfg.logf("write: %d collections %s; one %s", w.n, w.spread, w.one)
	}
	if cfg.failN > 0 {
		res.failover = failoverPhase(ctx, cfg, c)
	}
	return res, nil
}

// openAll opens name(0..n-1) on every node, cfg.openConc at a time per
// node, then waits until each handle is online or ctx ends; it opens no
// more once ctx ended. hs[node][i] is nil where the open failed or was
// not tried; up[node][i] says whether it came online.
// failed counts the opens that failed, and first is the first of their
// errors. The opener owns the handles.
func openAll(ctx context.Context, cfg config, op opener, n int) (hs [][]*collections.MapWriter[string, int], up [][]bool, failed int, first error) {
	var mu sync.Mutex
	hs = make([][]*collections.MapWriter[string, int], 3)
	up = make([][]bool, 3)
	var wg sync.WaitGroup
	for node := range 3 {
		hs[node] = make([]*collections.MapWriter[string, int], n)
		up[node] = make([]bool, n)
		wg.Go(func() {
			parallel(n, cfg.openConc, func(i int) {
				if ctx.Err() != nil {
					return // out of time: not opened, not failed
				}
				w, err := op.open(node, name(i))
				if err != nil {
					mu.Lock()
					if failed++; first == nil {
						first = fmt.Errorf("node %d %s: %w", node, name(i), err)
					}
					mu.Unlock()
					return
				}
				hs[node][i] = w
			})
		})
	}
	wg.Wait()
	for node := range 3 {
		wg.Go(func() {
			parallel(n, cfg.openConc, func(i int) {
				if w := hs[node][i]; w != nil {
					up[node][i] = w.When().Online(ctx) == nil
				}
			})
		})
	}
	wg.Wait()
	return hs, up, failed, first
}

func name(i int) string { return fmt.Sprintf("c%d", i) }

// idleMeasure measures the row of n collections per node. It always closes
// what it opened.
func idleMeasure(ctx context.Context, cfg config, c *cluster, n, base int) (r idleRow) {
	r = idleRow{n: n, cpu: -1}
	op := modes[cfg.mode](c)
	defer func() {
		began := time.Now()
		if err := op.close(); err != nil && r.err == nil {
			r.err = fmt.Errorf("close: %w", err)
		}
		r.closed = time.Since(began)
		r.leftover = settle(ctx, base, time.Minute)
	}()
	began := time.Now()
	octx, cancel := context.WithTimeout(ctx, cfg.timeout)
	hs, up, failed, err := openAll(octx, cfg, op, n)
	cancel()
	r.toOnline = time.Since(began)
	if r.failed = failed; err != nil {
		r.err = fmt.Errorf("%d opens failed, the first: %w", failed, err)
	}
	for node := range 3 {
		for i := range n {
			if hs[node][i] != nil {
				r.opened++
			}
			if up[node][i] {
				r.online++
			}
		}
	}
	cfg.logf("N=%d: %d of %d handles online after %v, %d opened, %d opens failed", n, r.online, 3*n, r.toOnline.Round(time.Millisecond), r.opened, failed)
	// One key into each collection from each node that holds it online.
	var written atomic.Int64
	wctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	var wg sync.WaitGroup
	for node := range 3 {
		wg.Go(func() {
			parallel(n, cfg.openConc, func(i int) {
				if up[node][i] {
					if _, err := hs[node][i].Insert(wctx, fmt.Sprintf("node%d", node), i); err == nil {
						written.Add(1)
					}
				}
			})
		})
	}
	wg.Wait()
	cancel()
	r.written = int(written.Load())
	if ctx.Err() != nil {
		return r
	}
	r.measureIdle(ctx, cfg, c)
	if cfg.subjects && n == cfg.profileN {
		if r.subjects, err = c.bySubject(ctx, min(cfg.idle, 5*time.Second)); err != nil {
			r.err = errors.Join(r.err, fmt.Errorf("by subject: %w", err))
		}
	}
	return r
}

// measureIdle fills the idle columns over one window of cfg.idle.
func (r *idleRow) measureIdle(ctx context.Context, cfg config, c *cluster) {
	profile := r.n == cfg.profileN
	runtime.GC()
	if profile && cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			cfg.logf("cpu profile: %v", err)
		} else {
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	cpu0, cpuOK := loadgen.CPUTime()
	m0, err0 := c.messages()
	t0 := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(cfg.idle):
	}
	cpu1, _ := loadgen.CPUTime()
	m1, err1 := c.messages()
	r.window = time.Since(t0)
	if cpuOK {
		r.cpu = 100 * float64(cpu1-cpu0) / float64(r.window)
	}
	if err := errors.Join(err0, err1); err != nil {
		r.err = errors.Join(r.err, fmt.Errorf("varz: %w", err))
	} else {
		r.in = float64(m1.in-m0.in) / r.window.Seconds()
		r.out = float64(m1.out-m0.out) / r.window.Seconds()
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.heap = ms.HeapAlloc
	r.gs = runtime.NumGoroutine()
	if profile && cfg.goroutineProfile != "" {
		if f, err := os.Create(cfg.goroutineProfile); err != nil {
			cfg.logf("goroutine profile: %v", err)
		} else {
			pprof.Lookup("goroutine").WriteTo(f, 1)
			f.Close()
		}
	}
}

// settle waits up to d until no more goroutines run than base, and
// returns how many more still do.
func settle(ctx context.Context, base int, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		extra := runtime.NumGoroutine() - base
		if extra <= 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return max(extra, 0)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r idleRow) progress() string {
	s := fmt.Sprintf("N=%d: %d/%d online in %v, %d written; idle %v: cpu %.1f%%, heap %.0f MB, %d goroutines, %.0f msgs/s in, %.0f out; closed in %v, %d goroutines left",
		r.n, r.online, 3*r.n, r.toOnline.Round(time.Millisecond), r.written, r.window.Round(time.Millisecond),
		r.cpu, mb(r.heap), r.gs, r.in, r.out, r.closed.Round(time.Millisecond), r.leftover)
	if r.err != nil {
		s += fmt.Sprintf(" (error: %v)", r.err)
	}
	return s
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

// idleTable writes the idle rows as a markdown table.
func idleTable(out io.Writer, rs []idleRow) {
	fmt.Fprintln(out, "| N per node | online | idle CPU | heap | goroutines | messages/s while idle (in / out) | closed in |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|")
	for _, r := range rs {
		online := fmt.Sprintf("all %d in %.1f s", 3*r.n, r.toOnline.Seconds())
		if !r.complete() {
			online = fmt.Sprintf("%d of %d after %.0f s (%d opened, %d opens failed)",
				r.online, 3*r.n, r.toOnline.Seconds(), r.opened, r.failed)
		}
		cpu := "?"
		if r.cpu >= 0 {
			cpu = fmt.Sprintf("%.1f%% of one core", r.cpu)
		}
		closed := fmt.Sprintf("%.1f s", r.closed.Seconds())
		if r.leftover > 0 {
			closed += fmt.Sprintf(", %d goroutines left", r.leftover)
		}
		fmt.Fprintf(out, "| %d | %s | %s | %.0f MB | %d | %.0f / %.0f | %s |\n",
			r.n, online, cpu, mb(r.heap), r.gs, r.in, r.out, closed)
	}
	for _, r := range rs {
		if r.err != nil {
			fmt.Fprintf(out, "\nN=%d: %v\n", r.n, r.err)
		}
	}
	for _, r := range rs {
		if r.subjects == nil {
			continue
		}
		kinds := slices.Collect(maps.Keys(r.subjects))
		slices.SortFunc(kinds, func(a, b string) int { return cmp.Compare(r.subjects[b], r.subjects[a]) })
		fmt.Fprintf(out, "\nN=%d, messages/s published while idle, by subject:", r.n)
		for _, k := range kinds {
			fmt.Fprintf(out, " %s %.0f;", k, r.subjects[k])
		}
		fmt.Fprintln(out)
	}
}
