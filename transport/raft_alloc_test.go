package transport

import (
	"math"
	"runtime"
	"testing"

	"github.com/hashicorp/raft"
)

// A request within the budget, every heartbeat among them, is not split:
// splitAppend says so without allocating.
func TestSplitAppendWithinBudgetAllocatesNothing(t *testing.T) {
	args := appendN(1)
	hb := &raft.AppendEntriesRequest{Term: 1, Leader: []byte("l")}
	if allocs := testing.AllocsPerRun(100, func() {
		if splitAppend(args, maxAppendBudget) != nil || splitAppend(hb, maxAppendBudget) != nil {
			t.Fatal("a request within budget was split")
		}
	}); allocs != 0 {
		t.Errorf("splitAppend allocates %v times for requests within budget", allocs)
	}
}

// BenchmarkPipelineAppend is one pipelined AppendEntries of one small entry
// and its answer, sealed: what a leader pays per follower and batch. Its
// allocations are the leader's and the follower's together.
func BenchmarkPipelineAppend(b *testing.B) {
	p := sealedPair(b)
	serve(b, p.b, func(rpc raft.RPC) { rpc.Respond(&raft.AppendEntriesResponse{Term: 5, Success: true}, nil) })
	pl, err := p.a.AppendEntriesPipeline("b", p.b.LocalAddr())
	if err != nil {
		b.Fatal(err)
	}
	defer pl.Close()
	args := appendN(1)
	var resp raft.AppendEntriesResponse
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pl.AppendEntries(args, &resp); err != nil {
			b.Fatal(err)
		}
		if err := (<-pl.Consumer()).Error(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHeartbeat is one synchronous heartbeat and its answer, sealed.
func BenchmarkHeartbeat(b *testing.B) {
	p := sealedPair(b)
	p.b.SetHeartbeatHandler(func(rpc raft.RPC) { rpc.Respond(&raft.AppendEntriesResponse{Term: 5, Success: true}, nil) })
	args := heartbeat(p, 5)
	var resp raft.AppendEntriesResponse
	b.ReportAllocs()
	for b.Loop() {
		if err := p.a.AppendEntries("b", p.b.LocalAddr(), args, &resp); err != nil {
			b.Fatal(err)
		}
	}
}

// A request with large entries is encoded once, into a buffer of about its
// size: a leader replaying its log to a new member sends megabytes of them.
func TestEncodeAppendAllocatesItsSize(t *testing.T) {
	args := &raft.AppendEntriesRequest{Term: 2, Leader: []byte("leader")}
	for i := range 16 {
		args.Entries = append(args.Entries, &raft.Log{Index: uint64(i + 1), Term: 2, Data: make([]byte, 64<<10)})
	}
	var size int
	least := math.Inf(1) // other goroutines of the process may allocate meanwhile: the least of a few rounds
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 10 {
			b, err := encodeAppend(args)
			if err != nil {
				t.Fatal(err)
			}
			size = len(b)
		}
		runtime.ReadMemStats(&after)
		least = min(least, float64(after.TotalAlloc-before.TotalAlloc)/10)
	}
	if least > 1.2*float64(size) {
		t.Errorf("encoding a %d-byte request allocates %.0f bytes", size, least)
	}
}
