package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/nats-io/nats.go"
)

// TestMalformedFrames publishes broken frames with nats.go directly. Each is
// dropped and counted, nothing is delivered, and a good message after them
// still arrives (it is also the barrier: one connection, one subscription).
func TestMalformedFrames(t *testing.T) {
	b := newNet(t)
	in := collect(t, b, b.Subject("in"))
	raw := rawConn(t, b)
	from := NewPeerID()
	good := func(s string) []byte { return rawFrame(frameVersion, 0, from, 0, []byte(s)) }
	frag := func(id uint64, idx, count uint32, data string) []byte {
		return rawFrame(frameVersion, flagFragment, from, 0, rawFragment(id, idx, count, []byte(data)))
	}
	for i, tc := range []struct {
		name      string
		frames    [][]byte
		malformed uint64
	}{
		{"empty", [][]byte{{}}, 1},
		{"one byte", [][]byte{{frameVersion}}, 1},
		{"short header", [][]byte{good("")[:headerLen-1]}, 1},
		{"not a frame", [][]byte{[]byte("hello, world, this is not a mosaik frame at all")}, 1},
		{"version 0", [][]byte{rawFrame(0, 0, from, 0, []byte("x"))}, 1},
		{"version 2", [][]byte{rawFrame(2, 0, from, 0, []byte("x"))}, 1},
		{"fragment without header", [][]byte{rawFrame(frameVersion, flagFragment, from, 0, []byte{1, 2, 3})}, 1},
		{"fragment count 0", [][]byte{frag(1, 0, 0, "x")}, 1},
		{"fragment count 1", [][]byte{frag(2, 0, 1, "x")}, 1},
		{"fragment without start", [][]byte{frag(3, 1, 2, "x")}, 1},
		{"fragment index past count", [][]byte{frag(4, 0, 2, "x"), frag(4, 2, 2, "y")}, 1},
		{"fragments out of order", [][]byte{frag(5, 0, 3, "a"), frag(5, 2, 3, "c"), frag(5, 1, 3, "b")}, 2},
		{"fragment repeated", [][]byte{frag(6, 0, 2, "a"), frag(6, 0, 2, "a"), frag(6, 1, 2, "b")}, 2},
		{"fragment count changes", [][]byte{frag(7, 0, 3, "a"), frag(7, 1, 4, "b"), frag(7, 2, 3, "c")}, 2},
		{"fragments of two senders", [][]byte{
			frag(8, 0, 2, "a"),
			rawFrame(frameVersion, flagFragment, NewPeerID(), 0, rawFragment(8, 1, 2, []byte("b"))),
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.Stats().Malformed
			for _, f := range tc.frames {
				if err := raw.Publish(b.Subject("in"), f); err != nil {
					t.Fatal(err)
				}
			}
			marker := fmt.Sprint("good ", i)
			if err := raw.Publish(b.Subject("in"), good(marker)); err != nil {
				t.Fatal(err)
			}
			if m := next(t, in); string(m.Data) != marker {
				t.Fatalf("delivered %q", trunc(m.Data))
			}
			if got := b.Stats().Malformed - before; got != tc.malformed {
				t.Errorf("counted %d malformed, want %d", got, tc.malformed)
			}
		})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.frags) != 1 || b.fragMem != 1 { // "fragments of two senders" waits for its end
		t.Errorf("%d partial messages holding %d bytes", len(b.frags), b.fragMem)
	}
}

