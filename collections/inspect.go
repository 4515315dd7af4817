package collections

import (
	"context"
	"errors"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// The inspect protocol lets a tool that does not know a collection's Go
// types read it: every handle answers on inspectwire.Subject with its state
// and changes, keys and values encoded as CBOR (an inspectwire.Change each).
// Answers come from the published immutable state and the watch history,
// so they never hold up Apply.
//
// Dumps and polls are bounded per node and per requesting peer (see
// InspectMaxDumps), and no goroutine is started per request: a dump's page
// is read from the frozen state it started on when it is asked for, and
// one goroutine per handle answers the polls that wait for changes.

// The protocol's messages are in internal/inspectwire, shared with the
// inspect tool; handles convert their changes at the boundary (wireChange),
// so that the public types do not define the wire.

// wireChange is a collection's change type: MapChange, VecChange or
// SetChange.
type wireChange interface {
	wire() (inspectwire.Change, error)
}

// wire carries a map's key on inserts and removes, its value on inserts.
func (c MapChange[K, V]) wire() (w inspectwire.Change, err error) {
	w.Op = c.Op.wire()
	if c.Op == OpInsert || c.Op == OpRemove {
		if w.Key, err = rsm.Marshal(c.Key); err != nil {
			return w, err
		}
	}
	if c.Op == OpInsert {
		w.Value, err = rsm.Marshal(c.Value)
	}
	return w, err
}

// wire carries a vec's index, and its value on inserts and sets.
func (c VecChange[T]) wire() (w inspectwire.Change, err error) {
	w.Op, w.Index = c.Op.wire(), c.Index
	if c.Op == OpInsert || c.Op == OpSet {
		w.Value, err = rsm.Marshal(c.Value)
	}
	return w, err
}

// wire carries a set's element on inserts and removes: it is its identity.
func (c SetChange[T]) wire() (w inspectwire.Change, err error) {
	w.Op = c.Op.wire()
	if c.Op == OpInsert || c.Op == OpRemove {
		w.Value, err = rsm.Marshal(c.Value)
	}
	return w, err
}

func recoveryWire(r groups.Recovery) *inspectwire.Recovery {
	hex := func(ps []transport.PeerID) []string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = p.String()
		}
		return out
	}
	w := &inspectwire.Recovery{Previous: hex(r.Previous), Reachable: hex(r.Reachable), LastIndex: uint64(r.LogLast), Committed: uint64(r.LogCommitted),
		Uncommitted: r.Uncommitted, HighestIndex: uint64(r.LogHighest), MayBeLost: r.MayBeLost}
	if !r.HighestPeer.IsZero() {
		w.HighestPeer = r.HighestPeer.String()
	}
	return w
}

// changeSize is about what c takes in a reply, to bound a page's bytes.
func changeSize(c inspectwire.Change) int { return len(c.Key) + len(c.Value) + 16 }

const (
	inspectPageItems = 1000
	inspectPageBytes = 512 << 10
	inspectMaxWait   = 30 * time.Second
	dumpIdle         = 30 * time.Second // a dump session nobody reads is dropped
	// dumpsFinished is how many dumps read to their end a handle keeps, to
	// answer a retry of their last page; the oldest goes first.
	dumpsFinished = 16
)

// frozen is a state a dump reads: immutable, so its pages can be read when
// they are asked for, and a page read again is the same.
type frozen[E any] struct {
	v Version
	n int
	// after yields the entries after last, in order; all of them for nil.
	after func(last *E) iter.Seq[E]
}

// inspector answers inspect requests for one handle. Its subscription's
// handler answers dumps and heads and takes polls; its one goroutine (run)
// owns the polls that wait, and answers them.
type inspector[E wireChange] struct {
	op    inspectOperator
	gate  *inspectGate
	hist  *history[E]
	state func() frozen[E]
	sub   *transport.Subscription

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // a poll was added
	opBusy atomic.Bool   // an operator command runs (one at a time)
	start  time.Time     // when the subscription started (see fresh)

	mu       sync.Mutex
	nextID   uint64
	sessions map[uint64]*dumpSession[E]
	finished []uint64 // sessions read to the end, oldest first
	polls    []*inspectPoll
	closed   bool
}

// dumpSession is a dump in progress (or finished, kept for a retry of its
// last page). Only the subscription's handler reads and writes its cursor;
// held is under the inspector's mu.
type dumpSession[E any] struct {
	peer  transport.PeerID
	state frozen[E]
	timer *time.Timer

	page  uint64 // pages handed out
	start *E     // the cursor before the last page handed out
	next  *E     // the cursor after it
	limit int    // the last page's limit
	done  bool

	held bool // holds a gate slot
}

