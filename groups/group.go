package groups

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/internal/replica"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/storage"
	"github.com/mosaik-go/mosaik/transport"
)

// Limits. Over them a call fails with ErrTooLarge before anything is sent.
// The leader checks every batch it is handed against them too, and refuses
// one over them with ErrTooLarge, so a member that skips these checks gets
// nothing over them into the log.
const (
	// MaxCommandSize is the largest encoded command.
	MaxCommandSize = rsm.MaxCommandSize
	// MaxBatchCommands is the most commands ExecuteMany or ExecuteApplied take,
	// and the most the group puts in one log entry.
	MaxBatchCommands = replica.MaxEntryCommands
	// MaxBatchSize is the largest encoded batch of commands.
	MaxBatchSize = replica.MaxEntryBytes
)

// Group is this node's membership in a Raft group replicating a machine of
// type StateMachine[C, Q, R]. It is safe for concurrent use. Create it with
// Join; stop it with Close or Leave.
type Group[C, Q, R any] struct {
	*core
	fsm *replica.Machine[C, Q, R]
}

// core is everything that does not depend on the machine's types. Its
// state is split by owner: the fields here are set by Join and read-only
// after it, and each embedded part says what it owns, which goroutine
// changes it, and who may read it.
type core struct {
	net     *transport.Network
	scope   *transport.Scope // every message of the group goes through it
	id      ID
	self    transport.PeerID
	cfg     Config
	log     *slog.Logger
	fsm     *replica.FSM // the machine's adapter; safe for concurrent use
	when    *When
	futures *futures
	started time.Time
	metrics *groupMetrics // nil without a registry
	refused refusals      // what hostile or broken input cost; counted, logged once per interval
	sub     *submitter    // this member's session; its own goroutine (submitter.run)
	// unsent counts the applied outcomes this member, as leader, did not
	// send to a follower that answers them at its own apply (runCompleter).
	unsent atomic.Uint64

	raftLife
	membership
	leading
	divergence
	lifecycle

	selfVotersCache // the voters the self-commit policy last read (see latestVoters)
}

// raftLife is Raft and what it runs on. start sets it up; afterwards only
// Recover replaces Raft (under lifeMu), and stop shuts it down (under
// lifeMu). Anyone may load raft; raftReady says it is set.
type raftLife struct {
	raft      atomic.Pointer[raft.Raft]
	raftReady atomic.Bool // raft is set: RPCs may be checked against its configuration
	trans     *transport.RaftTransport
	stores    storage.Stores
	// What Raft is started with, kept for Recover, which starts it again.
	raftFSM   raft.BatchingFSM
	compactor *compactor // nil for a machine that cannot snapshot
	raftTrans raft.Transport
	lifeMu    sync.Mutex
	notifyCh  chan bool // leadership changes, read by runLeadership
	obsCh     chan raft.Observation
	observer  *raft.Observer
}

// membership is what this member knows of the others and tells them
// (membership.go, identity.go). runMembership owns the fields it marks;
// runAnnounce sends announcements (announceMu orders them with the ones
// sent at once); the subscriptions' handlers update peers under peersMu.
type membership struct {
	annSubj string
	annSub  *transport.Subscription
	ctlSub  *transport.Subscription

	// What went into the id, told under the key (identity.go).
	ident       identity
	identScope  *transport.Scope
	identSubj   string
	identSub    *transport.Subscription
	identifyNow atomic.Bool // heard a member of another group: tell ours
	mismatch    mismatches

	peersMu sync.Mutex
	peers   map[transport.PeerID]*peerState

	announceNow chan struct{}
	// reconcileNow wakes a leader's runMembership when a newcomer
	// announces (at most one pass per Config.reactInterval).
	reconcileNow chan struct{}
	announceMu   sync.Mutex
	hasState     atomic.Bool
	foreignAt    atomic.Int64 // when announcements that did not open last came, in Unix nanoseconds

	// Owned by the membership goroutine (runMembership).
	foreignSeen  uint64    // announcement frames that did not open, as last counted
	identifiedAt time.Time // when this member last told its identity
	foreignLog   sync.Once
	ticketLog    sync.Once
	ownTicket    time.Time // when this member's own ticket expires; zero if it has none that holds

	splitMu sync.Mutex
	split   transport.PeerID // a member of another cluster of this group
}

