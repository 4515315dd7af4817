package transport

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/nats-io/nats-server/v2/server"
)

// newRaftTransport listens for raft RPCs of scope sc on its node until the
// test ends. It flushes, so RPCs other nodes send from now on reach it.
func newRaftTransport(t testing.TB, sc *Scope, timeout time.Duration) *RaftTransport {
	t.Helper()
	rt, err := NewRaftTransport(sc, timeout)
	if err != nil {
		t.Fatalf("NewRaftTransport: %v", err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("RaftTransport.Close: %v", err)
		}
	})
	flush(t, sc.Network())
	return rt
}

// serve plays Raft on tr: it hands every RPC from tr's consumer to fn until
// the test ends. fn must not block.
func serve(t testing.TB, tr *RaftTransport, fn func(raft.RPC)) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case rpc := <-tr.Consumer():
				fn(rpc)
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
}

// raftPair is two nodes of one network with a RaftTransport each, in one
// scope: the tests call from a and answer on b.
type raftPair struct {
	na, nb *Network
	a, b   *RaftTransport
	secret Secret // of the pair's scopes; zero: open scopes
}

// scope returns the pair's scope name on n.
func (p raftPair) scope(n *Network, name string) *Scope { return n.Scope(scopeID(name), p.secret) }

// transport adds a RaftTransport for another scope on both nodes.
func (p raftPair) transport(t testing.TB, scope string, timeout time.Duration) (a, b *RaftTransport) {
	return newRaftTransport(t, p.scope(p.na, scope), timeout), newRaftTransport(t, p.scope(p.nb, scope), timeout)
}

type raftSetup func(t testing.TB) raftPair

const suiteTimeout = 5 * time.Second

// newPair starts two nodes, the second with opts, and a transport in a
// scope with secret (none: an open scope) on each.
func newPair(t testing.TB, secret Secret, optsA, optsB []Option) raftPair {
	na := newNet(t, optsA...)
	nb := join(t, na, optsB...)
	p := raftPair{na: na, nb: nb, secret: secret}
	p.a, p.b = p.transport(t, "scope", suiteTimeout)
	if p.a.sc.Sealed() != !secret.IsZero() {
		t.Fatalf("scope sealed %v with secret %v", p.a.sc.Sealed(), secret)
	}
	return p
}

// openPair runs the transports in an open scope: no secret, but every RPC
// still sealed with the pair's own keys.
func openPair(t testing.TB) raftPair { return newPair(t, Secret{}, nil, nil) }

// sealedPair runs the transports in a scope sealed with a secret.
func sealedPair(t testing.TB) raftPair { return newPair(t, NewSecret(), nil, nil) }

// faultyPair is sealedPair with fault injection on both nodes: every
// message either node sends waits 2ms.
func faultyPair(t testing.TB) raftPair {
	fa, fb := NewFaults(), NewFaults()
	fa.Delay(2 * time.Millisecond)
	fb.Delay(2 * time.Millisecond)
	return newPair(t, NewSecret(), []Option{WithFaults(fa)}, []Option{WithFaults(fb)})
}

// TestRaftTransport runs the conformance suite in an open scope, in a sealed
// one, and in a sealed one over the fault-injecting wrapper.
func TestRaftTransport(t *testing.T) {
	for _, s := range []struct {
		name  string
		setup raftSetup
	}{{"open", openPair}, {"sealed", sealedPair}, {"faults", faultyPair}} {
		setup := s.setup
		t.Run(s.name, func(t *testing.T) {
			t.Run("Identity", func(t *testing.T) { testRaftIdentity(t, setup) })
			t.Run("AppendEntries", func(t *testing.T) { testAppendEntries(t, setup) })
			t.Run("AppendEntriesLarge", func(t *testing.T) { testAppendEntriesLarge(t, setup) })
			t.Run("HeartbeatHandler", func(t *testing.T) { testHeartbeatHandler(t, setup) })
			t.Run("HeartbeatConsumer", func(t *testing.T) { testHeartbeatConsumer(t, setup) })
			t.Run("Votes", func(t *testing.T) { testVotes(t, setup) })
			t.Run("RemoteError", func(t *testing.T) { testRemoteError(t, setup) })
			t.Run("Pipeline", func(t *testing.T) { testPipeline(t, setup) })
			t.Run("PipelineTimeout", func(t *testing.T) { testPipelineTimeout(t, setup) })
			t.Run("PipelineClose", func(t *testing.T) { testPipelineClose(t, setup) })
			t.Run("PipelineTransportClose", func(t *testing.T) { testPipelineTransportClose(t, setup) })
			t.Run("Close", func(t *testing.T) { testRaftClose(t, setup) })
			t.Run("InstallSnapshot", func(t *testing.T) { testInstallSnapshot(t, setup) })
			t.Run("InstallSnapshotEarlyError", func(t *testing.T) { testInstallSnapshotEarlyError(t, setup) })
			t.Run("Unreachable", func(t *testing.T) { testUnreachable(t, setup) })
		})
	}
}

// header is the RPC header of the node at addr: a node's id is its
// address, and the transport refuses an RPC whose header names anyone but
// its sender.
func header(addr raft.ServerAddress) raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(addr), Addr: []byte(addr)}
}

