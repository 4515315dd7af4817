package groups

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/internal/replica"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// peerState is what this member knows of another from its announcements.
type peerState struct {
	ann     announcement
	heard   time.Time
	expires time.Time // when its ticket expires, in a group with Tickets
}

// How far behind the leader's log a non-voter may be and still be promoted.
const promoteLag = 1024

// maxPeers bounds the table of announced peers. When it is full, a newcomer
// takes the place of the peer heard least recently among those outside the
// configuration; if all are in it, the newcomer is not remembered. Either
// way the drop is counted (refusals.peers).
const maxPeers = 1024

// maxReactPasses bounds the passes a leader's membership loop makes on being
// woken by newcomers within an announce interval counted from the first of
// them, so that a flood of them (new identities cost nothing in a group
// without a secret or tickets) adds at most maxReactPasses members per such
// interval besides those its rounds add. A round does not renew the budget:
// a chain of woken passes that a round interrupts would otherwise go on for
// another maxReactPasses.
const maxReactPasses = 4

func (c *core) onAnnouncement(m *transport.Msg) {
	if m.From == c.self {
		return
	}
	var a announcement
	if err := decodeWire(m.Data, &a); err != nil {
		c.log.Debug("groups: malformed announcement dropped", "from", m.From.Short(), "err", err)
		return
	}
	var expires time.Time
	if t := c.cfg.Tickets; t != nil {
		// A ticket is checked once: later announcements that show the same
		// one only need it not to have expired.
		c.peersMu.Lock()
		if ps := c.peers[m.From]; ps != nil && ps.ann.Ticket == a.Ticket {
			expires = ps.expires
		}
		c.peersMu.Unlock()
		var err error
		if expires.IsZero() {
			expires, err = t.check(a.Ticket, m.From)
		} else if !time.Now().Before(expires) {
			err = errors.New("groups: ticket expired")
		}
		if err != nil {
			// Not admitted: as if it had not spoken. Its entry, if any,
			// ages until the leader removes it.
			c.log.Debug("groups: announcement without a valid ticket ignored", "from", m.From.Short(), "err", err)
			return
		}
	}
	var members map[raft.ServerID]bool
	c.peersMu.Lock()
	full := c.peers[m.From] == nil && len(c.peers) >= maxPeers
	c.peersMu.Unlock()
	if full {
		members = c.configured()
	}
	c.peersMu.Lock()
	ps := c.peers[m.From]
	if ps == nil && len(c.peers) >= maxPeers {
		c.refused.peers.Add(1)
		if !c.evictPeerLocked(members) {
			c.peersMu.Unlock()
			return
		}
	}
	now := time.Now()
	// A member is new to the leader's decisions when it was not in the
	// table, was not live in it, or now says it leaves.
	news := ps == nil || now.Sub(ps.heard) > c.cfg.liveWindow() || (a.Leaving && !ps.ann.Leaving)
	if ps == nil {
		ps = &peerState{}
		c.peers[m.From] = ps
		// Answer a newcomer at once, so it learns of us before it decides
		// whether to found the group.
		select {
		case c.announceNow <- struct{}{}:
		default:
		}
	}
	ps.ann, ps.heard, ps.expires = a, now, expires
	c.peersMu.Unlock()
	if news && c.raft.Load().State() == raft.Leader {
		c.wakeReconcile()
	}
}

// wakeReconcile asks the membership loop for a pass now rather than at its
// next round; wake-ups coalesce.
func (c *core) wakeReconcile() {
	select {
	case c.reconcileNow <- struct{}{}:
	default:
	}
}

// configured returns the ids in the configuration, nil before Raft runs.
func (c *core) configured() map[raft.ServerID]bool {
	if !c.raftReady.Load() {
		return nil
	}
	fut := c.raft.Load().GetConfiguration()
	if fut.Error() != nil {
		return nil
	}
	out := map[raft.ServerID]bool{}
	for _, s := range fut.Configuration().Servers {
		out[s.ID] = true
	}
	return out
}

