package groups

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/internal/replica"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// leadership is the leader's bookkeeping for one term. It exists only once
// the leader has applied everything its predecessors committed (a barrier),
// so the machine's state is exactly its log and indexes can be handed out.
type leadership struct {
	term        uint64
	since       time.Time                    // when this member became a ready leader
	next        atomic.Uint64                // index for the next command
	appended    map[replica.SessionID]uint64 // last batch appended this term, per session
	lastHandoff time.Time                    // last leadership handoff attempt (reluctant leaders)
	// barrierForProof: a barrier was appended this term so that a member
	// caught up by snapshot holds an entry to prove (see proven).
	barrierForProof bool
	opens           sessionOpens // owned by the appender goroutine
	// quorum is the configuration a newer leader would hold, if known (see
	// quickRead).
	quorum atomic.Pointer[readQuorum]
}

// readQuorum is the voters of a configuration committed in the leader's
// term, and the configuration changes this member had started by then: while
// it has started no more, a newer leader's configuration is this one.
type readQuorum struct {
	voters  []transport.PeerID
	started uint64
}

// sessionOpens limits how many sessions each member may open at this
// leader. A member needs a new one only when it starts or when the group
// forgot its last one, while every session opened can push another
// member's out of the group's table (replica.MaxSessions): without a limit
// one member could make the group forget everyone else's. The count is the
// leader's own, per window; a new leader starts afresh.
type sessionOpens struct {
	window time.Time
	count  map[transport.PeerID]int
}

const (
	maxSessionOpens    = 8           // per member and window
	sessionOpensWindow = time.Minute //
	maxSessionOpeners  = 4096        // members counted per window; past it, newcomers wait for the next
)

// allow counts a new session of from, or reports that it opened too many.
func (o *sessionOpens) allow(from transport.PeerID, now time.Time) bool {
	if o.count == nil || now.Sub(o.window) >= sessionOpensWindow {
		o.window, o.count = now, map[transport.PeerID]int{}
	}
	n, seen := o.count[from]
	if n >= maxSessionOpens || (!seen && len(o.count) >= maxSessionOpeners) {
		return false
	}
	o.count[from] = n + 1
	return true
}

// submission is a batch handed to the leader's appender, from this member
// or forwarded by another. reply may be called more than once.
type submission struct {
	req    forward
	from   transport.PeerID // who sent it, as the transport authenticated it
	reply  func(forwardReply)
	remote bool // forwarded by another member
}

// bindSession names a submitter's session in the log: the id it chose,
// bound to the member that sent it. A member that reads another's session
// in the log and sends batches under it gets a session of its own, so it
// can neither apply a batch in another member's name nor make another
// member's batch a repeat. The first 8 bytes, the index the id records
// (see replica.NewSessionID), are kept; the rest is a digest of both.
func bindSession(from transport.PeerID, id replica.SessionID) replica.SessionID {
	d := digest("mosaik.groups.session.v1", append(from[:], id[:]...))
	copy(id[8:], d[:])
	return id
}

// completion waits, in log order, for a batch to apply and answers it.
type completion struct {
	future  *watched[raft.ApplyFuture] // nil: a repeat, answered from the machine
	session replica.SessionID
	seq     uint64
	attempt uint32
	local   bool // from a remote member that waits to apply it
	from    transport.PeerID
	reply   func(forwardReply)
}

func (c *core) currentLead() *leadership {
	c.leadMu.Lock()
	defer c.leadMu.Unlock()
	return c.lead
}

func (c *core) setLead(l *leadership) {
	c.leadMu.Lock()
	c.lead = l
	c.leadMu.Unlock()
	c.refreshStatus()
}

// runLeadership follows Raft's leadership notifications.
func (c *core) runLeadership() {
	for {
		select {
		case <-c.closing:
			return
		case leader := <-c.notifyCh:
			if !leader {
				c.setLead(nil)
				continue
			}
			c.becomeLeader()
		}
	}
}