// equalAppend compares requests field by field: AppendedAt loses its
// monotonic reading and location on the wire, but not a nanosecond.
func equalAppend(want, got *raft.AppendEntriesRequest) error {
	if !reflect.DeepEqual(want.RPCHeader, got.RPCHeader) {
		return fmt.Errorf("header %+v, want %+v", got.RPCHeader, want.RPCHeader)
	}
	if got.Term != want.Term || !bytes.Equal(got.Leader, want.Leader) || got.PrevLogEntry != want.PrevLogEntry ||
		got.PrevLogTerm != want.PrevLogTerm || got.LeaderCommitIndex != want.LeaderCommitIndex {
		return fmt.Errorf("got %+v, want %+v", got, want)
	}
	if len(got.Entries) != len(want.Entries) {
		return fmt.Errorf("%d entries, want %d", len(got.Entries), len(want.Entries))
	}
	for i, w := range want.Entries {
		g := got.Entries[i]
		if g.Index != w.Index || g.Term != w.Term || g.Type != w.Type ||
			!bytes.Equal(g.Data, w.Data) || !bytes.Equal(g.Extensions, w.Extensions) {
			return fmt.Errorf("entry %d: got index %d term %d type %v data %d bytes ext %q; want index %d term %d type %v data %d bytes ext %q",
				i, g.Index, g.Term, g.Type, len(g.Data), g.Extensions, w.Index, w.Term, w.Type, len(w.Data), w.Extensions)
		}
		if g.AppendedAt.IsZero() != w.AppendedAt.IsZero() || !g.AppendedAt.Equal(w.AppendedAt) ||
			(!w.AppendedAt.IsZero() && g.AppendedAt.UnixNano() != w.AppendedAt.UnixNano()) {
			return fmt.Errorf("entry %d: AppendedAt %v, want %v", i, g.AppendedAt, w.AppendedAt)
		}
	}
	return nil
}

func testRaftIdentity(t *testing.T, setup raftSetup) {
	p := setup(t)
	if p.a.LocalAddr() != raft.ServerAddress(p.na.ID().String()) {
		t.Errorf("LocalAddr %q, want the peer id", p.a.LocalAddr())
	}
	if got := p.a.DecodePeer(p.a.EncodePeer("id", p.b.LocalAddr())); got != p.b.LocalAddr() {
		t.Errorf("DecodePeer(EncodePeer) = %q", got)
	}
	// Subjects name the scope by its full id in hex: one token, whatever
	// the id's bytes.
	id := scopeID("scope")
	if got, want := p.a.subject("raft", p.nb.ID()), p.na.Subject("raft", hex.EncodeToString(id[:]), p.nb.ID().String()); got != want {
		t.Errorf("subject %q, want %q", got, want)
	}
	if p.a.sc.Network() != p.na {
		t.Error("transport's scope is not on its node")
	}
	rt := newRaftTransport(t, p.scope(p.na, "default"), 0)
	if rt.timeout != p.na.RPCTimeout() {
		t.Errorf("default timeout %v, want %v", rt.timeout, p.na.RPCTimeout())
	}
}

func testAppendEntries(t *testing.T, setup raftSetup) {
	p := setup(t)
	args := &raft.AppendEntriesRequest{
		RPCHeader:    header(p.a.LocalAddr()),
		Term:         10,
		Leader:       []byte(p.a.LocalAddr()),
		PrevLogEntry: 100,
		PrevLogTerm:  4,
		Entries: []*raft.Log{
			{Index: 101, Term: 4, Type: raft.LogCommand, Data: []byte("cmd"), Extensions: []byte("ext"),
				AppendedAt: time.Unix(1_700_000_000, 123_456_789)},
			{Index: 102, Term: 4, Type: raft.LogNoop, AppendedAt: time.Now()},
			{Index: 103, Term: 5, Type: raft.LogConfiguration, Data: testConfiguration()},
			{Index: 104, Term: 5, Type: raft.LogBarrier, Data: []byte{}, AppendedAt: time.Unix(0, 1)},
		},
		LeaderCommitIndex: 90,
	}
	want := raft.AppendEntriesResponse{
		RPCHeader: header(p.b.LocalAddr()), Term: 4, LastLog: 90, Success: true, NoRetryBackoff: true,
	}
	serve(t, p.b, func(rpc raft.RPC) {
		req, ok := rpc.Command.(*raft.AppendEntriesRequest)
		if !ok {
			t.Errorf("command %T", rpc.Command)
			rpc.Respond(nil, errors.New("unexpected"))
			return
		}
		if err := equalAppend(args, req); err != nil {
			t.Error(err)
		}
		if rpc.Reader != nil {
			t.Error("AppendEntries RPC has a Reader")
		}
		resp := want
		rpc.Respond(&resp, nil)
	})
	for range 3 {
		var got raft.AppendEntriesResponse
		if err := p.a.AppendEntries("follower", p.b.LocalAddr(), args, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("response %+v, want %+v", got, want)
		}
	}
}

// testAppendEntriesLarge sends an entry larger than one NATS message (it
// goes alone, in fragments; smaller ones are split into requests that fit).
func testAppendEntriesLarge(t *testing.T, setup raftSetup) {
	p := setup(t)
	args := &raft.AppendEntriesRequest{RPCHeader: header(p.a.LocalAddr()), Term: 3, PrevLogEntry: 1, LeaderCommitIndex: 1}
	args.Entries = append(args.Entries, &raft.Log{Index: 2, Term: 3, Type: raft.LogCommand, Data: pattern(2700<<10, 7)})
	serve(t, p.b, func(rpc raft.RPC) {
		if err := equalAppend(args, rpc.Command.(*raft.AppendEntriesRequest)); err != nil {
			t.Error(err)
		}
		rpc.Respond(&raft.AppendEntriesResponse{Term: 3, LastLog: 4, Success: true}, nil)
	})
	var got raft.AppendEntriesResponse
	if err := p.a.AppendEntries("f", p.b.LocalAddr(), args, &got); err != nil {
		t.Fatal(err)
	}
	if got.LastLog != 4 || !got.Success {
		t.Errorf("response %+v", got)
	}
}

func heartbeat(p raftPair, term uint64) *raft.AppendEntriesRequest {
	return &raft.AppendEntriesRequest{RPCHeader: header(p.a.LocalAddr()), Term: term, Leader: []byte(p.a.LocalAddr())}
}