// leading is the leader's side (leader.go). runLeadership sets lead (under
// leadMu) when this member becomes a ready leader; runAppender alone
// appends (appendCh), runCompleter alone answers, in log order
// (completeCh); readSem bounds the read-index requests served at once.
type leading struct {
	leadMu     sync.Mutex
	lead       *leadership // set while this member leads and is ready
	appendCh   chan submission
	completeCh chan completion
	readSem    chan struct{} // a token per read-index request served (maxReadIndexInflight)

	// Configuration changes this member started (written under cfgMu),
	// and those Raft has not answered yet (under cfgMu): a leader skips the
	// heartbeat round of a read index only while it knows the configuration
	// a newer leader would hold (see quickRead).
	cfgMu      sync.Mutex
	cfgStarted atomic.Uint64
	cfgPending int
	quickReads atomic.Uint64 // read indexes handed out without a heartbeat round
}

// divergence records that the leader replaced entries this member applied
// (diverge.go); set by the log guard, read by status.
type divergence struct {
	// divergedAt is the first log index the leader's history replaced
	// after this member applied it (see guardLog); zero while it has not.
	divergedAt    atomic.Uint64
	divergeLogged atomic.Int64 // when the divergence was last logged, Unix nanoseconds
	// storageErr is why this member's storage failed under Raft, which
	// stopped it (see storageFailed); nil while it works.
	storageErr atomic.Pointer[error]
}

// lifecycle is how the member's goroutines end: closing is closed once, by
// stop; every goroutine started with goFunc is counted in wg.
type lifecycle struct {
	leaving   atomic.Bool
	closing   chan struct{}
	netWatch  chan struct{}   // closed when the network watcher exits
	baseCtx   context.Context // cancelled when the member stops
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error // set by stop, under closeOnce: read after Do returns
}

// Join makes this node a member of the group named by key, replicating sm.
// It returns at once; use When().Online to wait until the group is usable.
// sm must be a fresh machine: the group owns it from now on.
func Join[C, Q, R any](net *transport.Network, key Key, sm rsm.StateMachine[C, Q, R], cfg *Config) (*Group[C, Q, R], error) {
	if net == nil {
		return nil, errors.New("groups: Join: nil network")
	}
	if sm == nil {
		return nil, errors.New("groups: Join: nil state machine")
	}
	if err := checkReplier[C](sm); err != nil {
		return nil, err
	}
	select {
	case <-net.Done():
		return nil, ErrClosed
	default:
	}
	ownLogger := cfg != nil && cfg.Logger != nil
	rc, err := cfg.resolve(net.Logger())
	if err != nil {
		return nil, err
	}
	if err := sameNode(rc.Storage, net.ID()); err != nil {
		return nil, err
	}
	id := deriveID(key, sm.Signature(), &rc)
	identScope := identityScope(key)
	c := &core{
		net:     net,
		scope:   net.Scope(id, rc.Secret),
		id:      id,
		self:    net.ID(),
		cfg:     rc,
		log:     groupLogger(rc.Logger, ownLogger, id, net.ID()),
		started: time.Now(),
		futures: newFutures(),
		raftLife: raftLife{
			notifyCh: make(chan bool, 64),
			obsCh:    make(chan raft.Observation, 256),
		},
		membership: membership{
			annSubj:      net.Subject("ann", id.String()),
			ident:        newIdentity(id, sm.Signature(), &rc),
			identScope:   net.Scope(identScope, rc.Secret),
			identSubj:    net.Subject("ident", hex.EncodeToString(identScope[:])),
			peers:        map[transport.PeerID]*peerState{},
			announceNow:  make(chan struct{}, 1),
			reconcileNow: make(chan struct{}, 1),
		},
		leading: leading{
			appendCh:   make(chan submission, 1024),
			completeCh: make(chan completion, 4096),
			readSem:    make(chan struct{}, maxReadIndexInflight),
		},
		lifecycle: lifecycle{closing: make(chan struct{})},
	}
	if rc.Tickets != nil {
		if exp, err := rc.Tickets.check(rc.Ticket, c.self); err == nil {
			c.ownTicket = exp
		}
	}
	c.baseCtx, c.cancel = context.WithCancel(context.Background())
	if c.sub, err = newSubmitter(c); err != nil {
		return nil, err
	}
	c.when = newWhen(c.self, nil)
	c.when.explain = c.whyNotOnline
	fsm := replica.New(sm, func() {
		c.sub.applied() // first: the callers waiting on it
		c.when.applied.broadcast()
	})
	c.when.index = fsm.Applied
	c.when.readIndex = c.readIndex
	c.fsm = fsm.FSM
	g := &Group[C, Q, R]{core: c, fsm: fsm}
	if err := c.start(fsm.FSM); err != nil {
		return nil, err
	}
	return g, nil
}

