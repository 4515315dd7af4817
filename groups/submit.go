package groups

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mosaik-go/mosaik/internal/replica"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// maxInflight is how many batches a member has unanswered at once; it must
// stay within what the machine remembers per session. Two keep the log busy
// (one applies while the next is appended) and let calls that arrive
// meanwhile gather into the next batch: fewer, larger log entries. On three
// members on one machine, 16 gave half the throughput at concurrency 64.
const maxInflight = 2

var _ = [replica.SessionWindow - maxInflight]struct{}{} // maxInflight <= SessionWindow

// pending is one call waiting for its commands to apply.
type pending struct {
	ctx      context.Context
	cmds     [][]byte
	size     int
	feed     bool // answered once appended, not applied
	local    bool // the caller then waits to apply it on this member
	enqueued time.Time
	done     chan pendingResult // buffered; receives exactly one result

	// Under submitter.mu: the caller, giving up, reads and sets them too.
	answered bool
	gone     bool    // its caller gave up before it was sent: never send it
	id       WriteID // where it was sent; zero while queued
	rec      *record // its caller gave up after it was sent: settle this

	out int // the first version of its batch without it; 0: in every one (written under mu)
}

// record is what a caller that gave up after its write was sent leaves
// behind: the run loop settles it once the write's batch resolves, and
// Outcome reads it.
type record struct {
	done    chan struct{} // closed once settled; the fields below are set before
	rng     rsm.IndexRange
	applied bool
	err     error // settled, but nobody can tell (ErrSessionExpired, ErrClosed)
}

// maxRecords bounds the settled records a member keeps for Outcome; the
// oldest go first. Unsettled ones are kept: at most maxInflight batches.
const maxRecords = 4096

type pendingResult struct {
	out replica.Outcome
	err error
}

// batch is a run of pendings sent to the leader as one log entry.
//
// A part whose caller gave up is withdrawn: the batch is sent on without
// its commands, under the same number. Whichever copy reaches the log
// first applies and the machine drops the others as repeats, so the
// withdrawn commands either applied with an earlier copy or never will.
// Each version has fewer commands than the one before, so the count the
// outcome reports tells which copy applied.
type batch struct {
	seq      uint64
	first    uint32 // the number of its first attempt
	attempt  uint32 // the number of its latest attempt
	parts    []*pending
	cmds     [][]byte  // the latest version's commands
	versions []version // versions[0] carries every part
	local    bool      // a part waits to apply it on this member
	feed     bool      // a part is a Feed: answered once appended
	sentAt   time.Time
	cancel   func()
	resolved bool
	listed   bool // put in submitter.fast once (run loop only)
}

type version struct {
	from  uint32 // the first attempt that may carry it
	count int    // its commands
}

// in reports whether p's commands are in version k of its batch.
func (p *pending) in(k int) bool { return p.out == 0 || k < p.out }

// versionOf returns the version an attempt carried.
func (b *batch) versionOf(attempt uint32) int {
	k := len(b.versions) - 1
	for k > 0 && b.versions[k].from > attempt {
		k--
	}
	return k
}

// versionWith returns the version of count commands, or -1.
func (b *batch) versionWith(count int) int {
	for k, v := range b.versions {
		if v.count == count {
			return k
		}
	}
	return -1
}

