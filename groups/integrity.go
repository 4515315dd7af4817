package groups

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/internal/raftconf"
	"github.com/mosaik-go/mosaik/storage"
)

// checkStoredConfigurations reads what raft.NewRaft will read of the stored
// log, every entry after the latest snapshot, and checks that each
// configuration entry decodes. Raft panics on one that does not, and on an
// entry it cannot read; a node would crash at every start. This turns that
// into an error wrapping storage.ErrCorrupt that names the group and the
// index.
func checkStoredConfigurations(id ID, logs raft.LogStore, snaps raft.SnapshotStore) error {
	last, err := logs.LastIndex()
	if err != nil {
		return fmt.Errorf("groups: group %s: read last log index: %w", id.Short(), err)
	}
	var from uint64
	metas, err := snaps.List()
	if err != nil {
		return fmt.Errorf("groups: group %s: list snapshots: %w", id.Short(), err)
	}
	if len(metas) > 0 {
		from = metas[0].Index // the newest, which Raft restores
	}
	for i := from + 1; i <= last; i++ {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				return fmt.Errorf("%w: group %s: log entry at index %d is missing (log ends at %d, snapshot at %d)", storage.ErrCorrupt, id.Short(), i, last, from)
			}
			return fmt.Errorf("groups: group %s: read log entry at index %d: %w", id.Short(), i, err)
		}
		if l.Type != raft.LogConfiguration {
			continue
		}
		if _, err := raftconf.Decode(l.Data); err != nil {
			return fmt.Errorf("%w: group %s: configuration entry at index %d: %v", storage.ErrCorrupt, id.Short(), i, err)
		}
	}
	return nil
}