// sameNode refuses durable storage that keeps another node's key: the log
// in it names that node as a member, so this one would wait for itself to
// be added and never come online.
func sameNode(p storage.Provider, self transport.PeerID) error {
	keeper, ok := p.(interface{ NodeID() [32]byte })
	if !ok {
		return nil
	}
	if owner := transport.PeerID(keeper.NodeID()); owner != self {
		return fmt.Errorf("groups: Join: the storage belongs to node %s, but this network is node %s: "+
			"open the network with transport.WithIdentity(transport.IdentityFromSeed(db.NodeKey()))", owner.Short(), self.Short())
	}
	return nil
}

// checkReplier refuses a machine with an ApplyReply method that does not
// make it an rsm.Replier (one that returns its own type rather than any):
// the group would call Apply instead and its answers would be lost without
// a word.
func checkReplier[C any](sm any) error {
	if _, ok := sm.(rsm.Replier[C]); ok {
		return nil
	}
	if m, ok := reflect.TypeOf(sm).MethodByName("ApplyReply"); ok {
		return fmt.Errorf("groups: Join: %T has ApplyReply %v, which is not rsm.Replier's func(%s, rsm.ApplyContext) any; its answers would be lost",
			sm, m.Type, reflect.TypeFor[C]())
	}
	return nil
}

// groupLogger names the group in every line, and this member too unless the
// logger is the network's, which names it already ("self"): "peer" is left
// for the other member a line is about.
func groupLogger(l *slog.Logger, own bool, id ID, self transport.PeerID) *slog.Logger {
	if own {
		return l.With("group", id.Short(), "self", self.Short())
	}
	return l.With("group", id.Short())
}

func (c *core) raftConfig(canSnapshot bool) *raft.Config {
	f := time.Duration(c.cfg.Preference.Factor())
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.self.String())
	// Raft draws a follower's wait for a leader (its HeartbeatTimeout) and
	// a candidate's wait for votes (its ElectionTimeout) at random between
	// the setting and twice it: at half of ours, a follower calls an
	// election at most ElectionTimeout after it last heard a leader.
	rc.HeartbeatTimeout = c.cfg.ElectionTimeout * f / 2
	rc.ElectionTimeout = c.cfg.ElectionTimeout * f / 2
	rc.LeaderLeaseTimeout = rc.HeartbeatTimeout
	rc.CommitTimeout = min(max(c.cfg.HeartbeatInterval/2, 5*time.Millisecond), 50*time.Millisecond)
	rc.MaxAppendEntries = 256
	rc.BatchApplyCh = false
	rc.ShutdownOnRemove = false
	rc.NotifyCh = c.notifyCh
	rc.NoLegacyTelemetry = true
	rc.Logger = raftLogger(c.log)
	rc.TrailingLogs = c.cfg.TrailingLogs
	rc.SnapshotThreshold = c.cfg.SnapshotThreshold
	rc.SnapshotInterval = c.cfg.SnapshotInterval
	if !canSnapshot {
		// Log replay only: never compact.
		rc.SnapshotThreshold = math.MaxUint64
		rc.SnapshotInterval = 24 * time.Hour
	}
	return rc
}