// inspectPoll is a poll waiting for changes.
type inspectPoll struct {
	m        *transport.Msg
	req      inspectwire.Request
	limit    int
	deadline time.Time
}

// serveInspect answers in the group's scope: only those who hold the
// group's secret (anyone, for an open group) can read its contents.
func serveInspect[E wireChange](scope *transport.Scope, subject string, hist *history[E], state func() frozen[E], op inspectOperator) (*inspector[E], error) {
	ctx, cancel := context.WithCancel(context.Background())
	op.sealed = scope.Sealed()
	in := &inspector[E]{op: op, gate: acquireGate(scope.Network()), hist: hist, state: state, ctx: ctx, cancel: cancel,
		kick: make(chan struct{}, 1), sessions: map[uint64]*dumpSession[E]{}, start: time.Now()}
	sub, err := scope.Subscribe(subject, in.onRequest)
	if err != nil {
		cancel()
		in.gate.release()
		return nil, err
	}
	in.sub = sub
	in.wg.Add(1)
	go in.run()
	return in, nil
}

func (in *inspector[E]) close() {
	in.sub.Close() // no handler runs after this
	in.mu.Lock()
	in.closed = true
	sessions := in.sessions
	in.sessions = nil
	in.mu.Unlock()
	for _, s := range sessions {
		s.timer.Stop()
		if s.held {
			in.gate.put(slotDump, s.peer)
		}
	}
	in.cancel()
	in.wg.Wait() // run answers the waiting polls and returns their slots
	in.gate.release()
}

func (in *inspector[E]) onRequest(m *transport.Msg) {
	if !m.ExpectsReply() {
		return
	}
	req, err := inspectwire.DecodeRequest(m.Data)
	if err != nil {
		in.respond(m, inspectwire.Reply{Code: inspectwire.Malformed, Msg: "collections: " + err.Error()})
		return
	}
	switch req.Op {
	case inspectwire.OpDump:
		in.respond(m, in.dump(m.From, req))
	case inspectwire.OpHead:
		st := in.state()
		in.respond(m, inspectwire.Reply{Version: uint64(st.v), Total: st.n})
	case inspectwire.OpChanges:
		in.poll(m, req)
	case inspectwire.OpRecover, inspectwire.OpRemoveMember:
		in.operate(m, req)
	default:
		in.respond(m, inspectwire.Reply{Code: inspectwire.Malformed, Msg: "unknown operation"})
	}
}

func (in *inspector[E]) respond(m *transport.Msg, r inspectwire.Reply) {
	if b, err := inspectwire.Marshal(r); err == nil {
		_ = m.Respond(b)
	}
}

func busyReply(why string) inspectwire.Reply {
	return inspectwire.Reply{Code: inspectwire.Busy, Msg: why}
}

func pageLimit(limit int) int {
	if limit <= 0 || limit > inspectPageItems {
		return inspectPageItems
	}
	return limit
}

func (in *inspector[E]) dump(from transport.PeerID, req inspectwire.Request) inspectwire.Reply {
	limit := pageLimit(req.Limit)
	var s *dumpSession[E]
	var id uint64
	if req.Session == 0 {
		if why := in.gate.take(slotDump, from); why != "" {
			return busyReply(why)
		}
		in.mu.Lock()
		if in.closed {
			in.mu.Unlock()
			in.gate.put(slotDump, from)
			return inspectwire.Reply{Code: inspectwire.Closed, Msg: "closed"}
		}
		in.nextID++
		id = in.nextID
		s = &dumpSession[E]{peer: from, state: in.state(), held: true}
		s.timer = time.AfterFunc(dumpIdle, func() { in.drop(id) })
		in.sessions[id] = s
		in.mu.Unlock()
	} else {
		id = req.Session
		in.mu.Lock()
		s = in.sessions[id]
		in.mu.Unlock()
		// Another peer's session is as unknown as an expired one: it may
		// not disturb a dump it did not start.
		if s == nil || s.peer != from {
			return inspectwire.Reply{Code: inspectwire.UnknownSession, Msg: "dump session unknown or expired"}
		}
		s.timer.Reset(dumpIdle)
	}
	switch {
	case req.Session != 0 && req.Page+1 == s.page:
		// A retry of the last page: the state is frozen, so it reads the same.
		limit = s.limit
		s.next = s.start
		s.page--
	case req.Session != 0 && req.Page != s.page:
		return inspectwire.Reply{Code: inspectwire.UnknownSession, Msg: "pages must be read in order"}
	}
	r := inspectwire.Reply{Session: id, Page: s.page, Version: uint64(s.state.v), Total: s.state.n}
	last, size := s.next, 0
	r.Done = true
	for e := range s.state.after(s.next) {
		if len(r.Items) == limit || size >= inspectPageBytes {
			r.Done = false
			break
		}
		c, err := e.wire()
		if err != nil {
			return inspectwire.Reply{Code: inspectwire.Malformed, Msg: err.Error()}
		}
		r.Items = append(r.Items, c)
		size += changeSize(c)
		last = &e
	}
	s.start, s.next, s.limit = s.next, last, limit
	s.page++
	if r.Done && !s.done {
		s.done = true
		in.finish(id, s)
	}
	return r
}

