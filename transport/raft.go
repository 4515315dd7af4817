package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// RaftTransport is a raft.Transport over NATS for one Raft group (a scope)
// on one node. Server IDs and addresses are PeerID hex strings.
//
// Each node listens on two subjects per scope: one for heartbeats, so they
// never queue behind a slow AppendEntries, and one for every other RPC,
// handled in arrival order so pipelined AppendEntries answer in order.
// Snapshots travel as a begin message, chunks far below the NATS payload
// limit, each acknowledged once the receiver spooled it (flow control), and
// an end; the receiver hands the snapshot to Raft only once all of it
// arrived.
type RaftTransport struct {
	net      *Network
	sc       *Scope
	scope    string
	local    raft.ServerAddress
	timeout  time.Duration
	hbTO     atomic.Int64 // heartbeat RPC timeout, nanoseconds; 0: timeout
	consumer chan raft.RPC

	appendBudget int // bytes of one AppendEntries on the wire; see splitAppend

	hbMu sync.Mutex
	hbFn func(raft.RPC)
	// hbFastFn chooses the heartbeats hbFn takes (SetHeartbeatFast); nil: all.
	hbFastFn func(term uint64) bool

	rpcSub, hbSub, snapSub *Subscription

	snapMu         sync.Mutex
	snaps          map[PeerID]*snapRecv // open transfers, one per sender
	snapBytes      int64                // their declared sizes
	snapBytesLimit int64
	snapDir        string // for spooled snapshots; empty: the system's

	// wg counts the goroutines the transport starts: pipelines, installs
	// waiting on Raft, snapshot timers that fired. Each is added under
	// snapMu while ctx is live (see track), so none is added once Close
	// waits for them.
	wg sync.WaitGroup

	metrics *raftMetrics // nil without a registry

	allow atomic.Pointer[func(PeerID) bool] // nil: every sender

	// Lock order: noticeMu, then matchMu.
	matchMu sync.Mutex
	matched map[PeerID]matchState
	sent    map[PeerID]matchState // the last entry sent to each peer, as matched names it (see NotifyCommit)

	noticeMu     sync.Mutex
	notices      map[PeerID]*noticeState // see NotifyCommit
	noticesTaken atomic.Uint64           // commit notices a follower took

	selfAllow   atomic.Pointer[func(PeerID) bool] // nil: no self-commit (see SetSelfCommit)
	selfCommits atomic.Uint64                     // self-commit notices this node's Raft took

	shutdown chan struct{}
	ctx      context.Context // cancelled by Close, so RPCs in flight end at once
	cancel   context.CancelFunc
	once     sync.Once
}

var (
	_ raft.Transport   = (*RaftTransport)(nil)
	_ raft.WithPreVote = (*RaftTransport)(nil)
	_ raft.WithClose   = (*RaftTransport)(nil)
)

