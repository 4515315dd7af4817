package storage

import "errors"

// Errors of the durable store. Match them with errors.Is; the messages that
// wrap them name the directory, group, key or snapshot concerned.
var (
	// ErrClosed is returned by every operation on a DB, or on the stores it
	// handed out, after DB.Close, and on stores after their Release.
	ErrClosed = errors.New("storage: closed")
	// ErrLocked is returned by Open when another process, or another Open
	// in this process, holds the data directory.
	ErrLocked = errors.New("storage: data directory is in use")
	// ErrNotDataDir is returned by Open when the directory holds something
	// other than a mosaik data directory.
	ErrNotDataDir = errors.New("storage: not a mosaik data directory")
	// ErrCorrupt is returned when a stored record does not decode, a
	// checksum does not match, or a file of the database is damaged or
	// missing: by Open, by DB.Stores, and by the read that finds the
	// damage. Nothing corrupt is ever handed out, and damage never panics.
	ErrCorrupt = errors.New("storage: corrupt data")
	// ErrFailed is returned by every operation after a write failed to reach
	// stable storage (a failed fsync). Such a failure cannot be retried
	// safely: close the DB and open the directory again, which recovers
	// exactly what was synced.
	ErrFailed = errors.New("storage: a write failed to reach stable storage")
	// ErrGroupInUse is returned by Stores when the group's stores are already
	// handed out and not yet released.
	ErrGroupInUse = errors.New("storage: group is already open on this node")
	// ErrReadOnly is returned by every write to a DB opened with
	// Options.ReadOnly.
	ErrReadOnly = errors.New("storage: opened read-only")
	// ErrSnapshotNotFound is returned by the snapshot store's Open for an id
	// it does not hold.
	ErrSnapshotNotFound = errors.New("storage: snapshot not found")

	// ErrKeyNotFound is returned by the stable store for a key never set.
	// Its message is exactly "not found", without the package prefix,
	// because hashicorp/raft recognises a missing key by that text
	// (raft-boltdb and raft's own stores do the same).
	ErrKeyNotFound = errors.New("not found")
)
