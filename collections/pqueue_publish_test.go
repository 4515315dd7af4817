package collections

import "testing"

// A reader of a PriorityQueue sees one state across its reads: while a
// batch is being published (the key index first, then the order), Get and
// ContainsKey answer from the state Min and Len show, never from the newer
// key index alone.
func TestPQReadsOneState(t *testing.T) {
	m := newPQMachine[int, string, int](16, 0)
	defer m.closeIndex()
	r := PriorityQueueReader[int, string, int]{pqReads[int, string, int]{m: m}}
	p, v := 1, 10
	m.ApplyReply(pqCmdT{Op: pqInsert, Priority: &p, Key: "a", Value: &v}, fakeCtx(1))
	m.Publish()
	m.ApplyReply(pqCmdT{Op: pqPopMin}, fakeCtx(2))
	m.keys.Publish() // the first half of Publish
	e, ok := r.Min()
	if !ok || e.Key != "a" || r.Len() != 1 {
		t.Fatalf("Min %v %v, Len %d: the order was published early", e, ok, r.Len())
	}
	if _, _, ok := r.Get("a"); !ok || !r.ContainsKey("a") {
		t.Fatal("Get and ContainsKey miss the key Min returns: they read the key index of a newer state")
	}
	m.Publish()
	if _, _, ok := r.Get("a"); ok || r.Len() != 0 {
		t.Fatal("after the publish the popped key is still there")
	}
}