// finish returns the slot of a dump read to its end; the session stays
// until idle, or until dumpsFinished newer ones finished, to answer a retry
// of its last page.
func (in *inspector[E]) finish(id uint64, s *dumpSession[E]) {
	in.mu.Lock()
	held := s.held
	s.held = false
	var old []*dumpSession[E]
	if in.sessions[id] == s {
		in.finished = append(in.finished, id)
		for len(in.finished) > dumpsFinished {
			if o := in.sessions[in.finished[0]]; o != nil {
				delete(in.sessions, in.finished[0])
				old = append(old, o)
			}
			in.finished = in.finished[1:]
		}
	}
	in.mu.Unlock()
	for _, o := range old {
		o.timer.Stop()
	}
	if held {
		in.gate.put(slotDump, s.peer)
	}
}

// drop forgets an idle session.
func (in *inspector[E]) drop(id uint64) {
	in.mu.Lock()
	s := in.sessions[id]
	if s == nil {
		in.mu.Unlock()
		return
	}
	delete(in.sessions, id)
	if i := slices.Index(in.finished, id); i >= 0 {
		in.finished = slices.Delete(in.finished, i, i+1)
	}
	held := s.held
	s.held = false
	in.mu.Unlock()
	if held {
		in.gate.put(slotDump, s.peer)
	}
}

// poll answers a changes request at once if it can, or hands it to run to
// wait for changes, if the bounds leave room.
func (in *inspector[E]) poll(m *transport.Msg, req inspectwire.Request) {
	limit := pageLimit(req.Limit)
	if r, ready := in.changes(req, limit); ready || req.Wait <= 0 {
		in.respond(m, r)
		return
	}
	if why := in.gate.take(slotPoll, m.From); why != "" {
		in.respond(m, busyReply(why))
		return
	}
	wait := min(req.Wait, inspectMaxWait)
	in.mu.Lock()
	in.polls = append(in.polls, &inspectPoll{m: m, req: req, limit: limit, deadline: time.Now().Add(wait)})
	in.mu.Unlock()
	select {
	case in.kick <- struct{}{}:
	default:
	}
}

