package storage

import (
	"sync"
	"testing"

	"github.com/hashicorp/raft"
)

// BenchmarkStoreLogs stores one 100-byte entry per call with fsync on a
// real directory, from 1 group or from 8 groups at once (whose syncs
// Pebble merges): the cost a Raft member pays per batch it persists.
func BenchmarkStoreLogs(b *testing.B) {
	for _, groups := range []int{1, 8} {
		b.Run(map[int]string{1: "1-group", 8: "8-groups"}[groups], func(b *testing.B) {
			db, err := Open(b.TempDir(), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			var sts []Stores
			for g := range groups {
				st, err := db.Stores(groupID(byte(g)))
				if err != nil {
					b.Fatal(err)
				}
				defer st.Release()
				sts = append(sts, st)
			}
			b.ResetTimer()
			var wg sync.WaitGroup
			for g, st := range sts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					l := &raft.Log{Type: raft.LogCommand, Term: 1, Data: make([]byte, 100)}
					for i := g; i < b.N; i += groups {
						l.Index = uint64(i + 1)
						if err := st.Log.StoreLogs([]*raft.Log{l}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}
