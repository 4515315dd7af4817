package transport

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/nats-io/nats.go"
)

// TestMalformedFrames publishes broken frames to a plain subscription with
// nats.go directly. Each is dropped and counted (as malformed, or as
// rejected if it claims to be sealed), nothing is delivered, and a good
// message after them still arrives (it is also the barrier: one connection,
// one subscription).
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
		rejected  uint64
	}{
		{"empty", [][]byte{{}}, 1, 0},
		{"one byte", [][]byte{{frameVersion}}, 1, 0},
		{"short header", [][]byte{good("")[:headerLen-1]}, 1, 0},
		{"v1 header length", [][]byte{good("")[:34+8]}, 1, 0},
		{"not a frame", [][]byte{[]byte("hello, world, this is not a mosaik frame at all, nor is this")}, 1, 0},
		{"version 0", [][]byte{rawFrame(0, 0, from, 0, []byte("x"))}, 1, 0},
		{"version 1", [][]byte{rawFrame(1, 0, from, 0, []byte("x"))}, 1, 0},
		{"version 3", [][]byte{rawFrame(frameVersion+1, 0, from, 0, []byte("x"))}, 1, 0},
		// Sealed, or claiming a card or a broadcast: never for a plain
		// subscription, whatever follows.
		{"sealed", [][]byte{rawFrame(frameVersion, flagSealed, from, 0, []byte("x"))}, 0, 1},
		{"intro", [][]byte{rawFrame(frameVersion, flagIntro, from, 0, make([]byte, cardLen+1))}, 0, 1},
		{"broadcast", [][]byte{rawFrame(frameVersion, flagBroadcast, from, 0, []byte("x"))}, 0, 1},
		{"sealed fragment", [][]byte{rawFrame(frameVersion, flagSealed|flagFragment, from, 0, rawFragment(9, 0, 2, []byte("x")))}, 0, 1},
		{"fragment without header", [][]byte{rawFrame(frameVersion, flagFragment, from, 0, []byte{1, 2, 3})}, 1, 0},
		{"fragment count 0", [][]byte{frag(1, 0, 0, "x")}, 1, 0},
		{"fragment count 1", [][]byte{frag(2, 0, 1, "x")}, 1, 0},
		{"fragment without start", [][]byte{frag(3, 1, 2, "x")}, 1, 0},
		{"fragment index past count", [][]byte{frag(4, 0, 2, "x"), frag(4, 2, 2, "y")}, 1, 0},
		{"fragments out of order", [][]byte{frag(5, 0, 3, "a"), frag(5, 2, 3, "c"), frag(5, 1, 3, "b")}, 2, 0},
		{"fragment repeated", [][]byte{frag(6, 0, 2, "a"), frag(6, 0, 2, "a"), frag(6, 1, 2, "b")}, 2, 0},
		{"fragment count changes", [][]byte{frag(7, 0, 3, "a"), frag(7, 1, 4, "b"), frag(7, 2, 3, "c")}, 2, 0},
		{"fragments of two senders", [][]byte{
			frag(8, 0, 2, "a"),
			rawFrame(frameVersion, flagFragment, NewPeerID(), 0, rawFragment(8, 1, 2, []byte("b"))),
		}, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.Stats()
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
			after := b.Stats()
			if got := after.Malformed - before.Malformed; got != tc.malformed {
				t.Errorf("counted %d malformed, want %d", got, tc.malformed)
			}
			if got := after.Rejected - before.Rejected; got != tc.rejected {
				t.Errorf("counted %d rejected, want %d", got, tc.rejected)
			}
		})
	}
	b.fragMu.Lock()
	defer b.fragMu.Unlock()
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
	b.fragMu.Lock()
	if len(b.frags) != 2 || b.fragMem != 200 {
		t.Errorf("%d partial messages holding %d bytes, want 2 holding 200", len(b.frags), b.fragMem)
	}
	// Age them instead of waiting fragTTL.
	for _, p := range b.frags {
		p.start = p.start.Add(-fragTTL - time.Second)
	}
	b.fragMu.Unlock()
	before := b.Stats().Malformed

	// The next fragmented message collects the expired ones.
	data := pattern(20_000, 1)
	if err := a.publishPlain(a.Subject("in"), b.ID(), data); err != nil {
		t.Fatal(err)
	}
	if m := next(t, in); !bytes.Equal(m.Data, data) {
		t.Fatalf("got %d bytes", len(m.Data))
	}
	if got := b.Stats().Malformed - before; got != 2 {
		t.Errorf("%d expired partial messages counted, want 2", got)
	}
	b.fragMu.Lock()
	defer b.fragMu.Unlock()
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
		d, err := a.requestPlain(ctx, a.Subject("q"), b.ID(), []byte("q"))
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

