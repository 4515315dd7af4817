package transport

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// entriesFrom returns count command entries of size bytes each, in term,
// the first at index first.
func entriesFrom(first, term uint64, count, size int) []*raft.Log {
	var out []*raft.Log
	for i := range count {
		out = append(out, &raft.Log{Index: first + uint64(i), Term: term, Type: raft.LogCommand, Data: pattern(size, byte(i))})
	}
	return out
}

// TestSplitAppend: parts are runs of the entries in order, chained, each
// within the budget unless a single entry exceeds it; only the last carries
// the full commit index.
func TestSplitAppend(t *testing.T) {
	const budget = 10_000
	args := &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ID: []byte("l"), Addr: []byte("l")}, Term: 7, Leader: []byte("l"),
		PrevLogEntry: 99, PrevLogTerm: 6, LeaderCommitIndex: 150,
	}
	args.Entries = append(entriesFrom(100, 7, 30, 1000), entriesFrom(130, 7, 1, 50_000)...)
	args.Entries = append(args.Entries, entriesFrom(131, 7, 3, 10)...)
	parts := splitAppend(args, budget)
	if len(parts) < 4 {
		t.Fatalf("%d parts", len(parts))
	}
	var all []*raft.Log
	prev, prevTerm := args.PrevLogEntry, args.PrevLogTerm
	for i, p := range parts {
		if len(p.Entries) == 0 {
			t.Fatalf("part %d is empty", i)
		}
		if p.PrevLogEntry != prev || p.PrevLogTerm != prevTerm {
			t.Errorf("part %d follows %d/%d, want %d/%d", i, p.PrevLogEntry, p.PrevLogTerm, prev, prevTerm)
		}
		last := p.Entries[len(p.Entries)-1]
		wantCommit := min(args.LeaderCommitIndex, last.Index)
		if i == len(parts)-1 {
			wantCommit = args.LeaderCommitIndex
		}
		if p.LeaderCommitIndex != wantCommit {
			t.Errorf("part %d commits %d, want %d", i, p.LeaderCommitIndex, wantCommit)
		}
		if p.Term != args.Term || !bytes.Equal(p.Leader, args.Leader) || !bytes.Equal(p.ID, args.ID) {
			t.Errorf("part %d changed the header", i)
		}
		data, err := encodeAppend(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > budget && len(p.Entries) > 1 {
			t.Errorf("part %d of %d entries is %d bytes on the wire, budget %d", i, len(p.Entries), len(data), budget)
		}
		prev, prevTerm = last.Index, last.Term
		all = append(all, p.Entries...)
	}
	if !slices.Equal(all, args.Entries) {
		t.Error("the parts do not add up to the entries")
	}
	if args.PrevLogEntry != 99 || args.LeaderCommitIndex != 150 || len(args.Entries) != 34 {
		t.Error("splitting changed the request")
	}
	small := &raft.AppendEntriesRequest{Term: 1, Entries: entriesFrom(1, 1, 3, 10)}
	if p := splitAppend(small, budget); p != nil {
		t.Error("a request within budget was copied or split")
	}
	if p := splitAppend(&raft.AppendEntriesRequest{Term: 1}, budget); p != nil {
		t.Error("a request without entries was split")
	}
}