func (c *core) start(fsm raft.BatchingFSM) error {
	stores, err := c.cfg.Storage.Stores(c.id)
	if err != nil {
		return fmt.Errorf("groups: storage: %w", err)
	}
	c.stores = stores
	fail := func(err error) error {
		c.metrics.close()
		if c.stores.Release != nil {
			_ = c.stores.Release()
		}
		return err
	}
	hasState, err := raft.HasExistingState(stores.Log, stores.Stable, stores.Snapshots)
	if err != nil {
		return fail(fmt.Errorf("groups: read stored state: %w", err))
	}
	c.hasState.Store(hasState)
	// Raft panics at start on a stored entry it cannot read or decode, or
	// one missing after the snapshot it restores. The Pebble store checked
	// that in Stores; check any other store here.
	if _, checked := stores.Log.(storage.ConfigurationChecker); hasState && !checked {
		if err := checkStoredConfigurations(c.id, stores.Log, stores.Snapshots); err != nil {
			return fail(err)
		}
	}

	c.stores.Log = guardLog{LogStore: stores.Log, c: c}
	stores = c.stores

	rpcTimeout := max(2*c.cfg.ElectionTimeout*time.Duration(c.cfg.Preference.Factor()), 500*time.Millisecond)
	trans, err := transport.NewRaftTransport(c.scope, rpcTimeout)
	if err != nil {
		return fail(err)
	}
	c.trans = trans
	trans.SetAllow(c.allowRaft)
	trans.SetSelfCommit(c.selfCommitAllowed)
	// Raft stores a newer term on its main loop, where a failure to store
	// it can end that goroutine rather than the process (storagefail.go).
	trans.SetHeartbeatFast(c.heartbeatFast)
	// A lost heartbeat must not hold back the next ones past a
	// follower's election timeout (Raft's HeartbeatTimeout).
	trans.SetHeartbeatTimeout(c.cfg.ElectionTimeout * time.Duration(c.cfg.Preference.Factor()) / 4)
	c.metrics = newGroupMetrics(c)
	if c.fsm.CanSnapshot() {
		c.compactor = newCompactor(c)
		fsm = compactingFSM{BatchingFSM: fsm, k: c.compactor}
	}
	c.raftFSM = c.metrics.wrap(fsm)
	c.raftTrans = keepOpen{trans}
	r, err := raft.NewRaft(c.raftConfig(c.fsm.CanSnapshot()), c.raftFSM, raftLogStore{stores.Log, c}, newRaftStableStore(stores.Stable, c), stores.Snapshots, c.raftTrans)
	if err != nil {
		_ = trans.Close()
		return fail(fmt.Errorf("groups: start raft: %w", err))
	}
	c.raft.Store(r)
	c.raftReady.Store(true)
	c.observer = raft.NewObserver(c.obsCh, false, func(o *raft.Observation) bool {
		c.metrics.observe(o)
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.PeerObservation, raft.ResumedHeartbeatObservation:
			return true
		}
		return false
	})
	r.RegisterObserver(c.observer)

	if c.annSub, err = c.scope.Subscribe(c.annSubj, c.onAnnouncement); err == nil {
		c.ctlSub, err = c.scope.Subscribe(c.ctlSubject(c.self), c.onControl)
	}
	if err == nil {
		c.identSub, err = c.identScope.Subscribe(c.identSubj, c.onIdentity)
	}
	if err != nil {
		for _, s := range []*transport.Subscription{c.annSub, c.ctlSub} {
			if s != nil {
				s.Close()
			}
		}
		if serr := c.shutdownRaft(); serr != nil {
			c.log.Warn("groups: join failed, and so did stopping raft", "err", serr)
		}
		_ = trans.Close()
		return fail(err)
	}
	c.identifiedAt = time.Now()
	c.identify()
	c.metrics.start()
	c.goFunc(c.runLeadership)
	if c.compactor != nil {
		c.goFunc(c.compactor.run)
	}
	c.goFunc(c.runStatus)
	c.goFunc(c.runAnnounce)
	c.goFunc(c.runMembership)
	c.goFunc(c.runAppender)
	c.goFunc(c.runCompleter)
	c.goFunc(c.sub.run)
	// A member whose network closes stops as if closed. The watcher is not
	// in wg: it may itself run the stop, which waits for wg.
	c.netWatch = make(chan struct{})
	go func() {
		defer close(c.netWatch)
		select {
		case <-c.net.Done():
			c.closeOnce.Do(c.stop)
		case <-c.closing:
		}
	}()
	c.register()
	if !c.scope.Sealed() {
		openOnce.Do(func() {
			c.log.Warn("groups: this group has no secret: anyone on the NATS server can join it, read what it broadcasts and vote in it once added; " +
				"set groups.Config.Secret, collections.WithSecret or transport.WithSecret")
		})
	}
	c.log.Debug("groups: joined", "has_state", hasState, "preference", c.cfg.Preference, "sealed", c.scope.Sealed())
	return nil
}

// openOnce makes the warning about open groups appear once per process.
var openOnce sync.Once

