// Package rsm is the replicated state machine contract: what a machine
// implements to be replicated by a group, and the CBOR codec commands,
// queries and results travel in. How a group turns log entries into calls
// of the machine, exactly once per command, is the group's own business.
//
// A machine is a plain deterministic value: Apply never does I/O, reads no
// clock and starts no goroutine. The group calls Apply and Query, and
// never runs Query concurrently with Apply.
package rsm

import "io"

// Index is a position in a group's history. Every command gets its own
// Index, in the order commands apply; indexes only grow but may skip values.
// Compare them by order only.
type Index uint64

// Term is a Raft term: it grows with every election.
type Term uint64

// Cursor is a position together with the term it was written in.
type Cursor struct {
	Term  Term
	Index Index
}

// IndexRange is the inclusive range of indexes of a batch of commands.
type IndexRange struct{ First, Last Index }

// Len returns the number of indexes in the range.
func (r IndexRange) Len() int {
	if r.Last < r.First {
		return 0
	}
	return int(r.Last-r.First) + 1
}

// StateMachine is the application logic a group replicates. C is the
// command type, Q the query type, R the query result type; all three travel
// as CBOR and must encode and decode faithfully.
type StateMachine[C, Q, R any] interface {
	// Signature names the machine and its version. Members whose signatures
	// differ are in different groups and never meet.
	Signature() string
	// Apply applies one committed command. It must be deterministic.
	Apply(cmd C, ctx ApplyContext)
	// Query reads the state. It never runs concurrently with Apply.
	Query(q Q) R
}

// ApplyContext describes where in the history a command applies. Everything
// it reports is the same on every member.
type ApplyContext interface {
	// Committed is the position of the last command applied before the
	// current batch.
	Committed() Cursor
	// LogPosition is the position of the command being applied.
	LogPosition() Cursor
	// CurrentTerm is the term the command was written in.
	CurrentTerm() Term
}

// BatchApplier is implemented by machines that apply a batch of commands
// (all commands of one log entry) at once more cheaply than one by one.
// When implemented, ApplyBatch is called instead of Apply.
type BatchApplier[C any] interface {
	ApplyBatch(cmds []C, ctx ApplyContext)
}

// Replier is implemented by machines whose commands answer whoever issued
// them: whether a compare-and-swap applied, the value a pop removed. When
// implemented, ApplyReply is called instead of Apply and BatchApplier is not
// used.
//
// The answer travels as CBOR, so it must encode faithfully; the caller
// names the type to decode it into at the call (groups.ExecuteReply[A],
// groups.ExecuteApplied[A]), so each kind of command may answer with its
// own type, unrelated to the query result type. An answer that does not
// encode reaches the caller as no answer (A's zero value) and is counted
// as malformed. A nil answer is no answer too.
type Replier[C any] interface {
	ApplyReply(cmd C, ctx ApplyContext) any
}

// Publisher is implemented by machines that gather the changes of applied
// commands and make them visible in one step, so that readers outside Apply
// see whole batches and the machine pays for publishing once per batch.
// Publish is called after every batch of log entries has applied: before
// the batch's callers hear of it, before any Snapshot or Query, and never
// concurrently with Apply or Restore.
type Publisher interface {
	Publish()
}

// Snapshotter is implemented by machines that can save and restore their
// whole state. Their log is compacted and a lagging member catches up from a
// snapshot. Machines without it catch up by replaying the log from the start,
// and their log is never compacted.
type Snapshotter interface {
	// Snapshot captures the state. It is called between two Applies and must
	// be quick: capture an immutable view, write it later in Persist.
	Snapshot() (Snapshot, error)
	// Restore replaces the whole state with one a Snapshot persisted.
	Restore(r io.Reader) error
}

// Snapshot is a captured state. Persist may run concurrently with Apply.
type Snapshot interface {
	Persist(w io.Writer) error
	Release()
}

// NoOp is a machine without state, for groups that only need a leader.
// Its zero value is ready to use.
type NoOp struct{}

// Signature implements StateMachine.
func (NoOp) Signature() string { return "mosaik.noop.v1" }

// Apply implements StateMachine.
func (NoOp) Apply(struct{}, ApplyContext) {}

// Query implements StateMachine.
func (NoOp) Query(struct{}) struct{} { return struct{}{} }
