// Package storage keeps a group member's Raft log, its term and vote, and its
// snapshots: in memory (Memory, the default, gone with the process) or on
// disk (Open: one Pebble database per node, shared by all its groups, each
// group under its own key prefix).
//
// A node with a data directory comes back after a restart as the same
// member. Open the directory once per process, make the key it keeps the
// node's network identity, and give the DB to every group the node joins:
//
//	db, err := storage.Open(dir, nil) // nil *Options: defaults, fsync on every commit
//	defer db.Close()                  // after the groups and the network
//	id, err := transport.IdentityFromSeed(db.NodeKey())
//	net, err := transport.New(ctx, transport.WithIdentity(id))
//	g, err := groups.Join(net, key, machine, &groups.Config{Storage: db})
//	// or collections.NewMapWriter[K, V](net, name, collections.WithGroupConfig(&groups.Config{Storage: db}))
//
// The groups then find their term, vote, log and snapshots where they left
// them. A second Open of a directory in use fails with ErrLocked; damaged data
// is ErrCorrupt, never a panic; after a failed fsync every operation fails
// with ErrFailed until the directory is opened again.
package storage