// evictPeerLocked forgets the peer heard least recently among those not
// in members, and reports whether it found one. Without a configuration
// (nil members) it forgets none: the table then holds who may found the
// group. Called with peersMu held.
func (c *core) evictPeerLocked(members map[raft.ServerID]bool) bool {
	if members == nil {
		return false
	}
	var (
		victim transport.PeerID
		oldest time.Time
		found  bool
	)
	for p, ps := range c.peers {
		if members[raft.ServerID(p.String())] {
			continue
		}
		if !found || ps.heard.Before(oldest) {
			victim, oldest, found = p, ps.heard, true
		}
	}
	if found {
		delete(c.peers, victim)
	}
	return found
}

// announce tells the group who this member is and what it sees. Calls are
// serialised, so a periodic announcement composed before Close began cannot
// follow the one saying this member leaves.
func (c *core) announce() {
	c.announceMu.Lock()
	defer c.announceMu.Unlock()
	leader, _ := c.Leader()
	a := announcement{
		Pref:      uint8(c.cfg.Preference.kind),
		Factor:    c.cfg.Preference.factor,
		HasState:  c.hasState.Load() || c.raft.Load().LastIndex() > 0,
		Leader:    leader,
		Term:      c.raft.Load().CurrentTerm(),
		LastIndex: LogIndex(c.raft.Load().LastIndex()),
		Applied:   c.fsm.Applied(),
		Leaving:   c.leaving.Load(),
		Cluster:   c.fsm.Cluster(),
		Ticket:    c.cfg.Ticket,
	}
	b, err := rsm.Marshal(a)
	if err == nil {
		err = c.scope.Publish(c.annSubj, transport.PeerID{}, b)
	}
	if err != nil && !c.isClosing() {
		c.log.Debug("groups: announce failed", "err", err)
	}
}

func (c *core) runAnnounce() {
	t := time.NewTicker(c.cfg.announceInterval())
	defer t.Stop()
	for {
		c.announce()
		select {
		case <-c.closing:
			return
		case <-t.C:
		case <-c.announceNow:
		}
	}
}

// runMembership founds the group when nobody has, and, on the leader, keeps
// the configuration in line with who is alive.
//
// A leader also reconciles as soon as a newcomer announces (wakeReconcile),
// so that it is added without waiting for a round: another such pass
// follows one that changed the configuration, for the next newcomer, until
// nothing is left to change. However many announcements come, these
// passes are reactInterval apart and at most maxReactPasses per
// announceInterval, counted from the first of them.
func (c *core) runMembership() {
	t := time.NewTicker(c.cfg.announceInterval())
	defer t.Stop()
	var (
		last     time.Time // when reconcile last ran
		budgetAt time.Time // when the woken passes' current budget began
		reacted  int       // passes woken since budgetAt
	)
	for {
		select {
		case <-c.closing:
			return
		case <-t.C:
		case <-c.reconcileNow:
			if time.Since(budgetAt) >= c.cfg.announceInterval() {
				budgetAt, reacted = time.Now(), 0
			}
			if reacted >= maxReactPasses {
				continue // the rounds see to the rest
			}
			reacted++
			if wait := c.cfg.reactInterval() - time.Since(last); wait > 0 {
				select {
				case <-c.closing:
					return
				case <-time.After(wait):
				}
			}
			last = time.Now()
			if l := c.currentLead(); l != nil && c.raft.Load().State() == raft.Leader && c.reconcile(l) {
				c.wakeReconcile()
			}
			continue
		}
		c.noteForeign()
		c.identifyRound(time.Now())
		c.noteRefusals()
		c.checkOwnTicket()
		if !c.hasState.Load() {
			if c.raft.Load().LastIndex() > 0 {
				c.hasState.Store(true)
			} else {
				c.maybeBootstrap()
			}
		}
		if l := c.currentLead(); l != nil && c.raft.Load().State() == raft.Leader {
			last = time.Now()
			c.reconcile(l)
		}
		c.detectSplit()
		c.forgetPeers()
	}
}