// NewRaftTransport listens for Raft RPCs of sc on this node, every one
// sealed in sc. timeout bounds each RPC; zero means the network's RPC
// timeout.
func NewRaftTransport(sc *Scope, timeout time.Duration) (*RaftTransport, error) {
	n := sc.net
	scope := hex.EncodeToString(sc.id[:])
	if timeout <= 0 {
		timeout = n.rpcTO
	}
	t := &RaftTransport{
		net:      n,
		sc:       sc,
		scope:    scope,
		local:    raft.ServerAddress(n.id.String()),
		timeout:  timeout,
		consumer: make(chan raft.RPC),
		snaps:    make(map[PeerID]*snapRecv),
		matched:  make(map[PeerID]matchState),
		sent:     make(map[PeerID]matchState),
		notices:  make(map[PeerID]*noticeState),
		shutdown: make(chan struct{}),

		snapBytesLimit: defaultSnapBytesLimit,
		appendBudget:   appendBudgetFor(n.maxChunk),
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.metrics = n.metrics.forScope(scope)
	var err error
	if t.rpcSub, err = sc.Subscribe(t.subject("raft", n.id), t.onRPC); err != nil {
		t.cancel()
		return nil, err
	}
	if t.hbSub, err = sc.Subscribe(t.subject("hb", n.id), t.onHeartbeat); err != nil {
		t.rpcSub.Close()
		t.cancel()
		return nil, err
	}
	if t.snapSub, err = sc.Subscribe(t.subject("snap", n.id), t.onRPC); err != nil {
		t.rpcSub.Close()
		t.hbSub.Close()
		t.cancel()
		return nil, err
	}
	return t, nil
}

func (t *RaftTransport) subject(kind string, p PeerID) string {
	return t.net.Subject(kind, t.scope, p.String())
}

// SetAllow makes the transport refuse RPCs from senders for which allow
// returns false, before Raft sees them. Senders are authenticated (see
// Scope), so allow can trust the PeerID it gets. It is called on the
// delivery goroutines: it must be quick.
func (t *RaftTransport) SetAllow(allow func(from PeerID) bool) {
	if allow == nil {
		t.allow.Store(nil) // every sender
		return
	}
	t.allow.Store(&allow)
}

func (t *RaftTransport) allowed(m *Msg) bool {
	if f := t.allow.Load(); f != nil && !(*f)(m.From) {
		t.net.stats.rejected.Add(1)
		if m.ExpectsReply() {
			_ = m.Respond(errorReply(errNotMember))
		}
		return false
	}
	return true
}

var errNotMember = errors.New("transport: sender is not a member of this raft group")

// A member that has just been added refuses its leader until it has heard
// of it (see SetAllow), and the leader's first AppendEntries can overtake
// what tells it: refused, Raft retries only 60-110 ms later. The sender
// retries such a refusal a few times at once, 5 ms apart.
const (
	notMemberRetries = 4
	notMemberWait    = 5 * time.Millisecond
)

func isNotMember(err error) bool {
	var re *RemoteError
	return errors.As(err, &re) && re.Msg == errNotMember.Error()
}

// Progress is how far a peer's log is known to match this node's: what the
// peer acknowledged to this node's own AppendEntries or InstallSnapshot in
// Term. It is this node's view, never what the peer claims elsewhere.
type Progress struct {
	Term, Index uint64
}

// Matched returns the progress p acknowledged to this node (zero if none).
func (t *RaftTransport) Matched(p PeerID) Progress {
	t.matchMu.Lock()
	defer t.matchMu.Unlock()
	return t.matched[p].Progress
}

// RetainMatched forgets the progress of every peer keep refuses, e.g. those
// no longer in the configuration, so the table does not grow with every
// peer the node ever replicated to.
func (t *RaftTransport) RetainMatched(keep func(PeerID) bool) {
	t.forgetNotices(keep)
	t.matchMu.Lock()
	defer t.matchMu.Unlock()
	for p := range t.matched {
		if !keep(p) {
			delete(t.matched, p)
		}
	}
	for p := range t.sent {
		if !keep(p) {
			delete(t.sent, p)
		}
	}
}

// match records that p acknowledged the log up to index, whose entry has
// log term logTerm, in an AppendEntries of term (header is the one Raft sent).
func (t *RaftTransport) match(p PeerID, term, index, logTerm uint64, header raft.RPCHeader) {
	if index == 0 {
		return
	}
	t.matchMu.Lock()
	defer t.matchMu.Unlock()
	raise(t.matched, p, term, index, logTerm, header)
}

// raise records in table that p is at index, of log term logTerm, in term,
// unless it is known further. Under matchMu.
func raise(table map[PeerID]matchState, p PeerID, term, index, logTerm uint64, header raft.RPCHeader) {
	if cur := table[p]; term > cur.Term || (term == cur.Term && index > cur.Index) {
		table[p] = matchState{Progress: Progress{Term: term, Index: index}, logTerm: logTerm, header: header}
	}
}

// sentTo records that args, with entries, went to p, so a notice can
// follow it on the same subject before p answers (see NotifyCommit).
func (t *RaftTransport) sentTo(p PeerID, args *raft.AppendEntriesRequest) {
	last := args.Entries[len(args.Entries)-1]
	t.matchMu.Lock()
	defer t.matchMu.Unlock()
	raise(t.sent, p, args.Term, last.Index, last.Term, args.RPCHeader)
}

func (t *RaftTransport) appended(target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) {
	if !resp.Success || resp.Term != args.Term {
		return
	}
	p, err := ParsePeerID(string(target))
	if err != nil {
		return
	}
	index, logTerm := args.PrevLogEntry, args.PrevLogTerm
	if n := len(args.Entries); n > 0 {
		index, logTerm = args.Entries[n-1].Index, args.Entries[n-1].Term
	}
	t.match(p, args.Term, index, logTerm, args.RPCHeader)
	if !isHeartbeat(args) {
		t.noticeAcked(p, args) // a heartbeat acknowledges no entry: no new reason to send
	}
}

// SetHeartbeatTimeout bounds a heartbeat's wait for its answer, below the
// RPC timeout. Raft sends the next heartbeat to a peer only once the last
// one was answered or failed, so a heartbeat lost on the way (with a NATS
// server, or dropped) holds back every later one for as long as it waits:
// past a follower's election timeout, the follower calls an election.
// Give less than that; zero means the RPC timeout.
func (t *RaftTransport) SetHeartbeatTimeout(d time.Duration) { t.hbTO.Store(int64(max(d, 0))) }

// Consumer implements raft.Transport.
func (t *RaftTransport) Consumer() <-chan raft.RPC { return t.consumer }

// LocalAddr implements raft.Transport.
func (t *RaftTransport) LocalAddr() raft.ServerAddress { return t.local }

// EncodePeer implements raft.Transport.
func (t *RaftTransport) EncodePeer(_ raft.ServerID, addr raft.ServerAddress) []byte {
	return []byte(addr)
}

// DecodePeer implements raft.Transport.
func (t *RaftTransport) DecodePeer(b []byte) raft.ServerAddress { return raft.ServerAddress(b) }

// SetHeartbeatFast sets which heartbeats take Raft's fast path (the
// heartbeat handler, which runs on this transport's goroutine): those whose
// term fast accepts. The others go to Raft's main loop with every other
// RPC. nil (the default): all of them.
func (t *RaftTransport) SetHeartbeatFast(fast func(term uint64) bool) {
	t.hbMu.Lock()
	defer t.hbMu.Unlock()
	t.hbFastFn = fast
}

// SetHeartbeatHandler implements raft.Transport.
func (t *RaftTransport) SetHeartbeatHandler(fn func(raft.RPC)) {
	t.hbMu.Lock()
	t.hbFn = fn
	t.hbMu.Unlock()
}

// Close stops listening, unblocks every handler waiting on Raft, and waits
// for the goroutines the transport started (pipelines, snapshot installs
// and timers) to end, at most closeWait. It is idempotent and returns nil:
// it is raft.WithClose.
func (t *RaftTransport) Close() error {
	t.once.Do(func() {
		close(t.shutdown)
		t.cancel()
		t.snapMu.Lock()
		for k, s := range t.snaps {
			// A transfer whose end arrived belongs to the goroutine
			// handing it to Raft: that one releases it, and is waited
			// for below.
			if !s.ending {
				s.release()
			}
			delete(t.snaps, k)
		}
		t.snapBytes = 0
		t.snapMu.Unlock()
		t.rpcSub.Close()
		t.hbSub.Close()
		t.snapSub.Close()
		t.waitGoroutines()
		t.metrics.close()
	})
	return nil
}

// closeWait bounds how long Close waits for the transport's goroutines.
// Each ends at once when Close cancels the transport; past the bound one is
// stuck, and Close says so rather than hang its caller.
const closeWait = 10 * time.Second

func (t *RaftTransport) waitGoroutines() {
	done := make(chan struct{})
	go func() {
		t.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeWait):
		t.net.log.Error("transport: raft transport closed with goroutines still running", "scope", t.scope[:16], "waited", closeWait)
	}
}

