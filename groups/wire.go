package groups

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/mosaik-go/mosaik/internal/replica"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// Control messages between members travel on the member's control subject
// as one kind byte and a CBOR array.
const (
	ctlForward byte = 1 + iota
	ctlReadIndex
	ctlLeave
	ctlProve
)

// proveRequest asks a member for a digest of its log entry at Index: the
// leader promotes a non-voter only once the member shows it holds the log
// it acknowledged.
type proveRequest struct {
	_     struct{} `cbor:",toarray"`
	Index uint64
	Nonce [16]byte // the digest covers it, so an answer cannot be kept for later
}

type proveReply struct {
	_      struct{} `cbor:",toarray"`
	Found  bool
	Digest [32]byte
}

// forward carries a batch of commands from a member to the leader.
type forward struct {
	_       struct{} `cbor:",toarray"`
	Session replica.SessionID
	Seq     uint64
	Base    uint64
	Attempt uint32
	Cmds    [][]byte
	Local   bool // the sender waits to apply the batch itself: push the commit to it
}

const (
	replyAppended uint8 = 1 + iota // the leader gave the batch its indexes
	replyOutcome                   // the batch applied (or was refused)
	replyError                     // this attempt failed; try again
)

// forwardReply answers a forward, possibly twice: appended, then outcome.
type forwardReply struct {
	_       struct{} `cbor:",toarray"`
	Seq     uint64
	Attempt uint32
	Kind    uint8
	First   rsm.Index
	Outcome replica.Outcome
	Code    uint8
	Msg     string
}

func (r *forwardReply) err() error { return &remoteError{code: r.Code, msg: r.Msg} }

// readIndexRequest asks the leader for a read index. Term is the asker's
// Raft term, read after its Sync began (see quickRead); older members send
// an empty array, which decodes to no term.
type readIndexRequest struct {
	_    struct{} `cbor:",toarray"`
	Term uint64
}

type readIndexReply struct {
	_     struct{} `cbor:",toarray"`
	Index rsm.Index
	Code  uint8
	Msg   string
}

type leaveRequest struct {
	_     struct{} `cbor:",toarray"`
	Force bool
}

// announcement is what a member tells the others at a steady interval.
type announcement struct {
	_         struct{} `cbor:",toarray"`
	Pref      uint8
	Factor    uint32
	HasState  bool             // bootstrapped, or added to a group
	Leader    transport.PeerID // the leader it follows; zero if none
	Term      uint64
	LastIndex LogIndex // last Raft log index
	Applied   rsm.Index
	Leaving   bool
	Cluster   replica.ClusterID // zero until the member applied its cluster's founding entry
	Ticket    string            // in a group with Tickets: the member's ticket
}

func (a *announcement) preference() Preference {
	switch prefKind(a.Pref) {
	case prefObserver:
		return Observer
	case prefReluctant:
		return Reluctant(a.Factor)
	default:
		return Normal
	}
}

func encodeCtl(kind byte, v any) ([]byte, error) {
	b, err := rsm.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte{kind}, b...), nil
}

func decodeCtl(b []byte, v any) error {
	if len(b) < 1 {
		return fmt.Errorf("groups: empty control message")
	}
	return decodeWire(b[1:], v)
}

// wireDecMode decodes what members send each other: no array in a
// control message, reply or announcement is longer than a batch, and none
// nests deeper than a few levels, so a message costs about its size to
// decode whatever it claims.
var wireDecMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		MaxArrayElements: MaxBatchCommands,
		MaxMapPairs:      16,
		MaxNestedLevels:  8,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// decodeWire decodes a message from another member.
func decodeWire(b []byte, v any) error {
	if err := wireDecMode.Unmarshal(b, v); err != nil {
		return fmt.Errorf("groups: decode %T: %w", v, err)
	}
	return nil
}