// testHeartbeatHandler sends heartbeats while the consumer is stuck on
// another RPC: they take the fast path and do not queue behind it.
func testHeartbeatHandler(t *testing.T, setup raftSetup) {
	p := setup(t)
	var handled atomic.Int32
	p.b.SetHeartbeatHandler(func(rpc raft.RPC) {
		req, ok := rpc.Command.(*raft.AppendEntriesRequest)
		if !ok || !isHeartbeat(req) {
			t.Errorf("heartbeat handler got %T %+v", rpc.Command, rpc.Command)
		}
		handled.Add(1)
		rpc.Respond(&raft.AppendEntriesResponse{Term: req.Term, Success: true, LastLog: 77}, nil)
	})
	// Nobody reads the consumer yet: this vote blocks it.
	voted := make(chan error, 1)
	go func() {
		var resp raft.RequestVoteResponse
		voted <- p.a.RequestVote("b", p.b.LocalAddr(), &raft.RequestVoteRequest{Term: 1}, &resp)
	}()
	for i := range uint64(5) {
		args := heartbeat(p, 7+i)
		if !isHeartbeat(args) {
			t.Fatalf("test heartbeat %+v is not a heartbeat", args)
		}
		var resp raft.AppendEntriesResponse
		if err := p.a.AppendEntries("b", p.b.LocalAddr(), args, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Term != 7+i || resp.LastLog != 77 || !resp.Success {
			t.Errorf("heartbeat response %+v", resp)
		}
	}
	if handled.Load() != 5 {
		t.Errorf("handler called %d times, want 5", handled.Load())
	}
	// The vote was waiting on the consumer all along.
	select {
	case rpc := <-p.b.Consumer():
		if _, ok := rpc.Command.(*raft.RequestVoteRequest); !ok {
			t.Fatalf("consumer got %T, want the vote", rpc.Command)
		}
		rpc.Respond(&raft.RequestVoteResponse{Term: 1, Granted: true}, nil)
	case <-time.After(waitTimeout):
		t.Fatal("the vote never reached the consumer")
	}
	if err := recvErr(t, voted); err != nil {
		t.Fatal(err)
	}
}

// testHeartbeatConsumer: without a handler a heartbeat goes to the consumer.
func testHeartbeatConsumer(t *testing.T, setup raftSetup) {
	p := setup(t)
	p.b.SetHeartbeatHandler(func(raft.RPC) { t.Error("removed handler called") })
	p.b.SetHeartbeatHandler(nil)
	args := heartbeat(p, 9)
	serve(t, p.b, func(rpc raft.RPC) {
		req, ok := rpc.Command.(*raft.AppendEntriesRequest)
		if !ok {
			t.Errorf("command %T", rpc.Command)
		} else if err := equalAppend(args, req); err != nil {
			t.Error(err)
		}
		rpc.Respond(&raft.AppendEntriesResponse{Term: 9, Success: true}, nil)
	})
	var resp raft.AppendEntriesResponse
	if err := p.a.AppendEntries("b", p.b.LocalAddr(), args, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Term != 9 || !resp.Success {
		t.Errorf("response %+v", resp)
	}
}

func testVotes(t *testing.T, setup raftSetup) {
	p := setup(t)
	vote := &raft.RequestVoteRequest{RPCHeader: header(p.a.LocalAddr()), Term: 20,
		Candidate: []byte(p.a.LocalAddr()), LastLogIndex: 30, LastLogTerm: 19, LeadershipTransfer: true}
	voteResp := raft.RequestVoteResponse{RPCHeader: header(p.b.LocalAddr()), Term: 20, Peers: []byte("peers"), Granted: true}
	pre := &raft.RequestPreVoteRequest{RPCHeader: header(p.a.LocalAddr()), Term: 21, LastLogIndex: 31, LastLogTerm: 20}
	preResp := raft.RequestPreVoteResponse{RPCHeader: header(p.b.LocalAddr()), Term: 21, Granted: true}
	tn := &raft.TimeoutNowRequest{RPCHeader: header(p.a.LocalAddr())}
	tnResp := raft.TimeoutNowResponse{RPCHeader: header(p.b.LocalAddr())}
	serve(t, p.b, func(rpc raft.RPC) {
		var want, resp any
		switch rpc.Command.(type) {
		case *raft.RequestVoteRequest:
			want, resp = vote, &voteResp
		case *raft.RequestPreVoteRequest:
			want, resp = pre, &preResp
		case *raft.TimeoutNowRequest:
			want, resp = tn, &tnResp
		default:
			t.Errorf("command %T", rpc.Command)
		}
		if !reflect.DeepEqual(rpc.Command, want) {
			t.Errorf("command %+v, want %+v", rpc.Command, want)
		}
		rpc.Respond(resp, nil)
	})
	var gotVote raft.RequestVoteResponse
	if err := p.a.RequestVote("b", p.b.LocalAddr(), vote, &gotVote); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotVote, voteResp) {
		t.Errorf("vote response %+v, want %+v", gotVote, voteResp)
	}
	var gotPre raft.RequestPreVoteResponse
	if err := p.a.RequestPreVote("b", p.b.LocalAddr(), pre, &gotPre); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotPre, preResp) {
		t.Errorf("pre-vote response %+v, want %+v", gotPre, preResp)
	}
	var gotTN raft.TimeoutNowResponse
	if err := p.a.TimeoutNow("b", p.b.LocalAddr(), tn, &gotTN); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotTN, tnResp) {
		t.Errorf("timeout-now response %+v, want %+v", gotTN, tnResp)
	}
}