func (c *core) goFunc(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

func (c *core) ctlSubject(p transport.PeerID) string {
	return c.net.Subject("ctl", c.id.String(), p.String())
}

func (c *core) ctx() context.Context { return c.baseCtx }

// isClosing reports whether the member is closing or its network closed.
// The member stops on its own soon after its network closes, but a
// single-voter group could still commit a write in between: a caller that
// closed the network must not see one succeed.
func (c *core) isClosing() bool {
	select {
	case <-c.closing:
		return true
	case <-c.net.Done():
		return true
	default:
		return false
	}
}

// ID returns the group id.
func (c *core) ID() ID { return c.id }

// Scope returns the sealed channel the group's messages travel in. Parts
// built on a group (the collections' inspect service) use it to talk to
// the group's members and nobody else.
func (c *core) Scope() *transport.Scope { return c.scope }

// Self returns this member's peer id.
func (c *core) Self() transport.PeerID { return c.self }

// Done is closed when the member stops: Close, Leave, or its network
// closing.
func (c *core) Done() <-chan struct{} { return c.closing }

// When returns the group's status waiter.
func (c *core) When() *When { return c.when }

// Leader returns the leader this member knows of.
func (c *core) Leader() (transport.PeerID, bool) {
	l := c.when.get().leader
	return l, !l.IsZero()
}

// IsLeader reports whether this member leads and is ready to serve.
func (c *core) IsLeader() bool { return c.when.get().isLeader }

// Applied returns the index of the last command this member applied.
func (c *core) Applied() rsm.Index { return c.fsm.Applied() }

// LogPosition returns the term and index of the last command this member
// applied.
func (c *core) LogPosition() rsm.Cursor { return c.fsm.Last() }

// Execute submits cmd and waits until it is committed and applied on the
// leader, or on this member where it commits by itself (a follower of three
// voters; see ExecuteApplied). It returns the command's index.
func (g *Group[C, Q, R]) Execute(ctx context.Context, cmd C) (rsm.Index, error) {
	res, err := g.submit(ctx, []C{cmd}, false, false)
	if err != nil {
		return 0, err
	}
	return res.First, nil
}

// ExecuteMany submits cmds as one batch applied as an unbroken run, and
// waits until it is applied, as Execute does. It returns the indexes the
// commands occupy, in order.
func (g *Group[C, Q, R]) ExecuteMany(ctx context.Context, cmds []C) (rsm.IndexRange, error) {
	res, err := g.submit(ctx, cmds, false, false)
	if err != nil {
		return rsm.IndexRange{}, err
	}
	return res.Range(), nil
}

// Feed submits cmd and returns once the leader has given it an index; it
// does not wait for the command to commit. If that leader fails before the
// command commits, the group submits it again, possibly at a later index.
func (g *Group[C, Q, R]) Feed(ctx context.Context, cmd C) (rsm.Index, error) {
	res, err := g.submit(ctx, []C{cmd}, true, false)
	if err != nil {
		return 0, err
	}
	return res.First, nil
}

// Reply is the answer to one command: what the machine's ApplyReply
// returned, decoded into A, and the command's index.
type Reply[A any] struct {
	Value A
	Index rsm.Index
}

// ExecuteReply is Execute for machines that implement rsm.Replier: it
// returns what ApplyReply answered for cmd, decoded into A, and the
// command's index. A is the caller's choice, so each kind of command may
// answer with its own type. If the answer does not decode into A, the
// command applied all the same: ExecuteReply returns its index with an
// error matching ErrReplyType. For other machines it fails before sending
// anything.
func ExecuteReply[A, C, Q, R any](ctx context.Context, g *Group[C, Q, R], cmd C) (A, rsm.Index, error) {
	var zero A
	if _, ok := any(g.fsm.Machine()).(rsm.Replier[C]); !ok {
		return zero, 0, fmt.Errorf("groups: ExecuteReply: %T does not implement rsm.Replier", g.fsm.Machine())
	}
	res, err := g.submit(ctx, []C{cmd}, false, false)
	if err != nil {
		return zero, 0, err
	}
	rs, err := replies[A](res, 1)
	return rs[0].Value, rs[0].Index, err
}

// ExecuteApplied is ExecuteMany that returns only once this member has
// applied the commands too, so that its own reads see them; on a follower
// the leader makes the commit known to it at once rather than with its next
// entry. A follower that with the leader is a majority of the voters (a
// group of three) takes the commit as soon as it stored the entry, and
// returns once it applied it, with the outcome its own replica recorded,
// without waiting for the leader's reply. It returns one Reply per command, in order: for machines that
// implement rsm.Replier, what ApplyReply answered, decoded into A (see
// ExecuteReply; an answer that does not decode leaves A's zero value and
// the error matches ErrReplyType); for other machines only the indexes.
//
// Without a deadline in ctx it waits at most 3 × ForwardTimeout in all. If
// the commands committed but this member has not applied them when ctx
// ends (it lost its quorum, or it is far behind), it returns the replies
// with an error matching ErrNotAppliedHere (and ErrClosed if the member
// closed meanwhile): they did apply, at those indexes, and this member
// will apply them once it catches up.
func ExecuteApplied[A, C, Q, R any](ctx context.Context, g *Group[C, Q, R], cmds []C) ([]Reply[A], error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 3*g.cfg.ForwardTimeout)
		defer cancel()
	}
	res, err := g.submit(ctx, cmds, false, true)
	if err != nil {
		return nil, err
	}
	rs, decodeErr := replies[A](res, len(cmds))
	last := rs[len(rs)-1].Index
	if err := g.when.Applied(ctx, last); err != nil {
		// Committed all the same, whether the wait ran out or the member
		// closed: say so, with the indexes.
		return rs, errors.Join(fmt.Errorf("%w: index %d: %w", ErrNotAppliedHere, last, err), decodeErr)
	}
	return rs, decodeErr
}

