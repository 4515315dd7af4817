package groups

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/internal/replica"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/storage"
	"github.com/mosaik-go/mosaik/transport"
)

// BenchmarkDurableExecute is BenchmarkExecute on the leader with every
// member on its own Pebble data directory, fsync on.
func BenchmarkDurableExecute(b *testing.B) {
	for _, conc := range []int{1, 64} {
		b.Run(map[int]string{1: "c1", 64: "c64"}[conc], func(b *testing.B) {
			c := newCluster(b)
			cfg := &Config{BootstrapDelay: 200 * time.Millisecond}
			var nodes []*dnode[counterCmd, struct{}, int64]
			for range 3 {
				nodes = append(nodes, startDurable(b, c, b.TempDir(), &counter{}, cfg))
			}
			onlineAll(b, nodes...)
			executeLoad(b, conc, leaderOf(b, nodes...).g)
		})
	}
}

// BenchmarkDurableRestart1M restarts a one-member group whose data
// directory holds 1,000,000 log entries (one command each, no snapshot):
// open the directory, join, become leader and apply every entry.
func BenchmarkDurableRestart1M(b *testing.B) {
	const entries = 1_000_000
	c := newCluster(b)
	cfg := testConfig()
	dir := b.TempDir()
	id := prefill1M(b, c, dir, cfg, entries)
	b.ResetTimer()
	var openTotal time.Duration
	for range b.N {
		// The storage part alone: open, hand out the group's stores (which
		// checks every entry's checksum) and find the last entry.
		t0 := time.Now()
		db, err := storage.Open(dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		st, err := db.Stores(id)
		if err != nil {
			b.Fatal(err)
		}
		if last, err := st.Log.LastIndex(); err != nil || last < entries+1 {
			b.Fatalf("last index %d, %v", last, err)
		}
		openTotal += time.Since(t0)
		st.Release()
		db.Close()
		d := startDurable(b, c, dir, &counter{}, cfg)
		waitFor(b, 5*time.Minute, "every entry applied", func() bool {
			return d.g.Applied() >= entries+1 && d.g.IsLeader()
		})
		d.stop()
	}
	b.ReportMetric(float64(openTotal.Milliseconds())/float64(b.N), "storage-open-ms")
}

// prefill1M writes a group's log directly: a configuration naming the
// directory's node as the only voter, then entries commands of +1.
func prefill1M(b *testing.B, c *cluster, dir string, cfg *Config, entries int) ID {
	b.Helper()
	rc, err := cfg.resolve(nil)
	if err != nil {
		b.Fatal(err)
	}
	id := deriveID(c.key, (&counter{}).Signature(), &rc)
	db, err := storage.Open(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	st, err := db.Stores(id)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Release()
	self := transport.PeerID(db.NodeID()).String()
	conf := raft.EncodeConfiguration(raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(self), Address: raft.ServerAddress(self)}}})
	if err := st.Log.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: conf}}); err != nil {
		b.Fatal(err)
	}
	cmd, err := rsm.Marshal(counterCmd{Add: 1})
	if err != nil {
		b.Fatal(err)
	}
	var session replica.SessionID
	session[0] = 1
	batch := make([]*raft.Log, 0, 10_000)
	now := time.Now()
	for i := 1; i <= entries; i++ {
		data, err := rsm.Marshal(replica.Entry{Session: session, Seq: uint64(i), First: rsm.Index(i + 1), Cmds: [][]byte{cmd}})
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: now})
		if len(batch) == cap(batch) || i == entries {
			if err := st.Log.StoreLogs(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := st.Stable.SetUint64([]byte("CurrentTerm"), 1); err != nil {
		b.Fatal(err)
	}
	return id
}

// BenchmarkDurableSnapshotTransfer measures how fast a 256 MiB snapshot
// reaches a new member: from its Join until it restored the snapshot and
// caught up (so it includes discovery and being added, well under a second).
func BenchmarkDurableSnapshotTransfer(b *testing.B) {
	const pad = 256 << 20
	c := newCluster(b)
	cfg := testConfig()
	cfg.TrailingLogs = 4
	cfg.DeadMemberTimeout = time.Minute
	leader := startDurable(b, c, b.TempDir(), &ledger{Pad: pad}, cfg)
	onlineAll(b, leader)
	for i := range 10 {
		if _, err := leader.g.Execute(context.Background(), ledgerCmd{V: int64(i)}); err != nil {
			b.Fatal(err)
		}
	}
	snapshotNow(b, leader)
	b.SetBytes(pad)
	b.ResetTimer()
	for range b.N {
		late := startDurable(b, c, b.TempDir(), &ledger{Pad: pad}, cfg)
		waitFor(b, 5*time.Minute, "the new member to restore the snapshot", func() bool {
			return late.g.fsm.Machine().(*ledger).restores.Load() > 0 && late.g.Applied() == leader.g.Applied()
		})
		b.StopTimer()
		// Leave decides from the member's own view of the configuration,
		// which lags behind the leader's right after a snapshot (see the
		// storage report): wait until it has caught up.
		waitFor(b, 10*time.Second, "the new member to see itself in the configuration", func() bool {
			return late.g.inConfiguration() && len(late.g.Members()) == len(leader.g.Members())
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := late.g.Leave(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
		late.stop()
		deadline := time.Now().Add(10 * time.Second)
		for len(leader.g.Members()) != 1 {
			if time.Now().After(deadline) {
				for _, m := range leader.g.Members() {
					b.Logf("member %s voter=%v leader=%v lastIndex=%d contact=%v", m.Peer.Short(), m.Voter, m.Leader, m.Applied, time.Since(m.LastContact))
				}
				b.Fatalf("left member %s still there", late.id().Short())
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.StartTimer()
	}
}
