package groups

import "sync/atomic"

// A follower learns that an entry committed only from the leader's next
// AppendEntries, which Raft sends with the next entry or after its commit
// timeout. A writer on a follower waits for its own node to apply what it
// wrote, so when nothing else is appended the leader nudges: it appends a
// barrier, whose replication carries the new commit index at once.
type nudger struct {
	applies atomic.Uint64 // entries this leader appended
	ch      chan uint64   // the applies count when a nudge was wanted
}

func newNudger() *nudger { return &nudger{ch: make(chan uint64, 1)} }

// appended counts an entry the leader appended.
func (n *nudger) appended() { n.applies.Add(1) }

// want asks for a nudge unless another entry is appended first.
func (n *nudger) want() {
	select {
	case n.ch <- n.applies.Load():
	default: // one is pending already
	}
}

func (c *core) runNudger() {
	for {
		select {
		case <-c.closing:
			return
		case at := <-c.nudge.ch:
			if c.nudge.applies.Load() != at || len(c.appendCh) > 0 || !c.IsLeader() {
				continue // a later entry carries the commit index
			}
			c.nudge.appended()
			_ = c.raft.Load().Barrier(0) // not waited on: nobody needs its answer
		}
	}
}
