package replica

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"slices"
	"time"

	"github.com/mosaik-go/mosaik/rsm"
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
func NewSessionID(seen rsm.Index) (SessionID, error) {
	var id SessionID
	binary.BigEndian.PutUint64(id[:8], uint64(seen))
	_, err := rand.Read(id[8:])
	return id, err
}

// seen is the command index recorded in a session id (see NewSessionID).
func (id SessionID) seen() rsm.Index { return rsm.Index(binary.BigEndian.Uint64(id[:8])) }

// ClusterID tells apart two clusters of one group: the first leader of a
// cluster draws it and writes it to the log, so every member of that
// cluster, and only those, agree on it.
type ClusterID [16]byte

// Verdict is what becomes of a batch of a session.
type Verdict uint8

const (
	// Admit: the batch is the session's next one.
	Admit Verdict = iota
	// Repeat: the batch was seen before; answer it with its outcome.
	Repeat
	// Gap: an earlier batch of the session is missing; refuse it.
	Gap
)

// Judge tells what becomes of batch seq of a session, sent saying every
// batch up to base is known applied, when the last batch seen of that
// session is last (known: the session was seen at all). The leader judges
// by what it appended, the machine by what applied; both by this rule.
// Batch 0 is never admitted: it is no session's, even when base+1 wraps.
func Judge(last uint64, known bool, seq, base uint64) Verdict {
	if known && seq <= last {
		return Repeat
	}
	next := base + 1
	if known {
		next = last + 1
	}
	if seq != next || seq == 0 {
		return Gap
	}
	return Admit
}

const (
	// SessionWindow is how many recent outcomes a session keeps to answer
	// repeats: the most batches a submitter may have unresolved.
	SessionWindow = 32
	// MaxSessions is the most sessions (submitters) the machine remembers;
	// beyond it the least recently used is forgotten, and a retry of one of
	// its batches gets StatusExpired instead of exactly-once.
	MaxSessions = 1024
	// A session is forgotten once idle for this many commands and this long
	// by the leader's clock (both recorded in the log, so all members agree).
	sessionIdleCommands = 1 << 20
	sessionIdleTime     = time.Hour
	sessionGCEvery      = 1 << 14
)

type session struct {
	_        struct{} `cbor:",toarray"`
	Last     uint64
	Active   rsm.Index
	ActiveAt int64
	Recent   []recentOutcome
}

type recentOutcome struct {
	_       struct{} `cbor:",toarray"`
	Seq     uint64
	Outcome Outcome
}

// sessions is the machine's table of submitters. Its owner (an FSM) guards
// it with its lock; every change to it is made alike on every member.
type sessions struct {
	byID   map[SessionID]*session
	lastGC rsm.Index
	// forgotten is the latest index a forgotten session was active at.
	forgotten rsm.Index
}

// outcome tells what became of batch seq of a session: its outcome while
// the session remembers it, StatusStale for an older batch that applied,
// StatusExpired once the session was forgotten (as applying it again would
// answer). It reports false while the batch has not applied.
func (t *sessions) outcome(id SessionID, seq uint64) (Outcome, bool) {
	s := t.byID[id]
	if s == nil {
		// A forgotten session was active at or before forgotten, and made
		// before it was active: every batch of such a session is refused.
		if t.forgotten > 0 && id.seen() <= t.forgotten {
			return Outcome{Status: StatusExpired, First: t.forgotten}, true
		}
		return Outcome{}, false
	}
	if seq > s.Last {
		return Outcome{}, false
	}
	if o, ok := s.recall(seq); ok {
		return o, true
	}
	return Outcome{Status: StatusStale}, true
}

func (s *session) recall(seq uint64) (Outcome, bool) {
	for _, r := range s.Recent {
		if r.Seq == seq {
			return r.Outcome, true
		}
	}
	return Outcome{}, false
}

// expired reports whether a batch of a session the table does not know
// must be refused: batches up to base applied under it and it has been
// forgotten since, so this one may have applied too (a session only starts
// from batch 1, base 0, so it can never come back). With base 0, a session
// made before the last one forgotten was active may be that one, sending
// its first batch again: refused too (its submitter starts a new session).
func (t *sessions) expired(id SessionID, base uint64) bool {
	return base > 0 || (t.forgotten > 0 && id.seen() <= t.forgotten)
}

// record notes that batch seq of a session applied (or was refused for
// good) with out, at index active and time at.
func (t *sessions) record(id SessionID, seq uint64, out Outcome, active rsm.Index, at int64) {
	s := t.byID[id]
	if s == nil {
		if len(t.byID) >= MaxSessions {
			t.evict()
		}
		s = &session{}
		t.byID[id] = s
	}
	s.Last, s.Active, s.ActiveAt = seq, active, at
	if len(s.Recent) == SessionWindow {
		copy(s.Recent, s.Recent[1:])
		s.Recent = s.Recent[:SessionWindow-1]
	}
	s.Recent = append(s.Recent, recentOutcome{Seq: seq, Outcome: out})
	t.gc(active, at)
}

// evict forgets the least recently used session: the one whose last batch
// applied earliest, ties broken by id, so every member forgets the same one.
func (t *sessions) evict() {
	var victim SessionID
	first := true
	for id := range t.byID {
		if first || t.lessRecent(id, victim) < 0 {
			victim, first = id, false
		}
	}
	t.forget(victim)
}

// lessRecent orders sessions from the least recently used, ties broken by
// id: the order in which every member forgets them.
func (t *sessions) lessRecent(a, b SessionID) int {
	if x, y := t.byID[a].Active, t.byID[b].Active; x != y {
		return cmp.Compare(x, y)
	}
	return bytes.Compare(a[:], b[:])
}

// trim forgets the least recently used sessions beyond MaxSessions, as
// evict would one by one, in one sort.
func (t *sessions) trim() {
	excess := len(t.byID) - MaxSessions
	if excess <= 0 {
		return
	}
	ids := make([]SessionID, 0, len(t.byID))
	for id := range t.byID {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, t.lessRecent)
	for _, id := range ids[:excess] {
		t.forget(id)
	}
}

// forget drops a session and remembers the latest index any forgotten
// session was active at (see NewSessionID).
func (t *sessions) forget(id SessionID) {
	t.forgotten = max(t.forgotten, t.byID[id].Active)
	delete(t.byID, id)
}

// gc forgets sessions idle for long, by command count and by the leader's
// clock as the log recorded it.
func (t *sessions) gc(last rsm.Index, now int64) {
	if last-t.lastGC < sessionGCEvery {
		return
	}
	t.lastGC = last
	for id, s := range t.byID {
		if last-s.Active > sessionIdleCommands && now-s.ActiveAt > int64(sessionIdleTime) {
			t.forget(id)
		}
	}
}