// detectSplit notices a second cluster of this group: a live peer whose
// cluster id differs from ours. That can only come from founding during a
// partition. Merging would throw one side's acknowledged writes away, so
// the split is reported (Split, logs) and left to the operator; the leader
// never adds such a peer.
func (c *core) detectSplit() {
	mine := c.fsm.Cluster()
	if mine == (replica.ClusterID{}) {
		return
	}
	var other transport.PeerID
	for p, a := range c.livePeers(c.cfg.liveWindow()) {
		if a.Cluster != (replica.ClusterID{}) && a.Cluster != mine {
			other = p
			break
		}
	}
	c.splitMu.Lock()
	defer c.splitMu.Unlock()
	if other == c.split {
		return
	}
	c.split = other
	if !other.IsZero() {
		c.log.Error("groups: a second cluster of this group exists; it was founded during a partition and is not merged automatically",
			"peer", other.Short())
	}
}

// Split reports another cluster of this group, founded during a partition,
// by one of its members. Both clusters keep their writes; nothing is
// merged. Resolve it by closing the members of one side and letting them
// join the other from empty storage.
func (c *core) Split() (transport.PeerID, bool) {
	c.splitMu.Lock()
	defer c.splitMu.Unlock()
	return c.split, !c.split.IsZero()
}

// peerTable returns a copy of the peers this member heard of.
func (c *core) peerTable() map[transport.PeerID]peerState {
	c.peersMu.Lock()
	defer c.peersMu.Unlock()
	peers := make(map[transport.PeerID]peerState, len(c.peers))
	for p, ps := range c.peers {
		peers[p] = *ps
	}
	return peers
}

// livePeers returns the peers heard within d.
func (c *core) livePeers(d time.Duration) map[transport.PeerID]announcement {
	now := time.Now()
	out := map[transport.PeerID]announcement{}
	c.peersMu.Lock()
	defer c.peersMu.Unlock()
	for p, ps := range c.peers {
		if now.Sub(ps.heard) <= d {
			out[p] = ps.ann
		}
	}
	return out
}

func (c *core) forgetPeers() {
	cutoff := time.Now().Add(-2 * c.cfg.DeadMemberTimeout)
	c.peersMu.Lock()
	defer c.peersMu.Unlock()
	for p, ps := range c.peers {
		if ps.heard.Before(cutoff) {
			delete(c.peers, p)
		}
	}
}

// maybeBootstrap founds the group once the bootstrap delay has passed
// without sign of an existing group, if this member comes first among the
// members present that may vote: the least reluctant, then the lowest
// PeerID. The founding configuration is all of them, as voters. The others
// wait to be contacted. The founder is the only member that can campaign
// at first, so it is also the first leader.
func (c *core) maybeBootstrap() {
	if c.cfg.Preference.IsObserver() || !c.ticketValid() {
		return
	}
	// Listen for at least two announcement rounds: every member present has
	// announced by then, and has heard us and answered.
	delay := max(c.cfg.BootstrapDelay*time.Duration(c.cfg.Preference.Factor()), 2*c.cfg.announceInterval())
	if time.Since(c.started) < delay {
		return
	}
	servers := []raft.Server{c.server(c.self, raft.Voter)}
	live := c.livePeers(c.cfg.liveWindow())
	if len(live) == 0 && c.hearsForeign(c.cfg.liveWindow()) {
		return // others are here whom we cannot understand: founding would split the group
	}
	for p, a := range live {
		if a.HasState || !a.Leader.IsZero() {
			return // a group exists: wait for its leader to add us
		}
		if a.preference().IsObserver() || a.Leaving {
			continue
		}
		if founderBefore(a.preference(), p, c.cfg.Preference, c.self) {
			return // another member founds it
		}
		servers = append(servers, c.server(p, raft.Voter))
	}
	answered, err := untilAnswered(c.closing, func() raft.Future {
		return c.raft.Load().BootstrapCluster(raft.Configuration{Servers: servers})
	})
	if !answered {
		return // the member stops
	}
	switch err {
	case nil:
		c.log.Info("groups: founded the group", "voters", len(servers))
		c.hasState.Store(true)
		c.announce()
	case raft.ErrCantBootstrap:
		c.hasState.Store(true)
	default:
		c.log.Warn("groups: bootstrap failed", "err", err)
	}
}