// submitter owns this member's session: it batches calls, numbers the
// batches, sends them to the leader in order, and sends every unresolved
// batch again, in order, when the leader changes or an attempt fails. The
// machine drops repeats, so each batch applies exactly once and in order.
type submitter struct {
	c  *core
	in chan *pending

	repMu  sync.Mutex
	reps   []forwardReply
	repSig chan struct{}

	// mu guards the fields of pendings marked so, and records: callers
	// giving up take it. gaveUp holds a signal while a record set under mu
	// waits for withdraw: a caller sets its record, then signals, so no
	// record is missed (ids are given in form, whose batch is in inflight
	// before the run loop reads a signal).
	mu      sync.Mutex
	records map[WriteID]*record
	settled []WriteID // settled records, oldest first
	gaveUp  chan struct{}
	// fast holds, under mu, the forwarded batches without a Feed of
	// session fastSession, which this member's own apply answers (see
	// applied).
	fast        []*batch
	fastSession replica.SessionID

	chosen   replica.SessionID // the session id sent to the leader
	session  replica.SessionID // the same, as the log names it (see bindSession)
	attempts uint32            // attempts numbered so far, across sessions: replies to an older session's batches never match
	queue    []*pending
	inflight []*batch
	nextSeq  uint64
	// seenFloor is the least index a new session may record: past every
	// session the group said it forgot (see expire).
	seenFloor rsm.Index
	base      uint64 // every batch up to base is resolved
	leader    transport.PeerID
	resendAt  time.Time
	backoff   time.Duration
	// selfResolved counts the batches answered at this member's own apply
	// (see applied): forwarded ones, as only those are listed.
	selfResolved atomic.Uint64
}

func newSubmitter(c *core) (*submitter, error) {
	s := &submitter{c: c, in: make(chan *pending, 1024), repSig: make(chan struct{}, 1), nextSeq: 1,
		records: map[WriteID]*record{}, gaveUp: make(chan struct{}, 1)}
	return s, nil
}

// submit queues encoded commands and waits for their outcome.
func (s *submitter) submit(ctx context.Context, cmds [][]byte, size int, feed, local bool) (replica.Outcome, error) {
	if s.c.isClosing() {
		return replica.Outcome{}, ErrClosed
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 3*s.c.cfg.ForwardTimeout)
		defer cancel()
	}
	p := &pending{ctx: ctx, cmds: cmds, size: size, feed: feed, local: local, enqueued: time.Now(), done: make(chan pendingResult, 1)}
	select {
	case s.in <- p:
	case <-ctx.Done():
		return replica.Outcome{}, fmt.Errorf("%w: %w", ErrNotApplied, ctx.Err())
	case <-s.c.closing:
		return replica.Outcome{}, ErrClosed
	}
	select {
	case r := <-p.done:
		return r.out, r.err
	case <-ctx.Done():
		return s.giveUp(p, ctx.Err())
	case <-s.c.closing:
		return s.giveUp(p, ErrClosed)
	}
}

// giveUp ends a caller's wait: with its answer if there is one; with
// ErrNotApplied if its commands were not sent (they never will be); else
// with an *UnknownOutcomeError, leaving a record for Outcome, and the run
// loop withdraws them. It takes only mu, so the caller returns at once.
func (s *submitter) giveUp(p *pending, cause error) (replica.Outcome, error) {
	s.mu.Lock()
	if p.answered {
		s.mu.Unlock()
		r := <-p.done // sent before answered was set
		return r.out, r.err
	}
	p.answered = true // nobody else answers it now; the record is settled instead
	id := p.id
	if id.Seq == 0 {
		p.gone = true
		s.mu.Unlock()
		return replica.Outcome{}, fmt.Errorf("%w: %w", ErrNotApplied, cause)
	}
	p.rec = &record{done: make(chan struct{})}
	s.records[id] = p.rec
	s.mu.Unlock()
	select {
	case s.gaveUp <- struct{}{}:
	default:
	}
	return replica.Outcome{}, &UnknownOutcomeError{Write: id, Err: cause}
}

// answer gives a call its result, or settles its record if its caller
// gave up. Feed calls are answered early (appended); then final is false
// and a record waits for the final outcome.
func (s *submitter) answer(p *pending, out replica.Outcome, err error, final bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answerLocked(p, out, err, final)
}

func (s *submitter) answerLocked(p *pending, out replica.Outcome, err error, final bool) {
	switch {
	case p.rec != nil:
		if final {
			s.settle(p, out, err)
		}
	case !p.answered:
		p.answered = true
		p.done <- pendingResult{out, err}
	}
}

