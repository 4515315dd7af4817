package replica

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/mosaik-go/mosaik/rsm"
)

// Entry is the content of one Raft log entry: a batch of encoded commands
// from one session, or (Seq 0) the founding of the cluster.
type Entry struct {
	_       struct{} `cbor:",toarray"`
	Session SessionID
	Seq     uint64    // the session's batch number, from 1; 0 for a founding entry
	Base    uint64    // every batch of the session up to Base is known to be applied
	First   rsm.Index // the index the leader gave the first command
	Cmds    [][]byte  // CBOR-encoded commands
	Cluster []byte    // founding entry only: the ClusterID
}

// Status says what became of an entry.
type Status uint8

const (
	// StatusApplied: the batch applied (now, or earlier if this is a repeat).
	StatusApplied Status = 1 + iota
	// StatusGap: an earlier batch of the session has not applied; nothing did.
	StatusGap
	// StatusStale: a repeat of a batch too old to answer; it applied once.
	StatusStale
	// StatusMalformed: the entry could not be decoded within the limits;
	// nothing applied.
	StatusMalformed
	// StatusTooLarge: the batch exceeds rsm.MaxCommandSize or MaxEntryBytes;
	// nothing applied, and the session moves past it.
	StatusTooLarge
	// StatusExpired: the batch's session was forgotten (see MaxSessions)
	// after some of its batches applied, or may have been; nothing applied
	// now, and whether this batch applied before cannot be told. First is
	// the latest index a forgotten session was active at: a new session
	// must record more (see NewSessionID).
	StatusExpired
)

// Limits of one log entry. A leader refuses batches over them; an entry
// over them that reaches the log anyway (a buggy leader) applies nothing,
// alike on every member.
const (
	// MaxEntryCommands is the most commands in one entry.
	MaxEntryCommands = 4096
	// MaxEntryBytes is the largest total of encoded commands in one entry.
	MaxEntryBytes = 8 << 20
)

// Outcome is what applying an Entry produced; the group hands it back to
// whoever submitted the batch.
type Outcome struct {
	_       struct{} `cbor:",toarray"`
	Status  Status
	First   rsm.Index
	Count   int
	Replies [][]byte // CBOR-encoded replies, one per command, for a Replier
}

// Range returns the indexes the batch occupies.
func (o Outcome) Range() rsm.IndexRange {
	return rsm.IndexRange{First: o.First, Last: o.First + rsm.Index(o.Count) - 1}
}

// entryDecMode decodes log entries: arrays at most MaxEntryCommands long,
// so an entry costs about its byte size to decode whatever it claims.
var entryDecMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		MaxArrayElements: MaxEntryCommands,
		MaxMapPairs:      MaxEntryCommands,
		MaxNestedLevels:  4,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// DecodeEntry decodes a log entry. Its cost is bounded by the entry's size:
// entries longer than MaxEntryBytes and its overhead, or with more than
// MaxEntryCommands commands, are refused before anything is allocated.
func DecodeEntry(data []byte) (Entry, error) {
	var e Entry
	if len(data) > maxEntryData {
		return e, fmt.Errorf("replica: entry of %d bytes, limit %d", len(data), maxEntryData)
	}
	if err := entryDecMode.Unmarshal(data, &e); err != nil {
		return Entry{}, fmt.Errorf("replica: decode entry: %w", err)
	}
	return e, nil
}

// maxEntryData bounds an encoded entry: its commands, nine bytes of header
// per command, and the fixed fields. An entry within the limits always fits.
const maxEntryData = MaxEntryBytes + 9*MaxEntryCommands + 1024

// WithinLimits reports whether encoded commands respect rsm.MaxCommandSize
// and MaxEntryBytes.
func WithinLimits(cmds [][]byte) bool {
	size := 0
	for _, c := range cmds {
		if len(c) > rsm.MaxCommandSize {
			return false
		}
		size += len(c)
	}
	return size <= MaxEntryBytes
}
