package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// config selects what a run measures.
type config struct {
	duration  time.Duration // measured window of each workload
	warmup    time.Duration // run before the window, not counted
	modes     []string      // "memory", "fsync"
	workloads []string      // names from workloads
	nats      bool          // also measure NATS JetStream KV
	joinKeys  int           // keys a new member catches up
	progress  io.Writer     // a line per workload as it ends; may be nil
}

type workload struct {
	name     string
	label    string
	conc     int
	atLeader bool
}

var workloads = []workload{
	{"put1f", "put, concurrency 1, at a follower", 1, false},
	{"put64f", "put, concurrency 64, at a follower", 64, false},
	{"put1l", "put, concurrency 1, at the leader", 1, true},
	{"put64l", "put, concurrency 64, at the leader", 64, true},
	{"cas", "compare-and-swap, 8 workers on 16 hot keys, at a follower", 8, false},
	{"read", "linearizable read (Sync, then Get), concurrency 1, at a follower", 1, false},
	{"readw", "linearizable read by a no-op write (Remove of a missing key, then Get), concurrency 1, at a follower", 1, false},
	{"get", "local read (Get, no barrier), concurrency 1, at a follower", 1, false},
	{"join", "a new member holds %s keys", 0, false},
}

func workloadNames() []string {
	var ns []string
	for _, w := range workloads {
		ns = append(ns, w.name)
	}
	return ns
}

// result is one row: a workload in one mode, for mosaik and NATS KV.
type result struct {
	w        workload
	mode     string
	ours     stat
	theirs   *stat // nil when not measured
	join     time.Duration
	joinNATS time.Duration
	joinN    int
}

// run measures every selected workload in every selected mode. Each mode
// gets a fresh cluster, nodes and bucket in temporary directories, all
// removed before the next mode starts.
func run(ctx context.Context, cfg config) ([]result, error) {
	var out []result
	for _, mode := range cfg.modes {
		rs, err := runMode(ctx, cfg, mode)
		out = append(out, rs...)
		if err != nil {
			return out, fmt.Errorf("%s: %w", mode, err)
		}
	}
	return out, nil
}

func runMode(ctx context.Context, cfg config, mode string) ([]result, error) {
	began := time.Now()
	fsync := mode == "fsync"
	dir, err := os.MkdirTemp("", "kvbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := startCluster(sctx, dir, fsync)
	if err != nil {
		return nil, err
	}
	defer c.Shutdown()
	// Both start at once: only the setup is shorter for it.
	join := slices.Contains(cfg.workloads, "join")
	var ms *mosaikSys
	var ns *natsSys
	var merr, nerr error
	var wg sync.WaitGroup
	wg.Go(func() { ms, merr = startMosaik(sctx, c, dir, fsync, join) })
	if cfg.nats {
		wg.Go(func() { ns, nerr = startNATS(sctx, c, fsync, join) })
	}
	wg.Wait()
	if ms != nil {
		defer ms.close()
	}
	if ns != nil {
		defer ns.close()
	}
	if err := errors.Join(merr, nerr); err != nil {
		return nil, err
	}
	if cfg.progress != nil {
		fmt.Fprintf(cfg.progress, "%-7s setup  %v\n", mode, time.Since(began).Round(time.Millisecond))
	}
	var out []result
	for _, w := range workloads {
		if !slices.Contains(cfg.workloads, w.name) {
			continue
		}
		r := result{w: w, mode: mode}
		// Each workload starts after a full collection, as go test -bench
		// starts each benchmark: the heap the earlier workloads left (by
		// the join, a million keys on each of three replicas and in NATS
		// KV) is not marked during this one's measurement unless this
		// one's own allocations call for it.
		runtime.GC()
		wbegan := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 2*(cfg.warmup+cfg.duration)+time.Minute)
		err := runWorkload(wctx, cfg, c, dir, fsync, ms, ns, &r)
		cancel()
		if err != nil {
			return out, fmt.Errorf("%s: %w", w.name, err)
		}
		out = append(out, r)
		if cfg.progress != nil {
			fmt.Fprintf(cfg.progress, "%s  (%v)\n", progressLine(r), time.Since(wbegan).Round(time.Millisecond))
		}
	}
	return out, nil
}