// settle fills in and closes a record, once. Under mu.
func (s *submitter) settle(p *pending, out replica.Outcome, err error) {
	r := p.rec
	select {
	case <-r.done:
		return
	default:
	}
	switch {
	case err == nil:
		r.rng, r.applied = out.Range(), true
	case !errors.Is(err, ErrNotApplied):
		r.err = err
	}
	close(r.done)
	s.settled = append(s.settled, p.id)
	for len(s.settled) > maxRecords {
		delete(s.records, s.settled[0])
		s.settled = s.settled[1:]
	}
}

// outcome waits until the record of a write settles.
func (s *submitter) outcome(ctx context.Context, id WriteID) (rsm.IndexRange, bool, error) {
	s.mu.Lock()
	r := s.records[id]
	s.mu.Unlock()
	if r == nil {
		return rsm.IndexRange{}, false, fmt.Errorf("%w: no record of write %v on this member "+
			"(it was answered, or sent before the member restarted, or is among the oldest beyond %d)", ErrOutcomeUnknown, id, maxRecords)
	}
	select {
	case <-r.done:
		return r.rng, r.applied, r.err
	case <-ctx.Done():
		return rsm.IndexRange{}, false, &UnknownOutcomeError{Write: id, Err: ctx.Err()}
	case <-s.c.closing:
		select {
		case <-r.done:
			return r.rng, r.applied, r.err
		default:
			return rsm.IndexRange{}, false, &UnknownOutcomeError{Write: id, Err: ErrClosed}
		}
	}
}

// withdraw sends every unresolved batch on without the commands of callers
// that gave up (see batch).
func (s *submitter) withdraw() {
	changed := false
	s.mu.Lock()
	for _, b := range s.inflight {
		if b.resolved {
			continue
		}
		k := len(b.versions)
		for _, p := range b.parts {
			if p.rec != nil && p.out == 0 {
				p.out = k
			}
		}
		var cmds [][]byte
		for _, p := range b.parts {
			if p.in(k) {
				cmds = append(cmds, p.cmds...)
			}
		}
		if len(cmds) < len(b.cmds) {
			b.cmds = cmds
			b.versions = append(b.versions, version{from: s.attempts + 1, count: len(cmds)})
			changed = true
		}
	}
	s.mu.Unlock()
	if changed {
		s.resendAt = time.Now() // in order, once a leader is known
	}
}

// pushReply queues a reply for the run loop; it never blocks.
func (s *submitter) pushReply(r forwardReply) {
	s.repMu.Lock()
	s.reps = append(s.reps, r)
	s.repMu.Unlock()
	select {
	case s.repSig <- struct{}{}:
	default:
	}
}

func (s *submitter) run() {
	tick := time.NewTicker(min(s.c.cfg.ForwardTimeout/10, 50*time.Millisecond))
	defer tick.Stop()
	defer s.failAll(ErrClosed)
	for {
		s.pump()
		select {
		case <-s.c.closing:
			return
		case p := <-s.in:
			s.queue = append(s.queue, p)
			s.drainIn()
		case <-s.repSig:
			s.handleReplies()
		case <-s.gaveUp:
			s.withdraw()
		case <-s.c.when.changed.wait():
		case <-tick.C:
			s.checkTimeouts()
		}
	}
}