// founderBefore orders candidate founders: lower timeout factor first, then
// lower PeerID.
func founderBefore(pa Preference, a transport.PeerID, pb Preference, b transport.PeerID) bool {
	if fa, fb := pa.Factor(), pb.Factor(); fa != fb {
		return fa < fb
	}
	return a.Compare(b) < 0
}

func (c *core) server(p transport.PeerID, s raft.ServerSuffrage) raft.Server {
	return raft.Server{Suffrage: s, ID: raft.ServerID(p.String()), Address: raft.ServerAddress(p.String())}
}

// reconcile makes at most one configuration change per round, in order of
// urgency: drop members that left, drop dead members (never a voter unless
// a majority of voters stays alive), add newcomers as non-voters, promote
// caught-up non-voters that may vote, and hand leadership from a reluctant
// leader to a caught-up normal voter. It reports whether it changed the
// configuration.
func (c *core) reconcile(l *leadership) bool {
	fut := c.raft.Load().GetConfiguration()
	if fut.Error() != nil {
		return false
	}
	servers := fut.Configuration().Servers
	now := time.Now()
	peers := c.peerTable()

	alive := func(p transport.PeerID) bool {
		if p == c.self {
			return true
		}
		heard := l.since
		if ps, ok := peers[p]; ok && ps.heard.After(heard) {
			heard = ps.heard
		}
		return now.Sub(heard) <= c.cfg.DeadMemberTimeout
	}
	inConfig := map[transport.PeerID]raft.Server{}
	voters, liveVoters := 0, 0
	for _, s := range servers {
		p, err := transport.ParsePeerID(string(s.ID))
		if err != nil {
			continue
		}
		inConfig[p] = s
		if s.Suffrage == raft.Voter {
			voters++
			if alive(p) {
				liveVoters++
			}
		}
	}
	ctx, cancel := context.WithTimeout(c.ctx(), c.cfg.ForwardTimeout)
	defer cancel()
	change := func(what string, p transport.PeerID, start func() raft.IndexFuture) bool {
		if _, err := call(ctx, c, c.changeConfig(start)); err != nil {
			c.log.Debug("groups: membership change failed", "change", what, "peer", p.Short(), "err", err)
			return false
		}
		c.log.Info("groups: membership changed", "change", what, "peer", p.Short())
		return true
	}

	for p, s := range inConfig {
		if p == c.self {
			continue
		}
		ps, known := peers[p]
		if known && ps.ann.Leaving {
			return change("remove leaving", p, func() raft.IndexFuture { return c.raft.Load().RemoveServer(s.ID, 0, 0) })
		}
		if known && c.cfg.Tickets != nil && !now.Before(ps.expires) {
			return change("remove, ticket expired", p, func() raft.IndexFuture { return c.raft.Load().RemoveServer(s.ID, 0, 0) })
		}
		if alive(p) {
			continue
		}
		if s.Suffrage != raft.Voter {
			return change("remove dead non-voter", p, func() raft.IndexFuture { return c.raft.Load().RemoveServer(s.ID, 0, 0) })
		}
		// Removing a dead voter keeps the live ones a majority of what is left.
		if 2*liveVoters > voters {
			return change("remove dead voter", p, func() raft.IndexFuture { return c.raft.Load().RemoveServer(s.ID, 0, 0) })
		}
	}
	cluster := c.fsm.Cluster()
	// In a group with Tickets, a member whose ticket expired is neither
	// added nor promoted.
	expired := func(ps peerState) bool { return c.cfg.Tickets != nil && !now.Before(ps.expires) }
	for p, ps := range peers {
		if _, ok := inConfig[p]; ok || ps.ann.Leaving || now.Sub(ps.heard) > c.cfg.liveWindow() || expired(ps) {
			continue
		}
		// Never take in a member of another cluster: its log would be
		// overwritten with ours, and its acknowledged writes lost.
		if ps.ann.Cluster != cluster && (ps.ann.Cluster != replica.ClusterID{} || ps.ann.HasState) {
			continue
		}
		return change("add non-voter", p, func() raft.IndexFuture {
			return c.raft.Load().AddNonvoter(raft.ServerID(p.String()), raft.ServerAddress(p.String()), 0, 0)
		})
	}
	c.trans.RetainMatched(func(p transport.PeerID) bool { _, ok := inConfig[p]; return ok })
	last := c.raft.Load().LastIndex()
	term := c.raft.Load().CurrentTerm()
	// How far a member has replicated is what it acknowledged to this
	// leader in this term, never what it announces.
	caughtUp := func(p transport.PeerID) bool {
		m := c.trans.Matched(p)
		return m.Term == term && m.Index+promoteLag >= last
	}
	for p, s := range inConfig {
		ps, known := peers[p]
		if s.Suffrage == raft.Voter || !known || ps.ann.preference().IsObserver() || !alive(p) || expired(ps) {
			continue
		}
		if caughtUp(p) && c.proven(ctx, l, p, c.trans.Matched(p).Index) {
			return change("promote to voter", p, func() raft.IndexFuture { return c.raft.Load().AddVoter(s.ID, s.Address, 0, 0) })
		}
	}
	if c.cfg.Preference.IsReluctant() && now.Sub(l.lastHandoff) > 10*c.cfg.ElectionTimeout {
		for p, s := range inConfig {
			ps, known := peers[p]
			if s.Suffrage != raft.Voter || !known || ps.ann.preference() != Normal ||
				now.Sub(ps.heard) > c.cfg.liveWindow() || !caughtUp(p) {
				continue
			}
			l.lastHandoff = now
			c.log.Info("groups: reluctant leader hands over", "to", p.Short())
			_ = c.raft.Load().LeadershipTransferToServer(s.ID, s.Address)
			return false
		}
	}
	return false
}

