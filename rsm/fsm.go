package rsm

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// SessionID names one submitter of commands: a group member instance. With
// the batch numbers it stamps, it lets the machine apply every batch exactly
// once, in the order it was issued, even when a batch is sent again.
type SessionID [16]byte

// NewSessionID returns a fresh session id that records seen, the last
// command index its submitter had seen applied: its first 8 bytes, big
// endian; the rest are random. The machine refuses a session it does not
// know as expired unless seen is past every session it has forgotten, so a
// forgotten session's first batch, sent again, cannot apply twice.
func NewSessionID(seen Index) (SessionID, error) {
	var id SessionID
	binary.BigEndian.PutUint64(id[:8], uint64(seen))
	_, err := rand.Read(id[8:])
	return id, err
}

// seen is the command index recorded in a session id (see NewSessionID).
func (id SessionID) seen() Index { return Index(binary.BigEndian.Uint64(id[:8])) }

// ClusterID tells apart two clusters of one group: the first leader of a
// cluster draws it and writes it to the log, so every member of that
// cluster, and only those, agree on it.
type ClusterID [16]byte

// Entry is the content of one Raft log entry: a batch of encoded commands
// from one session, or (Seq 0) the founding of the cluster.
type Entry struct {
	_       struct{} `cbor:",toarray"`
	Session SessionID
	Seq     uint64   // the session's batch number, from 1; 0 for a founding entry
	Base    uint64   // every batch of the session up to Base is known to be applied
	First   Index    // the index the leader gave the first command
	Cmds    [][]byte // CBOR-encoded commands
	Cluster []byte   // founding entry only: the ClusterID
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
	// StatusTooLarge: the batch exceeds MaxCommandSize or MaxEntryBytes;
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
	// MaxCommandSize is the largest encoded command.
	MaxCommandSize = 1 << 20
	// MaxEntryCommands is the most commands in one entry.
	MaxEntryCommands = 4096
	// MaxEntryBytes is the largest total of encoded commands in one entry.
	MaxEntryBytes = 8 << 20
	// MaxSessions is the most sessions (submitters) the machine remembers;
	// beyond it the least recently used is forgotten, and a retry of one of
	// its batches gets StatusExpired instead of exactly-once.
	MaxSessions = 1024
)

// Outcome is what applying an Entry produced; the group hands it back to
// whoever submitted the batch.
type Outcome struct {
	_       struct{} `cbor:",toarray"`
	Status  Status
	First   Index
	Count   int
	Replies [][]byte // CBOR-encoded replies, one per command, for a Replier
}

// Range returns the indexes the batch occupies.
func (o Outcome) Range() IndexRange {
	return IndexRange{First: o.First, Last: o.First + Index(o.Count) - 1}
}

const (
	// sessionWindow is how many recent outcomes a session keeps to answer
	// repeats. A submitter never has more batches unresolved than this.
	sessionWindow = 32
	// A session is forgotten once idle for this many commands and this long
	// by the leader's clock (both recorded in the log, so all members agree).
	sessionIdleCommands = 1 << 20
	sessionIdleTime     = time.Hour
	sessionGCEvery      = 1 << 14
)

// SessionWindow is the most batches a submitter may have unresolved.
const SessionWindow = sessionWindow

type session struct {
	_        struct{} `cbor:",toarray"`
	Last     uint64
	Active   Index
	ActiveAt int64
	Recent   []recentOutcome
}

type recentOutcome struct {
	_       struct{} `cbor:",toarray"`
	Seq     uint64
	Outcome Outcome
}

// ErrNoSnapshots is returned when Raft asks a machine without Snapshotter
// for a snapshot. Such groups never compact their log.
var ErrNoSnapshots = errors.New("rsm: machine does not implement Snapshotter; it catches up by log replay")

// FSM adapts a StateMachine to raft.FSM and raft.BatchingFSM. It decodes
// entries, drops repeated and out-of-order batches, numbers commands, keeps
// the replies, and wraps the machine's snapshots with its own state. It is
// safe for concurrent use.
type FSM[C, Q, R any] struct {
	sm      StateMachine[C, Q, R]
	replier Replier[C, R]
	batcher BatchApplier[C]
	pub     Publisher
	snapper Snapshotter
	notify  func()

	mu       sync.Mutex
	cluster  ClusterID
	last     Cursor
	raftIdx  uint64
	sessions map[SessionID]*session
	lastGC   Index
	// forgotten is the latest index a forgotten session was active at.
	forgotten Index
	ctx       applyCtx

	applied     atomic.Uint64
	appliedRaft atomic.Uint64
	malformed   atomic.Uint64
}

