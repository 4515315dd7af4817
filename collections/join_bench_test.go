package collections

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/groups"
)

// BenchmarkMapJoin100k times a reader joining a map of 100,000 entries
// written on three nodes, at the default timings, in three phases: until
// the leader has it in its configuration, until the first of the leader's
// state reaches it (a log entry or a snapshot), and until it holds the
// writer's version. "log" keeps the default snapshot threshold (the
// reader replays the log); "snapshot" compacts the log, so the reader
// installs a snapshot. MOSAIK_JOIN_LOG=file writes every member's debug
// log there (Raft's included), with a line where each reader starts and
// ends, to see where the time goes.
func BenchmarkMapJoin100k(b *testing.B) {
	for _, tc := range []struct {
		name string
		cfg  func(*groups.Config)
	}{
		{"log", func(*groups.Config) {}},
		{"snapshot", func(c *groups.Config) {
			c.SnapshotThreshold = joinSnapshotThreshold
			c.TrailingLogs = 4
			c.SnapshotInterval = 50 * time.Millisecond
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := &groups.Config{BootstrapDelay: 300 * time.Millisecond}
			if f := os.Getenv("MOSAIK_JOIN_LOG"); f != "" {
				fh, err := os.Create(f + "." + tc.name)
				if err != nil {
					b.Fatal(err)
				}
				defer fh.Close()
				cfg.Logger = slog.New(slog.NewTextHandler(fh, &slog.HandlerOptions{Level: slog.LevelDebug - 4}))
			}
			tc.cfg(cfg)
			benchJoin(b, 100_000, cfg.Logger, []Option{WithGroupConfig(cfg)})
		})
	}
}

// joinSnapshotThreshold makes the writers compact their logs of 100,000
// entries (about 25 log entries) without taking another snapshot while a
// reader joins.
const joinSnapshotThreshold = 16

// settleSnapshots waits until no writer is due a snapshot soon, writing
// (an entry rewritten with its own value) to make one due where needed,
// so that snapshots taken meanwhile do not share the CPU with the timed
// catch-up. A writer that never snapshots (the default threshold) is
// left as it is.
func settleSnapshots(b *testing.B, ctx context.Context, ws []*MapWriter[string, []byte]) {
	for {
		due := false
		for _, w := range ws {
			st := w.g.Status()
			if st.LogApplied > joinSnapshotThreshold && st.LogApplied < 8192 && st.LogApplied-st.LogSnapshot >= joinSnapshotThreshold/2 {
				due = true
			}
		}
		if !due {
			return
		}
		if _, err := ws[0].Insert(ctx, benchKey(0), benchValue(0)); err != nil {
			b.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func benchJoin(b *testing.B, n int, logger *slog.Logger, opts []Option) {
	tn := newTestNet(b)
	ws := make([]*MapWriter[string, []byte], 3)
	var hs []waiter
	for i := range ws {
		ws[i] = openMapW[string, []byte](b, tn.node(), "join", opts...)
		hs = append(hs, ws[i])
	}
	online(b, hs...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fillBench(b, ctx, ws[0], n)
	var added, first, done time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		settleSnapshots(b, ctx, ws)
		v := settle(b, hs...)
		runtime.GC()
		var leader *MapWriter[string, []byte]
		for _, x := range ws {
			if x.g.IsLeader() {
				leader = x
			}
		}
		if leader == nil {
			b.Fatal("no leader")
		}
		rn := tn.node()
		b.StartTimer()
		start := time.Now()
		if logger != nil {
			logger.Info("JOIN START")
		}
		r, err := NewMapReader[string, []byte](rn, "join", opts...)
		if err != nil {
			b.Fatal(err)
		}
		self := r.g.Self()
		var tAdd, tFirst time.Duration
		for tAdd == 0 || tFirst == 0 {
			if ctx.Err() != nil {
				b.Fatal("reader never caught up")
			}
			if tAdd == 0 {
				for _, m := range leader.g.Members() {
					if m.Peer == self {
						tAdd = time.Since(start)
					}
				}
			}
			if st := r.g.Status(); tFirst == 0 && (st.LogLast > 0 || st.LogSnapshot > 0) {
				tFirst = time.Since(start)
			}
			time.Sleep(200 * time.Microsecond)
		}
		if err := r.When().Reaches(ctx, v); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		b.StopTimer()
		if r.Len() != n {
			b.Fatalf("reader holds %d entries", r.Len())
		}
		b.Logf("added %v, first state %v, holds all %v", tAdd, tFirst, took)
		if logger != nil {
			logger.Info("JOIN DONE", "reader", self.Short(), "added", tAdd, "first", tFirst, "took", took)
		}
		added += tAdd
		first += tFirst
		done += took
		_ = r.Close()
		_ = rn.Close()
		b.StartTimer()
	}
	b.ReportMetric(added.Seconds()/float64(b.N), "s/added")
	b.ReportMetric(first.Seconds()/float64(b.N), "s/first")
	b.ReportMetric(done.Seconds()/float64(b.N), "s/caught-up")
	b.ReportMetric(float64(b.N)*float64(n)/done.Seconds(), "keys/s")
}