func (c *core) becomeLeader() {
	term := c.raft.Load().CurrentTerm()
	c.cfgMu.Lock()
	started, pending := c.cfgStarted.Load(), c.cfgPending
	c.cfgMu.Unlock()
	if _, err := call(c.ctx(), c, func() raft.Future { return c.raft.Load().Barrier(0) }); err != nil {
		c.log.Debug("groups: barrier after election failed", "err", err)
		return
	}
	if c.raft.Load().State() != raft.Leader || c.raft.Load().CurrentTerm() != term {
		return
	}
	c.log.Debug("groups: leading", "term", term, "applied", c.fsm.Applied())
	l := &leadership{term: term, since: time.Now(), appended: map[replica.SessionID]uint64{}}
	if pending == 0 {
		// Every change started so far was answered: committed, or never
		// appended, or appended before this term and committed by the
		// barrier. One started since makes started stale.
		l.quorum.Store(&readQuorum{voters: c.voters(), started: started})
	}
	l.next.Store(uint64(c.fsm.Applied()) + 1)
	c.setLead(l)
	if c.fsm.Cluster() == (replica.ClusterID{}) {
		c.found()
	}
}

// found writes the cluster's id: the first leader of a cluster does it.
func (c *core) found() {
	var id replica.ClusterID
	if _, err := rand.Read(id[:]); err != nil {
		c.log.Error("groups: cluster id", "err", err)
		return
	}
	data, err := rsm.Marshal(replica.Entry{Cluster: id[:]})
	if err == nil {
		_, err = call(c.ctx(), c, func() raft.ApplyFuture { return c.raft.Load().Apply(data, 0) })
	}
	if err != nil {
		c.log.Debug("groups: founding entry failed", "err", err)
	}
}

// readyLead returns the leadership if this member leads, waiting briefly
// when it has just been elected and is still applying its predecessors'
// log. It returns nil when this member does not lead.
func (c *core) readyLead() *leadership {
	timer := time.NewTimer(2 * c.cfg.ElectionTimeout)
	defer timer.Stop()
	for {
		ch := c.when.changed.wait()
		if c.raft.Load().State() != raft.Leader {
			return nil
		}
		if l := c.currentLead(); l != nil && l.term == c.raft.Load().CurrentTerm() {
			return l
		}
		select {
		case <-ch:
		case <-timer.C:
			return nil
		case <-c.closing:
			return nil
		}
	}
}

func (c *core) runAppender() {
	for {
		select {
		case <-c.closing:
			return
		case s := <-c.appendCh:
			c.appendOne(s)
		}
	}
}