var _ raft.BatchingFSM = (*FSM[struct{}, struct{}, struct{}])(nil)

// NewFSM wraps sm. notify, if not nil, is called after every applied batch of
// log entries, without locks held.
func NewFSM[C, Q, R any](sm StateMachine[C, Q, R], notify func()) *FSM[C, Q, R] {
	f := &FSM[C, Q, R]{sm: sm, notify: notify, sessions: map[SessionID]*session{}}
	f.replier, _ = sm.(Replier[C, R])
	f.batcher, _ = sm.(BatchApplier[C])
	f.pub, _ = sm.(Publisher)
	f.snapper, _ = sm.(Snapshotter)
	return f
}

// Machine returns the wrapped machine.
func (f *FSM[C, Q, R]) Machine() StateMachine[C, Q, R] { return f.sm }

// CanSnapshot reports whether the machine implements Snapshotter.
func (f *FSM[C, Q, R]) CanSnapshot() bool { return f.snapper != nil }

// Applied returns the index of the last applied command.
func (f *FSM[C, Q, R]) Applied() Index { return Index(f.applied.Load()) }

// AppliedRaft returns the Raft index of the last applied log entry.
func (f *FSM[C, Q, R]) AppliedRaft() uint64 { return f.appliedRaft.Load() }

// Last returns the position of the last applied command.
func (f *FSM[C, Q, R]) Last() Cursor {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// Cluster returns the cluster's id, or the zero id before the founding
// entry applied.
func (f *FSM[C, Q, R]) Cluster() ClusterID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cluster
}

// Sessions returns how many sessions the machine remembers.
func (f *FSM[C, Q, R]) Sessions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sessions)
}

// Malformed counts entries and commands that could not be decoded.
func (f *FSM[C, Q, R]) Malformed() uint64 { return f.malformed.Load() }

// SessionLast returns the highest applied batch number of a session.
func (f *FSM[C, Q, R]) SessionLast(id SessionID) (uint64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sessions[id]
	if s == nil {
		return 0, false
	}
	return s.Last, true
}

// SessionOutcome tells what became of batch seq of a session: its outcome
// while the session remembers it, StatusStale for an older batch that
// applied, StatusExpired once the session was forgotten (as Apply would
// answer it). It reports false while the batch has not applied: sent
// again, it may.
func (f *FSM[C, Q, R]) SessionOutcome(id SessionID, seq uint64) (Outcome, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sessions[id]
	if s == nil {
		// A forgotten session was active at or before forgotten, and made
		// before it was active: Apply refuses every batch of such a session.
		if f.forgotten > 0 && id.seen() <= f.forgotten {
			return Outcome{Status: StatusExpired, First: f.forgotten}, true
		}
		return Outcome{}, false
	}
	if seq > s.Last {
		return Outcome{}, false
	}
	if o, ok := f.recall(id, seq); ok {
		return o, true
	}
	return Outcome{Status: StatusStale}, true
}

func (f *FSM[C, Q, R]) recall(id SessionID, seq uint64) (Outcome, bool) {
	s := f.sessions[id]
	if s == nil {
		return Outcome{}, false
	}
	for _, r := range s.Recent {
		if r.Seq == seq {
			return r.Outcome, true
		}
	}
	return Outcome{}, false
}

// Query runs q against the machine, never concurrently with Apply.
func (f *FSM[C, Q, R]) Query(q Q) R {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sm.Query(q)
}

// Apply implements raft.FSM. Command entries return an Outcome.
func (f *FSM[C, Q, R]) Apply(l *raft.Log) any {
	f.mu.Lock()
	out := f.applyLog(l)
	f.publish()
	f.mu.Unlock()
	if f.notify != nil {
		f.notify()
	}
	return out
}

// ApplyBatch implements raft.BatchingFSM.
func (f *FSM[C, Q, R]) ApplyBatch(logs []*raft.Log) []any {
	outs := make([]any, len(logs))
	f.mu.Lock()
	for i, l := range logs {
		outs[i] = f.applyLog(l)
	}
	f.publish()
	f.mu.Unlock()
	if f.notify != nil {
		f.notify()
	}
	return outs
}

