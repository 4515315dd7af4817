package collections

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/storage"
	"github.com/mosaik-go/mosaik/transport"
)

// Version is a collection's position in its history: the index of the last
// command applied. Versions only grow but may skip values; compare them by
// order only.
type Version uint64

// Limits, enforced before anything is sent.
const (
	// MaxKeySize is the largest encoded Map key.
	MaxKeySize = 64 << 10
	// MaxValueSize is the largest encoded Map value, Vec or Set element.
	MaxValueSize = 256 << 10
)

var (
	// ErrNotApplied means a write did not apply and never will: it is safe
	// to issue it again. ErrOffline and ErrTooLarge match it too.
	ErrNotApplied = errors.New("collections: not applied")
	// ErrOffline means no leader is reachable now; the write was not
	// applied. It matches ErrNotApplied.
	ErrOffline error = &notApplied{"collections: offline"}
	// ErrClosed is returned by a closed handle, or one whose network closed.
	ErrClosed = errors.New("collections: closed")
	// ErrOutOfRange is returned for a Vec index out of range; nothing changed.
	ErrOutOfRange = errors.New("collections: index out of range")
	// ErrEmpty is returned by a pop from an empty Vec or PriorityQueue;
	// nothing changed.
	ErrEmpty = errors.New("collections: empty")
	// ErrTooLarge is returned for a key or value over the limits; nothing
	// was written. It matches ErrNotApplied.
	ErrTooLarge error = &notApplied{"collections: too large"}
	// ErrOutcomeUnknown means the wait for a write ended after it was sent:
	// it may have applied, once. The error then holds an
	// *UnknownOutcomeError, whose Write the writer's Outcome takes to tell
	// what became of it. Without one (the group forgot this node's session)
	// nobody can tell.
	ErrOutcomeUnknown = errors.New("collections: outcome unknown")
	// ErrCompacted is returned by a watch asked to resume from a version
	// whose changes are no longer kept.
	ErrCompacted = errors.New("collections: version compacted")
	// ErrAlreadyOpen is returned when a collection is opened twice on one
	// network. Share the first handle instead: handles are safe for
	// concurrent use, and a writer has every read method.
	ErrAlreadyOpen = errors.New("collections: already open on this network")
	// ErrNotAppliedHere means a write committed, at the version returned
	// with it, but this node had not applied it when the wait ended (it
	// lost its quorum, or it is far behind): its reads do not show it yet.
	ErrNotAppliedHere = errors.New("collections: written, not yet applied on this node")
	// ErrBusy is what the inspect protocol answers a request over its
	// bounds (InspectMaxDumps and the others): nothing was started, and the
	// same request may succeed later.
	ErrBusy = errors.New("collections: busy, retry later")
)

// notApplied is a sentinel that also matches ErrNotApplied.
type notApplied struct{ msg string }

func (e *notApplied) Error() string        { return e.msg }
func (e *notApplied) Is(target error) bool { return target == ErrNotApplied }

// UnknownOutcomeError is held by an error matching ErrOutcomeUnknown when
// the writer can still tell what became of the write: pass its Write to
// the writer's Outcome. Find it with errors.As.
type UnknownOutcomeError = groups.UnknownOutcomeError

// WriteID names a write a writer sent (see UnknownOutcomeError).
type WriteID = groups.WriteID

// Option configures a handle.
type Option func(*options) error

type options struct {
	group    groups.Config
	secret   transport.Secret
	storage  storage.Provider
	history  int
	operator bool
	capacity int // a PriorityQueue's (WithCapacity)
}

// WithOperatorCommands lets inspect's operator commands (recover,
// remove-member) reach this handle although its collection has no secret.
// They change the group, and without a secret anyone who can publish on
// the NATS server can send them: a collection with a secret takes them
// from holders of the secret only, and needs no option.
func WithOperatorCommands() Option {
	return func(o *options) error {
		o.operator = true
		return nil
	}
}

// WithGroupConfig sets the group's timings, storage and logger. Its
// Preference is ignored: writers join as groups.Normal (or the Reluctant
// preference given here), readers as groups.Observer.
func WithGroupConfig(cfg *groups.Config) Option {
	return func(o *options) error {
		if cfg == nil {
			return errors.New("collections: WithGroupConfig(nil)")
		}
		o.group = *cfg
		return nil
	}
}

