package transport

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// listFSM records every command it applies.
type listFSM struct {
	mu  sync.Mutex
	log []string
}

func (f *listFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, string(l.Data))
	return len(f.log)
}

func (f *listFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return listSnapshot(slices.Clone(f.log)), nil
}

func (f *listFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var log []string
	if err := json.NewDecoder(rc).Decode(&log); err != nil {
		return err
	}
	f.mu.Lock()
	f.log = log
	f.mu.Unlock()
	return nil
}

func (f *listFSM) entries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

type listSnapshot []string

func (s listSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode([]string(s)); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (listSnapshot) Release() {}

type raftNode struct {
	raft *raft.Raft
	fsm  *listFSM
	id   raft.ServerID
	addr raft.ServerAddress
	tr   *RaftTransport
}

func startRaft(t *testing.T, n *Network, bootstrap []raft.Server) *raftNode {
	t.Helper()
	return startRaftTimeout(t, n, bootstrap, 2*time.Second)
}

// startRaftTimeout is startRaft with the transport's RPC timeout.
func startRaftTimeout(t *testing.T, n *Network, bootstrap []raft.Server, timeout time.Duration) *raftNode {
	t.Helper()
	return startRaftWith(t, n, bootstrap, timeout, nil)
}

// startRaftWith is startRaftTimeout with tune applied to Raft's config.
func startRaftWith(t *testing.T, n *Network, bootstrap []raft.Server, timeout time.Duration, tune func(*raft.Config)) *raftNode {
	t.Helper()
	tr := newRaftTransport(t, sealedScope(n, "cluster"), timeout)
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(n.ID().String())
	// Generous: a loaded CI machine with the race detector may stall the
	// leader's heartbeats while it writes a snapshot of several MiB.
	conf.HeartbeatTimeout = 1500 * time.Millisecond
	conf.ElectionTimeout = 1500 * time.Millisecond
	conf.LeaderLeaseTimeout = 1500 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.TrailingLogs = 5
	conf.SnapshotThreshold = 1 << 30 // snapshots only when the test asks
	conf.Logger = hclog.New(&hclog.LoggerOptions{Name: n.ID().Short(), Level: hclog.Warn, Output: testWriter{t}})
	if tune != nil {
		tune(conf)
	}
	logs, snaps := raft.NewInmemStore(), raft.NewInmemSnapshotStore()
	if bootstrap != nil {
		if err := raft.BootstrapCluster(conf, logs, logs, snaps, tr, raft.Configuration{Servers: bootstrap}); err != nil {
			t.Fatal(err)
		}
	}
	fsm := &listFSM{}
	r, err := raft.NewRaft(conf, fsm, logs, logs, snaps, tr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Shutdown().Error(); err != nil {
			t.Errorf("raft shutdown: %v", err)
		}
	})
	return &raftNode{raft: r, fsm: fsm, id: conf.LocalID, addr: tr.LocalAddr(), tr: tr}
}

func leaderOf(t *testing.T, nodes []*raftNode) *raftNode {
	t.Helper()
	var leader *raftNode
	eventually(t, "a leader", func() bool {
		for _, n := range nodes {
			if n.raft.State() == raft.Leader {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// TestRaftClusterOverNATS runs hashicorp/raft over RaftTransport, with a
// little delay on every node: elections, replication, and a snapshot large
// enough to need many chunks, installed on a node that joins late.
func TestRaftClusterOverNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a raft cluster")
	}
	first := newNet(t)
	var nets []*Network
	var faults []*Faults
	for range 4 {
		f := NewFaults()
		f.Delay(time.Millisecond)
		faults = append(faults, f)
		nets = append(nets, join(t, first, WithFaults(f)))
	}
	var servers []raft.Server
	for _, n := range nets[:3] {
		servers = append(servers, raft.Server{ID: raft.ServerID(n.ID().String()), Address: raft.ServerAddress(n.ID().String())})
	}
	var nodes []*raftNode
	for _, n := range nets[:3] {
		nodes = append(nodes, startRaft(t, n, servers))
	}
	leader := leaderOf(t, nodes)

	var want []string
	apply := func(count, size int) {
		t.Helper()
		futures := make([]raft.ApplyFuture, 0, count)
		for range count {
			cmd := fmt.Sprintf("%04d:%x", len(want), pattern(size/2, byte(len(want))))
			want = append(want, cmd)
			futures = append(futures, leader.raft.Apply([]byte(cmd), waitTimeout))
		}
		for _, f := range futures {
			if err := f.Error(); err != nil {
				t.Fatalf("apply: %v", err)
			}
		}
	}
	converged := func(nodes []*raftNode) {
		t.Helper()
		for _, n := range nodes {
			eventually(t, "replica "+string(n.id)[:8]+" caught up", func() bool {
				return len(n.fsm.entries()) == len(want)
			})
			if !slices.Equal(n.fsm.entries(), want) {
				t.Fatalf("replica %s diverged", string(n.id)[:8])
			}
		}
	}
	apply(200, 10)
	converged(nodes)

	// Compact the leader's log past what the newcomer has (nothing), so it
	// can only catch up from a snapshot of several MiB.
	apply(40, 100_000)
	if err := leader.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	late := startRaft(t, nets[3], nil)
	if err := leader.raft.AddVoter(late.id, late.addr, 0, waitTimeout).Error(); err != nil {
		t.Fatal(err)
	}
	apply(20, 10)
	converged(append(nodes, late))
	if got := late.raft.Stats()["last_snapshot_index"]; got == "0" {
		t.Error("the late node caught up without installing a snapshot")
	}

	// Partition the leader away: the others elect a new one and go on.
	old := leader
	for i, n := range nodes {
		if n == old {
			faults[i].Isolate()
		}
	}
	others := []*raftNode{late}
	for _, n := range nodes {
		if n != old {
			others = append(others, n)
		}
	}
	leader = leaderOf(t, others)
	apply(10, 10)
	converged(others)
	for _, f := range faults {
		f.Heal()
	}
	converged(append(others, old))
}

// testWriter sends raft's log to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