func (f *FSM[C, Q, R]) publish() {
	if f.pub != nil {
		f.pub.Publish()
	}
	f.applied.Store(uint64(f.last.Index))
	f.appliedRaft.Store(f.raftIdx)
}

func (f *FSM[C, Q, R]) applyLog(l *raft.Log) any {
	if l.Index > f.raftIdx {
		f.raftIdx = l.Index
	}
	if l.Type != raft.LogCommand {
		return nil
	}
	e, err := DecodeEntry(l.Data)
	if err != nil {
		f.malformed.Add(1)
		return Outcome{Status: StatusMalformed}
	}
	if e.Seq == 0 {
		if len(e.Cluster) != len(f.cluster) {
			f.malformed.Add(1)
			return Outcome{Status: StatusMalformed}
		}
		if f.cluster == (ClusterID{}) {
			f.cluster = ClusterID(e.Cluster) // the first founding entry wins
		}
		return Outcome{Status: StatusApplied}
	}
	s := f.sessions[e.Session]
	if s == nil && (e.Base > 0 || (f.forgotten > 0 && e.Session.seen() <= f.forgotten)) {
		// Batches up to Base applied under this session, which has been
		// forgotten since: this one may have applied too. A session only
		// starts from batch 1 (Base 0), so it can never come back. With
		// Base 0, a session made before the last one forgotten was active
		// may be that one, sending its first batch again: refuse it too
		// (its submitter starts a new session; nothing applied now).
		f.skip(e, l.Term)
		return Outcome{Status: StatusExpired, First: f.forgotten}
	}
	if s != nil && e.Seq <= s.Last {
		f.skip(e, l.Term)
		if o, ok := f.recall(e.Session, e.Seq); ok {
			return o
		}
		return Outcome{Status: StatusStale}
	}
	expected := e.Base + 1
	if s != nil {
		expected = s.Last + 1
	}
	if e.Seq != expected {
		f.skip(e, l.Term)
		return Outcome{Status: StatusGap}
	}
	out := Outcome{Status: StatusApplied}
	if !withinLimits(e.Cmds) {
		// Only a buggy leader appends this: refuse it alike everywhere and
		// let the session go on past it.
		f.malformed.Add(1)
		f.skip(e, l.Term)
		out.Status = StatusTooLarge
	} else if n := len(e.Cmds); n > 0 {
		first := max(e.First, f.last.Index+1)
		out.First, out.Count = first, n
		out.Replies = f.applyCommands(e.Cmds, first, Term(l.Term))
		f.last = Cursor{Term: Term(l.Term), Index: first + Index(n) - 1}
	}
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	if s == nil {
		if len(f.sessions) >= MaxSessions {
			f.evictSession()
		}
		s = &session{}
		f.sessions[e.Session] = s
	}
	s.Last, s.Active, s.ActiveAt = e.Seq, f.last.Index, at
	if len(s.Recent) == sessionWindow {
		copy(s.Recent, s.Recent[1:])
		s.Recent = s.Recent[:sessionWindow-1]
	}
	s.Recent = append(s.Recent, recentOutcome{Seq: e.Seq, Outcome: out})
	f.gcSessions(at)
	return out
}

// skip moves past the indexes a refused entry was given, so that indexes
// the leader handed out are always reached.
func (f *FSM[C, Q, R]) skip(e Entry, term uint64) {
	if n := len(e.Cmds); n > 0 && e.First+Index(n)-1 > f.last.Index {
		f.last = Cursor{Term: Term(term), Index: e.First + Index(n) - 1}
	}
}

func (f *FSM[C, Q, R]) applyCommands(raw [][]byte, first Index, term Term) [][]byte {
	f.ctx.committed = f.last
	f.ctx.term = term
	switch {
	case f.replier != nil:
		replies := make([][]byte, len(raw))
		for i, b := range raw {
			var c C
			if err := decMode.Unmarshal(b, &c); err != nil {
				f.malformed.Add(1)
				continue
			}
			f.ctx.pos = Cursor{Term: term, Index: first + Index(i)}
			r := f.replier.ApplyReply(c, &f.ctx)
			if enc, err := encMode.Marshal(r); err == nil {
				replies[i] = enc
			} else {
				f.malformed.Add(1)
			}
		}
		return replies
	case f.batcher != nil:
		cmds := make([]C, 0, len(raw))
		for _, b := range raw {
			var c C
			if err := decMode.Unmarshal(b, &c); err != nil {
				f.malformed.Add(1)
				continue
			}
			cmds = append(cmds, c)
		}
		f.ctx.pos = Cursor{Term: term, Index: first + Index(len(raw)) - 1}
		f.batcher.ApplyBatch(cmds, &f.ctx)
	default:
		for i, b := range raw {
			var c C
			if err := decMode.Unmarshal(b, &c); err != nil {
				f.malformed.Add(1)
				continue
			}
			f.ctx.pos = Cursor{Term: term, Index: first + Index(i)}
			f.sm.Apply(c, &f.ctx)
		}
	}
	return nil
}