// applied runs on the goroutine that applies the log, after each apply or
// restore. It answers the callers of every forwarded batch in fast that this
// member's replica has applied, with the outcome the replica recorded,
// without waiting for the leader's reply or for the run loop, and hands
// the run loop that outcome as if the leader had sent it: the run loop
// then resolves the batch (its callers are answered already) and sends
// what waits.
//
// That outcome is the one the leader sends: both read it from the
// session's record (see core.finish), which the first copy of the batch to
// reach the log wrote, identically on every replica (the machine is
// deterministic and drops every later copy as a repeat). Whatever version
// of the batch applied (see withdraw), its count tells which, as in the
// leader's reply. What this member applied was committed, so nothing
// answered here can be lost. On a follower that commits by itself (see
// selfcommit.go) this is about a network round trip before the leader's
// reply, which then finds the batch resolved and is dropped
// (handleReplies); otherwise it spares the run loop's hand-off.
//
// A batch with a Feed is not in fast: its Feed is answered once the batch
// is appended, which only the leader tells. A batch whose record says
// other than applied (refused, or its session expired) waits for the
// leader, which tells the submitter what to do next.
//
// The replica is read without mu: a Query holds the replica's lock as long
// as the machine's Query runs, and neither a caller giving up nor the run
// loop may wait for that. Only this goroutine applies, so what it read
// stays true while it answers.
func (s *submitter) applied() {
	var (
		bsBuf   [maxInflight]*batch
		outsBuf [maxInflight]replica.Outcome
	)
	s.mu.Lock()
	session, bs := s.fastSession, append(bsBuf[:0], s.fast...)
	s.mu.Unlock()
	if len(bs) == 0 {
		return // the leader's case, and a follower's between writes
	}
	outs := outsBuf[:0]
	for _, b := range bs {
		out, ok := s.c.fsm.SessionOutcome(session, b.seq)
		if !ok {
			out = replica.Outcome{}
		}
		outs = append(outs, out)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, b := range bs {
		// Not listed any more if the run loop resolved it meanwhile.
		if outs[i].Status != replica.StatusApplied || !s.unlistLocked(b) {
			continue
		}
		s.answerBatchLocked(b, outs[i], nil)
		s.selfResolved.Add(1)
		s.pushReply(forwardReply{Seq: b.seq, Attempt: b.first, Kind: replyOutcome, Outcome: outs[i]})
	}
}

// list puts a batch being forwarded in fast (see applied), once. Run loop
// only. A batch this member appends as the leader is not put there: its
// completer answers it, which at 64 writers was faster than answering them
// all on the goroutine that applies.
func (s *submitter) list(b *batch) {
	if b.listed || b.feed || s.leader == s.c.self {
		return
	}
	b.listed = true
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.fast) == 0 || s.fastSession != s.session {
		s.fast, s.fastSession = s.fast[:0], s.session
	}
	s.fast = append(s.fast, b)
}

// unlistLocked takes a batch out of fast and reports whether it was there.
// Under mu.
func (s *submitter) unlistLocked(b *batch) bool {
	i := slices.Index(s.fast, b)
	if i < 0 {
		return false
	}
	s.fast = slices.Delete(s.fast, i, i+1)
	return true
}

func (s *submitter) drainIn() {
	for {
		select {
		case p := <-s.in:
			s.queue = append(s.queue, p)
		default:
			return
		}
	}
}

// pump follows leader changes and sends what can be sent.
func (s *submitter) pump() {
	leader := s.c.leaderHint()
	if leader.IsZero() {
		return
	}
	if leader != s.leader {
		s.leader = leader
		if len(s.inflight) > 0 {
			s.resendAll()
		}
	}
	if !s.resendAt.IsZero() {
		if time.Now().Before(s.resendAt) {
			return
		}
		s.resendAll()
	}
	for len(s.inflight) < maxInflight && len(s.queue) > 0 {
		b := s.form()
		if b == nil {
			return
		}
		s.inflight = append(s.inflight, b)
		s.send(b)
	}
}