// testRemoteError: an error Raft responds with arrives as an error.
func testRemoteError(t *testing.T, setup raftSetup) {
	p := setup(t)
	serve(t, p.b, func(rpc raft.RPC) { rpc.Respond(nil, fmt.Errorf("boom %T", rpc.Command)) })
	check := func(what string, err error) {
		t.Helper()
		var re *RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("%s: %v, want a RemoteError", what, err)
		}
		if want := "boom *raft." + what; re.Msg != want {
			t.Errorf("%s: remote said %q, want %q", what, re.Msg, want)
		}
	}
	var ae raft.AppendEntriesResponse
	check("AppendEntriesRequest", p.a.AppendEntries("b", p.b.LocalAddr(),
		&raft.AppendEntriesRequest{Term: 1, PrevLogEntry: 1, Entries: []*raft.Log{{Index: 2}}}, &ae))
	check("AppendEntriesRequest", p.a.AppendEntries("b", p.b.LocalAddr(), heartbeat(p, 2), &ae))
	var rv raft.RequestVoteResponse
	check("RequestVoteRequest", p.a.RequestVote("b", p.b.LocalAddr(), &raft.RequestVoteRequest{Term: 1}, &rv))
	var pv raft.RequestPreVoteResponse
	check("RequestPreVoteRequest", p.a.RequestPreVote("b", p.b.LocalAddr(), &raft.RequestPreVoteRequest{Term: 1}, &pv))
	var tn raft.TimeoutNowResponse
	check("TimeoutNowRequest", p.a.TimeoutNow("b", p.b.LocalAddr(), &raft.TimeoutNowRequest{}, &tn))

	pl, err := p.a.AppendEntriesPipeline("b", p.b.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	if _, err := pl.AppendEntries(&raft.AppendEntriesRequest{Term: 1, Entries: []*raft.Log{{Index: 1}}}, &ae); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-pl.Consumer():
		check("AppendEntriesRequest", f.Error())
	case <-time.After(waitTimeout):
		t.Fatal("no future")
	}
}

func appendN(i int) *raft.AppendEntriesRequest {
	return &raft.AppendEntriesRequest{Term: 5, PrevLogEntry: uint64(i - 1), PrevLogTerm: 5, LeaderCommitIndex: uint64(i),
		Entries: []*raft.Log{{Index: uint64(i), Term: 5, Type: raft.LogCommand, Data: fmt.Appendf(nil, "entry %d", i)}}}
}

