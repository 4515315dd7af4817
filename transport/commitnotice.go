package transport

import (
	"github.com/hashicorp/raft"
)

// Commit notices. A follower learns that an entry committed only from the
// leader's next AppendEntries, which Raft sends with the next entry or after
// its commit timeout. A member that forwarded a write waits for its own
// replica to apply it, so the leader tells it at once: an AppendEntries with
// no entries whose previous entry is the last one the follower acknowledged
// in this term, carrying the commit index up to that entry. It is an
// ordinary Raft RPC (the follower checks the term and the previous entry as
// for any other, and takes a commit index no higher than what it matched),
// sent on the same ordered subject as the leader's appends, so it costs the
// follower no log write and the group no log entry.

// noticeState is what the leader's transport knows of one follower's commit
// index. All of it is guarded by RaftTransport.noticeMu.
type noticeState struct {
	want, wantTerm uint64 // the commit index to tell it, committed in wantTerm
	told           uint64 // the highest commit index it acknowledged learning
	busy           bool   // a notice to it is in flight (its sender owns the rest)
}

// matchState is a follower's matched position with what a notice needs to
// name it: the log term of the entry at Index and the header Raft sent it.
type matchState struct {
	Progress
	logTerm uint64
	header  raft.RPCHeader
}

// NotifyCommit asks the transport to tell peer p at once that the log is
// committed up to index, which was committed no later than term, while this
// node led in it (e.g. read from the applied index before the term). The
// notice goes once p has acknowledged entries of that term (at once if it
// has); a later call or a regular AppendEntries that carried the commit
// makes an earlier one moot. At most one notice per peer is in flight.
func (t *RaftTransport) NotifyCommit(p PeerID, term, index uint64) {
	t.noticeMu.Lock()
	defer t.noticeMu.Unlock()
	s := t.notices[p]
	if s == nil {
		if len(t.notices) >= maxNoticePeers {
			return // a configuration never gets this large; Raft's own appends still tell it
		}
		s = &noticeState{}
		t.notices[p] = s
	}
	if term > s.wantTerm || (term == s.wantTerm && index > s.want) {
		s.want, s.wantTerm = index, term
	}
	t.sendNoticeLocked(p, s)
}

// maxNoticePeers bounds the notice table; RetainMatched prunes it with the
// matched table.
const maxNoticePeers = 1024

// sendNoticeLocked starts a notice to p if one is due and none is in flight.
func (t *RaftTransport) sendNoticeLocked(p PeerID, s *noticeState) {
	if s.busy || s.want <= s.told {
		return
	}
	t.matchMu.Lock()
	m := t.matched[p]
	t.matchMu.Unlock()
	if m.Term != s.wantTerm || m.logTerm == 0 {
		return // p has acknowledged nothing of this term yet: its ack calls again
	}
	commit := min(s.want, m.Index)
	if commit <= s.told {
		return
	}
	if !t.track() {
		return
	}
	s.busy = true
	req := &raft.AppendEntriesRequest{
		RPCHeader:         m.header,
		Term:              m.Term,
		PrevLogEntry:      m.Index,
		PrevLogTerm:       m.logTerm,
		LeaderCommitIndex: commit,
	}
	go t.sendNotice(p, s, req)
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
		if err == nil {
			var resp raft.AppendEntriesResponse
			ok = decodeAppendResp(b, &resp) == nil && resp.Success && resp.Term == req.Term
		}
	}
	if ok {
		t.noticesTaken.Add(1)
	}
	t.noticeMu.Lock()
	defer t.noticeMu.Unlock()
	s.busy = false
	if !ok {
		return // not again until p acknowledges an append: no spinning on a refusal
	}
	s.told = max(s.told, req.LeaderCommitIndex)
	if t.notices[p] == s {
		t.sendNoticeLocked(p, s)
	}
}

// noticeAcked records what an acknowledged AppendEntries told p of the
// commit, and sends a notice that waited for p to match.
func (t *RaftTransport) noticeAcked(p PeerID, args *raft.AppendEntriesRequest) {
	t.noticeMu.Lock()
	defer t.noticeMu.Unlock()
	s := t.notices[p]
	if s == nil {
		return
	}
	s.told = max(s.told, min(args.LeaderCommitIndex, args.PrevLogEntry+uint64(len(args.Entries))))
	t.sendNoticeLocked(p, s)
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
