// Package collections gives Go services replicated, strongly consistent
// data structures: Map, Vec and Set. Every node that opens a collection by
// name on the same network holds the same contents. Writes go through Raft;
// reads are local and never touch the network.
//
// # Opening
//
// A collection lives on a transport.Network (see transport.New): open it
// with NewMapWriter, NewVecWriter or NewSetWriter to change it, or with
// NewMapReader, NewVecReader or NewSetReader to follow it. A writer has every
// read method too. Readers join their collection's group as observers: they
// replicate, never vote and never lead, so a collection with only readers has
// no leader and stays offline. Open a collection once per network (a second
// open fails with ErrAlreadyOpen) and share the handle: handles are safe for
// concurrent use. Wait for When().Online before relying on reads; Close the
// handle when done. MapDef, VecDef and SetDef let a library define a
// collection once and export it.
//
// Options: WithSecret seals the collection (every handle needs the same
// secret); WithGroupConfig passes group settings, among them durable storage
// (groups.Config.Storage, see storage.Open) and timings. A collection is
// named by its kind, its name, the Go type names of its type parameters and
// its timings: handles that differ in any of these are different collections
// and log a warning naming what differs.
//
// # Writes and reads
//
// Writes take a context and return the Version they committed at, once this
// node has applied them, so a writer reads its own writes; another handle
// shows a write once When().Reaches(v). A write's error says what is known:
// ErrOffline and ErrNotApplied mean it did not apply and may be issued again,
// ErrOutcomeUnknown that it may apply, once (Outcome tells later). Reads
// (Get, All, Len, ...) read an immutable snapshot of the applied state, a
// whole batch of writes or none of it, and never block writers for longer
// than a Map's first read after an unread batch takes to freeze its tree.
//
// # Watching
//
// Watch yields every change in version order, all changes of one write in
// one event; a write that changes nothing yields no event. WithInitial
// starts with the current state, FromVersion resumes after a version
// (ErrCompacted when that history is gone; see WithHistory).
package collections