// rawRPC puts hand-made bodies on a RaftTransport's subjects as an
// authenticated sender: a node of its own, with its own identity, that holds
// the scope's secret (testSecret). What it sends is sealed in the scope like
// any member's, so it reaches the transport's decoders: the tests check what
// those make of hostile bodies, not that the seal keeps strangers out.
type rawRPC struct {
	t     *testing.T
	n     *Network // the sender
	sc    *Scope   // the sender's side of the transport's scope
	to    PeerID
	nc    *nats.Conn // a raw connection, for frames sent by hand
	inbox string     // where replies to frames sent by hand would go
	sub   *nats.Subscription
}

func newRawRPC(t *testing.T, rt *RaftTransport) *rawRPC {
	t.Helper()
	n := join(t, rt.net)
	r := &rawRPC{t: t, n: n, sc: n.Scope(rt.sc.id, testSecret), to: rt.net.ID(), nc: rawConn(t, rt.net), inbox: nats.NewInbox()}
	if r.sc.key != rt.sc.key || !r.sc.Sealed() {
		t.Fatal("rawRPC: the transport's scope is not sealed with testSecret")
	}
	var err error
	if r.sub, err = r.nc.SubscribeSync(r.inbox); err != nil {
		t.Fatal(err)
	}
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return r
}

// ask sends body as a sealed request and returns the reply's body. The
// reply is taken only if it comes from the transport's node, sealed in the
// scope, for this request.
func (r *rawRPC) ask(subject string, body []byte) []byte {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	b, err := r.sc.Request(ctx, subject, r.to, body)
	if err != nil {
		r.t.Fatalf("no reply: %v", err)
	}
	return b
}

// frame seals body by hand for the transport's node, with any flags and
// request id.
func (r *rawRPC) frame(subject string, flags byte, reqID uint64, body []byte) []byte {
	r.t.Helper()
	return sealFrame(r.t, r.sc, subject, r.to, flags, reqID, body)
}

// TestRaftGarbage sends junk to a RaftTransport's subjects from a sender
// that holds the scope's secret: it never panics, never reaches Raft, and
// either gets an error reply or is dropped and counted. Junk that is not
// sealed in the scope never reaches the decoders at all.
func TestRaftGarbage(t *testing.T) {
	b := newNet(t)
	rt := newRaftTransport(t, sealedScope(b, "s"), 2*time.Second)
	var consumed, heartbeats atomic.Int32
	serve(t, rt, func(rpc raft.RPC) {
		consumed.Add(1)
		rpc.Respond(&raft.RequestVoteResponse{Granted: true}, nil)
	})
	rt.SetHeartbeatHandler(func(rpc raft.RPC) {
		heartbeats.Add(1)
		rpc.Respond(&raft.AppendEntriesResponse{}, nil)
	})
	rpcSubj := rt.subject("raft", b.ID())
	hbSubj := rt.subject("hb", b.ID())
	r := newRawRPC(t, rt)
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
			before := b.Stats().Malformed
			reply := r.ask(rpcSubj, tc.body)
			if _, err := parseReply(reply); err == nil {
				t.Errorf("reply %q is not an error", reply)
			}
			if strings.HasPrefix(tc.name, "snapshot chunk unknown") || strings.HasPrefix(tc.name, "snapshot end unknown") {
				return // well formed, for a transfer nobody began
			}
			if got := b.Stats().Malformed - before; got != 1 {
				t.Errorf("counted %d malformed, want 1", got)
			}
		})
	}
	r.t = t

	// Dropped and counted: nothing to answer or nobody to answer to.
	before := b.Stats()
	pub := func(subject string, frame []byte, reply string) {
		if err := r.nc.PublishRequest(subject, reply, frame); err != nil {
			t.Fatal(err)
		}
	}
	pub(rpcSubj, []byte("not a frame"), r.inbox)
	pub(rpcSubj, r.frame(rpcSubj, 0, 99, nil), r.inbox)                                            // no kind
	pub(rpcSubj, r.frame(rpcSubj, 0, 0, kind(kindVote, cbor(raft.RequestVoteRequest{}))), r.inbox) // no request id
	pub(rpcSubj, r.frame(rpcSubj, flagReply, 7, kind(kindVote, cbor(raft.RequestVoteRequest{}))), r.inbox)
	if err := r.nc.Publish(rpcSubj, r.frame(rpcSubj, 0, 7, kind(kindVote, cbor(raft.RequestVoteRequest{})))); err != nil {
		t.Fatal(err) // no inbox
	}
	pub(hbSubj, []byte{}, r.inbox)
	pub(hbSubj, r.frame(hbSubj, 0, 8, nil), r.inbox)
	pub(hbSubj, r.frame(hbSubj, 0, 8, []byte{kindVote, 0xa0}), r.inbox)
	pub(hbSubj, r.frame(hbSubj, 0, 8, kind(kindAppend, []byte{0xff})), r.inbox)
	pub(hbSubj, r.frame(hbSubj, 0, 8, kind(kindAppend, hugeArray)), r.inbox)
	// Refused unread: not sealed at all, or sealed with another secret. A
	// well-formed vote either way: only the seal keeps it from Raft.
	vote := kind(kindVote, cbor(raft.RequestVoteRequest{Term: 1}))
	pub(rpcSubj, rawFrame(frameVersion, 0, r.n.ID(), 9, vote), r.inbox)
	outsider := join(t, b)
	pub(rpcSubj, sealFrame(t, outsider.Scope(rt.sc.id, NewSecret()), rpcSubj, b.ID(), 0, 9, vote), r.inbox)
	pub(hbSubj, sealFrame(t, outsider.Scope(rt.sc.id, Secret{}), hbSubj, b.ID(), 0, 9, vote), r.inbox)
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "junk counted", func() bool {
		st := b.Stats()
		return st.Malformed-before.Malformed == 10 && st.Rejected-before.Rejected == 3
	})
	if got := rt.sc.Rejected(); got != 3 {
		t.Errorf("scope counted %d rejected frames, want 3", got)
	}
	if f := rt.rpcSub.Failed() + rt.hbSub.Failed(); f != 3 {
		t.Errorf("subscriptions counted %d frames that did not open, want 3", f)
	}
	// The next reply is for the next request.
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
	caller := newRaftTransport(t, sealedScope(a, "s"), 2*time.Second)
	var resp raft.RequestVoteResponse
	if err := caller.RequestVote("b", rt.LocalAddr(), &raft.RequestVoteRequest{Term: 1}, &resp); err != nil || !resp.Granted {
		t.Fatalf("vote after junk: %+v, %v", resp, err)
	}
	var hb raft.AppendEntriesResponse
	if err := caller.AppendEntries("b", rt.LocalAddr(), &raft.AppendEntriesRequest{Term: 1, Leader: []byte(caller.LocalAddr())}, &hb); err != nil {
		t.Fatalf("heartbeat after junk: %v", err)
	}
	if consumed.Load() != 1 || heartbeats.Load() != 1 {
		t.Errorf("consumer got %d RPCs, heartbeat handler %d; want 1 and 1", consumed.Load(), heartbeats.Load())
	}
	// b answered those after every piece of junk on both subjects, on one
	// connection: a reply to junk would be at the raw inbox by now.
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := r.sub.Pending(); n != 0 {
		m, _ := r.sub.NextMsg(0)
		t.Errorf("%d replies to junk, the first %x", n, trunc(m.Data))
	}
}