// form takes queued calls, in order, into one batch within the limits.
func (s *submitter) form() *batch {
	b := &batch{}
	size, n := 0, 0
	for len(s.queue) > 0 {
		p := s.queue[0]
		if s.gone(p) {
			s.queue = s.queue[1:]
			continue
		}
		if p.ctx.Err() != nil {
			s.queue = s.queue[1:]
			s.answer(p, replica.Outcome{}, fmt.Errorf("%w: %w", ErrNotApplied, p.ctx.Err()), true)
			continue
		}
		if len(b.parts) > 0 && (n+len(p.cmds) > MaxBatchCommands || size+p.size > MaxBatchSize) {
			break
		}
		s.queue = s.queue[1:]
		b.parts = append(b.parts, p)
		b.local = b.local || p.local
		b.feed = b.feed || p.feed
		b.cmds = append(b.cmds, p.cmds...)
		n += len(p.cmds)
		size += p.size
	}
	if len(b.parts) == 0 {
		return nil
	}
	if s.nextSeq == 1 {
		// Nothing went under the current session yet: name a new one by
		// what this member has seen applied (see replica.NewSessionID).
		id, err := replica.NewSessionID(max(s.c.fsm.Applied(), s.seenFloor))
		if err != nil {
			s.queue = append(b.parts, s.queue...)
			s.failAll(fmt.Errorf("groups: session id: %w", err))
			return nil
		}
		s.chosen, s.session = id, bindSession(s.c.self, id)
	}
	b.seq = s.nextSeq
	s.nextSeq++
	b.versions = []version{{count: len(b.cmds)}}
	// From now on a caller giving up gets its id; one that gave up
	// meanwhile is left out.
	s.mu.Lock()
	kept := b.parts[:0]
	for _, p := range b.parts {
		if !p.gone {
			p.id = WriteID{Session: s.session, Seq: b.seq, Part: len(kept)}
			kept = append(kept, p)
		}
	}
	s.mu.Unlock()
	if len(kept) < len(b.parts) {
		clear(b.parts[len(kept):])
		b.parts, b.cmds = kept, nil
		for _, p := range kept {
			b.cmds = append(b.cmds, p.cmds...)
		}
		b.versions[0].count = len(b.cmds)
	}
	return b
}

func (s *submitter) gone(p *pending) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return p.gone
}

func (s *submitter) send(b *batch) {
	s.attempts++
	b.attempt = s.attempts
	if b.first == 0 {
		b.first = b.attempt
	}
	s.list(b)
	b.sentAt = time.Now()
	if b.cancel != nil {
		b.cancel()
		b.cancel = nil
	}
	// A local batch gets no "appended" answer (see appendOne), which a
	// Feed in it needs: such a batch goes as a plain one, without the
	// commit notice.
	req := forward{Session: s.chosen, Seq: b.seq, Base: s.base, Attempt: b.attempt, Cmds: b.cmds, Local: b.local && !b.feed}
	if s.leader == s.c.self {
		select {
		case s.c.appendCh <- submission{req: req, from: s.c.self, reply: s.pushReply}:
		case <-s.c.closing:
		}
		return
	}
	data, err := encodeCtl(ctlForward, req)
	if err != nil {
		s.resolve(b, replica.Outcome{}, fmt.Errorf("groups: encode forward: %w", err))
		return
	}
	seq, attempt := b.seq, b.attempt
	cancel, err := s.c.scope.Call(s.c.ctlSubject(s.leader), s.leader, data, func(reply []byte, err error) {
		var r forwardReply
		if err == nil {
			err = decodeWire(reply, &r)
		}
		if err != nil {
			r = forwardReply{Seq: seq, Attempt: attempt, Kind: replyError, Code: codeInternal, Msg: err.Error()}
		}
		s.pushReply(r)
	})
	if err != nil {
		s.c.log.Debug("groups: forward failed", "to", s.leader.Short(), "err", err)
		s.scheduleResend()
		return
	}
	b.cancel = cancel
	s.c.metrics.forwardedCommands(len(b.cmds))
}

func (s *submitter) find(seq uint64) *batch {
	for _, b := range s.inflight {
		if b.seq == seq {
			return b
		}
	}
	return nil
}

