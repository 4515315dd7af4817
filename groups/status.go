package groups

import (
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/transport"
)

// Status is what a member tells about its group when the network is asked
// (see transport.Network.Survey); the inspect tool shows it.
type Status struct {
	ID           ID                `cbor:"id"`
	Labels       map[string]string `cbor:"labels,omitempty"`
	Self         transport.PeerID  `cbor:"self"`
	Role         string            `cbor:"role"` // leader, follower, candidate, non-voter, or stopped
	Preference   string            `cbor:"preference"`
	Online       bool              `cbor:"online"`
	Leader       transport.PeerID  `cbor:"leader"`
	Term         uint64            `cbor:"term"`
	LogLast      LogIndex          `cbor:"last_index"` // last Raft log index
	LogCommitted LogIndex          `cbor:"committed"`  // Raft commit index
	LogApplied   LogIndex          `cbor:"applied"`    // last Raft index applied to the machine
	LogSnapshot  LogIndex          `cbor:"snapshot"`   // last Raft index of the latest snapshot
	Members      []MemberStatus    `cbor:"members"`
	Sealed       bool              `cbor:"sealed,omitempty"` // the group has a secret (never the secret itself)
	// Mismatches are other groups heard under this group's key: members
	// that opened the same name with other settings.
	Mismatches []Mismatch `cbor:"mismatches,omitempty"`
	// Diverged is the first log index at which the leader's history
	// differs from what this member applied (after a Recover from a member
	// that lacked it); zero if it does not. Such a member follows no
	// further: restart it empty.
	Diverged LogIndex `cbor:"diverged,omitempty"`
}

// Mismatch is another group heard under a member's key: members that
// opened the same key (a collection's kind and name) with other settings,
// so that their group id differs. The two groups never meet and hold
// different data.
type Mismatch struct {
	ID ID `cbor:"id"`
	// Peers and Voters count its members heard recently, and those of them
	// that may vote.
	Peers  int `cbor:"peers"`
	Voters int `cbor:"voters"`
	// Signature is its machine's signature (a collection's kind and type
	// names), cut to 512 bytes.
	Signature string `cbor:"signature"`
	// Differs names each setting that differs, with this member's value
	// and the other group's, e.g. `signature "a.v1" here, "a.v2" there`.
	Differs   []string  `cbor:"differs"`
	LastHeard time.Time `cbor:"last_heard"`
}

// LogIndex is a position in a group's Raft log. Every log entry takes one:
// batches of commands, configuration changes, Raft's own no-ops. It is not
// comparable with an rsm.Index, which counts commands (Group.Applied,
// When.Applied, collections' versions); Status and Recovery report log
// positions, for operators.
type LogIndex uint64

// MemberStatus is one member of a group as the answering member sees it.
type MemberStatus struct {
	Peer        transport.PeerID `cbor:"peer"`
	Voter       bool             `cbor:"voter"`
	Leader      bool             `cbor:"leader"`
	Preference  string           `cbor:"preference"`
	LogLast     LogIndex         `cbor:"last_index"` // last Raft log index it reported
	Lag         uint64           `cbor:"lag"`        // entries behind the highest last index known
	LastContact time.Time        `cbor:"last_contact"`
}

// StatusSection is the section of transport.NodeStatus that lists a node's
// groups, as a []Status.
const StatusSection = "groups"

// nodeGroups are the group members running on one network, kept on the
// network (see transport.Slot). Its mutex guards cores and whether the
// status section is set.
type nodeGroups struct {
	mu    sync.Mutex
	cores map[*core]struct{}
}

var nodeGroupsSlot = transport.NewSlot(func(*transport.Network) *nodeGroups {
	return &nodeGroups{cores: map[*core]struct{}{}}
})

// register makes c part of its node's status answers.
func (c *core) register() {
	ng := nodeGroupsSlot.Get(c.net)
	ng.mu.Lock()
	defer ng.mu.Unlock()
	if len(ng.cores) == 0 {
		c.net.SetStatus(StatusSection, ng.status)
	}
	ng.cores[c] = struct{}{}
}

func (c *core) unregister() {
	ng := nodeGroupsSlot.Get(c.net)
	ng.mu.Lock()
	defer ng.mu.Unlock()
	if _, ok := ng.cores[c]; !ok {
		return
	}
	delete(ng.cores, c)
	if len(ng.cores) == 0 {
		c.net.SetStatus(StatusSection, nil)
	}
}

func (ng *nodeGroups) status() any {
	ng.mu.Lock()
	cores := make([]*core, 0, len(ng.cores))
	for c := range ng.cores {
		cores = append(cores, c)
	}
	ng.mu.Unlock()
	out := make([]Status, 0, len(cores))
	for _, c := range cores {
		out = append(out, c.Status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID.String() < out[j].ID.String() })
	return out
}

// Status describes this member and the group as it sees them. It reads only
// Raft's counters and the member's own records: it never waits for the
// machine.
func (c *core) Status() Status {
	leader, _ := c.Leader()
	st := Status{
		ID:           c.id,
		Labels:       c.cfg.Labels,
		Self:         c.self,
		Preference:   c.cfg.Preference.String(),
		Online:       c.when.online(c.when.get()),
		Leader:       leader,
		Term:         c.raft.Load().CurrentTerm(),
		LogLast:      LogIndex(c.raft.Load().LastIndex()),
		LogCommitted: LogIndex(c.raft.Load().CommitIndex()),
		LogApplied:   LogIndex(c.fsm.AppliedRaft()),
		Sealed:       c.scope.Sealed(),
		Mismatches:   c.Mismatches(),
		Diverged:     LogIndex(c.divergedAt.Load()),
	}
	if idx, err := strconv.ParseUint(c.raft.Load().Stats()["last_snapshot_index"], 10, 64); err == nil {
		st.LogSnapshot = LogIndex(idx)
	}
	switch c.raft.Load().State() {
	case raft.Leader:
		st.Role = "leader"
	case raft.Candidate:
		st.Role = "candidate"
	case raft.Shutdown:
		st.Role = "stopped"
	default:
		st.Role = "follower"
	}
	members := c.Members()
	var top LogIndex
	for _, m := range members {
		if m.Peer == c.self && !m.Voter && st.Role == "follower" {
			st.Role = "non-voter"
		}
		last := c.reportedLast(m.Peer)
		top = max(top, last)
		st.Members = append(st.Members, MemberStatus{
			Peer: m.Peer, Voter: m.Voter, Leader: m.Leader, Preference: m.Preference.String(),
			LogLast: last, LastContact: m.LastContact,
		})
	}
	for i := range st.Members {
		st.Members[i].Lag = uint64(top - st.Members[i].LogLast)
	}
	return st
}

// reportedLast is the last Raft log index p reported (this member's own for
// itself).
func (c *core) reportedLast(p transport.PeerID) LogIndex {
	if p == c.self {
		return LogIndex(c.raft.Load().LastIndex())
	}
	c.peersMu.Lock()
	defer c.peersMu.Unlock()
	if ps := c.peers[p]; ps != nil {
		return ps.ann.LastIndex
	}
	return 0
}
