// Package inspectwire is the inspect protocol: the messages a collection's
// handle answers and the inspect tool sends, and the group labels by which
// the tool recognises a collection. Both sides compile against these types,
// so the wire changes only here. Every message is CBOR with integer keys
// (keyasint), which are its format: a Go field may be renamed, a key may
// not be renumbered.
//
// A handle answers on Subject: dumps (OpDump) in pages, each entry an
// insert Change; waits for changes (OpChanges) as Records; the head
// (OpHead); and the operator commands OpRecover and OpRemoveMember.
package inspectwire

import (
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// Subject is the subject on which the handle of collection group on node
// peer answers inspect requests.
func Subject(net *transport.Network, group string, peer transport.PeerID) string {
	return net.Subject("coll", group, peer.String())
}

// Labels a collection's group carries in its status (groups.Status.Labels),
// which is how inspect finds collections and tells them apart.
const (
	LabelKind  = "kind"  // KindMap, KindVec, KindSet, KindCell, KindOnce or KindPQueue
	LabelName  = "name"  // the collection's name
	LabelTypes = "types" // its type parameters' names, comma separated: "string,int"
	LabelRole  = "role"  // RoleWriter or RoleReader; the node's own handle
)

// Values of LabelKind.
const (
	KindMap = "map"
	KindVec = "vec"
	KindSet = "set"
	// A Cell's or a Once's changes carry the value on inserts, as a Set's.
	KindCell = "cell"
	KindOnce = "once"
	// A PriorityQueue's changes carry the key on inserts and removes, as a
	// Map's, and on inserts the value [priority, value].
	KindPQueue = "pqueue"
)

// Values of LabelRole.
const (
	RoleWriter = "writer"
	RoleReader = "reader"
)

// Op is a request's operation.
type Op uint8

const (
	// OpDump reads the state in pages: a request with Session 0 starts a
	// dump of the current state, later pages name the session and the
	// page wanted (the last one again is a retry). The pages of one
	// session all show one version. A session answers only the peer that
	// started it; collections drops one left unread for 30 s.
	OpDump Op = 1 + iota
	// OpChanges returns the changes after Since, waiting up to Wait (at
	// most 30 s) for the first one.
	OpChanges
	// OpHead returns the current version and size.
	OpHead
	// OpRecover reforms the collection's group from the answering member
	// and returns what it may have cost in Reply.Recovery.
	OpRecover
	// OpRemoveMember removes Peer from the group; only the leader answers
	// it with OK. Force removes a live member too.
	OpRemoveMember
)

// Code is a reply's outcome.
type Code uint8

const (
	OK Code = iota
	// Compacted: the changes after Since are no longer kept.
	Compacted
	// UnknownSession: a dump session expired, belongs to another peer, or
	// its pages were asked out of order.
	UnknownSession
	// Malformed: a request that does not decode or makes no sense.
	Malformed
	// Closed: the handle closed.
	Closed
	// Busy refuses a request over the node's or the peer's bounds; Msg
	// says which. Retry later.
	Busy
	// Refused is an operator command refused as unsafe or not allowed; Msg
	// says why. Nothing was changed.
	Refused
	// NotLeader is OpRemoveMember sent to a member that does not lead.
	NotLeader
	// Failed is an operator command that failed; Msg says how.
	Failed
)

// Request is a request of the inspect protocol.
type Request struct {
	Op      Op            `cbor:"1,keyasint"`
	Session uint64        `cbor:"2,keyasint,omitempty"`
	Page    uint64        `cbor:"3,keyasint,omitempty"`
	Limit   int           `cbor:"4,keyasint,omitempty"`
	Since   uint64        `cbor:"5,keyasint,omitempty"` // a collection version
	Wait    time.Duration `cbor:"6,keyasint,omitempty"`
	Peer    string        `cbor:"7,keyasint,omitempty"` // OpRemoveMember: the member's id, 64 hex digits
	Force   bool          `cbor:"8,keyasint,omitempty"`
	// Issued is when an operator command was sent (Unix nanoseconds, the
	// operator's clock); members drop commands issued long ago.
	Issued int64 `cbor:"9,keyasint,omitempty"`
}

// Reply answers a Request.
type Reply struct {
	Code    Code     `cbor:"1,keyasint"`
	Msg     string   `cbor:"2,keyasint,omitempty"`
	Session uint64   `cbor:"3,keyasint,omitempty"`
	Page    uint64   `cbor:"4,keyasint,omitempty"`
	Version uint64   `cbor:"5,keyasint"`
	Total   int      `cbor:"6,keyasint,omitempty"` // entries in the dumped state
	Items   []Change `cbor:"7,keyasint,omitempty"` // a dump page's entries, as inserts
	Done    bool     `cbor:"8,keyasint,omitempty"` // the dump's last page
	Records []Record `cbor:"9,keyasint,omitempty"`
	// Recovery is what OpRecover did, also when it was refused.
	Recovery *Recovery `cbor:"10,keyasint,omitempty"`
}

// Record is the changes of one command.
type Record struct {
	Version uint64   `cbor:"1,keyasint"`
	Changes []Change `cbor:"2,keyasint"`
}

// ChangeOp is what a Change does.
type ChangeOp uint8

const (
	// ChangeInsert adds or replaces an entry (map, set), or inserts an
	// element at Index (vec).
	ChangeInsert ChangeOp = 1 + iota
	// ChangeRemove removes an entry, or the element at Index.
	ChangeRemove
	// ChangeClear removes everything.
	ChangeClear
	// ChangeSet replaces the vec element at Index.
	ChangeSet
	// ChangeTruncate shortens a vec to Index elements.
	ChangeTruncate
)

func (o ChangeOp) String() string {
	switch o {
	case ChangeInsert:
		return "insert"
	case ChangeRemove:
		return "remove"
	case ChangeClear:
		return "clear"
	case ChangeSet:
		return "set"
	case ChangeTruncate:
		return "truncate"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Change is one change of a collection, or one entry of a dump (an
// insert). Key and Value are the CBOR of the collection's own types; each
// is present only where it means something: Key for a map's inserts and
// removes, Value for inserts and sets, and for a set's removes (its
// element is its identity). Index is a vec's position.
type Change struct {
	Op    ChangeOp        `cbor:"1,keyasint"`
	Key   cbor.RawMessage `cbor:"2,keyasint,omitempty"`
	Index int             `cbor:"3,keyasint,omitempty"`
	Value cbor.RawMessage `cbor:"4,keyasint,omitempty"`
}

// Recovery is groups.Recovery on the wire; peers are 64 hex digits.
type Recovery struct {
	Previous     []string `cbor:"1,keyasint"`
	Reachable    []string `cbor:"2,keyasint"`
	LastIndex    uint64   `cbor:"3,keyasint"`
	Committed    uint64   `cbor:"4,keyasint"`
	Uncommitted  uint64   `cbor:"5,keyasint"`
	HighestIndex uint64   `cbor:"6,keyasint"`
	HighestPeer  string   `cbor:"7,keyasint,omitempty"`
	MayBeLost    uint64   `cbor:"8,keyasint"`
}

// Bounds of a request: a flat map of a few numbers and one peer id. A
// request over them does not decode.
const (
	maxRequestPairs   = 16
	maxRequestNesting = 4
)

var requestDec = func() cbor.DecMode {
	dm, err := cbor.DecOptions{MaxNestedLevels: maxRequestNesting, MaxArrayElements: 16, MaxMapPairs: maxRequestPairs}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// Marshal encodes a Request, Reply or Change, deterministically.
func Marshal(v any) ([]byte, error) { return rsm.Marshal(v) }

// DecodeRequest decodes a request, within the request bounds.
func DecodeRequest(b []byte) (Request, error) {
	var r Request
	if err := requestDec.Unmarshal(b, &r); err != nil {
		return Request{}, fmt.Errorf("inspect request: %w", err)
	}
	return r, nil
}

// DecodeReply decodes a reply, within rsm's decode bounds (arrays and maps
// no longer than the largest command, nesting at most 64 deep).
func DecodeReply(b []byte) (Reply, error) {
	var r Reply
	if err := rsm.Unmarshal(b, &r); err != nil {
		return Reply{}, err
	}
	return r, nil
}

// DecodeChange decodes one Change, as Marshal wrote it (a record of a
// backup file).
func DecodeChange(b []byte) (Change, error) {
	var c Change
	if err := rsm.Unmarshal(b, &c); err != nil {
		return Change{}, err
	}
	return c, nil
}
