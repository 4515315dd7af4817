package collections

import (
	"errors"
	"testing"
)

// The history's ring starts small, grows as commands arrive, never past
// its limit, and keeps the last limit records in order through the growth.
func TestHistoryGrows(t *testing.T) {
	for _, limit := range []int{1, 5, 16, 100, 1000} {
		h := newHistory[int](limit)
		if len(h.recs) > historyStart {
			t.Fatalf("limit %d: a new history holds %d slots", limit, len(h.recs))
		}
		v := Version(0)
		for batch := 1; v < 2500; batch = batch%7 + 1 {
			recs := make([]record[int], batch)
			for i := range recs {
				v++
				recs[i] = record[int]{v: v, changes: []int{int(v)}}
			}
			h.add(recs)
			if len(h.recs) > limit {
				t.Fatalf("limit %d: the ring grew to %d", limit, len(h.recs))
			}
			first := Version(0)
			if v > Version(limit) {
				first = v - Version(limit)
			}
			got, _, err := h.since(first, limit+1)
			if err != nil {
				t.Fatalf("limit %d at %d: since(%d): %v", limit, v, first, err)
			}
			if len(got) != int(v-first) {
				t.Fatalf("limit %d at %d: since(%d) gave %d records, want %d", limit, v, first, len(got), v-first)
			}
			for i, r := range got {
				if r.v != first+Version(i)+1 || r.changes[0] != int(r.v) {
					t.Fatalf("limit %d at %d: record %d is %+v", limit, v, i, r)
				}
			}
			if first > 0 {
				if _, _, err := h.since(first-1, 1); !errors.Is(err, ErrCompacted) {
					t.Fatalf("limit %d at %d: since(%d) = %v, want ErrCompacted", limit, v, first-1, err)
				}
			}
		}
		if len(h.recs) != limit {
			t.Fatalf("limit %d: after 2500 commands the ring holds %d slots", limit, len(h.recs))
		}
		h.reset(v)
		if len(h.recs) > historyStart {
			t.Fatalf("limit %d: a reset history holds %d slots", limit, len(h.recs))
		}
	}
}
