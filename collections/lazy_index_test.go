package collections

import (
	"testing"
)

// An index nobody read since it was built is dropped when its rebuild falls
// due, "so a replica that is only written pays nothing for it" (indexer).
// The drop happens in the freeze that Publish makes for it, after that
// freeze took the index into the state it published; no later Publish of a
// map nobody reads replaces that state, so the freeze must publish it again
// without the index, or the dropped hash table (a slot per entry of the
// map) stays referenced for as long as the map is only written.
func TestLazyDroppedIndexNotRetained(t *testing.T) {
	m := newMapMachine[string, int](64)
	defer m.closeIndex()
	write := newKeysWriter(m)
	write(4 * indexMinEntries)
	waitIndexed(t, m)
	m.builds.Wait()
	m.ix.read.Store(false) // nobody reads from now on
	for dropped := false; !dropped; {
		write(64)
		m.mu.Lock()
		dropped = m.ix.base == nil && !m.ix.building
		m.mu.Unlock()
	}
	// Many more batches, still unread: before the lazy freeze, the first
	// of them published a state without the index.
	write(64 * 64)
	m.builds.Wait()
	if st := m.cur.Load(); st.idx != nil {
		t.Fatalf("%d batches after the index was dropped, nobody reading, the current state (version %d, the map at %d) still holds its hash table of %d entries",
			64, st.v, m.version(), st.idx.base.len())
	}
}
