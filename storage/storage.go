package storage

import "github.com/hashicorp/raft"

// Stores are the stores of one group on one node.
type Stores struct {
	Log       raft.LogStore
	Stable    raft.StableStore
	Snapshots raft.SnapshotStore
	// Release is called when the group member stops; it may be nil.
	Release func() error
}

// ConfigurationChecker is implemented by the log stores of a DB. Raft's
// NewRaft reads every log entry after the latest snapshot when it starts,
// decodes the configuration entries, and panics on an entry it cannot read
// or decode; CheckConfigurations makes the same reads first and returns
// an error wrapping ErrCorrupt instead. Call it before raft.NewRaft:
//
//	if c, ok := stores.Log.(storage.ConfigurationChecker); ok {
//		if err := c.CheckConfigurations(); err != nil { ... }
//	}
type ConfigurationChecker interface {
	CheckConfigurations() error
}

// Provider hands each group its stores. Implementations are safe for
// concurrent use.
type Provider interface {
	// Stores returns the stores of the group with the given id.
	Stores(group [32]byte) (Stores, error)
	// Durable reports whether the stores outlive the process. A member with
	// durable stores stays in its group's membership when it closes, because
	// it is expected back.
	Durable() bool
}

// Memory returns a Provider whose stores live in memory: every call to
// Stores returns new, empty stores. It is the default.
func Memory() Provider { return memory{} }

type memory struct{}

func (memory) Stores([32]byte) (Stores, error) {
	s := raft.NewInmemStore()
	return Stores{Log: s, Stable: s, Snapshots: &memSnapshots{}}, nil
}

func (memory) Durable() bool { return false }