// runStatus keeps When up to date with Raft.
func (c *core) runStatus() {
	t := time.NewTicker(c.cfg.announceInterval())
	defer t.Stop()
	for {
		select {
		case <-c.closing:
			return
		case <-c.obsCh:
		case <-t.C:
		}
		c.refreshStatus()
	}
}

func (c *core) refreshStatus() {
	if c.isClosing() {
		return
	}
	var leader transport.PeerID
	if _, id := c.raft.Load().LeaderWithID(); id != "" {
		if p, err := transport.ParsePeerID(string(id)); err == nil {
			leader = p
		}
	}
	l := c.currentLead()
	isLeader := l != nil && c.raft.Load().State() == raft.Leader && l.term == c.raft.Load().CurrentTerm()
	member := c.inConfiguration()
	c.when.set(func(s *status) {
		if s.closed {
			return
		}
		s.leader, s.isLeader, s.member = leader, isLeader, member
	})
}

// leaderHint is where commands and reads go: the leader Raft knows of, or,
// for a member not yet added to the group, the one the others announce.
func (c *core) leaderHint() transport.PeerID {
	if l, ok := c.Leader(); ok {
		c.peersMu.Lock()
		ps := c.peers[l]
		leaving := ps != nil && ps.ann.Leaving
		c.peersMu.Unlock()
		if leaving {
			return transport.PeerID{} // it said goodbye; Raft has not noticed yet
		}
		return l
	}
	var best transport.PeerID
	var term uint64
	for p, a := range c.livePeers(c.cfg.liveWindow()) {
		if a.Leader == p && !a.Leaving && a.Term >= term {
			best, term = p, a.Term
		}
	}
	return best
}