// TestAppendEntriesSplitOverWire: a request over the budget reaches the
// follower as consecutive requests, in order, by the synchronous path and
// the pipeline; the first refused part ends it, and only a request whose
// every part succeeded is reported a success.
func TestAppendEntriesSplitOverWire(t *testing.T) {
	p := sealedPair(t)
	p.a.appendBudget = 16 << 10
	var (
		mu     sync.Mutex
		got    []*raft.AppendEntriesRequest
		refuse uint64 // refuse the part whose first entry has this index
		// term tells the subtests apart: parts the pipeline sent after a
		// refused one may arrive once the next subtest has begun.
		term uint64 = 3
	)
	serve(t, p.b, func(rpc raft.RPC) {
		req := rpc.Command.(*raft.AppendEntriesRequest)
		mu.Lock()
		if req.Term == term {
			got = append(got, req)
		}
		ok := len(req.Entries) == 0 || req.Entries[0].Index != refuse
		mu.Unlock()
		last := req.PrevLogEntry
		if n := len(req.Entries); n > 0 && ok {
			last = req.Entries[n-1].Index
		}
		rpc.Respond(&raft.AppendEntriesResponse{Term: req.Term, LastLog: last, Success: ok}, nil)
	})
	request := func() *raft.AppendEntriesRequest {
		mu.Lock()
		defer mu.Unlock()
		return &raft.AppendEntriesRequest{
			RPCHeader: header(p.a.LocalAddr()), Term: term, PrevLogEntry: 9, PrevLogTerm: 2,
			LeaderCommitIndex: 40, Entries: entriesFrom(10, 3, 40, 2000),
		}
	}
	sync := func(args *raft.AppendEntriesRequest) (raft.AppendEntriesResponse, error) {
		var resp raft.AppendEntriesResponse
		err := p.a.AppendEntries("b", p.b.LocalAddr(), args, &resp)
		return resp, err
	}
	pl, err := p.a.AppendEntriesPipeline("b", p.b.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	pipelined := func(args *raft.AppendEntriesRequest) (raft.AppendEntriesResponse, error) {
		var resp raft.AppendEntriesResponse
		if _, err := pl.AppendEntries(args, &resp); err != nil {
			return resp, err
		}
		select {
		case f := <-pl.Consumer():
			return *f.Response(), f.Error()
		case <-time.After(waitTimeout):
			return resp, errors.New("no future")
		}
	}
	for name, send := range map[string]func(*raft.AppendEntriesRequest) (raft.AppendEntriesResponse, error){"sync": sync, "pipeline": pipelined} {
		mu.Lock()
		term++
		mu.Unlock()
		t.Run(name, func(t *testing.T) {
			reset := func(r uint64) {
				mu.Lock()
				got, refuse = nil, r
				mu.Unlock()
			}
			received := func() []*raft.AppendEntriesRequest {
				mu.Lock()
				defer mu.Unlock()
				return slices.Clone(got)
			}
			reset(0)
			args := request()
			resp, err := send(args)
			if err != nil || !resp.Success || resp.LastLog != 49 {
				t.Fatalf("append: %+v, %v", resp, err)
			}
			parts := received()
			if len(parts) < 3 {
				t.Fatalf("the follower got %d requests", len(parts))
			}
			var all []*raft.Log
			for i, part := range parts {
				if err := equalAppend(splitAppend(args, p.a.appendBudget)[i], part); err != nil {
					t.Errorf("part %d: %v", i, err)
				}
				all = append(all, part.Entries...)
			}
			if len(all) != len(args.Entries) {
				t.Errorf("%d entries arrived of %d", len(all), len(args.Entries))
			}
			if got := p.a.Matched(p.nb.ID()); got.Index < 49 {
				t.Errorf("matched %+v after a whole append", got)
			}

			// Refuse the second part: Raft hears of the refusal.
			second := splitAppend(args, p.a.appendBudget)[1].Entries[0].Index
			reset(second)
			resp, err = send(request())
			if err != nil {
				t.Fatal(err)
			}
			if resp.Success || resp.LastLog != second-1 {
				t.Errorf("a refused part reported as %+v", resp)
			}
			if name == "sync" {
				if n := len(received()); n != 2 {
					t.Errorf("%d parts sent, want 2: the refusal ends it", n)
				}
			}
		})
	}
}

// TestRaftLargeLogCatchUp: a log whose entries together exceed the largest
// message, within one batch of Raft's, replicates to a node that joins late.
// Unsplit, the batch is refused as too large, again and again.
func TestRaftLargeLogCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("replicates 67 MB")
	}
	first := newNet(t)
	second := join(t, first)
	self := raft.Server{ID: raft.ServerID(first.ID().String()), Address: raft.ServerAddress(first.ID().String())}
	// Under -race on a busy machine a part of several MB takes seconds.
	const timeout = 30 * time.Second
	leader := startRaftTimeout(t, first, []raft.Server{self}, timeout)
	leaderOf(t, []*raftNode{leader})
	const count, size = 9, 7_500_000
	if count*size <= maxMessageSize {
		t.Fatalf("%d entries of %d bytes fit one message", count, size)
	}
	var futures []raft.ApplyFuture
	for i := range count {
		futures = append(futures, leader.raft.Apply(bytes.Repeat([]byte{byte('a' + i)}, size), waitTimeout))
	}
	for _, f := range futures {
		if err := f.Error(); err != nil {
			t.Fatal(err)
		}
	}
	late := startRaftTimeout(t, second, nil, timeout)
	if err := leader.raft.AddNonvoter(late.id, late.addr, 0, waitTimeout).Error(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for len(late.fsm.entries()) < count {
		if time.Now().After(deadline) {
			t.Fatalf("the late node applied %d of %d entries", len(late.fsm.entries()), count)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, e := range late.fsm.entries() {
		if len(e) != size || e[0] != byte('a'+i) {
			t.Errorf("entry %d: %d bytes of %q", i, len(e), fmt.Sprint(e[:1]))
		}
	}
}