// track counts a goroutine about to start in wg, unless Close began: then
// it returns false and the goroutine must not start. Call wg.Done when it
// ends.
func (t *RaftTransport) track() bool {
	t.snapMu.Lock()
	defer t.snapMu.Unlock()
	if t.ctx.Err() != nil {
		return false
	}
	t.wg.Add(1)
	return true
}

func isHeartbeat(a *raft.AppendEntriesRequest) bool {
	return a.Term != 0 && (len(a.Addr) > 0 || len(a.Leader) > 0) && a.PrevLogEntry == 0 &&
		a.PrevLogTerm == 0 && len(a.Entries) == 0 && a.LeaderCommitIndex == 0
}

func (t *RaftTransport) request(ctx context.Context, kind string, target raft.ServerAddress, data []byte) ([]byte, error) {
	return t.roundTrip(ctx, kind, target, data, false)
}

// roundTrip sends data, or a frame built in place if framed (see
// Network.sendFrame), and returns the reply's payload.
func (t *RaftTransport) roundTrip(ctx context.Context, kind string, target raft.ServerAddress, data []byte, framed bool) ([]byte, error) {
	p, err := ParsePeerID(string(target))
	if err != nil {
		return nil, err
	}
	select {
	case <-t.shutdown:
		return nil, ErrClosed
	default:
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.timeout)
		defer cancel()
	}
	payload := data
	if framed {
		payload = data[headerLen:]
	}
	t.metrics.sent(len(payload))
	b, err := t.net.request(ctx, t.sc, t.subject(kind, p), p, data, framed)
	t.metrics.received(b, err)
	if err != nil {
		if t.ctx.Err() != nil {
			return nil, ErrClosed
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
		}
		return nil, err
	}
	return parseReply(b)
}

// maxAppendBudget bounds the encoded size of one AppendEntries on the wire:
// Raft batches entries by count, not bytes. A request also fits one NATS
// message where the server allows less (see appendBudgetFor). A follower
// catching up replays the log in such requests, one after another: at 8 MB
// each, encoding, fragmenting and reassembling them took a new member
// 0.7-0.9 s to replay 12 MB of log; at 1 MB, 0.34-0.47 s (kvbench join).
const maxAppendBudget = 1 << 20

// appendBudgetFor is the append budget on a network whose messages carry
// at most maxChunk bytes: one frame, or maxAppendBudget if less.
func appendBudgetFor(maxChunk int) int {
	return max(min(maxAppendBudget, maxChunk-headerLen-frameSlack), 1024)
}

// appendEntryOverhead is more than the CBOR framing of one entry besides its
// data and extensions: index, term, type, lengths and time.
const appendEntryOverhead = 64

// appendBase is more than the encoded size of args without its entries.
func appendBase(args *raft.AppendEntriesRequest) int {
	return 256 + len(args.Leader) + len(args.ID) + len(args.Addr)
}

// appendEntrySize is more than the encoded size of entry e.
func appendEntrySize(e *raft.Log) int {
	return appendEntryOverhead + len(e.Data) + len(e.Extensions)
}

// splitAppend returns args as consecutive requests whose encoded size stays
// within budget, each a run of args' entries, chained: a part's previous
// entry is the last of the part before. An entry larger than budget goes
// alone. A part before the last carries a commit index no higher than its
// own last entry, so a follower never commits past what that part gave it.
// For a request within budget, every heartbeat among them, it returns nil
// (send args as it is) and allocates nothing.
func splitAppend(args *raft.AppendEntriesRequest, budget int) []*raft.AppendEntriesRequest {
	base := appendBase(args)
	total := base
	for _, e := range args.Entries {
		total += appendEntrySize(e)
	}
	if total <= budget {
		return nil
	}
	var parts []*raft.AppendEntriesRequest
	start := 0
	cut := func(end int) {
		part := *args
		part.Entries = args.Entries[start:end:end]
		if start > 0 {
			prev := args.Entries[start-1]
			part.PrevLogEntry, part.PrevLogTerm = prev.Index, prev.Term
		}
		if end < len(args.Entries) {
			part.LeaderCommitIndex = min(args.LeaderCommitIndex, args.Entries[end-1].Index)
		}
		parts = append(parts, &part)
		start = end
	}
	size := base
	for i, e := range args.Entries {
		n := appendEntrySize(e)
		if i > start && size+n > budget {
			cut(i)
			size = base
		}
		size += n
	}
	cut(len(args.Entries))
	return parts
}

// AppendEntries implements raft.Transport. A request larger than the
// transport's budget goes as several consecutive ones, in order; the first
// that fails ends it and its response is Raft's, so a success means every
// part succeeded (Raft takes it for all of args' entries).
func (t *RaftTransport) AppendEntries(_ raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	parts := splitAppend(args, t.appendBudget)
	if parts == nil {
		return t.appendOne(target, args, resp)
	}
	for _, part := range parts {
		if err := t.appendOne(target, part, resp); err != nil {
			return err
		}
		if !resp.Success {
			return nil
		}
	}
	return nil
}