// WithSecret seals the collection: only handles opened with the same secret,
// on any node, can join it, read it or write to it, and inspect needs the
// secret to show its contents. It overrides the Secret of WithGroupConfig
// and the network's default (transport.WithSecret). Without any secret the
// collection is open to everyone on the NATS server.
func WithSecret(s transport.Secret) Option {
	return func(o *options) error {
		if s.IsZero() {
			return errors.New("collections: WithSecret: zero secret")
		}
		o.secret = s
		return nil
	}
}

// WithStorage keeps the collection's log and snapshots in p, for example a
// storage.DB, so that it survives a restart of its node. A durable node must
// open its network with the directory's identity
// (transport.WithIdentity(transport.IdentityFromSeed(db.NodeKey()))). It
// overrides the Storage of WithGroupConfig; the default is in memory.
func WithStorage(p storage.Provider) Option {
	return func(o *options) error {
		if p == nil {
			return errors.New("collections: WithStorage(nil)")
		}
		o.storage = p
		return nil
	}
}

// WithHistory sets how many applied commands a handle keeps for watchers to
// resume from. The default is 65536.
func WithHistory(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("collections: WithHistory(%d): must be at least 1", n)
		}
		o.history = n
		return nil
	}
}

func resolve(opts []Option) (options, error) {
	o := options{history: 1 << 16}
	var errs []error
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	return o, errors.Join(errs...)
}

// reply is what a collection command answers its writer.
type reply struct {
	_       struct{} `cbor:",toarray"`
	Applied bool
	Code    uint8  // a refusal: codeOutOfRange, codeEmpty
	Value   []byte // an encoded value, e.g. what a pop removed
}

const (
	codeOutOfRange uint8 = 1 + iota
	codeEmpty
)

func (r reply) err() error {
	switch r.Code {
	case codeOutOfRange:
		return ErrOutOfRange
	case codeEmpty:
		return ErrEmpty
	}
	return nil
}

// machine is what a handle needs of its collection's state machine.
type machine interface {
	version() Version
}

// handle is the part common to every reader and writer: the group member,
// the registration on the network, and When.
type handle[C any] struct {
	name string
	net  *transport.Network
	g    member
	exec func(ctx context.Context, cmds []C) ([]groups.Reply[reply], error)
	m    machine
	when *When
	id   string // kind/name/types, unique among the open handles of net
	insp interface{ close() }

	// cmdExtra is what the group's command adds to each of the handle's
	// (a space's map name), for cutting runs within the batch limits.
	cmdExtra int
	// shared is set for a map of a space: its machine and its
	// registration belong to the space.
	shared bool

	operator bool // serves inspect's operator commands in an open group too

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error // set under closeOnce
}

// member is what a handle uses of its group: its own group, or for a map
// of a space the space's, seen through a spaceMember.
type member interface {
	Sync(ctx context.Context) (rsm.Index, error)
	When() *groups.When
	Members() []groups.Member
	Leader() (transport.PeerID, bool)
	Recover(ctx context.Context) (groups.Recovery, error)
	RemoveMember(ctx context.Context, p transport.PeerID, force bool) error
	Outcome(ctx context.Context, id WriteID) (rsm.IndexRange, bool, error)
	Scope() *transport.Scope
	ID() groups.ID
	Self() transport.PeerID
	IsLeader() bool
	Status() groups.Status
	Done() <-chan struct{}
	Close() error
}

// openHandles are the handles open on one network, by kind/name/types, so
// that one network never joins one group twice (it has one PeerID). The
// network keeps them (see transport.Slot).
type openHandles struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

var openSlot = transport.NewSlot(func(*transport.Network) *openHandles {
	return &openHandles{ids: map[string]struct{}{}}
})

// stateMachine is a collection's machine: replicated by a group, read by
// its handles.
type stateMachine[C any] interface {
	rsm.StateMachine[C, struct{}, reply]
	machine
}

// openWith resolves opts, makes the machine and opens a handle on it.
func openWith[C any, M stateMachine[C]](net *transport.Network, kind, name, types string, newMachine func(history int) M, writer bool, opts []Option) (*handle[C], M, error) {
	var m M
	o, err := resolve(opts)
	if err != nil {
		return nil, m, err
	}
	if o.capacity != 0 && kind != inspectwire.KindPQueue {
		return nil, m, fmt.Errorf("collections: WithCapacity on a %s: only a PriorityQueue has a capacity", kind)
	}
	m = newMachine(o.history)
	h, err := open[C](net, kind, name, types, m, m, writer, o)
	return h, m, err
}

