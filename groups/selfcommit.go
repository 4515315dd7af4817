package groups

import (
	"sync/atomic"

	"github.com/hashicorp/raft"
	"github.com/mosaik-go/mosaik/transport"
)

// Follower self-commit (transport.RaftTransport.SetSelfCommit): a follower
// that stored an entry of its leader's current term takes it as committed
// at once, when it and the leader are a majority of the voters of its
// latest configuration: in practice a group of three voters (or two). Its
// writer then returns once its own replica applied the batch (see
// submitter.applied), about one network round trip earlier than the
// leader's commit notice and outcome reply arrive.
//
// Why it is safe. Say this member F stored entry i of term T from L, the
// leader of T, and F's latest configuration C, which holds every entry of
// F's log up to i, has L and F as a majority of its voters. L stored i
// before sending it and keeps it while it leads T; by Log Matching both
// hold the same log up to i.
//
//   - If L's latest configuration is C too, L itself takes i as committed
//     once F acknowledges it (Raft's rule: an entry of the leader's term on
//     a majority of its latest configuration). F concludes exactly what L
//     concludes, from the same facts, so it is as safe as Raft is.
//   - Otherwise L appended a later configuration C' at an index k > i
//     (every configuration entry up to i is in F's log, so C is L's up to
//     i). hashicorp/raft appends a configuration change only while its
//     latest configuration is committed and each change adds or removes
//     one server (configurationChangeChIfStable, nextConfiguration), so C
//     was committed and C' differs from C by one server. A server holding
//     k holds i. A candidate whose latest configuration is C (it lacks k)
//     needs a majority of C, which holds L or F; both refuse a log that
//     lacks i (i is of term T, and every log of a higher term that a
//     leader wrote holds i by induction on terms, Raft's Leader
//     Completeness argument). One whose configuration is C' holds k, so i.
//     Any later configuration needs C' committed first, by servers that
//     hold k. So no leader of a later term lacks i.
//
// An open configuration change (C itself not yet committed) does not
// change this: C is then L's latest configuration too (L cannot append
// another before C commits), the first case. So the policy needs only the
// latest configuration, not a committed one. That is unlike quickRead,
// which must know the configuration a newer leader would hold, not only
// which entries are committed.
//
// The transport reads the policy after Raft stored the entries, on the
// goroutine that hands Raft the leader's appends in order, so C holds
// every entry up to i and none of a later append. A snapshot installed
// meanwhile may make C a later configuration; then i is below the
// snapshot, so committed anyway, and Raft ignores a commit index lower
// than its own.

// selfCommitQuorum reports whether self and leader, two distinct voters,
// are a majority of voters.
func selfCommitQuorum(voters []transport.PeerID, self, leader transport.PeerID) bool {
	if self == leader {
		return false
	}
	in := 0
	for _, v := range voters {
		if v == self || v == leader {
			in++
		}
	}
	return in == 2 && 2*in > len(voters)
}

// votersCache is the voters of the configuration Raft handed out last.
// Raft stores a fresh copy of each new latest configuration, so the
// address of its first server tells whether it changed.
type votersCache struct {
	first  *raft.Server
	n      int
	voters []transport.PeerID
}

// selfCommitAllowed is the policy handed to the transport: whether this
// member may take entries of leader's term as committed once stored. It
// runs on the transport's RPC delivery goroutine.
func (c *core) selfCommitAllowed(leader transport.PeerID) bool {
	vs, ok := c.latestVoters()
	return ok && selfCommitQuorum(vs, c.self, leader)
}

// followerSelfCommits reports whether follower p takes the entries this
// leader sends it as committed by itself, as far as this leader's latest
// configuration tells: then p needs no commit notice for a batch it waits
// to apply (see runCompleter). Where p's configuration differs (a change
// on its way to it) or p runs a version without self-commit, p learns of
// the commit from Raft's next append instead, within its CommitTimeout:
// later, never wrongly.
func (c *core) followerSelfCommits(p transport.PeerID) bool {
	vs, ok := c.latestVoters()
	return ok && selfCommitQuorum(vs, p, c.self)
}

// latestVoters returns the voters of Raft's latest configuration, read
// once per configuration. The slice is shared: do not modify it.
func (c *core) latestVoters() ([]transport.PeerID, bool) {
	r := c.raft.Load()
	if r == nil {
		return nil, false
	}
	servers := r.GetConfiguration().Configuration().Servers
	if len(servers) == 0 {
		return nil, false
	}
	vc := c.selfVoters.Load()
	if vc == nil || vc.first != &servers[0] || vc.n != len(servers) {
		vc = &votersCache{first: &servers[0], n: len(servers)}
		for _, s := range servers {
			if s.Suffrage != raft.Voter {
				continue
			}
			p, err := transport.ParsePeerID(string(s.ID))
			if err != nil {
				return nil, false
			}
			vc.voters = append(vc.voters, p)
		}
		c.selfVoters.Store(vc)
	}
	return vc.voters, true
}

// selfVotersCache is embedded in core.
type selfVotersCache struct {
	selfVoters atomic.Pointer[votersCache]
}
