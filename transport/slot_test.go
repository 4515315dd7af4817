package transport

import (
	"runtime"
	"sync"
	"testing"
	"time"
	"weak"
)

// counterState is per-network state an upper layer might keep.
type counterState struct {
	mu sync.Mutex
	n  int
}

var testSlot = NewSlot(func(*Network) *counterState { return &counterState{} })

// Two networks of one process keep separate values under one slot; a
// network hands the same value to every caller, made once.
func TestSlotPerNetwork(t *testing.T) {
	a := newNet(t)
	b := join(t, a)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := testSlot.Get(a)
			s.mu.Lock()
			s.n++
			s.mu.Unlock()
		}()
	}
	wg.Wait()
	if got := testSlot.Get(a).n; got != 8 {
		t.Fatalf("network a counted %d, want 8: the value was made more than once", got)
	}
	if got := testSlot.Get(b).n; got != 0 {
		t.Fatalf("network b counted %d, want 0: it shares a's value", got)
	}
	if testSlot.Get(a) == testSlot.Get(b) {
		t.Fatal("two networks got the same value")
	}
}

// Close drops a network's values: nothing the network keeps holds them
// after, and a Get after Close makes a value it does not keep.
func TestSlotDroppedOnClose(t *testing.T) {
	n := newNet(t)
	v := testSlot.Get(n)
	v.n = 7
	w := weak.Make(v)
	v = nil
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for w.Value() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the value is still reachable 10 s after its network closed")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	after := testSlot.Get(n)
	if after == nil || after.n != 0 {
		t.Fatalf("Get after Close = %+v, want a new zero value", after)
	}
	if testSlot.Get(n) == after {
		t.Fatal("a closed network kept a value made after Close")
	}
}