func (t *RaftTransport) appendOne(target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	data, err := encodeAppend(args)
	if err != nil {
		return err
	}
	kind, ctx := "raft", t.ctx
	if isHeartbeat(args) {
		kind = "hb"
		if d := time.Duration(t.hbTO.Load()); d > 0 && d < t.timeout {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
	}
	b, err := t.request(ctx, kind, target, data)
	for i := 0; i < notMemberRetries && kind == "raft" && isNotMember(err); i++ {
		select {
		case <-time.After(notMemberWait):
		case <-t.shutdown:
			return ErrClosed
		}
		b, err = t.request(ctx, kind, target, data)
	}
	if err != nil {
		return err
	}
	if err := decodeAppendResp(b, resp); err != nil {
		return err
	}
	t.appended(target, args, resp)
	return nil
}

func (t *RaftTransport) generic(target raft.ServerAddress, kind byte, args, resp any) error {
	data, err := marshal(kind, args)
	if err != nil {
		return err
	}
	b, err := t.request(t.ctx, "raft", target, data)
	if err != nil {
		return err
	}
	return decMode.Unmarshal(b, resp)
}

// RequestVote implements raft.Transport.
func (t *RaftTransport) RequestVote(_ raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return t.generic(target, kindVote, args, resp)
}

// RequestPreVote implements raft.WithPreVote.
func (t *RaftTransport) RequestPreVote(_ raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.generic(target, kindPreVote, args, resp)
}

// TimeoutNow implements raft.Transport.
func (t *RaftTransport) TimeoutNow(_ raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	return t.generic(target, kindTimeoutNow, args, resp)
}

// snapshotTimeout bounds each step of a snapshot transfer. It is far longer
// than an RPC's: a follower writing a large snapshot to disk may take a while
// over one chunk, and giving up means sending it all again.
func (t *RaftTransport) snapshotTimeout() time.Duration { return max(20*t.timeout, 2*time.Second) }

// snapshotChunk is the payload of one snapshot chunk: well below the NATS
// payload limit so a chunk is never fragmented.
func (t *RaftTransport) snapshotChunk() int { return max(t.net.maxChunk-1024, t.net.maxChunk/2) }

// InstallSnapshot implements raft.Transport. It streams data in chunks,
// up to snapWindow of them unacknowledged (see sendChunks), then sends the
// end, which the follower answers once Raft installed the snapshot. A
// chunk is [kindSnapChunk][transfer id][data], read straight into the
// frame the network sends, so the snapshot is not copied on its way out.
func (t *RaftTransport) InstallSnapshot(_ raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) (err error) {
	var sent int64
	defer func() { t.metrics.snapshotSent(sent, err != nil || !resp.Success) }()
	p, err := ParsePeerID(string(target))
	if err != nil {
		return err
	}
	id := t.net.nextID.Add(1)
	begin, err := marshal(kindSnapBegin, snapBegin{ID: id, Request: args})
	if err != nil {
		return err
	}
	step := func(kind string, data []byte, framed bool, timeout time.Duration) ([]byte, error) {
		ctx, cancel := context.WithTimeout(t.ctx, timeout)
		defer cancel()
		return t.roundTrip(ctx, kind, target, data, framed)
	}
	if _, err := step("raft", begin, false, t.snapshotTimeout()); err != nil {
		return fmt.Errorf("transport: snapshot begin: %w", err)
	}
	if sent, err = t.sendChunks(p, id, data); err != nil {
		return fmt.Errorf("transport: snapshot chunk: %w", err)
	}
	end := make([]byte, headerLen+snapChunkHead, headerLen+snapChunkHead+sealOverhead)
	end[headerLen] = kindSnapEnd
	binary.BigEndian.PutUint64(end[headerLen+1:], id)
	// Restoring a large snapshot takes time on the follower before it answers.
	b, err := step("snap", end, true, max(t.snapshotTimeout(), 5*time.Minute))
	if err != nil {
		return fmt.Errorf("transport: snapshot end: %w", err)
	}
	if err := decMode.Unmarshal(b, resp); err != nil {
		return err
	}
	if resp.Success && resp.Term == args.Term {
		t.match(p, args.Term, args.LastLogIndex, args.LastLogTerm, args.RPCHeader)
	}
	return nil
}

// snapWindow is how many snapshot chunks a sender has unacknowledged at
// most. One at a time, a transfer went at a chunk per round trip through
// the servers and the follower's spooling: 10.8 MB took 150 ms across a
// route (kvbench join). The follower handles a subject's frames in order,
// so chunks sent in order are spooled in order.
const snapWindow = 4

// sendChunks sends the snapshot's chunks of transfer id to p, each in its
// own frame until acknowledged (sealing encrypts a frame in place), and
// returns once every chunk sent was acknowledged, or at the first failure.
// Each acknowledgement is awaited at most snapshotProgress from its send.
func (t *RaftTransport) sendChunks(p PeerID, id uint64, data io.Reader) (sent int64, err error) {
	type flight struct {
		frame []byte
		n     int
		at    time.Time
		reply chan error
		stop  func()
	}
	var queue []*flight
	var spare [][]byte
	defer func() {
		for _, f := range queue {
			f.stop()
		}
	}()
	size := headerLen + snapChunkHead + t.snapshotChunk()
	land := func() error { // the oldest chunk's acknowledgement
		f := queue[0]
		queue = queue[1:]
		defer f.stop()
		var err error
		select {
		case err = <-f.reply:
			// Here already: it counts, however long reading the chunks
			// sent since took (a timer run out meanwhile would race it).
		default:
			wait := time.NewTimer(time.Until(f.at.Add(t.snapshotProgress())))
			defer wait.Stop()
			select {
			case err = <-f.reply:
			case <-wait.C:
				return fmt.Errorf("%w: no acknowledgement within %v", ErrUnreachable, t.snapshotProgress())
			case <-t.shutdown:
				return ErrClosed
			}
		}
		if err != nil {
			return err
		}
		sent += int64(f.n)
		spare = append(spare, f.frame)
		return nil
	}
	for {
		if len(queue) == snapWindow {
			if err := land(); err != nil {
				return sent, err
			}
		}
		var frame []byte
		if k := len(spare); k > 0 {
			frame, spare = spare[k-1], spare[:k-1]
		} else {
			frame = make([]byte, size, size+sealOverhead)
		}
		n, rerr := io.ReadFull(data, frame[headerLen+snapChunkHead:])
		if n > 0 {
			frame[headerLen] = kindSnapChunk
			binary.BigEndian.PutUint64(frame[headerLen+1:], id)
			f := &flight{frame: frame, n: n, at: time.Now(), reply: make(chan error, 1)}
			t.metrics.sent(snapChunkHead + n)
			f.stop, err = t.net.call(t.ctx, t.sc, t.subject("snap", p), p, frame[:headerLen+snapChunkHead+n], true, func(b []byte, err error) {
				t.metrics.received(b, err)
				if err == nil {
					_, err = parseReply(b)
				}
				select {
				case f.reply <- err:
				default:
				}
			})
			if err != nil {
				if t.ctx.Err() != nil {
					err = ErrClosed
				}
				return sent, err
			}
			queue = append(queue, f)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return sent, fmt.Errorf("transport: read snapshot: %w", rerr)
		}
	}
	for len(queue) > 0 {
		if err := land(); err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// onHeartbeat handles the heartbeat subject: the fast path Raft offers.
func (t *RaftTransport) onHeartbeat(m *Msg) {
	t.metrics.received(m.Data, nil)
	if !t.allowed(m) {
		return
	}
	if len(m.Data) < 1 || m.Data[0] != kindAppend {
		t.net.stats.malformed.Add(1)
		return
	}
	req, err := decodeAppend(m.Data[1:])
	if err != nil {
		t.net.stats.malformed.Add(1)
		return
	}
	t.hbMu.Lock()
	fn, fast := t.hbFn, t.hbFastFn
	t.hbMu.Unlock()
	if err := checkRPC(m.From, req); err != nil {
		t.malformed(m, err)
		return
	}
	respCh := make(chan raft.RPCResponse, 1)
	rpc := raft.RPC{Command: req, RespChan: respCh}
	if fn != nil && isHeartbeat(req) && (fast == nil || fast(req.Term)) {
		fn(rpc)
	} else if !t.dispatch(rpc) {
		return
	}
	if r, ok := t.await(respCh); ok {
		t.respond(m, r)
	}
}

// onRPC handles every other RPC, one at a time in arrival order.
func (t *RaftTransport) onRPC(m *Msg) {
	t.metrics.received(m.Data, nil)
	if !t.allowed(m) {
		return
	}
	if len(m.Data) < 1 || !m.ExpectsReply() {
		t.net.stats.malformed.Add(1)
		return
	}
	switch m.Data[0] {
	case kindSnapBegin, kindSnapChunk, kindSnapEnd:
		t.onSnapshot(m)
		return
	}
	cmd, err := decodeRPC(m.Data[0], m.Data[1:])
	if err != nil {
		t.malformed(m, err)
		return
	}
	if err := checkRPC(m.From, cmd); err != nil {
		t.malformed(m, err)
		return
	}
	respCh := make(chan raft.RPCResponse, 1)
	if !t.dispatch(raft.RPC{Command: cmd, RespChan: respCh}) {
		return
	}
	if r, ok := t.await(respCh); ok {
		t.respond(m, r)
		t.selfCommit(m.From, cmd, r) // after the answer, never delaying it
	}
}

func (t *RaftTransport) malformed(m *Msg, err error) {
	t.net.stats.malformed.Add(1)
	_ = m.Respond(errorReply(fmt.Errorf("malformed rpc: %w", err)))
}

// dispatch hands an RPC to Raft; false means the transport closed first.
func (t *RaftTransport) dispatch(rpc raft.RPC) bool {
	select {
	case t.consumer <- rpc:
		return true
	case <-t.shutdown:
		return false
	case <-t.net.done:
		return false
	}
}

// await waits for Raft's answer to an RPC dispatched to it; false means
// the transport closed first.
func (t *RaftTransport) await(respCh <-chan raft.RPCResponse) (raft.RPCResponse, bool) {
	select {
	case r := <-respCh:
		return r, true
	case <-t.shutdown:
	case <-t.net.done:
	}
	return raft.RPCResponse{}, false
}

// respond sends Raft's answer r to the RPC m carried.
func (t *RaftTransport) respond(m *Msg, r raft.RPCResponse) {
	if r.Error != nil {
		_ = m.Respond(errorReply(r.Error))
		return
	}
	var (
		b   []byte
		err error
	)
	if ar, ok := r.Response.(*raft.AppendEntriesResponse); ok {
		b, err = encodeAppendResp(ar)
	} else {
		b, err = marshal(replyOK, r.Response)
	}
	if err != nil {
		_ = m.Respond(errorReply(err))
		return
	}
	t.metrics.sent(len(b))
	_ = m.Respond(b)
}

// Incoming snapshot transfers are bounded: one per sender (a new begin
// replaces the sender's open transfer), a few in total, and their declared
// sizes together. Small snapshots are kept in memory, larger ones in a
// temporary file.
const (
	maxSnapTransfers      = 4
	snapMemMax            = 1 << 20
	defaultSnapBytesLimit = 16 << 30
)

// snapRecv is a snapshot being received. Raft sees it only once all of it
// arrived: a sender that stalls never holds Raft's main loop, and is never
// taken for a leader on the strength of a begin alone.
//
// The map in RaftTransport owns a snapRecv until its end arrives (ending),
// then the goroutine that hands it to Raft does; whoever drops it releases
// what it holds. The begin that admitted it holds mu until it made the
// transfer's buffer or file and armed its timer: whoever finds it in the
// map meanwhile waits for that.
type snapRecv struct {
	id     uint64
	req    *raft.InstallSnapshotRequest
	ending bool // guarded by RaftTransport.snapMu: its end arrived

	mu     sync.Mutex  // guards what follows: chunks write, a timeout or Close release
	timer  *time.Timer // drops the transfer when no chunk comes in time
	buf    []byte
	file   *os.File
	n      int64
	closed bool
}

var errSnapshotDropped = errors.New("transport: snapshot transfer dropped")

// write spools p and gives the sender idle more for its next chunk,
// counted from when p is written: a slow disk is not the sender's delay.
func (s *snapRecv) write(p []byte, idle time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errSnapshotDropped
	}
	if int64(len(p)) > s.req.Size-s.n {
		return fmt.Errorf("snapshot exceeds the %d bytes its begin declared", s.req.Size)
	}
	s.timer.Stop()
	if s.file != nil {
		if _, err := s.file.Write(p); err != nil {
			return fmt.Errorf("transport: spool snapshot: %w", err)
		}
	} else {
		s.buf = append(s.buf, p...)
	}
	s.n += int64(len(p))
	s.timer.Reset(idle)
	return nil
}

// stopTimer stops the transfer's timer: its end arrived.
func (s *snapRecv) stopTimer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
}

// reader returns the whole snapshot for Raft to read, or why it is not
// whole.
func (s *snapRecv) reader() (io.Reader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, errSnapshotDropped
	case s.n != s.req.Size:
		return nil, fmt.Errorf("snapshot ended after %d of the %d bytes its begin declared", s.n, s.req.Size)
	case s.file == nil:
		return bytes.NewReader(s.buf), nil
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("transport: spooled snapshot: %w", err)
	}
	return bufio.NewReaderSize(s.file, 256<<10), nil
}

