package transport

import (
	"sync"
	"time"
)

// Faults injects failures into one node's group traffic: it can make the
// node look crashed, cut it off from chosen peers, or slow every message. It
// is safe for concurrent use; the zero value is not usable, call NewFaults.
//
// Faults act where the node sends and where it receives, so one Faults is
// enough to cut a node off in both directions. A broadcast has no single
// receiver: Partition drops the broadcasts the node receives from the named
// peers, but its own broadcasts still reach them. Partition both sides to cut
// broadcasts both ways.
type Faults struct {
	mu       sync.RWMutex
	isolated bool
	peers    map[PeerID]struct{}
	d        time.Duration
}

// NewFaults returns a Faults that injects nothing until told to.
func NewFaults() *Faults { return &Faults{peers: map[PeerID]struct{}{}} }

// Isolate drops everything this node sends or receives, as if it crashed
// while its process kept running.
func (f *Faults) Isolate() {
	f.mu.Lock()
	f.isolated = true
	f.mu.Unlock()
}

// Partition drops traffic between this node and the given peers, in
// addition to any partition already in place.
func (f *Faults) Partition(peers ...PeerID) {
	f.mu.Lock()
	for _, p := range peers {
		f.peers[p] = struct{}{}
	}
	f.mu.Unlock()
}

// Delay delays every message this node sends by d, keeping their order.
func (f *Faults) Delay(d time.Duration) {
	f.mu.Lock()
	f.d = d
	f.mu.Unlock()
}

// Heal removes every fault.
func (f *Faults) Heal() {
	f.mu.Lock()
	f.isolated = false
	f.peers = map[PeerID]struct{}{}
	f.d = 0
	f.mu.Unlock()
}

func (f *Faults) dropSend(to PeerID) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.isolated {
		return true
	}
	_, cut := f.peers[to]
	return cut
}

func (f *Faults) dropRecv(from PeerID) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.isolated {
		return true
	}
	_, cut := f.peers[from]
	return cut
}

func (f *Faults) delay() time.Duration {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.d
}