// testPipeline sends 500 AppendEntries back to back: the consumer sees them
// in order, and their futures come out in order with their own responses.
func testPipeline(t *testing.T, setup raftSetup) {
	p := setup(t)
	const n = 500
	var seen atomic.Int64
	serve(t, p.b, func(rpc raft.RPC) {
		req := rpc.Command.(*raft.AppendEntriesRequest)
		i := seen.Add(1)
		if len(req.Entries) != 1 || req.Entries[0].Index != uint64(i) || string(req.Entries[0].Data) != fmt.Sprintf("entry %d", i) {
			t.Errorf("request %d out of order: %+v", i, req.Entries)
		}
		rpc.Respond(&raft.AppendEntriesResponse{Term: 5, LastLog: req.Entries[0].Index, Success: true}, nil)
	})
	pl, err := p.a.AppendEntriesPipeline("b", p.b.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	checked := make(chan error, 1)
	go func() {
		for i := 1; i <= n; i++ {
			select {
			case f := <-pl.Consumer():
				if err := f.Error(); err != nil {
					checked <- fmt.Errorf("future %d: %w", i, err)
					return
				}
				if got := f.Request().Entries[0].Index; got != uint64(i) {
					checked <- fmt.Errorf("future %d is for entry %d", i, got)
					return
				}
				if r := f.Response(); r.LastLog != uint64(i) || !r.Success || r.Term != 5 {
					checked <- fmt.Errorf("future %d: response %+v", i, r)
					return
				}
				if f.Start().IsZero() {
					checked <- fmt.Errorf("future %d has no start time", i)
					return
				}
			case <-time.After(waitTimeout):
				checked <- fmt.Errorf("future %d missing", i)
				return
			}
		}
		checked <- nil
	}()
	for i := 1; i <= n; i++ {
		if _, err := pl.AppendEntries(appendN(i), new(raft.AppendEntriesResponse)); err != nil {
			t.Fatalf("AppendEntries %d: %v", i, err)
		}
	}
	if err := recvErr(t, checked); err != nil {
		t.Fatal(err)
	}
	if seen.Load() != n {
		t.Errorf("consumer saw %d requests", seen.Load())
	}
}

// testPipelineTimeout: a pipeline to a peer that listens but never answers
// fails each future about one timeout after it was sent; one to a node that
// does not listen in the scope fails at once (the server reports no
// responders), and so does one to a node nobody knows (nobody answers for
// its card): either AppendEntries itself or its future fails.
func testPipelineTimeout(t *testing.T, setup raftSetup) {
	p := setup(t)
	const timeout = 300 * time.Millisecond
	a, b := p.transport(t, "short", timeout)
	_ = b                                                           // listens, but nobody reads its consumer
	lonely := newRaftTransport(t, p.scope(p.na, "lonely"), timeout) // p.nb has no transport in it
	for _, tc := range []struct {
		name   string
		from   *RaftTransport
		target raft.ServerAddress
	}{
		{"mute", a, b.LocalAddr()},
		{"not-listening", lonely, raft.ServerAddress(p.nb.ID().String())},
		{"absent", a, raft.ServerAddress(NewPeerID().String())},
	} {
		name := tc.name
		t.Run(name, func(t *testing.T) {
			pl, err := tc.from.AppendEntriesPipeline("b", tc.target)
			if err != nil {
				t.Fatal(err)
			}
			defer pl.Close()
			sent := 0
			for i := 1; i <= 3; i++ {
				start := time.Now()
				_, err := pl.AppendEntries(appendN(i), new(raft.AppendEntriesResponse))
				if err == nil {
					sent++
					continue
				}
				if name != "absent" || !errors.Is(err, ErrUnreachable) {
					t.Fatalf("AppendEntries %d: %v", i, err)
				}
				if took := time.Since(start); took > timeout {
					t.Errorf("AppendEntries %d to nobody failed after %v, want at once", i, took)
				}
			}
			for i := 1; i <= sent; i++ {
				select {
				case f := <-pl.Consumer():
					took := time.Since(f.Start())
					if err := f.Error(); !errors.Is(err, ErrUnreachable) {
						t.Errorf("future %d: %v, want ErrUnreachable", i, err)
					}
					switch {
					case name != "mute" && took > timeout:
						t.Errorf("future %d to nobody failed after %v, want at once", i, took)
					case name == "mute" && (took < timeout || took > timeout+2*time.Second):
						t.Errorf("future %d failed after %v, want about %v", i, took, timeout)
					}
				case <-time.After(waitTimeout):
					t.Fatalf("future %d never failed", i)
				}
			}
			if name != "absent" && sent != 3 {
				t.Errorf("%d of 3 AppendEntries sent", sent)
			}
		})
	}
}

// testPipelineClose: Close unblocks an AppendEntries waiting for room, and
// completes the futures still in flight.
func testPipelineClose(t *testing.T, setup raftSetup) {
	p := setup(t)
	a, mute := p.transport(t, "long", time.Minute) // mute listens; nobody reads its consumer
	pl, err := a.AppendEntriesPipeline("b", mute.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	var (
		mu      sync.Mutex
		futures []raft.AppendFuture
	)
	sent := make(chan error, 1)
	go func() {
		for i := 1; ; i++ {
			f, err := pl.AppendEntries(appendN(i), new(raft.AppendEntriesResponse))
			if err != nil {
				sent <- err
				return
			}
			mu.Lock()
			futures = append(futures, f)
			mu.Unlock()
		}
	}()
	// The pipeline holds a bounded number of requests; then AppendEntries
	// blocks until a future completes, which takes a minute here.
	capacity := cap(pl.(*pipeline).inflight) + 1
	eventually(t, "pipeline full", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(futures) == capacity
	})
	start := time.Now()
	if err := pl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := recvErr(t, sent); !errors.Is(err, raft.ErrPipelineShutdown) {
		t.Errorf("blocked AppendEntries: %v, want ErrPipelineShutdown", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %v", took)
	}
	if err := pl.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	incomplete := 0
	for _, f := range futures {
		select {
		case <-f.(*appendFuture).done:
		default:
			incomplete++
		}
	}
	if incomplete > 0 {
		t.Errorf("after Close %d of %d futures never complete: Error() blocks forever", incomplete, len(futures))
	}
	p.na.mu.Lock()
	calls := len(p.na.calls)
	p.na.mu.Unlock()
	if calls != 0 {
		t.Errorf("after Close %d requests still wait for replies", calls)
	}
	// A closed pipeline sends nothing more.
	accepted := 0
	for i := range 50 {
		if f, err := pl.AppendEntries(appendN(i), new(raft.AppendEntriesResponse)); err == nil {
			accepted++
			f.(*appendFuture).cancel()
		} else if !errors.Is(err, raft.ErrPipelineShutdown) {
			t.Errorf("AppendEntries after Close: %v", err)
		}
	}
	if accepted > 0 {
		t.Errorf("closed pipeline accepted %d of 50 AppendEntries", accepted)
	}
}

// testPipelineTransportClose: closing the transport stops its pipelines.
func testPipelineTransportClose(t *testing.T, setup raftSetup) {
	p := setup(t)
	a, mute := p.transport(t, "long", time.Minute) // mute listens; nobody reads its consumer
	pl, err := a.AppendEntriesPipeline("b", mute.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close() // for when the transport fails to
	for i := 1; i <= 3; i++ {
		if _, err := pl.AppendEntries(appendN(i), new(raft.AppendEntriesResponse)); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	select {
	case <-pl.(*pipeline).done:
	case <-time.After(2 * time.Second):
		t.Error("pipeline goroutine still running 2s after its transport closed")
	}
	accepted := 0
	for i := range 50 {
		if f, err := pl.AppendEntries(appendN(i), new(raft.AppendEntriesResponse)); err == nil {
			accepted++
			f.(*appendFuture).cancel()
		}
	}
	if accepted > 0 {
		t.Errorf("pipeline of a closed transport accepted %d of 50 AppendEntries", accepted)
	}
}

// testRaftClose: Close unblocks RPCs in flight on both sides and is final.
func testRaftClose(t *testing.T, setup raftSetup) {
	p := setup(t)
	a, b := p.transport(t, "long", time.Minute)

	// b takes one RPC and never answers it, and has another and a heartbeat
	// waiting behind it.
	b.SetHeartbeatHandler(func(raft.RPC) {}) // never responds
	errs := make(chan error, 4)
	go func() {
		var resp raft.RequestVoteResponse
		errs <- a.RequestVote("b", b.LocalAddr(), &raft.RequestVoteRequest{Term: 1}, &resp)
	}()
	var taken raft.RPC
	select {
	case taken = <-b.Consumer():
	case <-time.After(waitTimeout):
		t.Fatal("no RPC")
	}
	go func() {
		var resp raft.RequestVoteResponse
		errs <- a.RequestVote("b", b.LocalAddr(), &raft.RequestVoteRequest{Term: 2}, &resp)
	}()
	go func() {
		var resp raft.AppendEntriesResponse
		errs <- a.AppendEntries("b", b.LocalAddr(), heartbeat(p, 3), &resp)
	}()
	eventually(t, "three requests in flight", func() bool {
		p.na.mu.Lock()
		defer p.na.mu.Unlock()
		return len(p.na.calls) == 3
	})

	start := time.Now()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("receiver Close took %v", took)
	}
	taken.Respond(&raft.RequestVoteResponse{}, nil) // too late, must not block
	// The callers still wait: closing a itself ends their requests.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := recvErr(t, errs); err == nil {
			t.Error("an RPC in flight succeeded across Close")
		}
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("RPCs in flight ended %v after Close", took)
	}
	var resp raft.RequestVoteResponse
	if err := a.RequestVote("b", b.LocalAddr(), &raft.RequestVoteRequest{}, &resp); !errors.Is(err, ErrClosed) {
		t.Errorf("RequestVote after Close: %v, want ErrClosed", err)
	}
	var ae raft.AppendEntriesResponse
	if err := a.AppendEntries("b", b.LocalAddr(), heartbeat(p, 1), &ae); !errors.Is(err, ErrClosed) {
		t.Errorf("AppendEntries after Close: %v, want ErrClosed", err)
	}
	if err := a.InstallSnapshot("b", b.LocalAddr(), &raft.InstallSnapshotRequest{}, new(raft.InstallSnapshotResponse),
		bytes.NewReader(nil)); !errors.Is(err, ErrClosed) {
		t.Errorf("InstallSnapshot after Close: %v, want ErrClosed", err)
	}
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

func testInstallSnapshot(t *testing.T, setup raftSetup) {
	p := setup(t)
	type received struct {
		req  *raft.InstallSnapshotRequest
		data []byte
	}
	got := make(chan received, 1)
	want := raft.InstallSnapshotResponse{RPCHeader: header(p.b.LocalAddr()), Term: 10, Success: true}
	serve(t, p.b, func(rpc raft.RPC) {
		req, ok := rpc.Command.(*raft.InstallSnapshotRequest)
		if !ok || rpc.Reader == nil {
			t.Errorf("command %T, reader %v", rpc.Command, rpc.Reader)
			rpc.Respond(nil, errors.New("unexpected"))
			return
		}
		b, err := io.ReadAll(rpc.Reader)
		if err != nil {
			t.Errorf("reading snapshot: %v", err)
		}
		got <- received{req, b}
		resp := want
		rpc.Respond(&resp, nil)
	})
	install := func(size int) {
		t.Helper()
		data := randomBytes(size, uint64(size))
		args := &raft.InstallSnapshotRequest{
			RPCHeader: header(p.a.LocalAddr()), SnapshotVersion: raft.SnapshotVersionMax,
			Term: 10, Leader: []byte(p.a.LocalAddr()), LastLogIndex: 100, LastLogTerm: 9,
			Peers: []byte("peers"), Configuration: testConfiguration(), ConfigurationIndex: 50, Size: int64(len(data)),
		}
		var resp raft.InstallSnapshotResponse
		if err := p.a.InstallSnapshot("b", p.b.LocalAddr(), args, &resp, bytes.NewReader(data)); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		r := <-got
		if !reflect.DeepEqual(r.req, args) {
			t.Errorf("size %d: request %+v, want %+v", size, r.req, args)
		}
		if !bytes.Equal(r.data, data) {
			t.Errorf("size %d: snapshot arrived as %d bytes, corrupted", size, len(r.data))
		}
		if !reflect.DeepEqual(resp, want) {
			t.Errorf("size %d: response %+v, want %+v", size, resp, want)
		}
	}
	const big = 20 << 20
	if big <= int(p.na.nc.MaxPayload()) {
		t.Fatalf("snapshot of %d bytes fits one NATS message", big)
	}
	install(big)
	// Empty, exactly one chunk, one byte more.
	for _, size := range []int{0, p.a.snapshotChunk(), p.a.snapshotChunk() + 1} {
		install(size)
	}
	p.b.snapMu.Lock()
	defer p.b.snapMu.Unlock()
	if len(p.b.snaps) != 0 {
		t.Errorf("receiver holds %d snapshot transfers after they ended", len(p.b.snaps))
	}
}

// snapChunkMsg builds a snapshot chunk or end as a sender does.
func snapChunkMsg(kind byte, id uint64, data []byte) []byte {
	b := make([]byte, snapChunkHead, snapChunkHead+len(data))
	b[0] = kind
	binary.BigEndian.PutUint64(b[1:], id)
	return append(b, data...)
}

// testInstallSnapshotEarlyError: Raft answers before reading the whole
// snapshot (a stale term); the sender fails instead of hanging. Raft gets
// the snapshot only once all of it arrived, so the sender sends it all.
func testInstallSnapshotEarlyError(t *testing.T, setup raftSetup) {
	p := setup(t)
	for _, read := range []int{0, 1000, 3 << 20} {
		t.Run(fmt.Sprint("read", read), func(t *testing.T) {
			serve(t, p.b, func(rpc raft.RPC) {
				if _, err := io.ReadFull(rpc.Reader, make([]byte, read)); err != nil {
					t.Errorf("read: %v", err)
				}
				rpc.Respond(&raft.InstallSnapshotResponse{Term: 99}, errors.New("stale term"))
			})
			data := randomBytes(8<<20, 2)
			start := time.Now()
			var resp raft.InstallSnapshotResponse
			err := p.a.InstallSnapshot("b", p.b.LocalAddr(), snapshotRequest(int64(len(data))),
				&resp, bytes.NewReader(data))
			if err == nil {
				t.Fatal("InstallSnapshot succeeded")
			}
			var re *RemoteError
			if !errors.As(err, &re) {
				t.Errorf("error %v is not a RemoteError", err)
			}
			if took := time.Since(start); took > waitTimeout {
				t.Errorf("failed after %v", took)
			}
			eventually(t, "receiver forgets the transfer", func() bool {
				p.b.snapMu.Lock()
				defer p.b.snapMu.Unlock()
				return len(p.b.snaps) == 0
			})
		})
	}
}

// testUnreachable: RPCs to a peer nobody listens for, or one that closed,
// fail with ErrUnreachable at once: the server reports no responders.
func testUnreachable(t *testing.T, setup raftSetup) {
	p := setup(t)
	const timeout = 300 * time.Millisecond
	a, dead := p.transport(t, "short", timeout)
	dead.Close()
	// Unsubscribing is asynchronous: let the server learn of it.
	if err := dead.net.nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]raft.ServerAddress{
		"absent": raft.ServerAddress(NewPeerID().String()),
		"closed": dead.LocalAddr(),
	} {
		rpcs := map[string]func() error{
			"AppendEntries": func() error {
				return a.AppendEntries("x", target, appendN(1), new(raft.AppendEntriesResponse))
			},
			"Heartbeat": func() error {
				return a.AppendEntries("x", target, heartbeat(p, 1), new(raft.AppendEntriesResponse))
			},
			"RequestVote": func() error {
				return a.RequestVote("x", target, &raft.RequestVoteRequest{Term: 1}, new(raft.RequestVoteResponse))
			},
			"RequestPreVote": func() error {
				return a.RequestPreVote("x", target, &raft.RequestPreVoteRequest{Term: 1}, new(raft.RequestPreVoteResponse))
			},
			"TimeoutNow": func() error {
				return a.TimeoutNow("x", target, &raft.TimeoutNowRequest{}, new(raft.TimeoutNowResponse))
			},
			"InstallSnapshot": func() error {
				return a.InstallSnapshot("x", target, &raft.InstallSnapshotRequest{Size: 10}, new(raft.InstallSnapshotResponse),
					bytes.NewReader(make([]byte, 10)))
			},
		}
		for rpc, call := range rpcs {
			t.Run(name+"/"+rpc, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				err := call()
				took := time.Since(start)
				if !errors.Is(err, ErrUnreachable) {
					t.Errorf("%v, want ErrUnreachable", err)
				}
				if took > timeout {
					t.Errorf("failed after %v, want at once", took)
				}
			})
		}
	}
	t.Run("bad-address", func(t *testing.T) {
		var resp raft.RequestVoteResponse
		if err := a.RequestVote("x", "not-a-peer", &raft.RequestVoteRequest{}, &resp); err == nil {
			t.Error("RPC to a malformed address succeeded")
		}
		if _, err := a.AppendEntriesPipeline("x", "not-a-peer"); err == nil {
			t.Error("pipeline to a malformed address")
		}
	})
}

