package transport

import (
	"github.com/hashicorp/raft"
)

// Follower self-commit. In a configuration where this node and the leader
// together are a majority of the voters (two of three), an entry of the
// leader's current term is committed once this node stored it: Raft's
// leader stores every entry in its own log before any replication sends it
// (dispatchLogs, then StoreLogs), so an entry this node holds from the
// leader of its term is held by both. This node then need not wait for the
// leader's next AppendEntries or commit notice to learn the commit: once
// its Raft answered an AppendEntries with entries successfully, and the
// answer went back to the leader, the transport hands its own Raft a commit
// notice made from that request (see commitRequest): same header and term,
// previous entry the last one it carried, commit index that entry's index.
// Raft checks it as any other AppendEntries (the term is still current, the
// entry is still in its log with that term), so one made moot by a new term
// or a truncation meanwhile is refused and changes nothing.
//
// Whether the configuration allows it is the policy the caller sets
// (SetSelfCommit): the transport does not read Raft's configuration.

// SetSelfCommit makes this node commit entries it stored from the leader
// as described above, for AppendEntries whose sender allow accepts; nil (the
// default) turns it off. allow is called on the RPC delivery goroutine after
// Raft answered the AppendEntries, with Raft's configuration reflecting the
// entries it carried; it must be quick. It must accept a leader only while
// this node and the leader are a majority of the voters of Raft's latest
// configuration.
func (t *RaftTransport) SetSelfCommit(allow func(leader PeerID) bool) {
	if allow == nil {
		t.selfAllow.Store(nil)
		return
	}
	t.selfAllow.Store(&allow)
}

// SelfCommits returns how many self-commit notices this node's Raft took.
func (t *RaftTransport) SelfCommits() uint64 { return t.selfCommits.Load() }

// selfCommitRequest returns the self-commit notice for an AppendEntries
// req that Raft answered with r, or nil if none is due: Raft refused or
// failed it, it carried no entries, its last entry is of an older term
// than the request's (such an entry is not committed by being on two
// servers), or it already told a commit up to its last entry.
func selfCommitRequest(req *raft.AppendEntriesRequest, r raft.RPCResponse) *raft.AppendEntriesRequest {
	if r.Error != nil || len(req.Entries) == 0 {
		return nil
	}
	resp, ok := r.Response.(*raft.AppendEntriesResponse)
	if !ok || !resp.Success || resp.Term != req.Term {
		return nil
	}
	last := req.Entries[len(req.Entries)-1]
	if last == nil || last.Term != req.Term || req.LeaderCommitIndex >= last.Index {
		return nil
	}
	return commitRequest(req.RPCHeader, req.Term, last.Index, last.Term, last.Index)
}

// selfCommit hands Raft the self-commit notice for cmd, which came from
// sender and which Raft answered with r, if one is due and the policy
// allows it. It runs on the RPC delivery goroutine after the answer was
// sent, so the next RPC from the leader is handed to Raft after it.
func (t *RaftTransport) selfCommit(sender PeerID, cmd any, r raft.RPCResponse) {
	req, ok := cmd.(*raft.AppendEntriesRequest)
	if !ok {
		return
	}
	allow := t.selfAllow.Load()
	if allow == nil {
		return
	}
	n := selfCommitRequest(req, r)
	if n == nil || !(*allow)(sender) {
		return
	}
	respCh := make(chan raft.RPCResponse, 1)
	if !t.dispatch(raft.RPC{Command: n, RespChan: respCh}) {
		return
	}
	if r, ok := t.await(respCh); ok && r.Error == nil {
		if resp, ok := r.Response.(*raft.AppendEntriesResponse); ok && resp.Success {
			t.selfCommits.Add(1)
		}
	}
}
