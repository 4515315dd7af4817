package transport

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/hashicorp/raft"
)

// Raft RPCs travel as one kind byte followed by a CBOR array. The wire types
// mirror hashicorp/raft's so the encoding is compact and owned by us.
const (
	kindAppend byte = 1 + iota
	kindVote
	kindPreVote
	kindTimeoutNow
	kindSnapBegin
	kindSnapChunk
	kindSnapEnd
)

// Replies start with a status byte: ok, then the CBOR response, or failed,
// then an error text.
const (
	replyOK byte = 1 + iota
	replyErr
)

var (
	encMode cbor.UserBufferEncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().UserBufferEncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		MaxArrayElements: 1 << 20,
		MaxMapPairs:      1 << 16,
		MaxNestedLevels:  16,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

type wireHeader struct {
	_       struct{} `cbor:",toarray"`
	Version int
	ID      []byte
	Addr    []byte
}

func toWireHeader(h raft.RPCHeader) wireHeader {
	return wireHeader{Version: int(h.ProtocolVersion), ID: h.ID, Addr: h.Addr}
}

func (h wireHeader) raft() raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersion(h.Version), ID: h.ID, Addr: h.Addr}
}

type wireLog struct {
	_          struct{} `cbor:",toarray"`
	Index      uint64
	Term       uint64
	Type       uint8
	Data       []byte
	Extensions []byte
	AppendedAt int64
}

type wireAppend struct {
	_            struct{} `cbor:",toarray"`
	Header       wireHeader
	Term         uint64
	Leader       []byte
	PrevLogEntry uint64
	PrevLogTerm  uint64
	Entries      []wireLog
	Commit       uint64
}

type wireAppendResp struct {
	_              struct{} `cbor:",toarray"`
	Header         wireHeader
	Term           uint64
	LastLog        uint64
	Success        bool
	NoRetryBackoff bool
}

// largeAppend is the estimated size above which encodeAppend sizes its own
// buffer: below it, the over-estimate would cost more than the copy.
const largeAppend = 64 << 10

func encodeAppend(a *raft.AppendEntriesRequest) ([]byte, error) {
	w := wireAppend{
		Header: toWireHeader(a.RPCHeader), Term: a.Term, Leader: a.Leader,
		PrevLogEntry: a.PrevLogEntry, PrevLogTerm: a.PrevLogTerm, Commit: a.LeaderCommitIndex,
	}
	if len(a.Entries) > 0 {
		w.Entries = make([]wireLog, len(a.Entries))
		for i, e := range a.Entries {
			var at int64
			if !e.AppendedAt.IsZero() {
				at = e.AppendedAt.UnixNano()
			}
			w.Entries[i] = wireLog{Index: e.Index, Term: e.Term, Type: uint8(e.Type), Data: e.Data, Extensions: e.Extensions, AppendedAt: at}
		}
	}
	size := appendBase(a)
	for _, e := range a.Entries {
		size += appendEntrySize(e)
	}
	if size <= largeAppend {
		return marshal(kindAppend, w) // a pooled buffer and one copy of the exact size
	}
	// Large entries: encode them once, into a buffer of about their size,
	// rather than into one grown by doubling and then copied.
	buf := bytes.NewBuffer(make([]byte, 0, size))
	buf.WriteByte(kindAppend)
	if err := encMode.MarshalToBuffer(w, buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeAppend(b []byte) (*raft.AppendEntriesRequest, error) {
	var w wireAppend
	if err := decMode.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	a := &raft.AppendEntriesRequest{
		RPCHeader: w.Header.raft(), Term: w.Term, Leader: w.Leader,
		PrevLogEntry: w.PrevLogEntry, PrevLogTerm: w.PrevLogTerm, LeaderCommitIndex: w.Commit,
	}
	if len(w.Entries) > 0 {
		logs := make([]raft.Log, len(w.Entries))
		a.Entries = make([]*raft.Log, len(w.Entries))
		for i, e := range w.Entries {
			logs[i] = raft.Log{Index: e.Index, Term: e.Term, Type: raft.LogType(e.Type), Data: e.Data, Extensions: e.Extensions}
			if e.AppendedAt != 0 {
				logs[i].AppendedAt = time.Unix(0, e.AppendedAt)
			}
			a.Entries[i] = &logs[i]
		}
	}
	return a, nil
}

func encodeAppendResp(r *raft.AppendEntriesResponse) ([]byte, error) {
	return marshal(replyOK, wireAppendResp{Header: toWireHeader(r.RPCHeader), Term: r.Term, LastLog: r.LastLog, Success: r.Success, NoRetryBackoff: r.NoRetryBackoff})
}

func decodeAppendResp(b []byte, r *raft.AppendEntriesResponse) error {
	var w wireAppendResp
	if err := decMode.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = raft.AppendEntriesResponse{RPCHeader: w.Header.raft(), Term: w.Term, LastLog: w.LastLog, Success: w.Success, NoRetryBackoff: w.NoRetryBackoff}
	return nil
}

// decodeRPC decodes an RPC of kind other than a snapshot's as it travels.
func decodeRPC(kind byte, body []byte) (any, error) {
	var cmd any
	switch kind {
	case kindAppend:
		req, err := decodeAppend(body)
		if err != nil {
			return nil, err
		}
		return req, nil
	case kindVote:
		cmd = new(raft.RequestVoteRequest)
	case kindPreVote:
		cmd = new(raft.RequestPreVoteRequest)
	case kindTimeoutNow:
		cmd = new(raft.TimeoutNowRequest)
	default:
		return nil, fmt.Errorf("rpc kind %d unknown", kind)
	}
	if err := decMode.Unmarshal(body, cmd); err != nil {
		return nil, err
	}
	return cmd, nil
}

// decodeSnapBegin decodes the begin of a snapshot transfer.
func decodeSnapBegin(body []byte) (*snapBegin, error) {
	var b snapBegin
	if err := decMode.Unmarshal(body, &b); err != nil {
		return nil, fmt.Errorf("snapshot begin: %w", err)
	}
	if b.Request == nil {
		return nil, errors.New("snapshot begin without a request")
	}
	return &b, nil
}

// snapBegin opens a snapshot transfer; chunks and the end refer to it by ID.
type snapBegin struct {
	_       struct{} `cbor:",toarray"`
	ID      uint64
	Request *raft.InstallSnapshotRequest
}

// A snapshot chunk, and the end of a transfer, is [kind][transfer id as 8
// bytes big-endian][data]: not CBOR, so the data is not copied to encode or
// decode it.
const snapChunkHead = 1 + 8

func marshal(kind byte, v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+len(b))
	out[0] = kind
	copy(out[1:], b)
	return out, nil
}

func errorReply(err error) []byte {
	return append([]byte{replyErr}, err.Error()...)
}

// RemoteError is an error a peer reported in its reply.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return "transport: remote: " + e.Msg }

// parseReply splits a reply into its CBOR body or the remote error.
func parseReply(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, errors.New("transport: empty reply")
	}
	switch b[0] {
	case replyOK:
		return b[1:], nil
	case replyErr:
		return nil, &RemoteError{Msg: string(b[1:])}
	default:
		return nil, fmt.Errorf("transport: reply status %d unknown", b[0])
	}
}
