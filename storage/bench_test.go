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

// BenchmarkCheckConfigurations scans a log of 200,000 entries of 100
// bytes, one in 1,000 a configuration entry, on a real directory: the
// cost DB.Stores and CheckConfigurations pay per entry stored.
func BenchmarkCheckConfigurations(b *testing.B) {
	const n = 200_000
	db, err := Open(b.TempDir(), &Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	st, err := db.Stores(groupID(1))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Release()
	conf := raft.EncodeConfiguration(raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: "a", Address: "a"}}})
	batch := make([]*raft.Log, 0, 1000)
	for i := uint64(1); i <= n; i++ {
		l := &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: make([]byte, 100)}
		if i%1000 == 0 {
			l.Type, l.Data = raft.LogConfiguration, conf
		}
		if batch = append(batch, l); len(batch) == cap(batch) {
			if err := st.Log.StoreLogs(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := db.pdb.Flush(); err != nil {
		b.Fatal(err)
	}
	c := st.Log.(ConfigurationChecker)
	b.ResetTimer()
	for b.Loop() {
		if err := c.CheckConfigurations(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/entry")
}