// typeName names a type parameter for the group id: its package name and
// type name ("prices.Quote"), not its import path, so that moving a package
// (another module path, a /v2) keeps the collection and its durable data;
// the CBOR encoding depends on neither. A renamed package or type makes
// another collection, which its members warn about when they hear both.
func typeName[T any]() string { return reflect.TypeFor[T]().String() }

func open[C any](net *transport.Network, kind, name, types string, sm rsm.StateMachine[C, struct{}, reply], m machine, writer bool, o options) (*handle[C], error) {
	if net == nil {
		return nil, errors.New("collections: nil network")
	}
	if name == "" {
		return nil, errors.New("collections: empty name")
	}
	cfg := o.group
	if o.storage != nil {
		cfg.Storage = o.storage
	}
	if !o.secret.IsZero() {
		cfg.Secret = o.secret
	}
	switch {
	case !writer:
		cfg.Preference = groups.Observer
	case !cfg.Preference.IsReluctant():
		cfg.Preference = groups.Normal
	}
	id := kind + "/" + name + "/" + types
	labels := map[string]string{inspectwire.LabelKind: kind, inspectwire.LabelName: name, inspectwire.LabelTypes: types, inspectwire.LabelRole: inspectwire.RoleReader}
	if writer {
		labels[inspectwire.LabelRole] = inspectwire.RoleWriter
	}
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	cfg.Labels = labels
	h := &handle[C]{name: name, net: net, m: m, id: id, operator: o.operator}
	open := openSlot.Get(net)
	open.mu.Lock()
	if _, dup := open.ids[id]; dup {
		open.mu.Unlock()
		return nil, fmt.Errorf("%w: %s %q", ErrAlreadyOpen, kind, name)
	}
	open.ids[id] = struct{}{}
	open.mu.Unlock()
	g, err := groups.Join(net, groups.KeyFromSecret("mosaik.collections."+kind+"/"+name), sm, &cfg)
	if err != nil {
		h.unregister()
		return nil, wrapErr(err)
	}
	h.g = g
	h.exec = func(ctx context.Context, cmds []C) ([]groups.Reply[reply], error) {
		return groups.ExecuteApplied[reply](ctx, g, cmds)
	}
	h.when = &When{g: g.When(), version: m.version, what: describe(kind, types) + " " + strconv.Quote(name)}
	return h, nil
}

// serve answers the inspect protocol for this handle.
func serve[C any, E wireChange](h *handle[C], hist *history[E], state func() frozen[E]) error {
	op := inspectOperator{allowOpen: h.operator, recover: h.Recover, remove: h.RemoveMember}
	in, err := serveInspect(h.g.Scope(), inspectwire.Subject(h.net, h.g.ID().String(), h.net.ID()), hist, state, op)
	if err != nil {
		return err
	}
	h.insp = in
	return nil
}

func (h *handle[C]) unregister() {
	open := openSlot.Get(h.net)
	open.mu.Lock()
	delete(open.ids, h.id)
	open.mu.Unlock()
}

// Version returns the version of the state reads see now.
func (h *handle[C]) Version() Version { return h.m.version() }

// Sync returns once this handle's replica has applied every write committed
// before the call, anywhere in the cluster, and the version its reads see
// then: a Get, All or Len after Sync is linearizable. It costs one round trip
// to the leader (none at the leader), plus, in groups of over four voters
// (at the leader, over two), a heartbeat round by which the leader confirms
// it still leads; it writes nothing. Use it where a read must not miss a write another node
// acknowledged (a handle always sees its own writes without it). Without a
// deadline in ctx it waits at most 5 s (groups.Config.QueryTimeout); with no
// leader it fails with ErrOffline.
func (h *handle[C]) Sync(ctx context.Context) (Version, error) {
	if h.closed.Load() {
		return 0, ErrClosed
	}
	if _, err := h.g.Sync(ctx); err != nil {
		return 0, wrapErr(err)
	}
	return h.Version(), nil
}

// When returns the handle's status waiter.
func (h *handle[C]) When() *When { return h.when }

// Name returns the collection's name.
func (h *handle[C]) Name() string { return h.name }

// Members lists the collection's group members as this node sees them.
func (h *handle[C]) Members() []groups.Member { return h.g.Members() }

// Leader returns the leader this handle knows of.
func (h *handle[C]) Leader() (transport.PeerID, bool) { return h.g.Leader() }