// Outcome tells what became of a write that returned an
// *UnknownOutcomeError on this member: applied, at the indexes returned
// (true), or not applied and never to be (false). A write whose caller gave
// up is withdrawn (see below), so the answer comes as soon as the leader
// is reachable: the first copy of the write's batch to reach the log
// decides, and every later one is dropped.
//
// Without a deadline in ctx it waits at most 3 × ForwardTimeout. If the
// answer is not known by then it returns an *UnknownOutcomeError again:
// ask later. An error matching ErrOutcomeUnknown that is not an
// *UnknownOutcomeError is final: nobody can tell (the group forgot the
// member's session, ErrSessionExpired; or the member keeps no record of the
// write: it was answered, issued before this member started, or is older
// than the last 4096 writes whose callers gave up). After Close it returns
// ErrClosed.
//
// A caller that gives up (its context ends) after its write was sent makes
// the member withdraw the write: it sends the batch on without it, under
// the same sequence number. The write then applies only if a copy sent
// before reaches the log first.
func (c *core) Outcome(ctx context.Context, id WriteID) (rsm.IndexRange, bool, error) {
	if c.isClosing() {
		return rsm.IndexRange{}, false, ErrClosed
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 3*c.cfg.ForwardTimeout)
		defer cancel()
	}
	return c.sub.outcome(ctx, id)
}

// replies decodes the replies of n commands into A. Every reply gets its
// index; one that does not decode keeps A's zero value, and the error
// (matching ErrReplyType) names the first.
func replies[A any](res replica.Outcome, n int) ([]Reply[A], error) {
	out := make([]Reply[A], n)
	var err error
	for i := range out {
		out[i].Index = res.First + rsm.Index(i)
		if i < len(res.Replies) && res.Replies[i] != nil {
			if derr := rsm.Unmarshal(res.Replies[i], &out[i].Value); derr != nil && err == nil {
				err = fmt.Errorf("%w: applied at index %d, but its reply does not decode into %T: %v", ErrReplyType, out[i].Index, out[i].Value, derr)
			}
		}
	}
	return out, err
}

func (g *Group[C, Q, R]) submit(ctx context.Context, cmds []C, feed, local bool) (replica.Outcome, error) {
	if len(cmds) == 0 {
		return replica.Outcome{}, ErrNoCommands
	}
	if len(cmds) > MaxBatchCommands {
		return replica.Outcome{}, fmt.Errorf("%w: %d commands, limit %d", ErrTooLarge, len(cmds), MaxBatchCommands)
	}
	enc := make([][]byte, len(cmds))
	for i, c := range cmds {
		b, err := rsm.Marshal(c)
		if err != nil {
			return replica.Outcome{}, fmt.Errorf("groups: encode command: %w", err)
		}
		// What the machine could not decode would commit and apply nothing.
		if err := rsm.DecMode().Wellformed(b); err != nil {
			return replica.Outcome{}, fmt.Errorf("%w: command does not decode within the limits: %v", ErrTooLarge, err)
		}
		enc[i] = b
	}
	size, err := checkBatch(enc)
	if err != nil {
		return replica.Outcome{}, err
	}
	return g.sub.submit(ctx, enc, size, feed, local)
}

