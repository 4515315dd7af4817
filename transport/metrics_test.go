package transport

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mosaik-go/mosaik/internal/promtest"
)

// TestMetrics runs Raft RPCs and snapshot transfers between two nodes that
// share a registry, and reads the figures back: per node, per group, and
// gone once a transport or node closes.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	na := newNet(t, WithMetrics(reg))
	nb := join(t, na, WithMetrics(reg))
	if na.Metrics() != reg {
		t.Fatal("Metrics() is not the registry given")
	}
	if plain := join(t, na); plain.Metrics() != nil {
		t.Fatal("Metrics() without WithMetrics is not nil")
	}
	id := scopeID("metrics") // a group's scope is its id
	a, b := newRaftTransport(t, na.Scope(id, testSecret), suiteTimeout), newRaftTransport(t, nb.Scope(id, testSecret), suiteTimeout)
	peerA, peerB := []string{"peer", na.ID().Short()}, []string{"peer", nb.ID().Short()}
	group := []string{"group", hex.EncodeToString(id[:4])} // the id's short form
	sum := func(name string, labels ...[]string) float64 {
		t.Helper()
		var flat []string
		for _, l := range labels {
			flat = append(flat, l...)
		}
		return promtest.Sum(t, reg, name, flat...)
	}

	failSnapshot := make(chan bool, 1)
	serve(t, b, func(rpc raft.RPC) {
		switch cmd := rpc.Command.(type) {
		case *raft.AppendEntriesRequest:
			rpc.Respond(&raft.AppendEntriesResponse{Term: cmd.Term, Success: true}, nil)
		case *raft.InstallSnapshotRequest:
			_, _ = io.Copy(io.Discard, rpc.Reader)
			if <-failSnapshot {
				rpc.Respond(nil, errors.New("refused"))
				return
			}
			rpc.Respond(&raft.InstallSnapshotResponse{Term: cmd.Term, Success: true}, nil)
		default:
			rpc.Respond(nil, errors.New("unexpected"))
		}
	})

	var resp raft.AppendEntriesResponse
	if err := a.AppendEntries("b", b.LocalAddr(), appendN(1), &resp); err != nil {
		t.Fatal(err)
	}
	pl, err := a.AppendEntriesPipeline("b", b.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pl.AppendEntries(appendN(2), new(raft.AppendEntriesResponse)); err != nil {
		t.Fatal(err)
	}
	if err := (<-pl.Consumer()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := pl.Close(); err != nil {
		t.Fatal(err)
	}
	if got := sum("mosaik_transport_group_sent_messages_total", group, peerA); got != 2 {
		t.Errorf("A sent %v group messages, want 2", got)
	}
	if got := sum("mosaik_transport_group_received_messages_total", group, peerA); got != 2 {
		t.Errorf("A received %v answers, want 2", got)
	}
	if got := sum("mosaik_transport_group_received_messages_total", group, peerB); got != 2 {
		t.Errorf("B received %v group messages, want 2", got)
	}
	for _, name := range []string{"mosaik_transport_group_sent_bytes_total", "mosaik_transport_group_received_bytes_total"} {
		for _, p := range [][]string{peerA, peerB} {
			if sum(name, group, p) <= 0 {
				t.Errorf("%s{%s} did not move", name, p[1])
			}
		}
	}

	// One snapshot of several chunks that B takes, one that B refuses.
	size := 3*a.snapshotChunk() + 10
	for _, fail := range []bool{false, true} {
		failSnapshot <- fail
		var sresp raft.InstallSnapshotResponse
		err := a.InstallSnapshot("b", b.LocalAddr(), snapshotRequest(int64(size)), &sresp,
			bytes.NewReader(randomBytes(size, 1)))
		if (err != nil) != fail {
			t.Fatalf("snapshot (fail %v): %v", fail, err)
		}
	}
	for _, c := range []struct {
		name string
		peer []string
		want float64
	}{
		{"mosaik_transport_snapshot_sends_total", peerA, 2},
		{"mosaik_transport_snapshot_send_failures_total", peerA, 1},
		{"mosaik_transport_snapshot_sent_bytes_total", peerA, float64(2 * size)},
		{"mosaik_transport_snapshot_receives_total", peerB, 2},
		{"mosaik_transport_snapshot_receive_failures_total", peerB, 1},
		{"mosaik_transport_snapshot_received_bytes_total", peerB, float64(2 * size)},
	} {
		if got := sum(c.name, group, c.peer); got != c.want {
			t.Errorf("%s{%s} = %v, want %v", c.name, c.peer[1], got, c.want)
		}
	}

	// Node totals, and a malformed frame counted on B.
	if err := na.nc.Publish(b.subject("raft", nb.ID()), []byte{0xff}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B counts the malformed frame", func() bool {
		return sum("mosaik_transport_malformed_messages_total", peerB) == 1
	})
	// A well-formed frame that is not sealed in B's scope: rejected unread.
	if err := na.nc.Publish(b.subject("raft", nb.ID()), rawFrame(frameVersion, 0, na.ID(), 1, []byte{kindVote})); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B counts the rejected frame", func() bool {
		return sum("mosaik_transport_rejected_messages_total", peerB) == 1
	})
	if got := sum("mosaik_transport_rejected_messages_total", peerA); got != 0 {
		t.Errorf("A counted %v rejected frames", got)
	}
	for _, name := range []string{"sent_messages_total", "sent_bytes_total", "received_messages_total", "received_bytes_total"} {
		for _, p := range [][]string{peerA, peerB} {
			if sum("mosaik_transport_"+name, p) <= 0 {
				t.Errorf("mosaik_transport_%s{%s} did not move", name, p[1])
			}
		}
	}
	st := na.Stats()
	if got := sum("mosaik_transport_sent_bytes_total", peerA); got < float64(st.BytesOut) {
		t.Errorf("A sent %v bytes by its metrics, %d by its stats before", got, st.BytesOut)
	}

	// Closing removes what it measured; the other node's series stay.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n := promtest.Series(t, reg, "mosaik_transport_", group[0], group[1], peerB[0], peerB[1]); n != 0 {
		t.Errorf("%d series of B's closed transport remain", n)
	}
	if n := promtest.Series(t, reg, "mosaik_transport_", group[0], group[1], peerA[0], peerA[1]); n == 0 {
		t.Error("A's group series went with B's")
	}
	if err := nb.Close(); err != nil {
		t.Fatal(err)
	}
	if n := promtest.Series(t, reg, "mosaik_transport_", peerB...); n != 0 {
		t.Errorf("%d series of closed node B remain", n)
	}
	if n := promtest.Series(t, reg, "mosaik_transport_", peerA...); n == 0 {
		t.Error("A's series went with B's")
	}
}