// appendOne gives a batch its indexes and appends it to the log, unless the
// batch is a repeat (answered once the original applied) or arrives before
// an earlier batch of its session (refused; the sender sends again in order).
func (c *core) appendOne(s submission) {
	req := s.req
	session := bindSession(s.from, req.Session)
	if _, err := checkBatch(req.Cmds); err != nil {
		c.refused.batches.Add(1)
		s.reply(forwardReply{Seq: req.Seq, Attempt: req.Attempt, Kind: replyError, Code: codeTooLarge, Msg: err.Error()})
		return
	}
	l := c.readyLead()
	if l == nil {
		s.reply(forwardReply{Seq: req.Seq, Attempt: req.Attempt, Kind: replyError, Code: codeNotLeader, Msg: "not leader"})
		return
	}
	last, known := l.appended[session]
	if !known {
		last, known = c.fsm.SessionLast(session)
	}
	switch replica.Judge(last, known, req.Seq, req.Base) {
	case replica.Repeat:
		c.complete(completion{session: session, seq: req.Seq, attempt: req.Attempt, reply: s.reply})
		return
	case replica.Gap:
		s.reply(forwardReply{Seq: req.Seq, Attempt: req.Attempt, Kind: replyOutcome, Outcome: replica.Outcome{Status: replica.StatusGap}})
		return
	}
	if !known && s.from != c.self && !l.opens.allow(s.from, time.Now()) {
		c.refused.sessions.Add(1)
		s.reply(forwardReply{Seq: req.Seq, Attempt: req.Attempt, Kind: replyError, Code: codeBusy,
			Msg: fmt.Sprintf("this member opened %d sessions within %v; try later", maxSessionOpens, sessionOpensWindow)})
		return
	}
	e := replica.Entry{Session: session, Seq: req.Seq, Base: req.Base, First: rsm.Index(l.next.Load()), Cmds: req.Cmds}
	data, err := rsm.Marshal(e)
	if err != nil {
		s.reply(forwardReply{Seq: req.Seq, Attempt: req.Attempt, Kind: replyError, Code: codeInternal, Msg: err.Error()})
		return
	}
	l.next.Add(uint64(len(req.Cmds)))
	if len(l.appended) >= 2*replica.MaxSessions {
		// Keep only batches in flight of sessions the machine knows. The
		// map only spares repeats and gaps: the machine drops repeats, and
		// a submitter told of a gap sends its batches again in order.
		for id, seq := range l.appended {
			if last, ok := c.fsm.SessionLast(id); !ok || last >= seq {
				delete(l.appended, id)
			}
		}
	}
	l.appended[session] = req.Seq
	fut, err := raftCall(c, func() raft.ApplyFuture { return c.raft.Load().Apply(data, 0) })
	if err != nil {
		s.reply(forwardReply{Seq: req.Seq, Attempt: req.Attempt, Kind: replyError, Code: codeClosed, Msg: err.Error()})
		return
	}
	c.metrics.appendedCommands(len(req.Cmds))
	if !req.Local || !s.remote {
		// A remote sender that waits to apply the batch needs only its
		// outcome: the "appended" answer would be one more message in
		// flight beside the appends to followers, on the write's path
		// (a batch with a Feed in it is not sent as local: see send).
		s.reply(forwardReply{Seq: req.Seq, Attempt: req.Attempt, Kind: replyAppended, First: e.First})
	}
	c.complete(completion{future: fut, session: session, seq: req.Seq, attempt: req.Attempt,
		local: req.Local && s.remote, from: s.from, reply: s.reply})
}

func (c *core) complete(x completion) {
	select {
	case c.completeCh <- x:
	case <-c.closing:
		x.reply(forwardReply{Seq: x.seq, Attempt: x.attempt, Kind: replyError, Code: codeClosed, Msg: "closed"})
	}
}

func (c *core) runCompleter() {
	for {
		select {
		case <-c.closing:
			return
		case x := <-c.completeCh:
			r := c.finish(x)
			// The notice first: the sender applies after it, which takes
			// longer than reading the answer, and waits for both. A
			// sender that commits by itself needs none: it applied the
			// batch already, or does so as it stores it.
			selfCommits := x.local && c.followerSelfCommits(x.from)
			if x.local && !selfCommits {
				c.tellCommit(x.from)
			}
			if c.quietOutcome(x, r, selfCommits) {
				c.unsent.Add(1)
				continue
			}
			x.reply(r)
		}
	}
}

// quietOutcome says whether the outcome r of x, answered by runCompleter,
// may go unsent. A sender that commits by itself (selfCommits) and waits to
// apply the batch answers its callers at its own apply
// (submitter.applied) and drops this reply, once it has stored the
// batch's entry: so only an applied outcome goes unsent, and only when the
// sender acknowledged the entry to this leader in its current term. Before
// that acknowledgement the reply still goes: it gives a sender that lags
// the indexes (ExecuteApplied's ErrNotAppliedHere). Every other answer (an
// error, a refusal, an expired session, a repeat) is sent. A sender whose
// configuration, against this leader's expectation, lets it not commit by
// itself learns of the commit with Raft's next append or heartbeat.
func (c *core) quietOutcome(x completion, r forwardReply, selfCommits bool) bool {
	if !selfCommits || x.future == nil || r.Kind != replyOutcome || r.Outcome.Status != replica.StatusApplied {
		return false
	}
	rf := c.raft.Load()
	if rf == nil || c.trans == nil {
		return false
	}
	m := c.trans.Matched(x.from)
	return m.Term == rf.CurrentTerm() && m.Index >= x.future.f.Index()
}