// checkBatch checks encoded commands against the limits and returns their
// total size. The submitter checks its own batches with it; the leader
// checks every batch it is handed, since a member may skip the submitter.
func checkBatch(cmds [][]byte) (int, error) {
	if len(cmds) > MaxBatchCommands {
		return 0, fmt.Errorf("%w: %d commands, limit %d", ErrTooLarge, len(cmds), MaxBatchCommands)
	}
	size := 0
	for _, b := range cmds {
		if len(b) > MaxCommandSize {
			return 0, fmt.Errorf("%w: command of %d bytes, limit %d", ErrTooLarge, len(b), MaxCommandSize)
		}
		size += len(b)
	}
	if size > MaxBatchSize {
		return 0, fmt.Errorf("%w: batch of %d bytes, limit %d", ErrTooLarge, size, MaxBatchSize)
	}
	return size, nil
}

// QueryResult is a query's answer and the index of the state it read.
type QueryResult[R any] struct {
	Value    R
	Position rsm.Index
}

// Query runs q against the machine. Weak reads this member's state as it is.
// Strong first learns the leader's commit index (the leader confirms it
// still leads) and waits until this member has applied that far, so the
// answer reflects every command committed before the call.
func (g *Group[C, Q, R]) Query(ctx context.Context, q Q, c Consistency) (QueryResult[R], error) {
	if g.isClosing() {
		return QueryResult[R]{}, ErrClosed
	}
	switch c {
	case Weak:
	case Strong:
		if _, err := g.Sync(ctx); err != nil {
			return QueryResult[R]{}, err
		}
	default:
		return QueryResult[R]{}, fmt.Errorf("groups: Query: consistency %d unknown", c)
	}
	// Position first: the state read is at least this far.
	pos := g.fsm.Applied()
	return QueryResult[R]{Value: g.fsm.Query(q), Position: pos}, nil
}

// Sync returns once this member has applied every command committed before
// the call, and the index it has applied then: a read of the member's state
// after Sync is linearizable. It asks the leader for its read index and
// appends nothing to the log. The leader confirms with a heartbeat round
// that it still leads, unless the group is small enough that the asker's
// term proves it (see quickRead). Without a deadline in ctx it waits at most
// Config.QueryTimeout; without a leader it fails with ErrOffline.
func (c *core) Sync(ctx context.Context) (rsm.Index, error) {
	if c.isClosing() {
		return 0, ErrClosed
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.QueryTimeout)
		defer cancel()
	}
	idx, err := c.readIndex(ctx)
	if err != nil {
		return 0, err
	}
	if err := c.when.Applied(ctx, idx); err != nil {
		return 0, fmt.Errorf("groups: sync: this member applied %d of the leader's read index %d: %w", c.fsm.Applied(), idx, err)
	}
	return c.fsm.Applied(), nil
}

// Member is one member of the group as this node sees it.
type Member struct {
	Peer       transport.PeerID
	Voter      bool
	Preference Preference
	Leader     bool
	// Applied is the last command index the member reported applying.
	Applied rsm.Index
	// LastContact is when this node last heard from the member.
	LastContact time.Time
}

// Members lists the group's configuration as this member knows it, ordered
// by PeerID.
func (c *core) Members() []Member {
	fut := c.raft.Load().GetConfiguration()
	if fut.Error() != nil {
		return nil
	}
	leader := c.when.get().leader
	c.peersMu.Lock()
	defer c.peersMu.Unlock()
	var out []Member
	for _, s := range fut.Configuration().Servers {
		p, err := transport.ParsePeerID(string(s.ID))
		if err != nil {
			continue
		}
		m := Member{Peer: p, Voter: s.Suffrage == raft.Voter, Leader: p == leader, Preference: Normal}
		if p == c.self {
			m.Preference = c.cfg.Preference
			m.Applied = c.fsm.Applied()
			m.LastContact = time.Now()
		} else if ps := c.peers[p]; ps != nil {
			m.Preference = ps.ann.preference()
			m.Applied = ps.ann.Applied
			m.LastContact = ps.heard
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return a.Peer.Compare(b.Peer) })
	return out
}