// A snapshot sent from A to B: the bytes A counts as sent for the group are
// the bytes B counts as received (both count payloads, not network headers).
func TestSnapshotSentBytesMatchReceived(t *testing.T) {
	reg := prometheus.NewRegistry()
	na := newNet(t, WithMetrics(reg))
	nb := join(t, na, WithMetrics(reg))
	id := scopeID("metrics")
	a, b := newRaftTransport(t, na.Scope(id, testSecret), suiteTimeout), newRaftTransport(t, nb.Scope(id, testSecret), suiteTimeout)
	peerA, peerB := []string{"peer", na.ID().Short()}, []string{"peer", nb.ID().Short()}
	group := []string{"group", hex.EncodeToString(id[:4])}
	sum := func(name string, p []string) float64 {
		return promtest.Sum(t, reg, name, append(append([]string{}, group...), p...)...)
	}
	serve(t, b, func(rpc raft.RPC) {
		_, _ = io.Copy(io.Discard, rpc.Reader)
		rpc.Respond(&raft.InstallSnapshotResponse{Term: 1, Success: true}, nil)
	})
	size := 3*a.snapshotChunk() + 10
	var resp raft.InstallSnapshotResponse
	if err := a.InstallSnapshot("b", b.LocalAddr(), snapshotRequest(int64(size)), &resp, bytes.NewReader(randomBytes(size, 1))); err != nil {
		t.Fatal(err)
	}
	sent, recv := sum("mosaik_transport_group_sent_bytes_total", peerA), sum("mosaik_transport_group_received_bytes_total", peerB)
	if sent != recv {
		t.Fatalf("A counted %v bytes sent, B %v received (diff %v)", sent, recv, sent-recv)
	}
}

// A snapshot sent while A's messages are delayed: the delay queue holds
// each chunk's frame while the sender reads the next chunk into it.
func TestReviewSnapshotUnderDelay(t *testing.T) {
	na := newNet(t)
	nb := join(t, na)
	a, b := newRaftTransport(t, sealedScope(na, "metrics"), suiteTimeout), newRaftTransport(t, sealedScope(nb, "metrics"), suiteTimeout)
	size := 5*a.snapshotChunk() + 10
	data := randomBytes(size, 7)
	got := make(chan []byte, 1)
	serve(t, b, func(rpc raft.RPC) {
		all, _ := io.ReadAll(rpc.Reader)
		got <- all
		rpc.Respond(&raft.InstallSnapshotResponse{Term: 1, Success: true}, nil)
	})
	na.Faults().Delay(5e6)
	var resp raft.InstallSnapshotResponse
	if err := a.InstallSnapshot("b", b.LocalAddr(), snapshotRequest(int64(size)), &resp, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if g := <-got; !bytes.Equal(g, data) {
		t.Fatal("snapshot arrived changed")
	}
}