// TestSnapshotSenderGoesQuiet: a sender that stops mid-snapshot never
// reaches Raft; its transfer is dropped once it made no progress for a
// while, and what it sent is freed.
func TestSnapshotSenderGoesQuiet(t *testing.T) {
	const timeout = 200 * time.Millisecond
	b := newNet(t)
	rt := newRaftTransport(t, sealedScope(b, "s"), timeout)
	dir := t.TempDir()
	rt.snapMu.Lock()
	rt.snapDir = dir
	rt.snapMu.Unlock()
	var rpcs atomic.Int32
	serve(t, rt, func(rpc raft.RPC) {
		rpcs.Add(1)
		rpc.Respond(nil, errors.New("unexpected"))
	})
	r := newRawRPC(t, rt)
	subject := rt.subject("raft", b.ID())
	for _, size := range []int64{100, snapMemMax + 100} {
		begin, err := marshal(kindSnapBegin, snapBegin{ID: 1, Request: snapshotRequest(size)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseReply(r.ask(subject, begin)); err != nil {
			t.Fatalf("begin: %v", err)
		}
		chunk := snapChunkMsg(kindSnapChunk, 1, make([]byte, 10))
		if _, err := parseReply(r.ask(rt.subject("snap", b.ID()), chunk)); err != nil {
			t.Fatalf("chunk: %v", err)
		}
		start := time.Now()
		eventually(t, "the transfer dropped", func() bool { return rt.openSnapshots() == 0 })
		if took := time.Since(start); took > rt.snapshotIdle()+2*time.Second {
			t.Errorf("dropped %v after the sender went quiet", took)
		}
		// A late chunk is refused.
		if _, err := parseReply(r.ask(rt.subject("snap", b.ID()), chunk)); err == nil {
			t.Error("late chunk accepted")
		}
		if files, err := os.ReadDir(dir); err != nil || len(files) != 0 {
			t.Errorf("spool directory holds %v (%v)", files, err)
		}
	}
	if n := rpcs.Load(); n != 0 {
		t.Errorf("Raft got %d RPCs", n)
	}
}

// TestInstallSnapshotNotBlockedByOtherRPC: while Raft reads a snapshot it
// takes no other RPC, so a vote that arrives mid-transfer waits. The rest of
// the snapshot must not wait behind that vote.
func TestInstallSnapshotNotBlockedByOtherRPC(t *testing.T) {
	const timeout = 500 * time.Millisecond
	na := newNet(t)
	nb, nc := join(t, na), join(t, na)
	a, b, c := newRaftTransport(t, sealedScope(na, "s"), timeout), newRaftTransport(t, sealedScope(nb, "s"), timeout), newRaftTransport(t, sealedScope(nc, "s"), timeout)
	data := randomBytes(3*a.snapshotChunk(), 5)
	midway := make(chan struct{})
	resume := make(chan struct{})
	snapshot := make(chan error, 1)
	serve(t, b, func(rpc raft.RPC) {
		switch rpc.Command.(type) {
		case *raft.InstallSnapshotRequest:
			// Take half the first chunk, so the transport is stuck writing
			// it, and wait for the vote to arrive.
			half := make([]byte, a.snapshotChunk()/2)
			_, err := io.ReadFull(rpc.Reader, half)
			if err == nil {
				close(midway)
				<-resume
				var rest []byte
				rest, err = io.ReadAll(rpc.Reader)
				if err == nil && !bytes.Equal(append(half, rest...), data) {
					err = errors.New("snapshot corrupted")
				}
			}
			snapshot <- err
			rpc.Respond(&raft.InstallSnapshotResponse{Term: 1, Success: err == nil}, err)
		case *raft.RequestVoteRequest:
			rpc.Respond(&raft.RequestVoteResponse{Term: 1}, nil)
		}
	})
	installed := make(chan error, 1)
	go func() {
		var resp raft.InstallSnapshotResponse
		installed <- a.InstallSnapshot("b", b.LocalAddr(), snapshotRequest(int64(len(data))),
			&resp, bytes.NewReader(data))
	}()
	<-midway
	voted := make(chan error, 1)
	go func() {
		var resp raft.RequestVoteResponse
		voted <- c.RequestVote("b", b.LocalAddr(), &raft.RequestVoteRequest{Term: 2}, &resp)
	}()
	eventually(t, "vote queued at b", func() bool {
		n, _, _ := b.rpcSub.sub.Pending()
		return n >= 1
	})
	close(resume)
	if err := recvErr(t, snapshot); err != nil {
		t.Errorf("Raft reading the snapshot: %v", err)
	}
	if err := recvErr(t, installed); err != nil {
		t.Errorf("InstallSnapshot: %v", err)
	}
	if err := recvErr(t, voted); err != nil {
		t.Logf("vote: %v", err)
	}
}

// TestNewRaftTransportReadyOnReturn: RPCs sent right after NewRaftTransport
// returns reach it. Subscribe does not wait for the server to register the
// subscription, so without a flush most of these are lost.
func TestNewRaftTransportReadyOnReturn(t *testing.T) {
	na := newNet(t)
	nb := join(t, na)
	acct := na.srv.GlobalAccount()
	deaf, lost := 0, 0
	const tries = 10
	for i := range tries {
		scope := "ready" + strconv.Itoa(i) // fresh subjects: no stale interest
		a := newRaftTransport(t, sealedScope(na, scope), 100*time.Millisecond)
		b, err := NewRaftTransport(sealedScope(nb, scope), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !acct.SubscriptionInterest(b.subject("raft", nb.ID())) || !acct.SubscriptionInterest(b.subject("hb", nb.ID())) {
			deaf++
		}
		serve(t, b, func(rpc raft.RPC) { rpc.Respond(&raft.RequestVoteResponse{Granted: true}, nil) })
		var resp raft.RequestVoteResponse
		if err := a.RequestVote("b", b.LocalAddr(), &raft.RequestVoteRequest{Term: uint64(i)}, &resp); err != nil {
			lost++
		}
		b.Close()
	}
	if deaf > 0 || lost > 0 {
		t.Errorf("of %d new transports, %d were not subscribed at the server when NewRaftTransport returned, "+
			"and %d lost the first RPC sent to them", tries, deaf, lost)
	}
}

// TestNetworkCloseWithOpenRaftTransport: closing a Network whose
// RaftTransport is still open, while an RPC waits for Raft to take it, must
// not hang.
func TestNetworkCloseWithOpenRaftTransport(t *testing.T) {
	na := newNet(t)
	nb, err := New(t.Context(), WithURL(na.URL()))
	if err != nil {
		t.Fatal(err)
	}
	a := newRaftTransport(t, sealedScope(na, "s"), time.Second)
	b, err := NewRaftTransport(sealedScope(nb, "s"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	flush(t, nb)
	in := nb.Stats().MsgsIn
	voted := make(chan error, 1)
	go func() {
		var resp raft.RequestVoteResponse
		voted <- a.RequestVote("b", b.LocalAddr(), &raft.RequestVoteRequest{Term: 1}, &resp)
	}()
	// Nobody reads b's consumer: the vote waits in the transport.
	eventually(t, "vote at b", func() bool { return nb.Stats().MsgsIn > in })
	closed := make(chan struct{})
	go func() {
		nb.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Error("Network.Close hangs while its RaftTransport holds an RPC for Raft")
		b.Close() // lets Network.Close finish
		<-closed
	}
	b.Close()
	recvErr(t, voted)
}

// TestSnapshotChunkOnSmallPayloadServer: against a server whose payload
// limit is 1536 bytes, New accepts the connection; a snapshot must then still
// travel in chunks that carry data. A zero chunk makes InstallSnapshot loop
// forever without sending anything.
func TestSnapshotChunkOnSmallPayloadServer(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true, MaxPayload: 1536})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(waitTimeout) {
		t.Fatal("server not ready")
	}
	n, err := New(t.Context(), WithURL(srv.ClientURL()))
	if err != nil {
		t.Logf("New refuses the server: %v", err)
		return
	}
	t.Cleanup(func() { n.Close() })
	rt := newRaftTransport(t, sealedScope(n, "s"), time.Second)
	if c := rt.snapshotChunk(); c <= 0 {
		t.Errorf("snapshot chunk is %d bytes (maxChunk %d): InstallSnapshot would spin forever", c, n.maxChunk)
	}
}

// testConfiguration is a configuration the transport lets through: one
// voter, a peer id at its own address.
func testConfiguration() []byte {
	p := NewPeerID().String()
	return raft.EncodeConfiguration(raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(p), Address: raft.ServerAddress(p)}}})
}

