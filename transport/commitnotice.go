package transport

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Commit notices. A follower learns that an entry committed only from the
// leader's next AppendEntries, which Raft sends with the next entry or after
// its commit timeout. A member that forwarded a write waits for its own
// replica to apply it, so the leader tells it at once: an AppendEntries with
// no entries whose previous entry is the last one sent to the follower in
// this term (acknowledged or not), carrying the commit index up to that
// entry. It is an ordinary Raft RPC (the follower checks the term and the
// previous entry as for any other, and takes a commit index no higher than
// what it matched), sent on the same ordered subject as the leader's
// appends, after them: a follower that did not store the entry refuses it,
// and learns of the commit from Raft's next append. It costs the follower
// no log write and the group no log entry.

// noticeState is what the leader's transport knows of one follower's commit
// index. All of it is guarded by RaftTransport.noticeMu.
type noticeState struct {
	want, wantTerm uint64 // the commit index to tell it, committed in wantTerm
	told           uint64 // the highest commit index it acknowledged learning
	busy           bool   // a notice to it is in flight (its sender owns the rest)
}

// matchState is a follower's matched (or sent) position with what a notice
// needs to name it: the log term of the entry at Index and the header Raft
// sent it.
type matchState struct {
	Progress
	logTerm uint64
	header  raft.RPCHeader
}

// NotifyCommit asks the transport to tell peer p at once that the log is
// committed up to index, which was committed no later than term, while this
// node led in it (e.g. read from the applied index before the term). The
// notice goes once entries of that term were sent to p (at once if they
// were); a later call or a regular AppendEntries that carried the commit
// makes an earlier one moot. At most one notice per peer is in flight.
func (t *RaftTransport) NotifyCommit(p PeerID, term, index uint64) {
	t.noticeMu.Lock()
	s := t.notices[p]
	if s == nil {
		if len(t.notices) >= maxNoticePeers {
			t.noticeMu.Unlock()
			return // a configuration never gets this large; Raft's own appends still tell it
		}
		s = &noticeState{}
		t.notices[p] = s
	}
	if term > s.wantTerm || (term == s.wantTerm && index > s.want) {
		s.want, s.wantTerm = index, term
	}
	send := t.sendNoticeLocked(p, s)
	t.noticeMu.Unlock()
	send()
}

// maxNoticePeers bounds the notice table; RetainMatched prunes it with the
// matched table.
const maxNoticePeers = 1024

// sendNoticeLocked starts a notice to p if one is due and none is in
// flight. It returns what sends it, for the caller to call once it has
// released noticeMu: publishing may wait on the connection, and the
// answers of other notices and appends need noticeMu meanwhile.
func (t *RaftTransport) sendNoticeLocked(p PeerID, s *noticeState) (send func()) {
	if s.busy || s.want <= s.told {
		return sendNothing
	}
	t.matchMu.Lock()
	m := t.matched[p]
	if x := t.sent[p]; x.Term == s.wantTerm && (m.Term != x.Term || x.Index > m.Index) {
		// Sent, not yet acknowledged: the notice follows the append on
		// the same subject, and p takes it only if it holds the entry.
		m = x
	}
	t.matchMu.Unlock()
	if m.Term != s.wantTerm || m.logTerm == 0 {
		return sendNothing // nothing of this term went to p yet: its ack calls again
	}
	commit := min(s.want, m.Index)
	if commit <= s.told {
		return sendNothing
	}
	if !t.track() {
		return sendNothing
	}
	s.busy = true
	req := commitRequest(m.header, m.Term, m.Index, m.logTerm, commit)
	if t.net.cards.get(p) == nil {
		// Sealing for p waits for its card: on a goroutine of its own.
		go t.sendNotice(p, s, req)
		return sendNothing
	}
	// Sent by the caller, not by a new goroutine: one the caller's own work
	// would hold back, on the path of the write p waits for.
	return func() { t.startNotice(p, s, req) }
}

// sendNotice sends one notice and, once it is answered, the next if one is
// due by then.
func (t *RaftTransport) sendNotice(p PeerID, s *noticeState, req *raft.AppendEntriesRequest) {
	defer t.wg.Done()
	ok := false
	if data, err := encodeAppend(req); err == nil {
		// request bounds the wait by t.timeout and counts the RPC.
		var b []byte
		b, err = t.request(t.ctx, "raft", raft.ServerAddress(p.String()), data)
		ok = err == nil && noticeTaken(req, b)
	}
	t.noticeMu.Lock()
	send := t.endNoticeLocked(p, s, req, ok)
	t.noticeMu.Unlock()
	send()
}

