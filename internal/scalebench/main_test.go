package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package if a run leaves a goroutine behind: every
// node, handle and connection a run starts must end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRunBrief runs one idle row of 10 collections per node and a brief
// write phase, and checks the figures are sane: everything came online,
// the idle window saw heartbeats, the goroutines came back to the bare
// nodes' after close, and the writers wrote. It asserts nothing about
// speed.
func TestRunBrief(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress strings.Builder
	cfg := config{
		ns: []int{10}, idle: 2 * time.Second, timeout: time.Minute, openConc: 32, mode: "group",
		write: true, writeN: 10, writers: 64, duration: time.Second, warmup: 200 * time.Millisecond,
		failN: 3, progress: &progress,
	}
	res, err := run(ctx, cfg)
	t.Log("\n" + progress.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.idle) != 1 {
		t.Fatalf("%d idle rows, want 1", len(res.idle))
	}
	r := res.idle[0]
	if r.err != nil {
		t.Errorf("row: %v", r.err)
	}
	if !r.complete() || r.written != 30 {
		t.Errorf("%d of 30 handles online, %d wrote their key", r.online, r.written)
	}
	if r.window < cfg.idle || r.cpu <= 0 || r.heap == 0 || r.in <= 0 || r.out <= 0 {
		t.Errorf("idle window %v: cpu %.2f%%, heap %d, %.0f/%.0f messages/s", r.window, r.cpu, r.heap, r.in, r.out)
	}
	if r.gs <= res.base {
		t.Errorf("%d goroutines with 30 handles open, %d without", r.gs, res.base)
	}
	if r.leftover != 0 {
		t.Errorf("%d goroutines above the bare nodes' after closing every handle", r.leftover)
	}
	w := res.write
	if w == nil {
		t.Fatal("no write phase")
	}
	for what, s := range map[string]stat{"spread": w.spread, "one": w.one} {
		if err := s.Sane(); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	if got := w.leaders[0] + w.leaders[1] + w.leaders[2]; got != cfg.writeN {
		t.Errorf("leaders of %d collections found, want %d", got, cfg.writeN)
	}
	if len(res.failover) != 2 {
		t.Fatalf("%d failover rows, want 2", len(res.failover))
	}
	for _, f := range res.failover {
		if f.err != nil || f.took <= 0 || f.led < 1 {
			t.Errorf("failover with %d collections: took %v, the node cut off led %d: %v", f.n, f.took, f.led, f.err)
		}
	}
	var tb strings.Builder
	idleTable(&tb, res.idle)
	writeTable(&tb, *w)
	t.Log("\n" + tb.String())
	if !strings.Contains(tb.String(), "| 10 | all 30 in ") {
		t.Errorf("the idle table lacks the row of 10:\n%s", tb.String())
	}
}
