package groups

import (
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// divergeLogEvery spaces the error a diverged member logs: Raft's leader
// tries again and again.
const divergeLogEvery = time.Minute

// guardLog refuses to cut off log entries this member has applied. Raft
// only truncates entries that were never committed, and a member applies
// only committed ones, so a cut at or below the applied index means the
// leader's history differs from what this member applied: it was recovered
// (Recover) from a survivor that lacked them. Truncating would leave the
// machine holding writes the group no longer has, silently. Refused, the
// member keeps its log, never catches up, is never promoted, and says so
// (Status.Diverged, an error in the log) until it is restarted empty.
// Compaction cuts from the first index and is let through.
type guardLog struct {
	raft.LogStore
	c *core
}

func (g guardLog) DeleteRange(min, max uint64) error {
	first, err := g.LogStore.FirstIndex()
	if err != nil {
		return err
	}
	if applied := g.c.fsm.AppliedRaft(); min > first && min <= applied {
		g.c.diverged(min, applied)
		return fmt.Errorf("groups: refusing to replace log entries from %d: this member applied up to %d, and the group's history differs", min, applied)
	}
	return g.LogStore.DeleteRange(min, max)
}

// diverged records that the leader's log differs from what this member
// applied, from index.
func (c *core) diverged(index, applied uint64) {
	c.divergedAt.CompareAndSwap(0, index)
	now, last := time.Now().UnixNano(), c.divergeLogged.Load()
	if now-last >= int64(divergeLogEvery) && c.divergeLogged.CompareAndSwap(last, now) {
		c.log.Error("groups: this member applied entries the group's leader replaces (the group was recovered from a member that lacked them): "+
			"its state differs from the group's, so it follows no further; restart it empty (in memory) or with an empty data directory",
			"from_index", index, "applied", applied)
	}
}