// evictSession forgets the least recently used session: the one whose
// last batch applied earliest, ties broken by id, so every member forgets
// the same one.
func (f *FSM[C, Q, R]) evictSession() {
	var victim SessionID
	first := true
	for id := range f.sessions {
		if first || f.lessRecent(id, victim) < 0 {
			victim, first = id, false
		}
	}
	f.forget(victim, f.sessions[victim])
}

// lessRecent orders sessions from the least recently used, ties broken by
// id: the order in which every member forgets them.
func (f *FSM[C, Q, R]) lessRecent(a, b SessionID) int {
	if x, y := f.sessions[a].Active, f.sessions[b].Active; x != y {
		return cmp.Compare(x, y)
	}
	return bytes.Compare(a[:], b[:])
}

// trimSessions forgets the least recently used sessions beyond
// MaxSessions, as evictSession would one by one, in one sort.
func (f *FSM[C, Q, R]) trimSessions() {
	excess := len(f.sessions) - MaxSessions
	if excess <= 0 {
		return
	}
	ids := make([]SessionID, 0, len(f.sessions))
	for id := range f.sessions {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, f.lessRecent)
	for _, id := range ids[:excess] {
		f.forget(id, f.sessions[id])
	}
}

// forget drops a session and remembers the latest index any forgotten
// session was active at (see NewSessionID).
func (f *FSM[C, Q, R]) forget(id SessionID, s *session) {
	delete(f.sessions, id)
	f.forgotten = max(f.forgotten, s.Active)
}

// DecodeEntry decodes a log entry. Its cost is bounded by the entry's size:
// entries longer than MaxEntryBytes and its overhead, or with more than
// MaxEntryCommands commands, are refused before anything is allocated.
func DecodeEntry(data []byte) (Entry, error) {
	var e Entry
	if len(data) > maxEntryData {
		return e, fmt.Errorf("rsm: entry of %d bytes, limit %d", len(data), maxEntryData)
	}
	if err := entryDecMode.Unmarshal(data, &e); err != nil {
		return Entry{}, fmt.Errorf("rsm: decode entry: %w", err)
	}
	return e, nil
}

// maxEntryData bounds an encoded entry: its commands, nine bytes of header
// per command, and the fixed fields. An entry within the limits always fits.
const maxEntryData = MaxEntryBytes + 9*MaxEntryCommands + 1024

// withinLimits reports whether encoded commands respect MaxCommandSize and
// MaxEntryBytes.
func withinLimits(cmds [][]byte) bool {
	size := 0
	for _, c := range cmds {
		if len(c) > MaxCommandSize {
			return false
		}
		size += len(c)
	}
	return size <= MaxEntryBytes
}

func (f *FSM[C, Q, R]) gcSessions(now int64) {
	if f.last.Index-f.lastGC < sessionGCEvery {
		return
	}
	f.lastGC = f.last.Index
	for id, s := range f.sessions {
		if f.last.Index-s.Active > sessionIdleCommands && now-s.ActiveAt > int64(sessionIdleTime) {
			f.forget(id, s)
		}
	}
}

type applyCtx struct {
	committed, pos Cursor
	term           Term
}

func (c *applyCtx) Committed() Cursor   { return c.committed }
func (c *applyCtx) LogPosition() Cursor { return c.pos }
func (c *applyCtx) CurrentTerm() Term   { return c.term }

// Snapshot format: magic, header length, CBOR header (the adapter's state),
// then the machine's own snapshot.
// Version 2 adds Forgotten; version 1 snapshots still restore.
var (
	snapMagic   = [4]byte{'M', 'R', 'S', '2'}
	snapMagicV1 = [4]byte{'M', 'R', 'S', '1'}
)

type snapHeader struct {
	_         struct{} `cbor:",toarray"`
	Cluster   ClusterID
	Last      Cursor
	RaftIdx   uint64
	LastGC    Index
	Sessions  map[SessionID]*session
	Forgotten Index
}