// release frees what the transfer holds; it is idempotent.
func (s *snapRecv) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.closed {
		return
	}
	s.closed = true
	s.buf = nil
	if s.file != nil {
		_ = s.file.Close()
		_ = os.Remove(s.file.Name())
	}
}

// snapshotProgress is how long a sender waits for a chunk's ack: chunks
// are acknowledged once spooled, without waiting for Raft.
func (t *RaftTransport) snapshotProgress() time.Duration { return max(3*t.timeout, time.Second) }

// snapshotIdle is how long a transfer may go without a chunk before the
// receiver drops it: longer than the sender waits for an ack by an RPC
// timeout, so a chunk that comes just in time for the sender is not
// refused as expired.
func (t *RaftTransport) snapshotIdle() time.Duration { return t.snapshotProgress() + t.timeout }

// openSnapshots is how many transfers the receiver holds.
func (t *RaftTransport) openSnapshots() int {
	t.snapMu.Lock()
	defer t.snapMu.Unlock()
	return len(t.snaps)
}

func (t *RaftTransport) onSnapshot(m *Msg) {
	body := m.Data[1:]
	if m.Data[0] == kindSnapBegin {
		t.onSnapBegin(m, body)
		return
	}
	if len(body) < snapChunkHead-1 {
		t.malformed(m, errors.New("snapshot chunk shorter than its header"))
		return
	}
	id := binary.BigEndian.Uint64(body)
	t.snapMu.Lock()
	s := t.snaps[m.From]
	if s == nil || s.id != id || s.ending || t.ctx.Err() != nil {
		t.snapMu.Unlock()
		_ = m.Respond(errorReply(errors.New("snapshot transfer unknown or expired")))
		return
	}
	if m.Data[0] == kindSnapEnd {
		s.ending = true
		s.stopTimer()
		t.wg.Add(1)
		t.snapMu.Unlock()
		// Raft may take a while to read and restore it: the snapshot
		// subject goes on with other senders' chunks meanwhile.
		go func() {
			defer t.wg.Done()
			resp, ok, err := t.install(m, s)
			// Forget the transfer before answering: the sender may begin
			// its next one as soon as it has the answer.
			t.finishSnap(m.From, s, err)
			if ok {
				t.respond(m, resp)
			}
		}()
		return
	}
	t.snapMu.Unlock()
	chunk := body[snapChunkHead-1:]
	if err := s.write(chunk, t.snapshotIdle()); err != nil {
		t.dropSnap(m.From, s, err)
		_ = m.Respond(errorReply(err))
		return
	}
	t.metrics.snapshotChunk(len(chunk))
	_ = m.Respond([]byte{replyOK})
}

