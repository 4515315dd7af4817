package groups

import (
	"sync/atomic"
	"time"
)

// refusals counts what hostile or broken input cost this member: batches
// over the limits, peers dropped from a full table, read-index requests
// refused as busy, new sessions of a member that opened too many. The counters are safe for concurrent use; the last-logged
// figures are owned by the membership goroutine (noteRefusals).
type refusals struct {
	batches   atomic.Uint64
	peers     atomic.Uint64
	readIndex atomic.Uint64
	sessions  atomic.Uint64 // new sessions refused: their member opened too many

	logged [5]uint64 // the figures last logged
	at     time.Time // when they were logged
}

// refusalLogEvery is the shortest interval between two logs of refusals.
const refusalLogEvery = 30 * time.Second

// refusedEntries is how many log entries and commands the machine refused.
func (c *core) refusedEntries() uint64 { return c.fsm.Malformed() }

// noteRefusals logs, at most once per refusalLogEvery, what was refused
// since the last log. It runs on the membership goroutine.
func (c *core) noteRefusals() {
	r := &c.refused
	now := [5]uint64{r.batches.Load(), c.refusedEntries(), r.peers.Load(), r.readIndex.Load(), r.sessions.Load()}
	if now == r.logged || time.Since(r.at) < refusalLogEvery {
		return
	}
	c.log.Warn("groups: refused input from members (see the group_*refused*, dropped and busy metrics)",
		"batches_over_limits", now[0]-r.logged[0],
		"entries_refused", now[1]-r.logged[1],
		"peers_dropped", now[2]-r.logged[2],
		"read_index_busy", now[3]-r.logged[3],
		"sessions_refused", now[4]-r.logged[4])
	r.logged, r.at = now, time.Now()
}