// tellCommit tells member p at once how far the log is committed: its
// writer waits for its own node to apply what it wrote, and Raft would tell
// it only with the next entry or after its commit timeout. What this member
// applied is committed; the transport sends it as an empty AppendEntries
// (transport.RaftTransport.NotifyCommit), so no entry is appended for it.
//
// The applied index is read before the term, in that order: the notice
// names an entry of term, and its commit index must be committed no later
// than term. Read after the term, it could include entries another leader
// committed in a later term over this node's uncommitted tail, which a
// follower still in term holds differently.
func (c *core) tellCommit(p transport.PeerID) {
	r := c.raft.Load()
	if c.trans != nil && r != nil {
		applied := r.AppliedIndex()
		c.trans.NotifyCommit(p, r.CurrentTerm(), applied)
	}
}

func (c *core) finish(x completion) forwardReply {
	r := forwardReply{Seq: x.seq, Attempt: x.attempt, Kind: replyOutcome}
	if x.future == nil {
		out, ok := c.fsm.SessionOutcome(x.session, x.seq)
		if !ok {
			// The copy this repeats did not apply (its append failed with
			// the term): the sender sends it again. A repeat is answered
			// after the copy's own completion, so this is final.
			r.Kind, r.Code, r.Msg = replyError, codeNotLeader, "batch not applied; send it again"
			return r
		}
		r.Outcome = out
		return r
	}
	if err := x.future.wait(c.ctx()); err != nil {
		r.Kind, r.Code, r.Msg = replyError, codeNotLeader, err.Error()
		// Raft shut down while the member is not closing is Recover
		// restarting it: the sender retries, as after a leader change.
		if c.isClosing() {
			r.Code = codeClosed
		}
		return r
	}
	out, ok := x.future.f.Response().(replica.Outcome)
	if !ok {
		r.Kind, r.Code, r.Msg = replyError, codeInternal, fmt.Sprintf("unexpected apply result %T", x.future.f.Response())
		return r
	}
	r.Outcome = out
	return r
}

// maxReadIndexInflight bounds the read-index requests from other members a
// leader serves at once; over it a request is answered ErrBusy at once.
const maxReadIndexInflight = 256