// TestHeartbeatFast: with SetHeartbeatFast, only heartbeats whose term it
// accepts take the handler; the others reach Raft's main loop (the
// consumer), as every other RPC does.
func TestHeartbeatFast(t *testing.T) {
	p := newPair(t, NewSecret(), nil, nil)
	var fast, slow atomic.Int32
	p.b.SetHeartbeatHandler(func(rpc raft.RPC) {
		fast.Add(1)
		rpc.Respond(&raft.AppendEntriesResponse{Term: rpc.Command.(*raft.AppendEntriesRequest).Term, Success: true}, nil)
	})
	serve(t, p.b, func(rpc raft.RPC) {
		slow.Add(1)
		rpc.Respond(&raft.AppendEntriesResponse{Term: rpc.Command.(*raft.AppendEntriesRequest).Term, Success: true}, nil)
	})
	p.b.SetHeartbeatFast(func(term uint64) bool { return term <= 5 })
	for _, term := range []uint64{4, 5, 6, 9, 5} {
		var resp raft.AppendEntriesResponse
		if err := p.a.AppendEntries("b", p.b.LocalAddr(), heartbeat(p, term), &resp); err != nil || resp.Term != term {
			t.Fatalf("heartbeat of term %d: %v %+v", term, err, resp)
		}
	}
	if fast.Load() != 3 || slow.Load() != 2 {
		t.Errorf("%d heartbeats took the handler and %d the consumer, want 3 and 2", fast.Load(), slow.Load())
	}
	p.b.SetHeartbeatFast(nil)
	var resp raft.AppendEntriesResponse
	if err := p.a.AppendEntries("b", p.b.LocalAddr(), heartbeat(p, 9), &resp); err != nil || fast.Load() != 4 {
		t.Errorf("without a filter a heartbeat of term 9: %v, handler took %d (want 4)", err, fast.Load())
	}
}