// TestRaftHeartbeatSubjectOnlyTakesHeartbeats: an AppendEntries with entries
// sent to the heartbeat subject must not reach the heartbeat handler, which
// Raft runs outside its main loop and which is only safe for heartbeats.
func TestRaftHeartbeatSubjectOnlyTakesHeartbeats(t *testing.T) {
	b := newNet(t)
	rt := newRaftTransport(t, sealedScope(b, "s"), 2*time.Second)
	var wrong, right atomic.Int32
	rt.SetHeartbeatHandler(func(rpc raft.RPC) {
		if req, ok := rpc.Command.(*raft.AppendEntriesRequest); !ok || !isHeartbeat(req) {
			wrong.Add(1)
		} else {
			right.Add(1)
		}
		rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
	})
	serve(t, rt, func(rpc raft.RPC) { rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil) })
	r := newRawRPC(t, rt)
	body, err := encodeAppend(&raft.AppendEntriesRequest{Term: 3, Leader: []byte(r.n.ID().String()), PrevLogEntry: 4, PrevLogTerm: 3,
		Entries: []*raft.Log{{Index: 5, Term: 3, Data: []byte("cmd")}}, LeaderCommitIndex: 4})
	if err != nil {
		t.Fatal(err)
	}
	r.ask(rt.subject("hb", b.ID()), body) // any reply, error or not
	if n := wrong.Load(); n != 0 {
		t.Error("heartbeat handler ran an AppendEntries with entries")
	}
	// A real heartbeat on the same subject does take the fast path.
	hb, err := encodeAppend(&raft.AppendEntriesRequest{Term: 3, Leader: []byte(r.n.ID().String())})
	if err != nil {
		t.Fatal(err)
	}
	r.ask(rt.subject("hb", b.ID()), hb)
	if wrong.Load() != 0 || right.Load() != 1 {
		t.Errorf("heartbeat handler took %d heartbeats and %d others, want 1 and 0", right.Load(), wrong.Load())
	}
}