func (s *submitter) handleReplies() {
	s.repMu.Lock()
	reps := s.reps
	s.reps = nil
	s.repMu.Unlock()
	for _, r := range reps {
		b := s.find(r.Seq)
		if b == nil || b.resolved || r.Attempt < b.first {
			continue // answered already, or a batch of a session given up
		}
		switch r.Kind {
		case replyAppended:
			k, off := b.versionOf(r.Attempt), 0
			for _, p := range b.parts {
				if !p.in(k) {
					continue
				}
				if p.feed {
					s.answer(p, replica.Outcome{Status: replica.StatusApplied, First: r.First + rsm.Index(off), Count: len(p.cmds)}, nil, false)
				}
				off += len(p.cmds)
			}
		case replyOutcome:
			switch r.Outcome.Status {
			case replica.StatusApplied:
				s.resolve(b, r.Outcome, nil)
			case replica.StatusStale:
				// Applied once, too long ago to recall: only a member
				// that skipped its own window could meet this.
				s.resolve(b, replica.Outcome{}, fmt.Errorf("%w: the batch applied too long ago to recall", ErrOutcomeUnknown))
			case replica.StatusTooLarge:
				s.resolve(b, replica.Outcome{}, fmt.Errorf("%w: the group refused the batch as over its limits", ErrTooLarge))
			case replica.StatusExpired:
				s.expire(b, r)
				return
			case replica.StatusGap:
				if r.Attempt == b.attempt {
					s.resendAt = time.Now() // an earlier batch is missing: send all again, in order
				}
			default:
				s.resolve(b, replica.Outcome{}, fmt.Errorf("groups: the leader could not decode the batch"))
			}
		case replyError:
			if r.Code == codeTooLarge {
				s.resolve(b, replica.Outcome{}, r.err())
				continue
			}
			if r.Attempt == b.attempt {
				s.c.log.Debug("groups: forward attempt failed", "seq", r.Seq, "err", r.Msg)
				s.scheduleResend()
			}
		}
	}
	s.compact()
}

// expire starts a new session once the machine has forgotten this one
// (replica.MaxSessions). A forgotten session never comes back, so no batch of
// it sent after b was refused can apply. If b was sent once and is the
// oldest unresolved batch, none of the unresolved batches applied: their
// calls go again, first, under the new session. Otherwise the earlier ones
// may have applied, once: every unresolved call gets ErrSessionExpired.
// Replies still to come for the old session match no batch (see attempts).
func (s *submitter) expire(b *batch, r forwardReply) {
	var unresolved []*batch
	for _, x := range s.inflight {
		if !x.resolved {
			unresolved = append(unresolved, x)
		}
	}
	clean := len(unresolved) > 0 && unresolved[0] == b && b.attempt == b.first && r.Attempt == b.first
	s.c.log.Warn("groups: the group forgot this member's session; starting a new one", "requeued", clean)
	var again []*pending
	for _, x := range unresolved {
		if !clean {
			s.resolve(x, replica.Outcome{}, ErrSessionExpired)
			continue
		}
		x.resolved = true
		if x.cancel != nil {
			x.cancel()
			x.cancel = nil
		}
		s.mu.Lock()
		s.unlistLocked(x)
		for _, p := range x.parts {
			if p.rec != nil {
				// Its caller gave up, and nothing applied: it never will.
				s.answerLocked(p, replica.Outcome{}, errWithdrawn, true)
				continue
			}
			p.id, p.out = WriteID{}, 0 // queued again: not sent
			again = append(again, p)
		}
		s.mu.Unlock()
	}
	s.queue = append(again, s.queue...)
	s.inflight = nil
	// A member behind the group (restarting, replaying) would name its new
	// session by an index the group has forgotten sessions past, and be
	// refused again at once: name it past them.
	s.seenFloor = max(s.seenFloor, r.Outcome.First+1)
	// The next batch formed starts a new session (see form).
	s.nextSeq, s.base, s.resendAt, s.backoff = 1, 0, time.Time{}, 0
}