// onControl serves the member's control subject.
func (c *core) onControl(m *transport.Msg) {
	if len(m.Data) == 0 || !m.ExpectsReply() {
		return
	}
	if !c.admits(m.From) {
		return // in a group with Tickets: no answer to who holds no valid ticket
	}
	switch m.Data[0] {
	case ctlForward:
		var f forward
		if err := decodeCtl(m.Data, &f); err != nil || f.Seq == 0 {
			code := codeMalformed
			if tooLong := (*cbor.MaxArrayElementsError)(nil); errors.As(err, &tooLong) {
				// More commands than a batch may hold: what the submitter
				// would have said.
				code = codeTooLarge
				c.refused.batches.Add(1)
			}
			c.respond(m, forwardReply{Seq: f.Seq, Attempt: f.Attempt, Kind: replyError, Code: code, Msg: fmt.Sprint("malformed forward: ", err)})
			return
		}
		reply := func(r forwardReply) { c.respond(m, r) }
		select {
		case c.appendCh <- submission{req: f, from: m.From, reply: reply, remote: true}:
		case <-c.closing:
		}
	case ctlReadIndex:
		select {
		case c.readSem <- struct{}{}:
		default:
			c.refused.readIndex.Add(1)
			c.respond(m, readIndexReply{Code: codeBusy, Msg: fmt.Sprintf("%d read-index requests in flight", maxReadIndexInflight)})
			return
		}
		var req readIndexRequest
		_ = decodeCtl(m.Data, &req) // an older member's request has no term: the full round
		c.goFunc(func() {
			defer func() { <-c.readSem }()
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.QueryTimeout)
			defer cancel()
			idx, err := c.leaderReadIndex(ctx, m.From, req.Term)
			r := readIndexReply{Index: idx}
			if err != nil {
				r.Code, r.Msg = errorCode(err), err.Error()
			}
			c.respond(m, r)
		})
	case ctlProve:
		// Only the leader may ask, and never of itself: a member cannot pass
		// the question on and answer with what another member holds.
		var pr proveRequest
		if leader, ok := c.Leader(); !ok || leader != m.From || m.From == c.self || decodeCtl(m.Data, &pr) != nil {
			return
		}
		var r proveReply
		r.Digest, r.Found = c.entryDigest(pr.Index, pr.Nonce, c.self, m.From)
		c.respond(m, r)
	case ctlLeave:
		var lr leaveRequest
		if err := decodeCtl(m.Data, &lr); err != nil {
			c.respond(m, readIndexReply{Code: codeMalformed, Msg: err.Error()})
			return
		}
		c.goFunc(func() {
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ForwardTimeout)
			defer cancel()
			var r readIndexReply
			if err := c.removePeer(ctx, m.From, lr.Force); err != nil {
				r.Code, r.Msg = errorCode(err), err.Error()
			}
			c.respond(m, r)
		})
	}
}

func (c *core) respond(m *transport.Msg, v any) {
	b, err := rsm.Marshal(v)
	if err == nil {
		err = m.Respond(b)
	}
	if err != nil && !errors.Is(err, transport.ErrClosed) {
		c.log.Debug("groups: reply failed", "to", m.From.Short(), "err", err)
	}
}

// leaderReadIndex returns the highest index this leader has handed out,
// once it has confirmed it still leads and applied that far. Every command
// committed before the asker's read began has an index at most that high,
// so a read at or after it is linearizable. asker is the member whose read
// it is (c.self for a read of its own) and term the asker's Raft term when
// its read began (0: unknown).
func (c *core) leaderReadIndex(ctx context.Context, asker transport.PeerID, term uint64) (rsm.Index, error) {
	l := c.readyLead()
	if l == nil {
		return 0, ErrNotLeader
	}
	idx := rsm.Index(l.next.Load() - 1)
	if c.quickRead(l, asker, term) {
		c.quickReads.Add(1)
	} else {
		if _, err := call(ctx, c, c.raft.Load().VerifyLeader); err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, fmt.Errorf("%w: %v", ErrNotLeader, err)
		}
	}
	if t := c.raft.Load().CurrentTerm(); t != l.term {
		// It lost and won again since readyLead: idx, from l's term, may
		// miss what another leader committed between them.
		return 0, fmt.Errorf("%w: term %d ended during the read (now %d)", ErrNotLeader, l.term, t)
	}
	if err := c.when.Applied(ctx, idx); err != nil {
		return 0, err
	}
	return idx, nil
}

// quickRead reports whether the leader may hand out a read index without
// a heartbeat round (with one, Raft's read index confirms that no newer
// leader exists). It may when both it and the asker were in its term when
// the asker's read began, and every majority of l.quorum's voters holds one
// of them. Then no newer leader was elected before the read began: one
// would hold every entry committed in this term, so its configuration would
// be l.quorum's (the configuration at the barrier or at the last change
// committed, with no change of this member's started since), and one of its
// voters, the leader or the asker, would have had a newer term. So all
// committed before the read was committed in a term up to this one, and this
// leader's log holds it. In groups of up to four voters it saves a
// follower's read a round trip through the network.
func (c *core) quickRead(l *leadership, asker transport.PeerID, term uint64) bool {
	q := l.quorum.Load()
	if q == nil || term != l.term || c.cfgStarted.Load() != q.started {
		return false
	}
	others := 0 // voters that are neither the leader nor the asker
	in := false
	for _, p := range q.voters {
		switch p {
		case asker:
			in = true
		case c.self:
		default:
			others++
		}
	}
	return in && 2*others <= len(q.voters)
}