func (t *RaftTransport) onSnapBegin(m *Msg, body []byte) {
	b, err := decodeSnapBegin(body)
	if err != nil {
		t.malformed(m, err)
		return
	}
	if err := checkRPC(m.From, b.Request); err != nil {
		t.malformed(m, fmt.Errorf("snapshot begin: %w", err))
		return
	}
	// Admit the transfer before making anything for it: a begin refused
	// for a bound costs no file, buffer or timer.
	from := m.From
	s := &snapRecv{id: b.ID, req: b.Request}
	s.mu.Lock() // until s is ready; nobody else has s before it is in the map
	t.snapMu.Lock()
	old := t.snaps[from]
	dir := t.snapDir
	switch {
	case t.ctx.Err() != nil:
		err = ErrClosed
	case old != nil && old.ending:
		err = errors.New("transport: the sender's previous snapshot is still being installed")
	default:
		if old != nil {
			delete(t.snaps, from)
			t.snapBytes -= old.req.Size
		}
		if len(t.snaps) >= maxSnapTransfers {
			err = fmt.Errorf("transport: %d snapshot transfers open already", len(t.snaps))
		} else if b.Request.Size > t.snapBytesLimit-t.snapBytes {
			err = fmt.Errorf("transport: a snapshot of %d bytes exceeds the %d bytes left for transfers", b.Request.Size, t.snapBytesLimit-t.snapBytes)
		} else {
			t.snaps[from] = s
			t.snapBytes += b.Request.Size
		}
	}
	t.snapMu.Unlock()
	if old != nil && !old.ending {
		old.release()
		t.metrics.snapshotReceived(errors.New("replaced"))
	}
	if err != nil {
		s.closed = true
		s.mu.Unlock()
		t.net.stats.rejected.Add(1)
		_ = m.Respond(errorReply(err))
		return
	}
	if b.Request.Size > snapMemMax {
		s.file, err = os.CreateTemp(dir, "mosaik-snapshot-*")
	} else {
		s.buf = make([]byte, 0, b.Request.Size)
	}
	// Armed once s is in the map, so that it finds s there.
	s.timer = time.AfterFunc(t.snapshotIdle(), func() {
		if !t.track() {
			return // Close dropped the transfer
		}
		defer t.wg.Done()
		t.dropSnap(from, s, errors.New("transport: snapshot sender went quiet"))
	})
	s.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("transport: spool snapshot: %w", err)
		t.dropSnap(from, s, err)
		_ = m.Respond(errorReply(err))
		return
	}
	_ = m.Respond([]byte{replyOK})
}