// Close stops this member. A leader first hands leadership over. A member
// with in-memory storage also removes itself from the group, since its state
// dies with it; a durable member stays, expected back. Close waits for
// everything the member started and is idempotent. It returns what failed
// while stopping (Raft's shutdown, releasing the storage), joined with
// errors.Join; every call returns what the first stop returned, also when
// the member stopped because its network closed.
func (c *core) Close() error {
	c.closeOnce.Do(func() {
		// Hand over first: a leader that removed itself would leave the
		// others naming it until their election timeout.
		if c.raft.Load().State() == raft.Leader && c.StorageErr() == nil {
			c.handOver()
		}
		if !c.cfg.Storage.Durable() {
			ctx, cancel := context.WithTimeout(context.Background(), c.closeBudget())
			_ = c.removeSelf(ctx, false)
			cancel()
		}
		c.stop()
	})
	<-c.netWatch
	return c.closeErr
}

// Leave removes this member from the group for good, then closes it. It
// returns why the removal failed, joined with what Close would return.
func (c *core) Leave(ctx context.Context) error {
	var err error
	c.closeOnce.Do(func() {
		err = c.removeSelf(ctx, true)
		c.stop()
	})
	<-c.netWatch
	return errors.Join(err, c.closeErr)
}

// handOver makes another voter leader and waits, within the close budget,
// until this member hears of it, so that what follows goes to it. If that
// fails, the others elect one after their election timeout.
func (c *core) handOver() {
	ctx, cancel := context.WithTimeout(context.Background(), c.closeBudget())
	defer cancel()
	answered, err := untilAnswered(ctx.Done(), func() raft.Future { return c.raft.Load().LeadershipTransfer() })
	if !answered {
		err = ctx.Err()
	}
	if err == nil {
		_, err = c.when.until(ctx, func(s status) bool { return !s.leader.IsZero() && s.leader != c.self })
	}
	if err != nil && !c.lastVoter() {
		c.log.Warn("groups: closing leader could not hand over leadership; the others elect one after their election timeout", "err", err)
	}
}

func (c *core) closeBudget() time.Duration {
	return min(c.cfg.ForwardTimeout, 4*c.cfg.ElectionTimeout+time.Second)
}

func (c *core) stop() {
	c.lifeMu.Lock() // not while Recover replaces Raft
	defer c.lifeMu.Unlock()
	c.unregister()
	c.metrics.close()
	// Not leaving: a durable member that closes stays in the group, and an
	// announcement made meanwhile must not say it leaves (the leader would
	// remove it). removeSelf says so when this member does leave.
	close(c.closing)
	c.cancel()
	c.when.close()
	c.annSub.Close()
	c.ctlSub.Close()
	c.identSub.Close()
	_ = c.trans.Close()
	c.raft.Load().DeregisterObserver(c.observer)
	if !c.futures.drain(2*c.cfg.ElectionTimeout*time.Duration(c.cfg.Preference.Factor()) + time.Second) {
		c.log.Warn("groups: raft calls still unanswered at shutdown", "n", c.futures.n.Load())
	}
	var errs []error
	if err := c.shutdownRaft(); err != nil {
		errs = append(errs, err)
	}
	c.wg.Wait()
	if err := c.StorageErr(); err != nil {
		errs = append(errs, err)
	}
	if c.stores.Release != nil {
		if err := c.stores.Release(); err != nil {
			errs = append(errs, fmt.Errorf("groups: release storage: %w", err))
		}
	}
	c.closeErr = errors.Join(errs...)
	c.log.Debug("groups: closed", "err", c.closeErr)
}

// keepOpen is the member's Raft transport as Raft sees it: Raft closes its
// transport when it shuts down, but Recover starts Raft again on the same
// one. The member closes it when it stops.
type keepOpen struct{ *transport.RaftTransport }

func (keepOpen) Close() error { return nil }

// shutdownRaft shuts Raft down and says why that failed, if it did.
func (c *core) shutdownRaft() error {
	if err := c.raft.Load().Shutdown().Error(); err != nil {
		return fmt.Errorf("groups: raft shutdown: %w", err)
	}
	return nil
}
