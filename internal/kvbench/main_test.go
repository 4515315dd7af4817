package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package if a run leaves a goroutine behind: every
// server, node, handle and connection a mode starts must be closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRunBrief runs every workload in both modes, against NATS KV too,
// for a moment each, and checks that each did something and nothing
// failed. It asserts nothing about speed.
func TestRunBrief(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var progress strings.Builder
	cfg := config{
		duration: 150 * time.Millisecond, warmup: 20 * time.Millisecond,
		modes: []string{"memory", "fsync"}, workloads: workloadNames(),
		nats: true, joinKeys: 2000, progress: &progress,
	}
	rs, err := run(ctx, cfg)
	t.Log("\n" + progress.String())
	if err != nil {
		t.Fatal(err)
	}
	if want := len(cfg.modes) * len(workloads); len(rs) != want {
		t.Fatalf("%d results, want %d", len(rs), want)
	}
	check := func(what string, s stat) {
		if err := s.Sane(); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	for _, r := range rs {
		name := r.mode + " " + r.w.name
		if r.w.name == "join" {
			if r.join <= 0 || r.joinNATS <= 0 || r.joinN != cfg.joinKeys {
				t.Errorf("%s: mosaik %v, nats %v, %d keys", name, r.join, r.joinNATS, r.joinN)
			}
			continue
		}
		check(name+" mosaik", r.ours)
		if strings.HasPrefix(r.w.name, "read") {
			continue
		}
		if r.theirs == nil {
			t.Errorf("%s: NATS KV not measured", name)
			continue
		}
		check(name+" nats", *r.theirs)
	}
	var tb strings.Builder
	table(&tb, rs, true)
	if got := strings.Count(tb.String(), "\n"); got != len(rs)+2 {
		t.Errorf("the table has %d lines for %d results:\n%s", got, len(rs), tb.String())
	}
}