// install hands a whole snapshot to Raft and returns its answer to the end,
// for the caller to send once it forgot the transfer; ok is false when
// there is none to send (the end was answered already, or the transport
// closed).
func (t *RaftTransport) install(m *Msg, s *snapRecv) (resp raft.RPCResponse, ok bool, err error) {
	r, err := s.reader()
	if err != nil {
		t.malformed(m, err)
		return resp, false, err
	}
	respCh := make(chan raft.RPCResponse, 1)
	if !t.dispatch(raft.RPC{Command: s.req, Reader: r, RespChan: respCh}) {
		return resp, false, ErrClosed
	}
	if resp, ok = t.await(respCh); !ok {
		return resp, false, ErrClosed
	}
	return resp, true, resp.Error
}

// finishSnap forgets a transfer whose end was handled.
func (t *RaftTransport) finishSnap(from PeerID, s *snapRecv, err error) {
	t.snapMu.Lock()
	if t.snaps[from] == s {
		delete(t.snaps, from)
		t.snapBytes -= s.req.Size
	}
	t.snapMu.Unlock()
	s.release()
	t.metrics.snapshotReceived(err)
}

// dropSnap forgets a transfer before its end, unless it ended meanwhile.
func (t *RaftTransport) dropSnap(from PeerID, s *snapRecv, err error) {
	t.snapMu.Lock()
	if t.snaps[from] != s || s.ending {
		t.snapMu.Unlock()
		return
	}
	delete(t.snaps, from)
	t.snapBytes -= s.req.Size
	t.snapMu.Unlock()
	s.release()
	t.metrics.snapshotReceived(err)
}