// allowRaft decides which senders' Raft RPCs reach Raft: voters of the
// configuration; while this member has no configuration (it has not been
// founded or added yet), any member it hears announce; and a member that
// announces itself as leader when this member is not in its configuration
// (being added) or, in a sealed group, where only holders of the secret can
// announce, when its configuration is stale; in either case also a member
// that another live member announces as leader. In a group with Tickets,
// of those outside the configuration only a sender whose own ticket this
// member saw hold. Until Raft runs nothing is let through; the sender
// tries again. Senders are authenticated by the
// transport, announcements too.
func (c *core) allowRaft(from transport.PeerID) bool {
	if !c.raftReady.Load() {
		return false
	}
	id := raft.ServerID(from.String())
	self := raft.ServerID(c.self.String())
	servers := c.raft.Load().GetConfiguration().Configuration().Servers
	selfIn := false
	for _, s := range servers {
		if s.ID == id {
			// Only a leader or a candidate sends Raft RPCs, and either is a
			// voter: a non-voter (an observer, or a newcomer) never may. In
			// a group with Tickets, neither may a voter whose ticket is
			// known to have expired.
			return s.Suffrage == raft.Voter && !c.ticketExpired(from)
		}
		selfIn = selfIn || s.ID == self
	}
	if selfIn && !c.scope.Sealed() {
		return false
	}
	c.peersMu.Lock()
	defer c.peersMu.Unlock()
	// In a group with Tickets, the sender must hold a ticket of its own, as
	// its announcement showed: another member naming it leader does not
	// admit it, nor does a ticket that expired since.
	ps := c.peers[from]
	if c.cfg.Tickets != nil && (ps == nil || !time.Now().Before(ps.expires)) {
		return false
	}
	live := func(ps *peerState) bool { return ps != nil && time.Since(ps.heard) <= c.cfg.liveWindow() }
	if live(ps) && (len(servers) == 0 || ps.ann.Leader == from) {
		return true
	}
	// A leader's first AppendEntries to a newcomer it just added often
	// overtakes its own announcement (they come on different
	// subscriptions): refused, Raft would retry 60-110 ms later. Another
	// live member announcing it as leader will do.
	for p, ps := range c.peers {
		if p != from && live(ps) && ps.ann.Leader == from {
			return true
		}
	}
	return false
}

// noteForeign notices announcements that do not open with this member's
// secret. It logs the first time, once. The membership goroutine calls it.
func (c *core) noteForeign() {
	n := c.annSub.Failed()
	if n == c.foreignSeen {
		return
	}
	c.foreignSeen = n
	c.foreignAt.Store(time.Now().UnixNano())
	c.foreignLog.Do(func() {
		c.log.Warn("groups: hearing messages on this group that do not open with this member's secret: " +
			"another member uses a different secret (or none), or someone forges them; " +
			"while they come and no member that shares the secret is heard, this member will not found the group")
	})
}

// hearsForeign reports whether unopened announcements came within d.
func (c *core) hearsForeign(d time.Duration) bool {
	at := c.foreignAt.Load()
	return at != 0 && time.Since(time.Unix(0, at)) <= d
}

// entryDigest is a digest of this member's log entry at index, bound to
// nonce and to who answers whom. ok is false when the log does not hold it.
func (c *core) entryDigest(index uint64, nonce [16]byte, member, leader transport.PeerID) (d [32]byte, ok bool) {
	var e raft.Log
	if err := c.stores.Log.GetLog(index, &e); err != nil {
		return d, false
	}
	b := make([]byte, 0, 16+64+8+8+1+len(e.Data))
	b = append(b, nonce[:]...)
	b = append(b, member[:]...)
	b = append(b, leader[:]...)
	b = binary.BigEndian.AppendUint64(b, e.Index)
	b = binary.BigEndian.AppendUint64(b, e.Term)
	b = append(b, byte(e.Type))
	b = append(b, e.Data...)
	return digest("mosaik.groups.prove.v1", b), true
}