// Recover reforms the collection's group from this handle's member after
// a majority of its voters was lost for good. It refuses while a majority
// is reachable; see groups.Group.Recover for what it does and costs. A
// reader cannot recover (groups.ErrNotVoter).
func (h *handle[C]) Recover(ctx context.Context) (groups.Recovery, error) {
	if h.closed.Load() {
		return groups.Recovery{}, ErrClosed
	}
	return h.g.Recover(ctx)
}

// RemoveMember removes a member gone for good from the collection's group;
// only the leader's handle can. See groups.Group.RemoveMember.
func (h *handle[C]) RemoveMember(ctx context.Context, p transport.PeerID, force bool) error {
	if h.closed.Load() {
		return ErrClosed
	}
	return h.g.RemoveMember(ctx, p, force)
}

// Close leaves the collection. A writer closing gracefully leaves the group
// working for the others. Reads keep answering from the last state; writes
// and waits return ErrClosed. Close is idempotent; it returns what the
// group member's Close returned (see groups.Group.Close), every call the
// same.
func (h *handle[C]) Close() error {
	h.closeOnce.Do(func() {
		h.closed.Store(true)
		if h.insp != nil {
			h.insp.close()
		}
		h.closeErr = h.g.Close()
		if h.shared {
			return
		}
		if c, ok := h.m.(interface{ closeIndex() }); ok {
			c.closeIndex()
		}
		h.unregister()
	})
	return h.closeErr
}

// execute runs commands as one unbroken run and waits until this node has
// applied them, so the writer reads its own writes.
func (h *handle[C]) execute(ctx context.Context, cmds ...C) ([]groups.Reply[reply], error) {
	if h.closed.Load() {
		return nil, ErrClosed
	}
	rs, err := h.exec(ctx, cmds)
	if err != nil {
		if errors.Is(err, groups.ErrNotAppliedHere) {
			return rs, wrapErr(err)
		}
		return nil, wrapErr(err)
	}
	return rs, nil
}

// execute1 is execute for one command. With ErrNotAppliedHere it returns
// the version the command committed at too.
func (h *handle[C]) execute1(ctx context.Context, cmd C) (Version, reply, error) {
	rs, err := h.execute(ctx, cmd)
	if len(rs) == 0 {
		return 0, reply{}, err
	}
	return Version(rs[0].Index), rs[0].Value, err
}

// extend checks every command of a sequence, then applies them in runs of
// up to groups.MaxBatchCommands, each run unbroken, and returns the last
// version. A command over the limits fails the whole call before anything
// is sent. Nothing is sent for an empty sequence.
func (h *handle[C]) extend(ctx context.Context, cmds checkedCmds[C]) (Version, error) {
	return h.extendReplies(ctx, cmds, nil)
}

// extendReplies is extend that hands each applied command's reply to
// onReply (if not nil), in order.
func (h *handle[C]) extendReplies(ctx context.Context, cmds checkedCmds[C], onReply func(groups.Reply[reply])) (Version, error) {
	// Cut the runs within the group's batch limits, by count and size.
	var runs [][]C
	var run []C
	var failed error
	size := 0
	cmds(func(c C, n int, err error) bool {
		if err != nil {
			failed = err
			return false
		}
		n += cmdOverhead + h.cmdExtra
		if len(run) == groups.MaxBatchCommands || size+n > groups.MaxBatchSize {
			runs, run, size = append(runs, run), nil, 0
		}
		run = append(run, c)
		size += n
		return true
	})
	if failed != nil {
		return 0, failed
	}
	if len(run) > 0 {
		runs = append(runs, run)
	}
	last := h.Version()
	total, written := 0, 0
	for _, run := range runs {
		total += len(run)
	}
	for _, run := range runs {
		rs, err := h.execute(ctx, run...)
		if err != nil {
			if len(rs) > 0 { // this run committed, not yet applied here
				written += len(rs)
				return Version(rs[len(rs)-1].Index), fmt.Errorf("%w (%d of %d entries written; the rest not sent)", err, written, total)
			}
			if written > 0 { // what the error says is about this run; the earlier ones applied
				return last, fmt.Errorf("%w (the first %d of %d entries were written, up to version %d; the error is about the next %d; the rest were not sent)", err, written, total, last, len(run))
			}
			return 0, err
		}
		written += len(rs)
		last = Version(rs[len(rs)-1].Index)
		if onReply != nil {
			for _, r := range rs {
				onReply(r)
			}
		}
	}
	return last, nil
}

func wrapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, groups.ErrNotAppliedHere):
		var also []error
		if errors.Is(err, groups.ErrClosed) || errors.Is(err, transport.ErrClosed) {
			also = append(also, ErrClosed)
		}
		return restate(ErrNotAppliedHere, groups.ErrNotAppliedHere, err, also...)
	case errors.Is(err, groups.ErrOutcomeUnknown):
		var also []error
		if errors.Is(err, groups.ErrClosed) {
			also = append(also, ErrClosed)
		}
		return restate(ErrOutcomeUnknown, groups.ErrOutcomeUnknown, err, also...)
	case errors.Is(err, groups.ErrClosed):
		return restate(ErrClosed, groups.ErrClosed, err, alsoNotApplied(err)...)
	case errors.Is(err, transport.ErrClosed):
		return restate(ErrClosed, transport.ErrClosed, err, alsoNotApplied(err)...)
	case errors.Is(err, groups.ErrOffline):
		return restate(ErrOffline, groups.ErrOffline, err)
	case errors.Is(err, groups.ErrTooLarge):
		return restate(ErrTooLarge, groups.ErrTooLarge, err)
	case errors.Is(err, groups.ErrNotApplied):
		return restate(ErrNotApplied, groups.ErrNotApplied, err)
	}
	return err
}

func alsoNotApplied(err error) []error {
	if errors.Is(err, groups.ErrNotApplied) {
		return []error{ErrNotApplied}
	}
	return nil
}

// restate returns err as this package's sentinel says it: "collections:
// closed", not "collections: closed: groups: closed". The result matches
// outer, also and err with errors.Is.
func restate(outer, inner, err error, also ...error) error {
	msg := outer.Error()
	if rest, ok := strings.CutPrefix(err.Error(), inner.Error()); ok {
		msg += rest
	} else {
		msg += ": " + err.Error()
	}
	return &restated{msg: msg, errs: append(append([]error{outer}, also...), err)}
}

type restated struct {
	msg  string
	errs []error
}

func (e *restated) Error() string   { return e.msg }
func (e *restated) Unwrap() []error { return e.errs }

// outcome tells what became of a write whose outcome was unknown: see
// MapWriter.Outcome.
func (h *handle[C]) outcome(ctx context.Context, id WriteID) (Version, bool, error) {
	if h.closed.Load() {
		return 0, false, ErrClosed
	}
	rng, applied, err := h.g.Outcome(ctx, id)
	if err != nil {
		return 0, false, wrapErr(err)
	}
	if !applied {
		return 0, false, nil
	}
	return Version(rng.Last), true, nil
}

// checkSize encodes v to check it against limit, and returns its encoded
// size.
func checkSize(what string, v any, limit int) (int, error) {
	b, err := rsm.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("collections: encode %s: %w", what, err)
	}
	if len(b) > limit {
		return 0, fmt.Errorf("%w: %s of %d bytes, limit %d", ErrTooLarge, what, len(b), limit)
	}
	return len(b), nil
}

// cmdOverhead bounds what a command's encoding adds to its checked parts
// (its array header, operation and index fields): CBOR encodes a value the
// same wherever it sits, so the checked sizes plus this bound the command.
const cmdOverhead = 32

// checkedCmds yields commands with the encoded size of their checked parts,
// or the error that check gave.
type checkedCmds[C any] func(yield func(cmd C, size int, err error) bool)

// When waits for a collection handle's status. Every method blocks until the
// condition holds, ctx ends (its error is returned) or the handle closes
// (ErrClosed).
type When struct {
	g       *groups.When
	version func() Version
	what    string // the collection, for people: Map[string,int] "prices"

	// For a map of a space, whose group is the space's: done is closed when
	// the map's handle closes, and changed returns a channel closed when
	// the map changes (its history's).
	done    <-chan struct{}
	changed func() <-chan struct{}
}

// guard returns ctx, ended with ErrClosed as its cause when the handle of
// a map of a space closes; the group's waits see only the space close.
func (w *When) guard(ctx context.Context) (context.Context, context.CancelFunc) {
	if w.done == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	go func() {
		select {
		case <-w.done:
			cancel(ErrClosed)
		case <-stop:
		}
	}()
	return ctx, func() {
		close(stop)
		cancel(nil)
	}
}

// ended reports whether the handle of a map of a space has closed. A wait
// whose condition holds in the space's group still fails then, as it does
// on a closed collection's.
func (w *When) ended() bool {
	select {
	case <-w.done: // nil, never ready, for a collection's own group
		return true
	default:
		return false
	}
}