// AppendEntriesPipeline implements raft.Transport.
func (t *RaftTransport) AppendEntriesPipeline(_ raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := ParsePeerID(string(target))
	if err != nil {
		return nil, err
	}
	pl := &pipeline{
		t:        t,
		target:   p,
		subject:  t.subject("raft", p),
		inflight: make(chan *appendFuture, 128),
		consumer: make(chan raft.AppendFuture, 128),
		answered: make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if !t.track() {
		return nil, ErrClosed
	}
	go func() {
		defer t.wg.Done()
		pl.run()
	}()
	return pl, nil
}

// pipeline sends AppendEntries without waiting and hands the answers to Raft
// in the order the requests went out. A request without an answer within the
// timeout fails, and Raft then closes the pipeline. So does one whose answer
// was lost: the follower answers in order and NATS keeps one sender's
// order, so once a later request is answered, an earlier one never will be
// (it, or its answer, went down with a server or was dropped), and waiting
// for it would hold back every answer behind it for the timeout.
type pipeline struct {
	t        *RaftTransport
	target   PeerID
	subject  string
	inflight chan *appendFuture
	consumer chan raft.AppendFuture
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once

	sent     uint64        // futures numbered; only AppendEntries (Raft's one caller) touches it
	latest   atomic.Uint64 // the highest numbered future an answer came for
	answered chan struct{} // wakes run when latest grows
}

func (p *pipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	select {
	case <-p.stop:
		return nil, raft.ErrPipelineShutdown
	case <-p.t.shutdown:
		return nil, raft.ErrPipelineShutdown
	default:
	}
	p.sent++
	f := &appendFuture{seq: p.sent, start: time.Now(), args: args, resp: resp, parts: 1, done: make(chan struct{})}
	var err error
	if parts := splitAppend(args, p.t.appendBudget); parts == nil {
		// The common case, and every heartbeat: one request, allocating
		// no more than it must.
		var data []byte
		if data, err = encodeAppend(args); err == nil {
			f.cancel, err = p.send(args, data, f, nil, 0)
		}
	} else {
		f.parts = len(parts)
		f.cancel, err = p.sendParts(f, parts)
	}
	if err != nil {
		return nil, err
	}
	if len(args.Entries) > 0 {
		p.t.sentTo(p.target, args)
	}
	select {
	case p.inflight <- f:
		// Close may have drained inflight just before f went in, and no
		// one would settle it: settle it here.
		select {
		case <-p.stop:
			f.cancel()
			f.complete(raft.ErrPipelineShutdown)
		case <-p.t.shutdown:
			f.cancel()
			f.complete(raft.ErrPipelineShutdown)
		default:
		}
		return f, nil
	case <-p.stop:
		f.cancel()
		return nil, raft.ErrPipelineShutdown
	case <-p.t.shutdown:
		f.cancel()
		return nil, raft.ErrPipelineShutdown
	}
}

// send sends args, encoded as data, and settles f with its answer or, for
// part i of a split request, res.
func (p *pipeline) send(args *raft.AppendEntriesRequest, data []byte, f *appendFuture, res *partResults, i int) (cancel func(), err error) {
	p.t.metrics.sent(len(data))
	return p.t.sc.Call(p.subject, p.target, data, func(b []byte, err error) {
		p.t.metrics.received(b, err)
		if err == nil {
			p.answer(f.seq)
		}
		var r raft.AppendEntriesResponse
		if err == nil {
			b, err = parseReply(b)
		}
		if err == nil {
			err = decodeAppendResp(b, &r)
		}
		if err == nil {
			p.t.appended(raft.ServerAddress(p.target.String()), args, &r)
		}
		if res != nil {
			res.settle(i, &r, err)
		} else {
			f.completeWith(&r, err)
		}
	})
}

// sendParts sends the parts of a split request back to back, in order, on
// one subject (the follower handles them in that order), and settles f
// once they are answered (see partResults).
func (p *pipeline) sendParts(f *appendFuture, parts []*raft.AppendEntriesRequest) (cancel func(), err error) {
	data := make([][]byte, len(parts))
	for i, part := range parts {
		if data[i], err = encodeAppend(part); err != nil {
			return nil, err
		}
	}
	res := &partResults{f: f, resps: make([]*raft.AppendEntriesResponse, len(parts)), errs: make([]error, len(parts)), settled: make([]bool, len(parts))}
	cancels := make([]func(), 0, len(parts))
	cancel = func() {
		for _, c := range cancels {
			c()
		}
	}
	for i, part := range parts {
		c, err := p.send(part, data[i], f, res, i)
		if err != nil {
			cancel()
			return nil, err
		}
		cancels = append(cancels, c)
	}
	return cancel, nil
}

func (p *pipeline) run() {
	defer close(p.done)
	defer p.drain()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var f *appendFuture
		select {
		case f = <-p.inflight:
		case <-p.stop:
			return
		case <-p.t.shutdown:
			return
		}
		// Each part of a split request has the time of one request.
		timer.Reset(time.Until(f.start.Add(time.Duration(f.parts) * p.t.timeout)))
	wait:
		for {
			if p.latest.Load() > f.seq {
				f.complete(fmt.Errorf("%w: the answer of an append entries to %s was lost (a later one was answered)", ErrUnreachable, p.target.Short()))
			}
			select {
			case <-f.done:
				break wait
			case <-p.answered:
			case <-timer.C:
				f.complete(fmt.Errorf("%w: append entries to %s timed out", ErrUnreachable, p.target.Short()))
			case <-p.stop:
				f.cancel()
				f.complete(raft.ErrPipelineShutdown)
				return
			case <-p.t.shutdown:
				f.cancel()
				f.complete(raft.ErrPipelineShutdown)
				return
			}
		}
		f.cancel()
		select {
		case p.consumer <- f:
		case <-p.stop:
			return
		case <-p.t.shutdown:
			return
		}
	}
}

// answer records that an answer came for future seq.
func (p *pipeline) answer(seq uint64) {
	for {
		cur := p.latest.Load()
		if seq <= cur || p.latest.CompareAndSwap(cur, seq) {
			break
		}
	}
	select {
	case p.answered <- struct{}{}:
	default:
	}
}

func (p *pipeline) drain() {
	for {
		select {
		case f := <-p.inflight:
			f.cancel()
			f.complete(raft.ErrPipelineShutdown)
		default:
			return
		}
	}
}

func (p *pipeline) Consumer() <-chan raft.AppendFuture { return p.consumer }

func (p *pipeline) Close() error {
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		p.drain()
	})
	return nil
}

type appendFuture struct {
	seq    uint64 // numbered by its pipeline, from 1
	start  time.Time
	parts  int // the requests args went as
	args   *raft.AppendEntriesRequest
	resp   *raft.AppendEntriesResponse
	cancel func()
	once   sync.Once
	err    error
	done   chan struct{}
}

func (f *appendFuture) complete(err error) { f.completeWith(nil, err) }

// completeWith settles the future once; the response is copied in only
// then, so a late answer never writes to what Raft may be reading.
func (f *appendFuture) completeWith(r *raft.AppendEntriesResponse, err error) {
	f.once.Do(func() {
		if err == nil && r != nil {
			*f.resp = *r
		}
		f.err = err
		close(f.done)
	})
}

// partResults settles the future of a request sent in parts: with the
// first part, in order, that failed or was refused, or else with the last.
type partResults struct {
	f       *appendFuture
	mu      sync.Mutex
	resps   []*raft.AppendEntriesResponse
	errs    []error
	settled []bool
}

func (r *partResults) settle(i int, resp *raft.AppendEntriesResponse, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resps[i], r.errs[i], r.settled[i] = resp, err, true
	for j := range r.settled {
		switch {
		case !r.settled[j]:
			return
		case r.errs[j] != nil || !r.resps[j].Success || j == len(r.settled)-1:
			r.f.completeWith(r.resps[j], r.errs[j])
			return
		}
	}
}

func (f *appendFuture) Error() error {
	<-f.done
	return f.err
}

func (f *appendFuture) Start() time.Time                      { return f.start }
func (f *appendFuture) Request() *raft.AppendEntriesRequest   { return f.args }
func (f *appendFuture) Response() *raft.AppendEntriesResponse { return f.resp }