// voters lists the voters of the latest configuration this member holds.
func (c *core) voters() []transport.PeerID {
	fut := c.raft.Load().GetConfiguration()
	if fut.Error() != nil {
		return nil
	}
	var vs []transport.PeerID
	for _, s := range fut.Configuration().Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		p, err := transport.ParsePeerID(string(s.ID))
		if err != nil {
			return nil
		}
		vs = append(vs, p)
	}
	return vs
}

// changeConfig wraps the start of a configuration change so that
// cfgStarted counts it and cfgPending holds it until Raft answers.
func (c *core) changeConfig(start func() raft.IndexFuture) func() raft.IndexFuture {
	return func() raft.IndexFuture {
		c.cfgMu.Lock()
		c.cfgStarted.Add(1)
		c.cfgPending++
		c.cfgMu.Unlock()
		return &cfgFuture{IndexFuture: start(), c: c}
	}
}

// cfgFuture is a configuration change's future; its one waiter (raftCall's
// watcher) takes the change off cfgPending when Raft answers.
type cfgFuture struct {
	raft.IndexFuture
	c    *core
	once sync.Once
}

func (f *cfgFuture) Error() error {
	err := f.IndexFuture.Error()
	f.once.Do(func() { f.c.changed(err == nil) })
	return err
}

// changed takes an answered configuration change off cfgPending. Raft
// answers a change without error once it committed, while this member still
// led: when none is pending then, the configuration it holds is committed in
// its term and the one a newer leader would hold.
func (c *core) changed(committed bool) {
	c.cfgMu.Lock()
	defer c.cfgMu.Unlock()
	c.cfgPending--
	if !committed || c.cfgPending != 0 {
		return
	}
	if l := c.currentLead(); l != nil && l.term == c.raft.Load().CurrentTerm() {
		l.quorum.Store(&readQuorum{voters: c.voters(), started: c.cfgStarted.Load()})
	}
}