// startNotice sends a notice to p, whose card is known, without waiting,
// and ends it once it is answered, fails, times out or the transport
// closes, on whichever goroutine sees that first. Not under noticeMu.
func (t *RaftTransport) startNotice(p PeerID, s *noticeState, req *raft.AppendEntriesRequest) {
	data, err := encodeAppend(req)
	var (
		mu            sync.Mutex
		ended         bool
		cancel        func()
		stopT, stopCx func() bool
	)
	end := func(ok bool) {
		mu.Lock()
		if ended {
			mu.Unlock()
			return
		}
		ended = true
		c, st, sc := cancel, stopT, stopCx
		mu.Unlock()
		if c != nil { // else startNotice stops them once they are set
			c()
			st()
			sc()
		}
		t.noticeMu.Lock()
		send := t.endNoticeLocked(p, s, req, ok)
		t.noticeMu.Unlock()
		send()
		t.wg.Done()
	}
	var c func()
	if err == nil {
		t.metrics.sent(len(data))
		c, err = t.sc.Call(t.subject("raft", p), p, data, func(b []byte, err error) {
			t.metrics.received(b, err)
			end(err == nil && noticeTaken(req, b))
		})
	}
	if err != nil {
		t.noticeMu.Lock()
		t.endNoticeLocked(p, s, req, false) // sends nothing: not ok
		t.noticeMu.Unlock()
		t.wg.Done()
		return
	}
	tm := time.AfterFunc(t.timeout, func() { end(false) })
	sc := context.AfterFunc(t.ctx, func() { end(false) })
	mu.Lock()
	cancel, stopT, stopCx = c, tm.Stop, sc
	done := ended
	mu.Unlock()
	if done { // answered before the fields above were set
		c()
		tm.Stop()
		sc()
	}
}

// commitRequest is a commit notice: an AppendEntries of term with no
// entries, whose previous entry is (prevIndex, prevTerm), telling that the
// log is committed up to commit. Raft takes it only if it holds that entry
// and term is still current (see the top of this file); a follower's own
// transport makes one too (see selfCommit).
func commitRequest(header raft.RPCHeader, term, prevIndex, prevTerm, commit uint64) *raft.AppendEntriesRequest {
	return &raft.AppendEntriesRequest{
		RPCHeader:         header,
		Term:              term,
		PrevLogEntry:      prevIndex,
		PrevLogTerm:       prevTerm,
		LeaderCommitIndex: commit,
	}
}

// noticeTaken reports whether reply b says p took notice req.
func noticeTaken(req *raft.AppendEntriesRequest, b []byte) bool {
	b, err := parseReply(b)
	if err != nil {
		return false
	}
	var resp raft.AppendEntriesResponse
	return decodeAppendResp(b, &resp) == nil && resp.Success && resp.Term == req.Term
}

// sendNothing is what sendNoticeLocked returns when no notice is due.
func sendNothing() {}

// endNoticeLocked ends a notice to p: it records what p learned, and
// returns what sends the next notice if one is due by then (see
// sendNoticeLocked).
func (t *RaftTransport) endNoticeLocked(p PeerID, s *noticeState, req *raft.AppendEntriesRequest, ok bool) (send func()) {
	s.busy = false
	if !ok {
		return sendNothing // not again until p acknowledges an append: no spinning on a refusal
	}
	t.noticesTaken.Add(1)
	s.told = max(s.told, req.LeaderCommitIndex)
	if t.notices[p] != s {
		return sendNothing
	}
	return t.sendNoticeLocked(p, s)
}

// noticeAcked records what an acknowledged AppendEntries told p of the
// commit, and sends a notice that waited for p to match.
func (t *RaftTransport) noticeAcked(p PeerID, args *raft.AppendEntriesRequest) {
	t.noticeMu.Lock()
	s := t.notices[p]
	if s == nil {
		t.noticeMu.Unlock()
		return
	}
	s.told = max(s.told, min(args.LeaderCommitIndex, args.PrevLogEntry+uint64(len(args.Entries))))
	send := t.sendNoticeLocked(p, s)
	t.noticeMu.Unlock()
	send()
}

// forgetNotices drops the notice state of every peer keep refuses.
func (t *RaftTransport) forgetNotices(keep func(PeerID) bool) {
	t.noticeMu.Lock()
	defer t.noticeMu.Unlock()
	for p, s := range t.notices {
		if !keep(p) && !s.busy {
			delete(t.notices, p)
		}
	}
}