// proven asks p to show that it holds an entry the leader picks at random
// among the last ones p acknowledged (up to index), as this leader's log has
// it. A member that acknowledged entries it did not keep cannot. When p
// holds no entry there (it caught up from a snapshot and nothing was
// written since), the leader appends a barrier for it to hold next time,
// once per term.
func (c *core) proven(ctx context.Context, l *leadership, p transport.PeerID, index uint64) bool {
	first, err := c.stores.Log.FirstIndex()
	if err != nil || index == 0 || first > index {
		return false // nothing of what it acknowledged is left here to ask for
	}
	lo := max(first, index-min(index-1, promoteLag))
	var rnd [24]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return false
	}
	at := lo + binary.BigEndian.Uint64(rnd[16:])%(index-lo+1)
	nonce := [16]byte(rnd[:16])
	want, ok := c.entryDigest(at, nonce, p, c.self)
	if !ok {
		return false // compacted here since: ask again next round
	}
	req, err := encodeCtl(ctlProve, proveRequest{Index: at, Nonce: nonce})
	if err != nil {
		return false
	}
	// A member that does not answer must not hold up the membership loop.
	ctx, cancel := context.WithTimeout(ctx, min(c.cfg.ElectionTimeout, max(5*c.cfg.HeartbeatInterval, 50*time.Millisecond)))
	defer cancel()
	b, err := c.scope.Request(ctx, c.ctlSubject(p), p, req)
	if err != nil {
		return false
	}
	var r proveReply
	if decodeWire(b, &r) != nil {
		return false
	}
	if !r.Found {
		if !l.barrierForProof {
			l.barrierForProof = true
			_, _ = call(ctx, c, func() raft.Future { return c.raft.Load().Barrier(0) })
		}
		return false
	}
	if r.Digest != want {
		c.log.Warn("groups: a non-voter acknowledged entries it does not hold; not promoting it", "peer", p.Short(), "index", at)
		return false
	}
	return true
}

// ticketValid reports whether this member may take part: always, unless the
// group requires tickets and its own is missing, forged or expired (checked
// once at Join; only its expiry is watched after that).
func (c *core) ticketValid() bool {
	return c.cfg.Tickets == nil || time.Now().Before(c.ownTicket)
}

// checkOwnTicket takes this member out of its group once its own ticket no
// longer holds (the others ignore its announcements from then on). It tries
// every round until it is out: a leader first hands leadership over.
func (c *core) checkOwnTicket() {
	if c.ticketValid() {
		return
	}
	c.ticketLog.Do(func() {
		_, err := c.cfg.Tickets.check(c.cfg.Ticket, c.self)
		c.log.Error("groups: this member's ticket does not hold; it is not admitted, and leaves the group if it was in it", "err", err)
	})
	if !c.inConfiguration() {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx(), c.closeBudget())
	defer cancel()
	if c.raft.Load().State() == raft.Leader {
		_, _ = call(ctx, c, c.raft.Load().LeadershipTransfer)
		return
	}
	if c.leaderHint().IsZero() {
		return
	}
	_ = c.removeSelf(ctx, false)
}

// admits reports whether p may talk to this member: anyone, unless the
// group has Tickets; then only this member and peers whose announced ticket
// holds now.
func (c *core) admits(p transport.PeerID) bool {
	if c.cfg.Tickets == nil || p == c.self {
		return true
	}
	c.peersMu.Lock()
	defer c.peersMu.Unlock()
	ps := c.peers[p]
	return ps != nil && time.Now().Before(ps.expires)
}

// ticketExpired reports whether, in a group with Tickets, p's ticket is
// known and has expired.
func (c *core) ticketExpired(p transport.PeerID) bool {
	if c.cfg.Tickets == nil || p == c.self {
		return false
	}
	c.peersMu.Lock()
	defer c.peersMu.Unlock()
	ps := c.peers[p]
	return ps != nil && !time.Now().Before(ps.expires)
}