// readIndex asks whoever leads for a read index, waiting for a leader while
// ctx allows.
func (c *core) readIndex(ctx context.Context) (rsm.Index, error) {
	backoff := time.Millisecond
	for {
		leader := c.leaderHint()
		var (
			idx rsm.Index
			err error
		)
		switch {
		case leader.IsZero():
			err = ErrOffline
		case leader == c.self:
			idx, err = c.leaderReadIndex(ctx, c.self, c.raft.Load().CurrentTerm())
		default:
			idx, err = c.remoteReadIndex(ctx, leader)
		}
		if err == nil {
			return idx, nil
		}
		if c.isClosing() {
			return 0, ErrClosed
		}
		select {
		case <-ctx.Done():
			if errors.Is(err, ErrOffline) || errors.Is(err, ErrNotLeader) || errors.Is(err, transport.ErrUnreachable) {
				return 0, fmt.Errorf("%w: %v", ErrOffline, ctx.Err())
			}
			return 0, err
		case <-c.when.changed.wait():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

func (c *core) remoteReadIndex(ctx context.Context, leader transport.PeerID) (rsm.Index, error) {
	req, err := encodeCtl(ctlReadIndex, readIndexRequest{Term: c.raft.Load().CurrentTerm()})
	if err != nil {
		return 0, err
	}
	b, err := c.scope.Request(ctx, c.ctlSubject(leader), leader, req)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", transport.ErrUnreachable, err)
	}
	var r readIndexReply
	if err := decodeWire(b, &r); err != nil {
		return 0, err
	}
	if r.Code != 0 {
		return 0, &remoteError{code: r.Code, msg: r.Msg}
	}
	return r.Index, nil
}

// removePeer removes p from the configuration; only the leader can. Unless
// forced, it refuses when the voters left would not have a live majority:
// such a change could never commit.
func (c *core) removePeer(ctx context.Context, p transport.PeerID, force bool) error {
	if c.raft.Load().State() != raft.Leader {
		return ErrNotLeader
	}
	if !force && !c.safeToRemove(p) {
		return fmt.Errorf("%w: removing %s would leave no live majority", errRefused, p.Short())
	}
	_, err := call(ctx, c, c.changeConfig(func() raft.IndexFuture { return c.raft.Load().RemoveServer(raft.ServerID(p.String()), 0, 0) }))
	return err
}

// safeToRemove reports whether the voters other than p, counting those
// heard recently, keep a live majority.
func (c *core) safeToRemove(p transport.PeerID) bool {
	fut := c.raft.Load().GetConfiguration()
	if fut.Error() != nil {
		return false
	}
	live := c.livePeers(c.cfg.liveWindow())
	n, k := 0, 0
	for _, s := range fut.Configuration().Servers {
		if s.Suffrage != raft.Voter || s.ID == raft.ServerID(p.String()) {
			continue
		}
		n++
		q, err := transport.ParsePeerID(string(s.ID))
		if err != nil {
			continue
		}
		if _, ok := live[q]; ok || q == c.self {
			k++
		}
	}
	return n > 0 && 2*k > n
}

// removeSelf takes this member out of the configuration, through the
// leader. Leave insists until ctx ends; Close (insist false) makes one
// attempt and gives up when the change is unsafe or nobody answers.
func (c *core) removeSelf(ctx context.Context, insist bool) error {
	c.leaving.Store(true)
	c.announce()
	for {
		// A member that just restored a snapshot may hold a configuration
		// older than its own addition: only trust "not a member" when no
		// leader can be asked (removing a non-member is a no-op there).
		if !c.inConfiguration() && c.leaderHint().IsZero() {
			return nil
		}
		if c.lastVoter() {
			// The group cannot go on without a voter; leave it as it is.
			return nil
		}
		var err error
		leader := c.leaderHint()
		switch {
		case leader == c.self:
			err = c.removePeer(ctx, c.self, insist)
		case leader.IsZero():
			err = ErrOffline
		default:
			var req []byte
			if req, err = encodeCtl(ctlLeave, leaveRequest{Force: insist}); err == nil {
				// Bounded per attempt: a leader that has just gone never answers.
				actx, cancel := context.WithTimeout(ctx, 2*c.cfg.ElectionTimeout)
				var b []byte
				b, err = c.scope.Request(actx, c.ctlSubject(leader), leader, req)
				cancel()
				if err == nil {
					var r readIndexReply
					if err = decodeWire(b, &r); err == nil && r.Code != 0 {
						err = &remoteError{code: r.Code, msg: r.Msg}
					}
				}
			}
		}
		if err == nil {
			return nil
		}
		if !insist && (errors.Is(err, errRefused) || errors.Is(err, ErrOffline) || ctx.Err() != nil) {
			c.log.Debug("groups: leaving without removal", "err", err)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("groups: leave: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// lastVoter reports whether this member is the only voter.
func (c *core) lastVoter() bool {
	fut := c.raft.Load().GetConfiguration()
	if fut.Error() != nil {
		return false
	}
	voters, self := 0, false
	for _, s := range fut.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters++
			self = self || s.ID == raft.ServerID(c.self.String())
		}
	}
	return self && voters == 1
}

func (c *core) inConfiguration() bool {
	fut := c.raft.Load().GetConfiguration()
	if fut.Error() != nil {
		return false
	}
	for _, s := range fut.Configuration().Servers {
		if s.ID == raft.ServerID(c.self.String()) {
			return true
		}
	}
	return false
}