// run answers the waiting polls: when changes arrive, when they time out,
// and with Closed when the handle closes.
func (in *inspector[E]) run() {
	defer in.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		// Take the channel first: changes after it close it.
		more := in.hist.changed()
		in.mu.Lock()
		polls := in.polls
		in.polls = nil
		in.mu.Unlock()
		now := time.Now()
		var keep []*inspectPoll
		var next time.Time
		for _, p := range polls {
			r, ready := in.changes(p.req, p.limit)
			if ready || !now.Before(p.deadline) {
				in.respond(p.m, r)
				in.gate.put(slotPoll, p.m.From)
				continue
			}
			keep = append(keep, p)
			if next.IsZero() || p.deadline.Before(next) {
				next = p.deadline
			}
		}
		in.mu.Lock()
		in.polls = append(keep, in.polls...)
		in.mu.Unlock()
		if len(keep) == 0 {
			more = nil // nothing waits for changes
		} else {
			timer.Reset(next.Sub(now))
		}
		select {
		case <-more:
		case <-timer.C:
		case <-in.kick:
		case <-in.ctx.Done():
			in.mu.Lock()
			polls := in.polls
			in.polls = nil
			in.mu.Unlock()
			for _, p := range polls {
				in.respond(p.m, inspectwire.Reply{Code: inspectwire.Closed, Msg: "closed"})
				in.gate.put(slotPoll, p.m.From)
			}
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// changes reads the changes after req.Since, and reports whether the
// reply is final: changes came, or they are compacted.
func (in *inspector[E]) changes(req inspectwire.Request, limit int) (inspectwire.Reply, bool) {
	recs, _, err := in.hist.since(Version(req.Since), limit)
	if err != nil {
		if errors.Is(err, ErrCompacted) {
			return inspectwire.Reply{Code: inspectwire.Compacted, Msg: err.Error()}, true
		}
		return inspectwire.Reply{Code: inspectwire.Malformed, Msg: err.Error()}, true
	}
	r := inspectwire.Reply{Version: req.Since}
	size := 0
	for _, rec := range recs {
		r.Version = uint64(rec.v)
		if len(rec.changes) == 0 {
			continue
		}
		ir := inspectwire.Record{Version: uint64(rec.v)}
		for _, c := range rec.changes {
			w, err := c.wire()
			if err != nil {
				return inspectwire.Reply{Code: inspectwire.Malformed, Msg: err.Error()}, true
			}
			ir.Changes = append(ir.Changes, w)
			size += changeSize(w)
		}
		r.Records = append(r.Records, ir)
		if size >= inspectPageBytes {
			break
		}
	}
	return r, len(recs) > 0
}

// inspectOperator is what the operator commands of the inspect protocol
// (OpRecover, OpRemoveMember) do on the handle's member. They
// change the group, so they are served only in a sealed group, where only
// holders of its secret can send them, or where the handle allows them
// in an open group (WithOperatorCommands), where anyone on the NATS server
// can.
type inspectOperator struct {
	sealed    bool
	allowOpen bool
	recover   func(context.Context) (groups.Recovery, error)
	remove    func(context.Context, transport.PeerID, bool) error
}

// operatorTimeout bounds an operator command; a recovery waits for an
// election.
const operatorTimeout = 30 * time.Second

// A subscription's replay window is in memory: a command captured before
// the handle was opened (before a restart) would open and run again. So an
// operator command names when it was issued, and runs only if that is
// within operatorFresh of now and no earlier than operatorSkew before the
// subscription started; others are dropped unanswered, like replayed
// frames. Clocks must agree within operatorSkew.
const operatorFresh = 2 * time.Minute

var operatorSkew = 10 * time.Second // a variable for tests

// fresh reports whether an operator command issued at issued (Unix
// nanoseconds) may run now.
func (in *inspector[E]) fresh(issued int64) bool {
	at, now := time.Unix(0, issued), time.Now()
	return issued != 0 && !at.Before(in.start.Add(-operatorSkew)) && now.Sub(at).Abs() <= operatorFresh
}

// operate runs an operator command on a goroutine of its own (owned by the
// inspector, one at a time), so that it never holds up the subscription.
func (in *inspector[E]) operate(m *transport.Msg, req inspectwire.Request) {
	if !in.op.sealed && !in.op.allowOpen {
		in.respond(m, inspectwire.Reply{Code: inspectwire.Refused, Msg: "this collection has no secret: it takes no operator commands unless opened with collections.WithOperatorCommands()"})
		return
	}
	if in.op.recover == nil {
		in.respond(m, inspectwire.Reply{Code: inspectwire.Refused, Msg: "this handle takes no operator commands"})
		return
	}
	if req.Issued == 0 {
		in.respond(m, inspectwire.Reply{Code: inspectwire.Refused, Msg: "the command does not say when it was issued (an older inspect?)"})
		return
	}
	if !in.fresh(req.Issued) {
		in.gate.log.Warn("collections: operator command dropped: issued too long ago, before this handle started, or by a clock far off (a replay?)",
			"from", m.From.Short(), "issued", time.Unix(0, req.Issued).UTC())
		return
	}
	var peer transport.PeerID
	if req.Op == inspectwire.OpRemoveMember {
		var err error
		if peer, err = transport.ParsePeerID(req.Peer); err != nil {
			in.respond(m, inspectwire.Reply{Code: inspectwire.Malformed, Msg: "peer: " + err.Error()})
			return
		}
	}
	if !in.opBusy.CompareAndSwap(false, true) {
		in.respond(m, busyReply("another operator command runs on this member"))
		return
	}
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		defer in.opBusy.Store(false)
		ctx, cancel := context.WithTimeout(in.ctx, operatorTimeout)
		defer cancel()
		var r inspectwire.Reply
		var err error
		if req.Op == inspectwire.OpRecover {
			var rec groups.Recovery
			rec, err = in.op.recover(ctx)
			r.Recovery = recoveryWire(rec)
		} else {
			err = in.op.remove(ctx, peer, req.Force)
		}
		r.Version = uint64(in.state().v)
		if err != nil {
			r.Code, r.Msg = operatorCode(err), err.Error()
		}
		in.respond(m, r)
	}()
}

func operatorCode(err error) inspectwire.Code {
	switch {
	case errors.Is(err, groups.ErrNotLeader):
		return inspectwire.NotLeader
	case errors.Is(err, groups.ErrQuorumReachable), errors.Is(err, groups.ErrRecoverElsewhere),
		errors.Is(err, groups.ErrNotVoter), errors.Is(err, groups.ErrNotMember), errors.Is(err, groups.ErrMemberAlive):
		return inspectwire.Refused
	case errors.Is(err, groups.ErrClosed), errors.Is(err, ErrClosed):
		return inspectwire.Closed
	}
	return inspectwire.Failed
}