// closedErr returns ErrClosed if ctx ended because the map's handle
// closed, else err.
func closedErr(ctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), ErrClosed) {
		return ErrClosed
	}
	return err
}

// Online resolves once a leader is known, this handle follows it, and it
// has applied everything the leader had committed when Online first asked:
// a handle that restarts with old data or joins late does not come online
// showing old state. A collection opened only by readers never comes
// online. When ctx ends
// first, the error says why, as far as this handle can tell (no writer,
// only other collections of its name with other types or settings, ...):
// it matches ctx's error with errors.Is, and errors.As finds the
// *groups.NotOnlineError with the details.
func (w *When) Online(ctx context.Context) error {
	if w.ended() {
		return ErrClosed
	}
	ctx, stop := w.guard(ctx)
	defer stop()
	err := closedErr(ctx, w.g.Online(ctx))
	var no *groups.NotOnlineError
	if errors.As(err, &no) {
		return &notOnlineError{msg: "collections: " + w.what + " is not online: " + w.explain(no), err: no}
	}
	return wrapErr(err)
}

// notOnlineError is groups.NotOnlineError in a collection's words.
type notOnlineError struct {
	msg string
	err *groups.NotOnlineError
}

func (e *notOnlineError) Error() string { return e.msg + ": " + e.err.Err.Error() }
func (e *notOnlineError) Unwrap() error { return e.err }

// explain says why the handle is not online, in a collection's words:
// writers and readers, types.
func (w *When) explain(no *groups.NotOnlineError) string {
	switch no.Reason {
	case groups.ReasonNoVoter:
		return "no writer: this reader hears no writer of it, " + count(no.Observers, "other reader")
	case groups.ReasonMismatch:
		var others []string
		for _, m := range no.Mismatches {
			what, ok := sigDescribe(m.Signature)
			if !ok || strings.HasPrefix(w.what, what+" ") {
				what = strings.Join(m.Differs, ", ")
			}
			others = append(others, fmt.Sprintf("%s (%s, %s)", what, count(m.Voters, "writer"), count(m.Peers-m.Voters, "reader")))
		}
		return "no writer of it; only other collections of its name, which never meet it, are heard: " + strings.Join(others, "; ")
	case groups.ReasonForeign:
		return "it hears only messages it cannot open: the other handles of this collection hold another secret (WithSecret), or none"
	}
	return no.Detail
}

func count(n int, what string) string {
	switch n {
	case 0:
		return "no " + what
	case 1:
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// describe names a collection's kind and types for people: Map[string,int].
func describe(kind, types string) string {
	if kind == "" {
		return types
	}
	return strings.ToUpper(kind[:1]) + kind[1:] + "[" + types + "]"
}

// sigDescribe is describe for a collection machine's signature
// ("mosaik.collections.map.v1[string,int]"); ok is false for others.
func sigDescribe(sig string) (string, bool) {
	rest, ok := strings.CutPrefix(sig, "mosaik.collections.")
	if !ok || !strings.HasSuffix(rest, "]") {
		return "", false
	}
	head, types, ok := strings.Cut(strings.TrimSuffix(rest, "]"), "[")
	kind, _, ok2 := strings.Cut(head, ".v")
	if !ok || !ok2 {
		return "", false
	}
	return describe(kind, types), true
}

// Offline resolves once no leader is known.
func (w *When) Offline(ctx context.Context) error {
	if w.ended() {
		return ErrClosed
	}
	ctx, stop := w.guard(ctx)
	defer stop()
	return wrapErr(closedErr(ctx, w.g.Offline(ctx)))
}

// Reaches resolves once the handle's version is at least v: the state reads
// see includes every write up to v.
func (w *When) Reaches(ctx context.Context, v Version) error {
	ctx, stop := w.guard(ctx)
	defer stop()
	return wrapErr(closedErr(ctx, w.g.Applied(ctx, rsm.Index(v))))
}

// Updated resolves once the handle's version moves past the one at the call.
func (w *When) Updated(ctx context.Context) error {
	if w.changed == nil {
		return w.Reaches(ctx, w.version()+1)
	}
	// A map of a space: its version moves with its own changes only.
	v := w.version()
	for {
		changed := w.changed()
		if w.version() > v {
			return nil
		}
		select {
		case <-changed:
		case <-w.done:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