// TestIncompleteFragmentsExpire: a fragment stream that never completes is
// never delivered and is dropped and counted once it is older than fragTTL.
func TestIncompleteFragmentsExpire(t *testing.T) {
	a := newNet(t, withMaxChunk(4096))
	b := join(t, a)
	in := collect(t, b, b.Subject("in"))
	raw := rawConn(t, b)
	from := NewPeerID()
	for id, count := range []uint32{3, 1<<32 - 1} {
		if err := raw.Publish(b.Subject("in"), rawFrame(frameVersion, flagFragment, from, 0,
			rawFragment(uint64(id), 0, count, make([]byte, 100)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Publish(b.Subject("in"), rawFrame(frameVersion, 0, from, 0, []byte("barrier"))); err != nil {
		t.Fatal(err)
	}
	expect(t, in, "barrier")
	b.mu.Lock()
	if len(b.frags) != 2 || b.fragMem != 200 {
		t.Errorf("%d partial messages holding %d bytes, want 2 holding 200", len(b.frags), b.fragMem)
	}
	// Age them instead of waiting fragTTL.
	for _, p := range b.frags {
		p.start = p.start.Add(-fragTTL - time.Second)
	}
	b.mu.Unlock()
	before := b.Stats().Malformed

	// The next fragmented message collects the expired ones.
	data := pattern(20_000, 1)
	if err := a.Publish(a.Subject("in"), b.ID(), data); err != nil {
		t.Fatal(err)
	}
	if m := next(t, in); !bytes.Equal(m.Data, data) {
		t.Fatalf("got %d bytes", len(m.Data))
	}
	if got := b.Stats().Malformed - before; got != 2 {
		t.Errorf("%d expired partial messages counted, want 2", got)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.frags) != 0 || b.fragMem != 0 {
		t.Errorf("%d partial messages holding %d bytes after expiry", len(b.frags), b.fragMem)
	}
}

// TestMalformedReplies sends junk to a node's inbox while it waits for a
// reply: the request still gets the real one.
func TestMalformedReplies(t *testing.T) {
	a := newNet(t)
	b := join(t, a)
	held := make(chan *Msg, 1)
	subscribe(t, b, b.Subject("q"), func(m *Msg) { held <- m })
	raw := rawConn(t, a)
	type result struct {
		data []byte
		err  error
	}
	res := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		d, err := a.Request(ctx, a.Subject("q"), b.ID(), []byte("q"))
		res <- result{d, err}
	}()
	m := <-held
	inbox := a.Subject("in", a.ID().String(), "7") // replies arrive on inbox.<request id>
	for _, f := range [][]byte{
		{},
		[]byte("junk"),
		rawFrame(frameVersion, flagReply, NewPeerID(), m.reqID, []byte("impostor")), // right id, wrong peer
		rawFrame(frameVersion, flagReply, b.ID(), m.reqID+1000, []byte("unknown request")),
		rawFrame(frameVersion, flagReply|flagFragment, b.ID(), m.reqID, []byte{1}),
	} {
		if err := raw.Publish(inbox, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "junk processed", func() bool { return a.Stats().Malformed == 3 })
	if err := m.Respond([]byte("real")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-res:
		if r.err != nil || string(r.data) != "real" {
			t.Fatalf("Request = %q, %v", r.data, r.err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no reply")
	}
}

// rawRPC sends a frame to a raft subject with a reply inbox and returns the
// reply body, or nil if none comes within wait.
type rawRPC struct {
	t     *testing.T
	nc    *nats.Conn
	sub   *nats.Subscription
	inbox string
	from  PeerID
	to    PeerID
	reqID uint64
}

func newRawRPC(t *testing.T, n *Network) *rawRPC {
	r := &rawRPC{t: t, nc: rawConn(t, n), inbox: nats.NewInbox(), from: NewPeerID(), to: n.ID()}
	var err error
	if r.sub, err = r.nc.SubscribeSync(r.inbox); err != nil {
		t.Fatal(err)
	}
	return r
}

// ask sends body as a request and returns the reply's body.
func (r *rawRPC) ask(subject string, body []byte) []byte {
	r.t.Helper()
	r.reqID++
	if err := r.nc.PublishRequest(subject, r.inbox, rawFrame(frameVersion, 0, r.from, r.reqID, body)); err != nil {
		r.t.Fatal(err)
	}
	m, err := r.sub.NextMsg(waitTimeout)
	if err != nil {
		r.t.Fatalf("no reply: %v", err)
	}
	f := m.Data
	if len(f) < headerLen || f[0] != frameVersion || f[1] != flagReply ||
		binary.BigEndian.Uint64(f[34:42]) != r.reqID || !bytes.Equal(f[2:34], r.to[:]) {
		r.t.Fatalf("reply frame %x", trunc(f))
	}
	return f[headerLen:]
}

// TestRaftGarbage sends junk to a RaftTransport's subjects: it never panics,
// never reaches Raft, and either gets an error reply or is dropped and
// counted.
func TestRaftGarbage(t *testing.T) {
	b := newNet(t)
	rt := newRaftTransport(t, b, "s", 2*time.Second)
	var consumed, heartbeats atomic.Int32
	serve(t, rt, func(rpc raft.RPC) {
		consumed.Add(1)
		rpc.Respond(&raft.RequestVoteResponse{Granted: true}, nil)
	})
	rt.SetHeartbeatHandler(func(rpc raft.RPC) {
		heartbeats.Add(1)
		rpc.Respond(&raft.AppendEntriesResponse{}, nil)
	})
	rpcSubj := b.Subject("raft", "s", b.ID().String())
	hbSubj := b.Subject("hb", "s", b.ID().String())
	r := newRawRPC(t, b)
	cbor := func(v any) []byte {
		out, err := marshal(0, v)
		if err != nil {
			t.Fatal(err)
		}
		return out[1:]
	}
	kind := func(k byte, body []byte) []byte { return append([]byte{k}, body...) }
	hugeArray := []byte{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

	// Answered with an error.
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"unknown kind", []byte{99, 1, 2, 3}},
		{"kind 0", []byte{0}},
		{"append empty", []byte{kindAppend}},
		{"append junk", kind(kindAppend, []byte{0xff, 0x00, 0x13})},
		{"append huge array", kind(kindAppend, hugeArray)},
		{"append wrong shape", kind(kindAppend, cbor([]string{"a", "b"}))},
		{"append bad entry", kind(kindAppend, cbor([]any{[]any{1, nil, nil}, 1, nil, 0, 0, []any{"x"}, 0}))},
		{"vote junk", kind(kindVote, []byte{0xa1})},
		{"vote wrong type", kind(kindVote, cbor("a string"))},
		{"prevote junk", kind(kindPreVote, []byte{0x5f})},
		{"timeout-now junk", kind(kindTimeoutNow, hugeArray)},
		{"snapshot begin junk", kind(kindSnapBegin, []byte{0x82, 0x01})},
		{"snapshot begin without request", kind(kindSnapBegin, cbor(snapBegin{ID: 1}))},
		{"snapshot chunk short", kind(kindSnapChunk, []byte{0xff})},
		{"snapshot end short", kind(kindSnapEnd, []byte{0, 0, 0, 0, 0, 0, 0})},
		{"snapshot chunk unknown", snapChunkMsg(kindSnapChunk, 42, []byte("x"))},
		{"snapshot end unknown", snapChunkMsg(kindSnapEnd, 43, nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.t = t
			reply := r.ask(rpcSubj, tc.body)
			if _, err := parseReply(reply); err == nil {
				t.Errorf("reply %q is not an error", reply)
			}
		})
	}
	r.t = t

	// Dropped and counted: nothing to answer or nobody to answer to.
	before := b.Stats().Malformed
	pub := func(subject string, frame []byte, reply string) {
		if err := r.nc.PublishRequest(subject, reply, frame); err != nil {
			t.Fatal(err)
		}
	}
	pub(rpcSubj, []byte("not a frame"), r.inbox)
	pub(rpcSubj, rawFrame(frameVersion, 0, r.from, 99, nil), r.inbox)                     // no kind
	pub(rpcSubj, rawFrame(frameVersion, 0, r.from, 0, []byte{kindVote}), r.inbox)         // no request id
	pub(rpcSubj, rawFrame(frameVersion, flagReply, r.from, 7, []byte{kindVote}), r.inbox) // a reply
	if err := r.nc.Publish(rpcSubj, rawFrame(frameVersion, 0, r.from, 7, kind(kindVote, cbor(raft.RequestVoteRequest{})))); err != nil {
		t.Fatal(err) // no inbox
	} // no inbox
	pub(hbSubj, []byte{}, r.inbox)
	pub(hbSubj, rawFrame(frameVersion, 0, r.from, 8, nil), r.inbox)
	pub(hbSubj, rawFrame(frameVersion, 0, r.from, 8, []byte{kindVote, 0xa0}), r.inbox)
	pub(hbSubj, rawFrame(frameVersion, 0, r.from, 8, kind(kindAppend, []byte{0xff})), r.inbox)
	pub(hbSubj, rawFrame(frameVersion, 0, r.from, 8, kind(kindAppend, hugeArray)), r.inbox)
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "junk counted", func() bool { return b.Stats().Malformed-before == 10 })
	// The next reply is for the next request: the junk got none.
	if _, err := parseReply(r.ask(rpcSubj, []byte{99})); err == nil {
		t.Error("unknown kind answered without error")
	}

	// Raft never saw any of it, and real RPCs still work.
	if n := consumed.Load(); n != 0 {
		t.Errorf("consumer got %d junk RPCs", n)
	}
	if n := heartbeats.Load(); n != 0 {
		t.Errorf("heartbeat handler got %d junk RPCs", n)
	}
	a := join(t, b)
	caller := newRaftTransport(t, a, "s", 2*time.Second)
	var resp raft.RequestVoteResponse
	if err := caller.RequestVote("b", rt.LocalAddr(), &raft.RequestVoteRequest{Term: 1}, &resp); err != nil || !resp.Granted {
		t.Fatalf("vote after junk: %+v, %v", resp, err)
	}
	var hb raft.AppendEntriesResponse
	if err := caller.AppendEntries("b", rt.LocalAddr(), &raft.AppendEntriesRequest{Term: 1, Leader: []byte("x")}, &hb); err != nil {
		t.Fatalf("heartbeat after junk: %v", err)
	}
	if consumed.Load() != 1 || heartbeats.Load() != 1 {
		t.Errorf("consumer got %d RPCs, heartbeat handler %d; want 1 and 1", consumed.Load(), heartbeats.Load())
	}
}

// TestRaftHeartbeatSubjectOnlyTakesHeartbeats: an AppendEntries with entries
// sent to the heartbeat subject must not reach the heartbeat handler, which
// Raft runs outside its main loop and which is only safe for heartbeats.
func TestRaftHeartbeatSubjectOnlyTakesHeartbeats(t *testing.T) {
	b := newNet(t)
	rt := newRaftTransport(t, b, "s", 2*time.Second)
	var wrong atomic.Int32
	rt.SetHeartbeatHandler(func(rpc raft.RPC) {
		if req, ok := rpc.Command.(*raft.AppendEntriesRequest); !ok || !isHeartbeat(req) {
			wrong.Add(1)
		}
		rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
	})
	serve(t, rt, func(rpc raft.RPC) { rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil) })
	body, err := encodeAppend(&raft.AppendEntriesRequest{Term: 3, Leader: []byte("l"), PrevLogEntry: 4, PrevLogTerm: 3,
		Entries: []*raft.Log{{Index: 5, Term: 3, Data: []byte("cmd")}}, LeaderCommitIndex: 4})
	if err != nil {
		t.Fatal(err)
	}
	r := newRawRPC(t, b)
	r.ask(b.Subject("hb", "s", b.ID().String()), body) // any reply, error or not
	if n := wrong.Load(); n != 0 {
		t.Error("heartbeat handler ran an AppendEntries with entries")
	}
}
