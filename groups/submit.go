package groups

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// maxInflight is how many batches a member has unanswered at once; it must
// stay within what the machine remembers per session. Two keep the log busy
// (one applies while the next is appended) and let calls that arrive
// meanwhile gather into the next batch: fewer, larger log entries. On three
// members on one machine, 16 gave half the throughput at concurrency 64.
const maxInflight = 2

var _ = [rsm.SessionWindow - maxInflight]struct{}{} // maxInflight <= SessionWindow

// pending is one call waiting for its commands to apply.
type pending struct {
	ctx      context.Context
	cmds     [][]byte
	size     int
	feed     bool // answered once appended, not applied
	local    bool // the caller then waits to apply it on this member
	enqueued time.Time
	done     chan pendingResult // buffered; receives exactly one result
	answered bool
}

type pendingResult struct {
	out rsm.Outcome
	err error
}

func (p *pending) answer(out rsm.Outcome, err error) {
	if !p.answered {
		p.answered = true
		p.done <- pendingResult{out, err}
	}
}

// batch is a run of pendings sent to the leader as one log entry.
type batch struct {
	seq      uint64
	first    uint32 // the number of its first attempt
	attempt  uint32 // the number of its latest attempt
	parts    []*pending
	cmds     [][]byte
	local    bool // a part waits to apply it on this member
	sentAt   time.Time
	cancel   func()
	resolved bool
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

	session  rsm.SessionID
	attempts uint32 // attempts numbered so far, across sessions: replies to an older session's batches never match
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
}

func newSubmitter(c *core) (*submitter, error) {
	s := &submitter{c: c, in: make(chan *pending, 1024), repSig: make(chan struct{}, 1), nextSeq: 1}
	return s, nil
}

// submit queues encoded commands and waits for their outcome.
func (s *submitter) submit(ctx context.Context, cmds [][]byte, size int, feed, local bool) (rsm.Outcome, error) {
	if s.c.isClosing() {
		return rsm.Outcome{}, ErrClosed
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
		return rsm.Outcome{}, ctx.Err()
	case <-s.c.closing:
		return rsm.Outcome{}, ErrClosed
	}
	select {
	case r := <-p.done:
		return r.out, r.err
	case <-ctx.Done():
		return rsm.Outcome{}, fmt.Errorf("groups: command outcome unknown: %w", ctx.Err())
	case <-s.c.closing:
		select {
		case r := <-p.done:
			return r.out, r.err
		default:
			return rsm.Outcome{}, ErrClosed
		}
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
		case <-s.c.when.changed.wait():
		case <-tick.C:
			s.checkTimeouts()
		}
	}
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
		if p.ctx.Err() != nil {
			s.queue = s.queue[1:]
			p.answer(rsm.Outcome{}, p.ctx.Err())
			continue
		}
		if len(b.parts) > 0 && (n+len(p.cmds) > MaxBatchCommands || size+p.size > MaxBatchSize) {
			break
		}
		s.queue = s.queue[1:]
		b.parts = append(b.parts, p)
		b.local = b.local || p.local
		b.cmds = append(b.cmds, p.cmds...)
		n += len(p.cmds)
		size += p.size
	}
	if len(b.parts) == 0 {
		return nil
	}
	if s.nextSeq == 1 {
		// Nothing went under the current session yet: name a new one by
		// what this member has seen applied (see rsm.NewSessionID).
		id, err := rsm.NewSessionID(max(s.c.fsm.Applied(), s.seenFloor))
		if err != nil {
			s.queue = append(b.parts, s.queue...)
			s.failAll(fmt.Errorf("groups: session id: %w", err))
			return nil
		}
		s.session = id
	}
	b.seq = s.nextSeq
	s.nextSeq++
	return b
}

func (s *submitter) send(b *batch) {
	s.attempts++
	b.attempt = s.attempts
	if b.first == 0 {
		b.first = b.attempt
	}
	b.sentAt = time.Now()
	if b.cancel != nil {
		b.cancel()
		b.cancel = nil
	}
	req := forward{Session: s.session, Seq: b.seq, Base: s.base, Attempt: b.attempt, Cmds: b.cmds, Local: b.local}
	if s.leader == s.c.self {
		select {
		case s.c.appendCh <- submission{req: req, reply: s.pushReply}:
		case <-s.c.closing:
		}
		return
	}
	data, err := encodeCtl(ctlForward, req)
	if err != nil {
		s.resolve(b, rsm.Outcome{}, fmt.Errorf("groups: encode forward: %w", err))
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
			off := 0
			for _, p := range b.parts {
				if p.feed {
					p.answer(rsm.Outcome{Status: rsm.StatusApplied, First: r.First + rsm.Index(off), Count: len(p.cmds)}, nil)
				}
				off += len(p.cmds)
			}
		case replyOutcome:
			switch r.Outcome.Status {
			case rsm.StatusApplied:
				s.resolve(b, r.Outcome, nil)
			case rsm.StatusStale:
				s.resolve(b, rsm.Outcome{}, ErrOutcomeUnknown)
			case rsm.StatusTooLarge:
				s.resolve(b, rsm.Outcome{}, fmt.Errorf("%w: the group refused the batch as over its limits", ErrTooLarge))
			case rsm.StatusExpired:
				s.expire(b, r)
				return
			case rsm.StatusGap:
				if r.Attempt == b.attempt {
					s.resendAt = time.Now() // an earlier batch is missing: send all again, in order
				}
			default:
				s.resolve(b, rsm.Outcome{}, fmt.Errorf("groups: the leader could not decode the batch"))
			}
		case replyError:
			if r.Code == codeTooLarge {
				s.resolve(b, rsm.Outcome{}, r.err())
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
// (rsm.MaxSessions). A forgotten session never comes back, so no batch of
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
		if clean {
			x.resolved = true
			if x.cancel != nil {
				x.cancel()
				x.cancel = nil
			}
			again = append(again, x.parts...)
		} else {
			s.resolve(x, rsm.Outcome{}, ErrSessionExpired)
		}
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

// resolve answers every call of a batch with its share of the outcome.
func (s *submitter) resolve(b *batch, out rsm.Outcome, err error) {
	b.resolved = true
	if b.cancel != nil {
		b.cancel()
		b.cancel = nil
	}
	s.backoff = 0
	off := 0
	for _, p := range b.parts {
		n := len(p.cmds)
		if err != nil {
			p.answer(rsm.Outcome{}, err)
		} else {
			part := rsm.Outcome{Status: out.Status, First: out.First + rsm.Index(off), Count: n}
			if len(out.Replies) >= off+n {
				part.Replies = out.Replies[off : off+n]
			}
			p.answer(part, nil)
		}
		off += n
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
		case p.ctx.Err() != nil:
			p.answer(rsm.Outcome{}, p.ctx.Err())
		case offline && now.Sub(p.enqueued) > s.c.cfg.ForwardTimeout:
			p.answer(rsm.Outcome{}, ErrOffline)
		default:
			kept = append(kept, p)
		}
	}
	clear(s.queue[len(kept):])
	s.queue = kept
}

func (s *submitter) failAll(err error) {
	for _, b := range s.inflight {
		if b.cancel != nil {
			b.cancel()
		}
		for _, p := range b.parts {
			p.answer(rsm.Outcome{}, err)
		}
	}
	for _, p := range s.queue {
		p.answer(rsm.Outcome{}, err)
	}
	s.inflight, s.queue = nil, nil
}
