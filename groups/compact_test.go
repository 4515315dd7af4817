package groups

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// A log of few, large entries is compacted by its bytes, although it holds
// far fewer entries than SnapshotThreshold, and keeps about
// SnapshotLogBytes after the snapshot; a newcomer then installs the state
// instead of replaying the log. With SnapshotLogBytes out of reach (the
// control) nothing is compacted and the newcomer replays everything.
func TestCompactByLogBytes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bytes   uint64
		compact bool
	}{{"by bytes", 64 << 10, true}, {"control", 1 << 40, false}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			cfg := testConfig()
			cfg.SnapshotLogBytes = tc.bytes
			a := startDurable(t, c, t.TempDir(), &ledger{}, cfg)
			onlineAll(t, a)
			// 40 entries of 1,000 commands, each entry about 10 KB: 400 KB
			// in all, against SnapshotThreshold's 8,192 entries.
			const entries, per = 40, 1000
			cmds := make([]ledgerCmd, per)
			for i := range entries {
				for j := range cmds {
					cmds[j] = ledgerCmd{V: int64(i*per + j)}
				}
				if _, err := a.g.ExecuteMany(ctxFor(t, 20*time.Second), cmds); err != nil {
					t.Fatal(err)
				}
			}
			lastIndex := func() uint64 {
				last, err := a.g.stores.Log.LastIndex()
				if err != nil {
					t.Fatal(err)
				}
				return last
			}
			firstIndex := func() uint64 {
				first, err := a.g.stores.Log.FirstIndex()
				if err != nil {
					t.Fatal(err)
				}
				return first
			}
			if tc.compact {
				// The last snapshot by bytes can come a moment after the
				// last write applied.
				waitFor(t, 20*time.Second, "the log compacted by its bytes", func() bool {
					return a.g.Status().LogSnapshot > 0 && firstIndex() > 1
				})
				// About 64 KB of ~10 KB entries stay, give or take the
				// entries written after the snapshot began.
				if kept := lastIndex() - firstIndex() + 1; kept > 20 {
					t.Fatalf("%d entries kept after the snapshot, want about 7", kept)
				}
			} else if first := firstIndex(); first != 1 || a.g.Status().LogSnapshot != 0 {
				t.Fatalf("control: first index %d, snapshot at %d: compacted without SnapshotLogBytes", first, a.g.Status().LogSnapshot)
			}
			want := a.g.Applied()
			sm := &ledger{}
			b := startDurable(t, c, t.TempDir(), sm, cfg)
			waitFor(t, 30*time.Second, "the newcomer caught up", func() bool { return b.g.Applied() >= want })
			if got, wantState := sm.state(), a.g.Applied(); got.N < entries*per {
				t.Fatalf("newcomer holds %d commands at index %d, want %d", got.N, wantState, entries*per)
			}
			if restored := sm.restores.Load() > 0; restored != tc.compact {
				t.Fatalf("newcomer installed a snapshot: %v, want %v", restored, tc.compact)
			}
		})
	}
}

// The compactor outlives a Raft that shut down under it without the member
// closing, as Recover's does: it keeps taking its wake-ups, and compacts
// by bytes with the Raft that follows.
func TestCompactorOutlivesRaftShutdown(t *testing.T) {
	c := newCluster(t)
	cfg := testConfig()
	cfg.SnapshotLogBytes = 64 << 10
	a := startDurable(t, c, t.TempDir(), &ledger{}, cfg)
	onlineAll(t, a)
	k := a.g.compactor
	if k == nil {
		t.Fatal("no compactor")
	}
	// A Raft shut down, standing where the member's Raft was, as during
	// Recover between the old Raft's shutdown and the new one's start.
	conf := raft.DefaultConfig()
	conf.LocalID = "gone"
	conf.Logger = hclog.NewNullLogger()
	_, trans := raft.NewInmemTransport("")
	gone, err := raft.NewRaft(conf, &raft.MockFSM{}, raft.NewInmemStore(), raft.NewInmemStore(), raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		t.Fatal(err)
	}
	if err := gone.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	real := a.g.raft.Load()
	a.g.raft.Store(gone)
	k.bytes.Add(cfg.SnapshotLogBytes)
	for i := range 2 {
		k.wake <- struct{}{}
		waitFor(t, 5*time.Second, fmt.Sprintf("the compactor took wake-up %d", i+1), func() bool { return len(k.wake) == 0 })
	}
	a.g.raft.Store(real)
	cmds := make([]ledgerCmd, 1000)
	for range 10 {
		if _, err := a.g.ExecuteMany(ctxFor(t, 20*time.Second), cmds); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "the log compacted by its bytes after the shutdown", func() bool {
		return a.g.Status().LogSnapshot > 0
	})
}

// A snapshot that fails is asked for again only after a back-off that
// doubles from compactRetryMin, however many applies wake the compactor
// meanwhile, and asked for again once the back-off ends.
func TestCompactorBacksOff(t *testing.T) {
	c := newCluster(t)
	a := startDurable(t, c, t.TempDir(), &ledger{}, testConfig())
	onlineAll(t, a)
	// A second compactor on the member's core, with its own way to take
	// a snapshot, driven by the test's wake-ups.
	k := newCompactor(a.g.core)
	var calls atomic.Int64
	var fail atomic.Bool
	fail.Store(true)
	k.take = func() error {
		calls.Add(1)
		if fail.Load() {
			return errors.New("refused")
		}
		return nil
	}
	k.bytes.Store(1 << 40)
	var wg sync.WaitGroup
	wg.Go(k.run)
	poke := func() {
		select {
		case k.wake <- struct{}{}:
		default:
		}
	}
	start := time.Now()
	for time.Since(start) < 500*time.Millisecond {
		poke()
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	// n calls need n-1 back-offs before them: 10 ms × (2^(n-1) - 1) in all.
	maxCalls := int64(1)
	for next, total := compactRetryMin, compactRetryMin; total <= elapsed; next, total = 2*next, total+2*next {
		maxCalls++
	}
	if n := calls.Load(); n < 1 || n > maxCalls {
		t.Fatalf("%d snapshots asked for in %v of failures, want 1 to %d", n, elapsed, maxCalls)
	}
	// The back-off in progress ends (at most SnapshotInterval) and the
	// compactor asks again.
	fail.Store(false)
	base := calls.Load()
	waitFor(t, 20*time.Second, "a snapshot asked for after the failures", func() bool { poke(); return calls.Load() > base })
	if err := a.g.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}
