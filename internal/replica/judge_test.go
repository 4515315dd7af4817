package replica

import (
	"math"
	"testing"
)

// TestJudge: the rule the leader admits batches by and the machine applies
// them by. Batch 0 is no session's (a log entry of batch 0 founds the
// cluster): it is never admitted, even when base+1 wraps around to it.
func TestJudge(t *testing.T) {
	cases := []struct {
		last      uint64
		known     bool
		seq, base uint64
		want      Verdict
	}{
		{0, false, 1, 0, Admit},
		{0, false, 2, 0, Gap},
		{0, false, 5, 4, Admit}, // a session the machine forgot: its own rule refuses it
		{3, true, 4, 0, Admit},
		{3, true, 3, 0, Repeat},
		{3, true, 1, 0, Repeat},
		{3, true, 5, 4, Gap},
		{0, false, 0, 0, Gap},
		{0, false, 0, math.MaxUint64, Gap},
		{math.MaxUint64, true, 0, 0, Repeat},
	}
	for _, c := range cases {
		if got := Judge(c.last, c.known, c.seq, c.base); got != c.want {
			t.Errorf("Judge(last %d, known %v, seq %d, base %d) = %d, want %d", c.last, c.known, c.seq, c.base, got, c.want)
		}
	}
}