// errWithdrawn answers a call withdrawn from its batch (see batch).
var errWithdrawn = fmt.Errorf("%w: withdrawn after its caller gave up", ErrNotApplied)

// resolve answers every call of a batch with its share of the outcome.
func (s *submitter) resolve(b *batch, out replica.Outcome, err error) {
	b.resolved = true
	if b.cancel != nil {
		b.cancel()
		b.cancel = nil
	}
	s.backoff = 0
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unlistLocked(b)
	s.answerBatchLocked(b, out, err)
}

// answerBatchLocked answers every call of a batch with its share of the
// outcome. Calls answered already are left as they are. Under mu.
func (s *submitter) answerBatchLocked(b *batch, out replica.Outcome, err error) {
	k := 0
	if err == nil {
		if k = b.versionWith(out.Count); k < 0 {
			err = fmt.Errorf("%w: the batch applied with %d commands, which no copy this member sent had", ErrOutcomeUnknown, out.Count)
		}
	}
	off := 0
	for _, p := range b.parts {
		n := len(p.cmds)
		switch {
		case err != nil:
			s.answerLocked(p, replica.Outcome{}, err, true)
		case !p.in(k):
			s.answerLocked(p, replica.Outcome{}, errWithdrawn, true)
		default:
			part := replica.Outcome{Status: out.Status, First: out.First + rsm.Index(off), Count: n}
			if len(out.Replies) >= off+n {
				part.Replies = out.Replies[off : off+n]
			}
			s.answerLocked(p, part, nil, true)
			off += n
		}
	}
}

// compact drops resolved batches from the front and advances base.
func (s *submitter) compact() {
	i := 0
	for i < len(s.inflight) && s.inflight[i].resolved {
		s.base = s.inflight[i].seq
		i++
	}
	if i > 0 {
		s.inflight = append(s.inflight[:0], s.inflight[i:]...)
	}
}

func (s *submitter) scheduleResend() {
	s.backoff = min(max(2*s.backoff, 5*time.Millisecond), 200*time.Millisecond)
	at := time.Now().Add(s.backoff)
	if s.resendAt.IsZero() || at.Before(s.resendAt) {
		s.resendAt = at
	}
}

func (s *submitter) resendAll() {
	s.resendAt = time.Time{}
	for _, b := range s.inflight {
		if !b.resolved {
			s.send(b)
		}
	}
}

func (s *submitter) checkTimeouts() {
	now := time.Now()
	for _, b := range s.inflight {
		if !b.resolved && now.Sub(b.sentAt) > s.c.cfg.ForwardTimeout {
			s.scheduleResend()
			break
		}
	}
	offline := s.c.leaderHint().IsZero()
	kept := s.queue[:0]
	for _, p := range s.queue {
		switch {
		case s.gone(p):
		case p.ctx.Err() != nil:
			s.answer(p, replica.Outcome{}, fmt.Errorf("%w: %w", ErrNotApplied, p.ctx.Err()), true)
		case offline && now.Sub(p.enqueued) > s.c.cfg.ForwardTimeout:
			s.answer(p, replica.Outcome{}, ErrOffline, true)
		default:
			kept = append(kept, p)
		}
	}
	clear(s.queue[len(kept):])
	s.queue = kept
}

// failAll answers every call: those not sent with err, those sent (they
// may still apply) with an *UnknownOutcomeError of err.
func (s *submitter) failAll(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.inflight {
		if b.cancel != nil {
			b.cancel()
		}
		if b.resolved {
			continue
		}
		for _, p := range b.parts {
			s.answerLocked(p, replica.Outcome{}, &UnknownOutcomeError{Write: p.id, Err: err}, true)
		}
	}
	for _, p := range s.queue {
		s.answerLocked(p, replica.Outcome{}, err, true)
	}
	s.inflight, s.queue, s.fast = nil, nil, nil
}
