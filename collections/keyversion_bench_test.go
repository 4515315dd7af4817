package collections

import (
	"runtime"
	"testing"

	"github.com/mosaik-go/mosaik/rsm"
)

// BenchmarkMapGetWithVersion is GetWithVersion on a map of 1,000,000
// entries: a walk down the sorted tree (the hash index holds no versions).
func BenchmarkMapGetWithVersion(b *testing.B) {
	const n = 1_000_000
	m := bigMapMachine(b, n)
	defer m.closeIndex()
	r := MapReader[string, []byte]{mapReads[string, []byte]{m: m}}
	keys := lookupKeys(n)
	runtime.GC()
	benchGets(b, keys, func(k string) (Version, bool) {
		_, ver, ok := r.GetWithVersion(k)
		return ver, ok
	})
}

// BenchmarkMapCmdCodec encodes and decodes an insert of a 100-byte value,
// as a command travels to the log and comes back to Apply.
func BenchmarkMapCmdCodec(b *testing.B) {
	v := benchValue(1)
	c := mapCmd[string, []byte]{Op: mapInsert, Key: benchKey(1), Value: &v}
	b.ReportAllocs()
	for b.Loop() {
		e, err := rsm.Marshal(c)
		if err != nil {
			b.Fatal(err)
		}
		var d mapCmd[string, []byte]
		if err := rsm.Unmarshal(e, &d); err != nil {
			b.Fatal(err)
		}
	}
}
