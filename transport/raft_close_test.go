package transport

import (
	"testing"
)

// Close returns only once every pipeline's goroutine has exited, so that
// nothing the transport started outlives it (Raft closes its pipelines
// itself, but may not have yet).
func TestRaftTransportCloseWaitsForPipelines(t *testing.T) {
	for round := range 20 {
		p := newPair(t, Secret{}, nil, nil)
		var pls []*pipeline
		for range 32 {
			pl, err := p.a.AppendEntriesPipeline("b", p.b.LocalAddr())
			if err != nil {
				t.Fatal(err)
			}
			pls = append(pls, pl.(*pipeline))
		}
		if err := p.a.Close(); err != nil {
			t.Fatal(err)
		}
		for i, pl := range pls {
			select {
			case <-pl.done:
			default:
				t.Fatalf("round %d: pipeline %d still runs after its transport's Close returned", round, i)
			}
		}
		if _, err := p.a.AppendEntriesPipeline("b", p.b.LocalAddr()); err == nil {
			t.Fatalf("round %d: a closed transport opened a pipeline", round)
		}
	}
}