type snapHeaderV1 struct {
	_        struct{} `cbor:",toarray"`
	Cluster  ClusterID
	Last     Cursor
	RaftIdx  uint64
	LastGC   Index
	Sessions map[SessionID]*session
}

// Snapshot implements raft.FSM.
func (f *FSM[C, Q, R]) Snapshot() (raft.FSMSnapshot, error) {
	if f.snapper == nil {
		return nil, ErrNoSnapshots
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ms, err := f.snapper.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("rsm: snapshot: %w", err)
	}
	h := snapHeader{Cluster: f.cluster, Last: f.last, RaftIdx: f.raftIdx, LastGC: f.lastGC, Forgotten: f.forgotten, Sessions: make(map[SessionID]*session, len(f.sessions))}
	for id, s := range f.sessions {
		c := *s
		c.Recent = append([]recentOutcome(nil), s.Recent...)
		h.Sessions[id] = &c
	}
	hb, err := encMode.Marshal(h)
	if err != nil {
		ms.Release()
		return nil, fmt.Errorf("rsm: snapshot header: %w", err)
	}
	return &fsmSnapshot{header: hb, ms: ms}, nil
}

type fsmSnapshot struct {
	header []byte
	ms     Snapshot
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriterSize(sink, 256<<10)
	var pre [8]byte
	copy(pre[:4], snapMagic[:])
	binary.BigEndian.PutUint32(pre[4:], uint32(len(s.header)))
	_, err := w.Write(pre[:])
	if err == nil {
		_, err = w.Write(s.header)
	}
	if err == nil {
		err = s.ms.Persist(w)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("rsm: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { s.ms.Release() }

// maxSnapHeader bounds the adapter's part of a snapshot: MaxSessions
// sessions, each with its window of outcomes.
const maxSnapHeader = 256 << 20

// readFull reads n bytes, growing its buffer as they arrive rather than
// trusting n up front: a short input costs what it holds, not what it
// claims.
func readFull(r io.Reader, n int) ([]byte, error) {
	const step = 64 << 10
	b := make([]byte, 0, min(n, step))
	for len(b) < n {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(n-len(b), max(cap(b), step)))
		}
		k, err := io.ReadFull(r, b[len(b):min(n, cap(b))])
		b = b[:len(b)+k]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return b, nil
}

// Restore implements raft.FSM.
func (f *FSM[C, Q, R]) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if f.snapper == nil {
		return ErrNoSnapshots
	}
	r := bufio.NewReaderSize(rc, 256<<10)
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return fmt.Errorf("rsm: restore: read header: %w", err)
	}
	v1 := [4]byte(pre[:4]) == snapMagicV1
	if [4]byte(pre[:4]) != snapMagic && !v1 {
		return errors.New("rsm: restore: not a mosaik snapshot")
	}
	n := binary.BigEndian.Uint32(pre[4:])
	if n > maxSnapHeader {
		return fmt.Errorf("rsm: restore: header of %d bytes is implausible", n)
	}
	hb, err := readFull(r, int(n))
	if err != nil {
		return fmt.Errorf("rsm: restore: read header: %w", err)
	}
	var h snapHeader
	if v1 {
		var old snapHeaderV1
		err = decMode.Unmarshal(hb, &old)
		h = snapHeader{Cluster: old.Cluster, Last: old.Last, RaftIdx: old.RaftIdx, LastGC: old.LastGC, Sessions: old.Sessions}
	} else {
		err = decMode.Unmarshal(hb, &h)
	}
	if err != nil {
		return fmt.Errorf("rsm: restore: decode header: %w", err)
	}
	for id, s := range h.Sessions {
		if s == nil || len(s.Recent) > sessionWindow {
			return fmt.Errorf("rsm: restore: session %x is malformed", id[:4])
		}
	}
	f.mu.Lock()
	err = f.snapper.Restore(r)
	if err == nil {
		f.cluster, f.last, f.raftIdx, f.lastGC, f.forgotten = h.Cluster, h.Last, h.RaftIdx, h.LastGC, h.Forgotten
		f.sessions = h.Sessions
		if f.sessions == nil {
			f.sessions = map[SessionID]*session{}
		}
		f.trimSessions() // a snapshot from before the bound; alike everywhere
		f.publish()
	}
	f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("rsm: restore: %w", err)
	}
	if f.notify != nil {
		f.notify()
	}
	return nil
}
