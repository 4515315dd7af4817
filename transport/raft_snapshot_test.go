package transport

import (
	"bytes"
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// raftTrio is a three-node raft cluster over NATS and a fourth node, an
// authenticated member of the scope that is not in the configuration: the
// attacker.
type raftTrio struct {
	nodes    []*raftNode
	leader   *raftNode
	victim   *raftNode // a follower
	attacker *RaftTransport
	applied  int
}

func newRaftTrio(t *testing.T) *raftTrio {
	t.Helper()
	first := newNet(t)
	nets := []*Network{first, join(t, first), join(t, first)}
	var servers []raft.Server
	for _, n := range nets {
		servers = append(servers, raft.Server{ID: raft.ServerID(n.ID().String()), Address: raft.ServerAddress(n.ID().String())})
	}
	c := &raftTrio{}
	for _, n := range nets {
		c.nodes = append(c.nodes, startRaft(t, n, servers))
	}
	c.leader = leaderOf(t, c.nodes)
	for _, n := range c.nodes {
		if n != c.leader {
			c.victim = n
			break
		}
	}
	c.attacker = newRaftTransport(t, sealedScope(join(t, first), "cluster"), 2*time.Second)
	c.commit(t)
	return c
}

// commit applies a command on the leader and waits until the victim applied
// it too, within deadline.
func (c *raftTrio) commit(t *testing.T) {
	t.Helper()
	c.applied++
	cmd := "cmd" + strconv.Itoa(c.applied)
	if err := c.leader.raft.Apply([]byte(cmd), waitTimeout).Error(); err != nil {
		t.Fatalf("apply: %v", err)
	}
	eventually(t, "the victim applies "+cmd, func() bool {
		e := c.victim.fsm.entries()
		return len(e) == c.applied && e[len(e)-1] == cmd
	})
}

func (c *raftTrio) term(t *testing.T) uint64 {
	t.Helper()
	term, err := strconv.ParseUint(c.victim.raft.Stats()["term"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return term
}

// request is an InstallSnapshot the attacker could send, valid unless edited.
func (c *raftTrio) request(t *testing.T, size int64) *raft.InstallSnapshotRequest {
	a := c.attacker.LocalAddr()
	return &raft.InstallSnapshotRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(a), Addr: []byte(a)},
		Term:      c.term(t), Leader: []byte(a), SnapshotVersion: raft.SnapshotVersionMax,
		LastLogIndex: 1000, LastLogTerm: 1, Configuration: raft.EncodeConfiguration(raft.Configuration{Servers: []raft.Server{
			{ID: raft.ServerID(a), Address: a},
		}}), ConfigurationIndex: 1, Size: size,
	}
}

// noticeLeader fails the test if the victim ever names the attacker its
// leader while fn runs.
func (c *raftTrio) noticeLeader(t *testing.T, fn func()) {
	t.Helper()
	stop, done := make(chan struct{}), make(chan struct{})
	bad := make(chan raft.ServerAddress, 1)
	go func() {
		defer close(done)
		for {
			if addr, _ := c.victim.raft.LeaderWithID(); addr == c.attacker.LocalAddr() {
				bad <- addr
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	<-done
	select {
	case <-bad:
		t.Error("the victim took the attacker for its leader")
	default:
	}
}

// TestSnapshotBeginAloneDoesNotStallRaft: a member sends an InstallSnapshot
// begin and nothing more. The victim's Raft never sees it: it keeps
// following its leader and applying, never names the sender its leader, and
// the transfer is dropped within the progress deadline.
func TestSnapshotBeginAloneDoesNotStallRaft(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a raft cluster")
	}
	c := newRaftTrio(t)
	begin, err := marshal(kindSnapBegin, snapBegin{ID: 7, Request: c.request(t, 1<<20)})
	if err != nil {
		t.Fatal(err)
	}
	c.noticeLeader(t, func() {
		if _, err := c.attacker.request(t.Context(), "raft", c.victim.addr, begin); err != nil {
			t.Fatalf("begin: %v", err)
		}
		start := time.Now()
		for range 5 {
			c.commit(t)
		}
		if took := time.Since(start); took > c.victim.tr.snapshotProgress() {
			t.Errorf("5 commits took %v while a snapshot begin was pending", took)
		}
		start = time.Now()
		eventually(t, "the stalled transfer is dropped", func() bool { return c.victim.tr.openSnapshots() == 0 })
		if took := time.Since(start); took > c.victim.tr.snapshotIdle()+2*time.Second {
			t.Errorf("the stalled transfer was dropped after %v", took)
		}
	})
	c.commit(t)
}

// TestSnapshotRequestChecked sends whole InstallSnapshots whose request Raft
// would panic on or misbehave with to a follower of a real cluster: each is
// refused before Raft sees it, and the follower goes on applying.
func TestSnapshotRequestChecked(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a raft cluster")
	}
	c := newRaftTrio(t)
	for _, tc := range []struct {
		name string
		edit func(r *raft.InstallSnapshotRequest)
	}{
		{"version 1 without configuration", func(r *raft.InstallSnapshotRequest) { r.Configuration = nil }},
		{"junk configuration", func(r *raft.InstallSnapshotRequest) { r.Configuration = []byte{0xc1} }},
		{"version 0", func(r *raft.InstallSnapshotRequest) { r.SnapshotVersion = 0 }},
		{"version 0 with junk peers", func(r *raft.InstallSnapshotRequest) {
			r.SnapshotVersion, r.Configuration, r.Peers = 0, nil, []byte{0xc1}
		}},
		{"version above max", func(r *raft.InstallSnapshotRequest) { r.SnapshotVersion = raft.SnapshotVersionMax + 1 }},
		{"negative version", func(r *raft.InstallSnapshotRequest) { r.SnapshotVersion = -1 }},
		{"configuration index past the snapshot", func(r *raft.InstallSnapshotRequest) { r.ConfigurationIndex = r.LastLogIndex + 1 }},
		{"configuration index 0", func(r *raft.InstallSnapshotRequest) { r.ConfigurationIndex = 0 }},
		{"last index 0", func(r *raft.InstallSnapshotRequest) { r.LastLogIndex, r.ConfigurationIndex = 0, 0 }},
		{"last term 0", func(r *raft.InstallSnapshotRequest) { r.LastLogTerm = 0 }},
		{"last term past the term", func(r *raft.InstallSnapshotRequest) { r.LastLogTerm = r.Term + 1 }},
		{"last index beyond int64", func(r *raft.InstallSnapshotRequest) { r.LastLogIndex = math.MaxUint64 }},
		{"term beyond int64", func(r *raft.InstallSnapshotRequest) { r.Term = math.MaxUint64 }},
		{"negative size", func(r *raft.InstallSnapshotRequest) { r.Size = -1 }},
		{"absurd size", func(r *raft.InstallSnapshotRequest) { r.Size = math.MaxInt64 }},
		{"size larger than the data", func(r *raft.InstallSnapshotRequest) { r.Size = 200 }},
		{"size smaller than the data", func(r *raft.InstallSnapshotRequest) { r.Size = 50 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := c.request(t, 100)
			tc.edit(req)
			c.noticeLeader(t, func() {
				var resp raft.InstallSnapshotResponse
				err := c.attacker.InstallSnapshot(raft.ServerID(c.victim.id), c.victim.addr, req, &resp, bytes.NewReader(make([]byte, 100)))
				if err == nil && resp.Success {
					t.Errorf("installed: %+v", resp)
				}
				c.commit(t)
			})
			if st := c.victim.raft.State(); st == raft.Shutdown {
				t.Fatalf("victim is %v", st)
			}
		})
	}
}

// TestSnapshotTransferLimits: a sender has one transfer open at a time (a
// new begin replaces its old one), the receiver a few in total.
func TestSnapshotTransferLimits(t *testing.T) {
	b := newNet(t)
	rt := newRaftTransport(t, sealedScope(b, "s"), time.Second)
	serve(t, rt, func(rpc raft.RPC) { rpc.Respond(&raft.InstallSnapshotResponse{Term: 1, Success: true}, nil) })
	begin := func(tr *RaftTransport, id uint64, size int64) error {
		a := tr.LocalAddr()
		req := &raft.InstallSnapshotRequest{
			RPCHeader: raft.RPCHeader{ID: []byte(a), Addr: []byte(a)}, Term: 1, SnapshotVersion: 1,
			LastLogIndex: 10, LastLogTerm: 1, ConfigurationIndex: 1, Configuration: testConfiguration(), Size: size,
		}
		msg, err := marshal(kindSnapBegin, snapBegin{ID: id, Request: req})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
		defer cancel()
		_, err = tr.request(ctx, "raft", rt.LocalAddr(), msg)
		return err
	}
	var senders []*RaftTransport
	for range maxSnapTransfers + 1 {
		senders = append(senders, newRaftTransport(t, sealedScope(join(t, b), "s"), time.Second))
	}
	one := senders[0]
	for id := range uint64(3) {
		if err := begin(one, id, 10); err != nil {
			t.Fatalf("begin %d: %v", id, err)
		}
	}
	if n := rt.openSnapshots(); n != 1 {
		t.Errorf("one sender holds %d transfers", n)
	}
	for i, s := range senders[1:maxSnapTransfers] {
		if err := begin(s, 1, 10); err != nil {
			t.Fatalf("sender %d: %v", i+1, err)
		}
	}
	if err := begin(senders[maxSnapTransfers], 1, 10); err == nil {
		t.Errorf("a transfer beyond the %d allowed was opened", maxSnapTransfers)
	}
	if n := rt.openSnapshots(); n != maxSnapTransfers {
		t.Errorf("%d transfers open, want %d", n, maxSnapTransfers)
	}
	// Bytes: a transfer that would take the total past the limit is refused.
	rt.snapMu.Lock()
	rt.snapBytesLimit = 1000
	rt.snapMu.Unlock()
	if err := begin(one, 9, 1001); err == nil {
		t.Error("a transfer larger than the byte limit was opened")
	}
}

// snapshotRequest is an InstallSnapshot request the transport lets through,
// for size bytes, in term 1.
func snapshotRequest(size int64) *raft.InstallSnapshotRequest {
	return &raft.InstallSnapshotRequest{
		Term: 1, SnapshotVersion: raft.SnapshotVersionMax, LastLogIndex: 10, LastLogTerm: 1,
		Configuration: testConfiguration(), ConfigurationIndex: 1, Size: size,
	}
}

// TestSnapshotBeginRefusedBeforeSpooling: a begin the receiver refuses for
// a bound (too many transfers) costs it no temporary file and no buffer: it
// is refused as such even where no file could be made, and allocates far
// less than the megabyte a small snapshot is buffered in.
func TestSnapshotBeginRefusedBeforeSpooling(t *testing.T) {
	b := newNet(t)
	rt := newRaftTransport(t, sealedScope(b, "s"), time.Second)
	begin := func(from PeerID, id uint64, size int64) {
		msg, err := marshal(kindSnapBegin, snapBegin{ID: id, Request: snapshotRequest(size)})
		if err != nil {
			t.Fatal(err)
		}
		// No reply subject: the answer goes nowhere.
		rt.onSnapBegin(&Msg{From: from, Subject: "snap", net: b}, msg[1:])
	}
	for range maxSnapTransfers {
		begin(NewPeerID(), 1, 10)
	}
	if n := rt.openSnapshots(); n != maxSnapTransfers {
		t.Fatalf("%d transfers open, want %d", n, maxSnapTransfers)
	}
	// Nothing can be spooled: the directory is a file.
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	rt.snapMu.Lock()
	rt.snapDir = notDir
	rt.snapMu.Unlock()
	rejected := b.Stats().Rejected
	begin(NewPeerID(), 1, snapMemMax+1)
	if got := b.Stats().Rejected; got != rejected+1 {
		t.Errorf("a begin over the transfer bound was not refused for it (rejected %d, want %d): it tried to spool first", got, rejected+1)
	}

	const tries = 8
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range tries {
		begin(NewPeerID(), 1, snapMemMax)
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > snapMemMax {
		t.Errorf("%d refused begins allocated %d bytes", tries, d)
	}
	if n := rt.openSnapshots(); n != maxSnapTransfers {
		t.Fatalf("%d transfers open, want %d", n, maxSnapTransfers)
	}
}

// TestSnapshotReceiverOutwaitsSender: the receiver keeps a transfer longer
// without a chunk than the sender waits for a chunk's ack, with a margin
// of an RPC timeout, so a chunk acknowledged late is not refused as
// expired.
func TestSnapshotReceiverOutwaitsSender(t *testing.T) {
	for _, timeout := range []time.Duration{time.Millisecond, 100 * time.Millisecond, time.Second, 10 * time.Second} {
		rt := &RaftTransport{timeout: timeout}
		if idle, wait := rt.snapshotIdle(), rt.snapshotProgress(); idle < wait+timeout {
			t.Errorf("timeout %v: the receiver drops a quiet transfer after %v, the sender waits %v per chunk", timeout, idle, wait)
		}
	}
}

// slowReader pauses before every Read of r.
type slowReader struct {
	r     io.Reader
	pause time.Duration
}

func (s slowReader) Read(p []byte) (int, error) {
	time.Sleep(s.pause)
	return s.r.Read(p)
}

// TestSnapshotSlowSource: a snapshot whose source yields a chunk only every
// third of snapshotProgress (a loaded disk) still goes through: a chunk
// acknowledged while the sender read the chunks after it counts, although
// more than snapshotProgress passed since it was sent when the sender
// looks. Each of the six chunks has that chance to fail.
func TestSnapshotSlowSource(t *testing.T) {
	p := sealedPair(t)
	a, b := p.transport(t, "slow", 200*time.Millisecond)
	serve(t, b, func(rpc raft.RPC) {
		_, err := io.Copy(io.Discard, rpc.Reader)
		rpc.Respond(&raft.InstallSnapshotResponse{Term: 1, Success: true}, err)
	})
	size := 6 * a.snapshotChunk()
	data := randomBytes(size, 1)
	var resp raft.InstallSnapshotResponse
	src := slowReader{r: bytes.NewReader(data), pause: a.snapshotProgress()/3 + 50*time.Millisecond}
	if err := a.InstallSnapshot("b", b.LocalAddr(), snapshotRequest(int64(size)), &resp, src); err != nil || !resp.Success {
		t.Fatalf("got %v, success %v", err, resp.Success)
	}
}