func runWorkload(ctx context.Context, cfg config, c *cluster, dir string, fsync bool, ms *mosaikSys, ns *natsSys, r *result) error {
	w := r.w
	if w.name == "join" {
		r.joinN = cfg.joinKeys
		srv := len(c.Servers)
		if _, err := c.addPlain(ctx); err != nil {
			return err
		}
		d, err := ms.join(ctx, c, srv, dir, fsync, cfg.joinKeys)
		if err != nil {
			return err
		}
		r.join = d
		if ns != nil {
			if r.joinNATS, err = ns.join(ctx, srv, cfg.joinKeys); err != nil {
				return err
			}
		}
		return nil
	}
	m, l, err := ms.client(ctx, w.atLeader)
	if err != nil {
		return err
	}
	var f op
	switch {
	case strings.HasPrefix(w.name, "put"):
		f = ms.put(m, w.name)
	case w.name == "cas":
		f, err = ms.cas(ctx, m)
	case w.name == "read":
		f, err = ms.read(ctx, m)
	case w.name == "readw":
		f, err = ms.readWrite(ctx, m)
	case w.name == "get":
		f, err = ms.get(ctx, m)
	}
	if err != nil {
		return err
	}
	r.ours = ms.costed(f, func(f op) stat { return measure(ctx, w.conc, cfg.warmup, cfg.duration, f) })
	if now, err := ms.leader(ctx); err != nil || now != l {
		r.ours.moved = true
	}
	if ns == nil || strings.HasPrefix(w.name, "read") { // NATS KV has no linearizable read
		return nil
	}
	kv, l, err := ns.client(ctx, w.atLeader)
	if err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(w.name, "put"):
		f = ns.put(kv, w.name)
	case w.name == "cas":
		f, err = ns.cas(ctx, kv)
	case w.name == "get":
		f, err = ns.get(ctx, kv)
	}
	if err != nil {
		return err
	}
	s := measure(ctx, w.conc, cfg.warmup, cfg.duration, f)
	if now, err := ns.leader(ctx, "bench"); err != nil || now != l {
		s.moved = true
	}
	r.theirs = &s
	return nil
}

func progressLine(r result) string {
	if r.w.name == "join" {
		s := fmt.Sprintf("%-7s %-6s mosaik %v", r.mode, r.w.name, r.join.Round(time.Millisecond))
		if r.joinNATS > 0 {
			s += fmt.Sprintf("  nats %v", r.joinNATS.Round(time.Millisecond))
		}
		return s
	}
	s := fmt.Sprintf("%-7s %-6s mosaik %s, %.1f messages and %.0f µs CPU per op", r.mode, r.w.name, cell(r.ours), r.ours.msgsPerOp, r.ours.cpuPerOpUs)
	if r.theirs != nil {
		s += "  nats " + cell(*r.theirs)
	}
	return s
}

// table writes the results as a markdown table in the README's style.
func table(out io.Writer, rs []result, nats bool) {
	if nats {
		fmt.Fprintln(out, "| workload | this project | NATS KV R3 | ratio to NATS KV |")
		fmt.Fprintln(out, "|---|---|---|---|")
	} else {
		fmt.Fprintln(out, "| workload | this project |")
		fmt.Fprintln(out, "|---|---|")
	}
	for _, r := range rs {
		mode := "in memory"
		if r.mode == "fsync" {
			mode = "fsync"
		}
		label := r.w.label
		var ours, theirs, ratio string
		if r.w.name == "join" {
			label = fmt.Sprintf(label, commas(float64(r.joinN)))
			ours = fmt.Sprintf("%.2f s (%s keys/s)", r.join.Seconds(), commas(float64(r.joinN)/r.join.Seconds()))
			theirs, ratio = "—", "—"
			if r.joinNATS > 0 {
				theirs = fmt.Sprintf("%.2f s (a new client watching every key)", r.joinNATS.Seconds())
				ratio = ratioText(r.joinNATS.Seconds() / r.join.Seconds())
			}
		} else {
			ours = cell(r.ours)
			theirs, ratio = "—", "—"
			if r.theirs != nil {
				theirs = cell(*r.theirs)
				if t := r.theirs.Rate(); t > 0 {
					ratio = ratioText(r.ours.Rate() / t)
				}
			}
		}
		if nats {
			fmt.Fprintf(out, "| %s, %s | %s | %s | %s |\n", label, mode, ours, theirs, ratio)
		} else {
			fmt.Fprintf(out, "| %s, %s | %s |\n", label, mode, ours)
		}
	}
}

// cell is "1,450/s (p50 590 µs, p99 2.1 ms)", with the retries of a
// compare-and-swap and the errors when there were any.
func cell(s stat) string {
	c := fmt.Sprintf("%s/s (p50 %s, p99 %s", commas(s.Rate()), lat(s.P50), lat(s.P99))
	if s.Retries > 0 {
		c += fmt.Sprintf(", %.2f retries per op", float64(s.Retries)/float64(max(s.Ops, 1)))
	}
	if s.Errs > 0 {
		c += fmt.Sprintf(", %d errors: %v", s.Errs, s.FirstErr)
	}
	if s.moved {
		c += ", the leader moved during the run"
	}
	return c + ")"
}

// ratioText is 0.37× or, from 10 on, 164×.
func ratioText(x float64) string {
	if x >= 10 {
		return commas(x) + "×"
	}
	return fmt.Sprintf("%.2f×", x)
}

func lat(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%d ns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
}

// commas rounds x to three significant digits (at least units) and groups
// the thousands: 1,450; 23,000; 116,000.
func commas(x float64) string {
	n := int64(x + 0.5)
	q := int64(1)
	for m := n; m >= 1000; m /= 10 {
		q *= 10
	}
	n = (n + q/2) / q * q
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	return b.String()
}
