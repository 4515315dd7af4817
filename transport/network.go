package transport

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultNetwork is the subject namespace used when WithNetwork is not given.
const DefaultNetwork = "mosaik"

// Option configures New.
type Option func(*options) error

type options struct {
	url      string
	network  string
	natsOpts []nats.Option
	logger   *slog.Logger
	faults   *Faults
	ident    *Identity
	secret   Secret
	routes   []string
	listen   string // embedded server's client address, host:port
	cluster  string // embedded server's route address, host:port
	srvOpts  []func(*server.Options)
	rpcTO    time.Duration
	maxChunk int
	frags    fragLimits
	metrics  prometheus.Registerer
}

// WithURL connects to an existing NATS server or cluster instead of starting
// an embedded one. Several URLs may be given, as arguments or separated by
// commas (a cluster's servers): New connects to one that answers, and while
// none does it keeps trying until its context ends (30 s if it has no
// deadline). Credentials or TLS a server refuses fail at once.
func WithURL(urls ...string) Option {
	return func(o *options) error {
		for _, u := range urls {
			if strings.TrimSpace(u) == "" {
				return errors.New("transport: WithURL: empty url")
			}
		}
		if len(urls) == 0 {
			return errors.New("transport: WithURL: no url")
		}
		o.url = strings.Join(urls, ",")
		return nil
	}
}

// WithNetwork sets the subject namespace. Two networks on one NATS server
// never see each other's traffic. The name must be a single NATS subject token.
func WithNetwork(name string) Option {
	return func(o *options) error {
		if !validToken(name) {
			return fmt.Errorf("transport: WithNetwork(%q): want a non-empty name without spaces, dots, '*' or '>'", name)
		}
		o.network = name
		return nil
	}
}

// WithNATSOptions passes options (credentials, TLS, names) to nats.Connect.
func WithNATSOptions(opts ...nats.Option) Option {
	return func(o *options) error {
		o.natsOpts = append(o.natsOpts, opts...)
		return nil
	}
}

// WithLogger sets the logger. Without it the node is quiet.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		o.logger = l
		return nil
	}
}

// WithFaults attaches a fault injector to every group message this node sends
// or receives.
func WithFaults(f *Faults) Option {
	return func(o *options) error {
		o.faults = f
		return nil
	}
}

// WithIdentity gives the node a kept identity instead of a random one, e.g.
// the one a durable node keeps: IdentityFromSeed(db.NodeKey()).
func WithIdentity(id *Identity) Option {
	return func(o *options) error {
		if id == nil {
			return errors.New("transport: WithIdentity: nil identity")
		}
		o.ident = id
		return nil
	}
}

// WithSecret seals every group of this node that names no secret of its
// own. Without any secret a group is open: see Scope.
func WithSecret(s Secret) Option {
	return func(o *options) error {
		if s.IsZero() {
			return errors.New("transport: WithSecret: zero secret")
		}
		o.secret = s
		return nil
	}
}

// WithRoutes clusters the embedded server with other NATS servers through
// their route URLs (nats-route://host:port). It has no effect with WithURL.
func WithRoutes(urls ...string) Option {
	return func(o *options) error {
		o.routes = append(o.routes, urls...)
		return nil
	}
}

// WithListen sets the embedded server's client address, "host:port"
// (default: a free port on 127.0.0.1), so other processes can reach it at an
// address known in advance, also after this node restarts. It has no effect
// with WithURL.
func WithListen(hostport string) Option {
	return func(o *options) error {
		if _, _, err := splitHostPort(hostport); err != nil {
			return fmt.Errorf("transport: WithListen: %w", err)
		}
		o.listen = hostport
		return nil
	}
}

// WithClusterListen opens the embedded server's route port at "host:port",
// so other servers can route to it (WithRoutes on their side) even when it
// has no routes of its own: the first server of a cluster. Without it a
// server given routes listens for routes on a free loopback port
// (RouteURL tells which). It has no effect with WithURL.
func WithClusterListen(hostport string) Option {
	return func(o *options) error {
		if _, _, err := splitHostPort(hostport); err != nil {
			return fmt.Errorf("transport: WithClusterListen: %w", err)
		}
		o.cluster = hostport
		return nil
	}
}

func splitHostPort(hostport string) (string, int, error) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q: want a number from 0 to 65535", p)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// WithServerOptions lets f adjust the embedded server's options after the
// defaults are set and before it starts: TLS (TLSConfig, TLS, TLSTimeout),
// users and authorization. Several calls apply in order. It has no effect with
// WithURL. This node connects to its own server like any other client, so
// give it the matching credentials and TLS configuration with
// WithNATSOptions. A server with TLS or authentication is always reached over
// its socket, never in process (see New).
func WithServerOptions(f func(*server.Options)) Option {
	return func(o *options) error {
		if f == nil {
			return errors.New("transport: WithServerOptions: nil function")
		}
		o.srvOpts = append(o.srvOpts, f)
		return nil
	}
}

// WithRPCTimeout bounds how long a request waits for its reply when the
// caller's context has no earlier deadline. The default is 5 seconds.
func WithRPCTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("transport: WithRPCTimeout(%v): must be positive", d)
		}
		o.rpcTO = d
		return nil
	}
}

// withMaxChunk lowers the fragment size; tests use it to exercise reassembly.
func withMaxChunk(n int) Option {
	return func(o *options) error {
		o.maxChunk = n
		return nil
	}
}

// withFragLimits lowers the bounds on partial messages; tests use it to
// reach them with little data.
func withFragLimits(senderPartials, senderBytes, memory, partials int) Option {
	return func(o *options) error {
		o.frags = fragLimits{senderPartials, senderBytes, memory, partials, o.frags.ttl}
		return nil
	}
}

// withFragTTL shortens how long a partial message may wait for its next
// fragment; tests use it to see partial messages expire on the timer.
func withFragTTL(d time.Duration) Option {
	return func(o *options) error {
		o.frags.ttl = d
		return nil
	}
}

// Network is one node's connection to a mosaik network. It is safe for
// concurrent use. Create it with New and release it with Close.
type Network struct {
	id       PeerID
	ident    *Identity
	cards    *cards
	secret   Secret // default for scopes that name none
	epoch    uint64 // when this network started, in Unix nanoseconds
	counter  atomic.Uint64
	name     string
	log      *slog.Logger
	faults   *Faults
	srv      *server.Server
	nc       *nats.Conn
	rpcTO    time.Duration
	maxChunk int

	inbox    string
	inboxSub *Subscription
	nextID   atomic.Uint64

	mu         sync.Mutex
	calls      map[uint64]*call
	connGen    uint64      // connections dropped so far (see reconnect.go)
	reconnects uint64      // reconnects so far; numbers the notices
	live       atomic.Bool // New is done: the node may publish
	subs       map[*Subscription]struct{}
	fetching   map[PeerID]bool // card requests in flight
	dupWarn    logLimit        // the duplicate identity warning
	closed     bool
	bg         sync.WaitGroup // card requests

	// Partial messages (see reassemble) have their own lock: the delivery
	// goroutine of every subscription takes it once per fragment, and
	// nothing else waits for it. Lock order: fragMu is taken alone.
	fragMu  sync.Mutex
	frags   map[fragKey]*partial
	fragMem int // bytes held by frags
	fragAux fragAux
	dropLog logLimit // see logDrop
	slowLog logLimit // see asyncError

	delay *delayQueue
	stats counters
	// noticeChecks counts the reconnect notices whose signature was checked.
	noticeChecks atomic.Uint64

	metrics *netMetrics // nil without WithMetrics

	started time.Time
	status  statusSections

	// Values upper layers keep per network (see Slot); dropped by Close.
	slotMu       sync.Mutex
	slots        map[any]any // by *Slot[T]
	slotsDropped bool

	done chan struct{}
	once sync.Once
}

// New joins a network. With no options it starts an embedded NATS server on
// a free loopback port and connects to it; other nodes reach it through URL.
func New(ctx context.Context, opts ...Option) (*Network, error) {
	o := options{network: DefaultNetwork, rpcTO: 5 * time.Second}
	var errs []error
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.logger == nil {
		o.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.ident == nil {
		o.ident = NewIdentity()
	}
	peer := o.ident.PeerID()
	var first [8]byte
	if _, err := rand.Read(first[:]); err != nil {
		return nil, err
	}
	n := &Network{
		id:       peer,
		ident:    o.ident,
		cards:    newCards(o.ident),
		secret:   o.secret,
		epoch:    uint64(time.Now().UnixNano()),
		fetching: map[PeerID]bool{},
		name:     o.network,
		log:      o.logger.With("self", peer.Short()),
		faults:   o.faults,
		rpcTO:    o.rpcTO,
		calls:    make(map[uint64]*call),
		subs:     make(map[*Subscription]struct{}),
		frags:    make(map[fragKey]*partial),
		fragAux:  fragAux{timed: true, limits: o.frags.orDefaults()},
		done:     make(chan struct{}),

		started: time.Now(),
	}
	// Request ids start at random: a second node with this identity (see
	// probeIdentity) shares the inbox, and must not match its replies.
	n.nextID.Store(binary.BigEndian.Uint64(first[:]) >> 1)
	if n.faults == nil {
		n.faults = NewFaults()
	}

	addr := o.url
	natsOpts := []nats.Option{
		nats.Name("mosaik-" + peer.Short()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ErrorHandler(n.asyncError),
	}
	if addr == "" {
		srv, err := startServer(ctx, o.listen, o.cluster, o.routes, o.srvOpts)
		if err != nil {
			return nil, err
		}
		n.srv = srv
		addr = srv.ClientURL()
		if len(o.routes) > 0 {
			if got, want := waitRoutes(ctx, srv, o.routes); got < want {
				n.log.Warn("transport: routes to only some servers yet; continuing, the others may connect later",
					"routed", got, "want", want)
			}
		}
	}
	if _, ok := embedded.Load(addr); ok {
		// The server runs in this process: skip the socket. A request and
		// its reply take a fifth of the time they take over loopback TCP.
		// Only servers without TLS or authentication are listed, so a
		// secured one is always reached over its socket: see startServer.
		natsOpts = append(natsOpts, nats.InProcessServer(inProcess(addr)))
	}
	natsOpts = append(natsOpts, o.natsOpts...)
	natsOpts = append(natsOpts, n.connHandlers(o.natsOpts)...)
	nc, err := connect(ctx, addr, natsOpts)
	if err != nil {
		n.shutdownServer()
		return nil, err
	}
	n.nc = nc
	n.maxChunk = int(nc.MaxPayload()) - 512
	if o.maxChunk > 0 && o.maxChunk < n.maxChunk {
		n.maxChunk = o.maxChunk
	}
	if n.maxChunk < 1024 {
		nc.Close()
		n.shutdownServer()
		return nil, fmt.Errorf("transport: server max payload %d is too small", nc.MaxPayload())
	}
	n.delay = newDelayQueue()
	// Replies come to inbox.<request id>: a request to a subject nobody
	// listens on then fails at once, as the server answers "no responders"
	// to that subject.
	n.inbox = n.Subject("in", n.id.String())
	sub, err := n.subscribePlain(n.inbox+".*", n.onReply)
	if err != nil {
		n.Close()
		return nil, err
	}
	sub.onNoResponders = n.onNoResponders
	n.inboxSub = sub
	// Every node answers status requests, whatever it runs, and shows its
	// card to whoever asks.
	if _, err := n.subscribePlain(n.Subject("status"), n.onStatus); err != nil {
		n.Close()
		return nil, err
	}
	// Peers that reconnected say so here (see reconnect.go).
	if _, err := n.subscribePlain(n.noticeSubject(), n.onNotice); err != nil {
		n.Close()
		return nil, err
	}
	// Before answering as this identity, make sure no live node does.
	if err := n.probeIdentity(ctx); err != nil {
		n.Close()
		return nil, err
	}
	if _, err := n.subscribePlain(n.cardSubject(n.id), n.onCardRequest); err != nil {
		n.Close()
		return nil, err
	}
	if _, err := n.cards.learn(n.id, n.ident.card); err != nil {
		n.Close()
		return nil, err
	}
	fctx, cancel := context.WithTimeout(ctx, n.rpcTO)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		n.Close()
		return nil, fmt.Errorf("transport: flush after subscribe: %w", err)
	}
	n.metrics = newNetMetrics(o.metrics, n)
	n.live.Store(true)
	n.log.Debug("transport: connected", "url", redactURL(n.URL()), "network", n.name, "embedded", n.srv != nil)
	return n, nil
}

// embedded holds the servers this process embeds, by client URL, so that
// nodes of this process joining one connect to it in process.
var embedded sync.Map // string -> *server.Server

func startServer(ctx context.Context, listen, cluster string, routes []string, adjust []func(*server.Options)) (*server.Server, error) {
	sopts := &server.Options{
		Host:   "127.0.0.1",
		Port:   server.RANDOM_PORT,
		NoLog:  true,
		NoSigs: true,
		// Several nodes of one process may share this server; keep the
		// per-connection buffer generous so bursts of raft traffic fit.
		MaxPending: 256 << 20,
	}
	if listen != "" {
		sopts.Host, sopts.Port, _ = splitHostPort(listen) // checked by WithListen
	}
	if len(routes) > 0 || cluster != "" {
		sopts.Cluster.Host = "127.0.0.1"
		sopts.Cluster.Port = server.RANDOM_PORT
		sopts.Cluster.Name = "mosaik"
		if cluster != "" {
			sopts.Cluster.Host, sopts.Cluster.Port, _ = splitHostPort(cluster)
		}
		for _, r := range routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("transport: route %q: %w", r, err)
			}
			sopts.Routes = append(sopts.Routes, u)
		}
	}
	for _, f := range adjust {
		f(sopts)
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("transport: embedded server: %w", err)
	}
	go srv.Start()
	wait := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	if !srv.ReadyForConnections(wait) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, errors.New("transport: embedded server did not become ready")
	}
	// In process, nats-server skips TLS: it offers it and lets the client go
	// without, so a client certificate the server requires is never asked
	// for. It does check credentials, but a server that has TLS or
	// authentication is reached over its socket all the same, as every
	// client of another process reaches it: what it enforces never depends
	// on where the client runs.
	if !secured(sopts) {
		embedded.Store(srv.ClientURL(), srv)
	}
	return srv, nil
}

// inProcess connects to the server listed in embedded at its URL when
// the client (re)connects, else over the socket: a server stopped and
// started again at the same address (WithListen) is another server, maybe
// of another process, and the stopped one takes no connection.
type inProcess string

func (u inProcess) InProcessConn() (net.Conn, error) {
	if srv, ok := embedded.Load(string(u)); ok {
		return srv.(*server.Server).InProcessConn()
	}
	p, err := url.Parse(string(u))
	if err != nil {
		return nil, err
	}
	return (&net.Dialer{Timeout: nats.DefaultTimeout}).Dial("tcp", p.Host)
}

// routeWait bounds how long New waits for the embedded server's routes.
const routeWait = 5 * time.Second

// waitRoutes waits until srv has a route to as many other servers as it was
// given routes (its own route address, if listed, aside), at most routeWait
// or until ctx ends: a node whose server starts with only part of the mesh
// could find only some members, and found a group of its own. It returns
// how many servers srv has routes to, and how many it waited for.
func waitRoutes(ctx context.Context, srv *server.Server, routes []string) (got, want int) {
	own := ""
	if a := srv.ClusterAddr(); a != nil {
		own = a.String()
	}
	for _, r := range routes {
		if u, err := url.Parse(r); err == nil && u.Host != own {
			want++
		}
	}
	ctx, cancel := context.WithTimeout(ctx, routeWait)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for srv.NumRemotes() < want {
		select {
		case <-ctx.Done():
			return srv.NumRemotes(), want
		case <-t.C:
		}
	}
	return srv.NumRemotes(), want
}

// secured reports whether a server with these options uses TLS or requires
// clients to authenticate.
func secured(o *server.Options) bool {
	return o.TLSConfig != nil || o.TLS || o.Username != "" || o.Password != "" ||
		o.Authorization != "" || len(o.Users) > 0 || len(o.Nkeys) > 0 ||
		o.NoAuthUser != "" || o.CustomClientAuthentication != nil ||
		len(o.TrustedKeys) > 0 || len(o.TrustedOperators) > 0 || o.AuthCallout != nil
}

func connect(ctx context.Context, addr string, opts []nats.Option) (*nats.Conn, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, connectWait)
		defer cancel()
	}
	wait := 100 * time.Millisecond
	var last error // why the attempt before failed: no server answered
	for {
		nc, err := dial(ctx, addr, opts)
		if err != nil && last != nil && ctx.Err() != nil {
			// The context ended during an attempt: say why the
			// attempts before it failed.
			err = last
		}
		// Only "no server answered" may pass: a server that refuses the
		// credentials or the TLS will refuse them again.
		if err == nil || !errors.Is(err, nats.ErrNoServers) {
			return nc, err
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (still trying when %w)", err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// connectWait bounds how long New waits for a server to answer when its
// context has no deadline.
const connectWait = 30 * time.Second

// dial makes one attempt to connect, within ctx.
func dial(ctx context.Context, addr string, opts []nats.Option) (*nats.Conn, error) {
	type result struct {
		nc  *nats.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(addr, opts...)
		ch <- result{nc, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("transport: connect %s: %w", redactURL(addr), r.err)
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("transport: connect %s: %w", redactURL(addr), ctx.Err())
	}
}

// ID returns this node's identity.
func (n *Network) ID() PeerID { return n.id }

// Name returns the subject namespace.
func (n *Network) Name() string { return n.name }

// Logger returns the node's logger (never nil).
func (n *Network) Logger() *slog.Logger { return n.log }

// URL returns the client URL of the NATS server this node uses; other nodes
// pass it to WithURL to join the same network. Joined through WithURL, it is
// the URL connected to as given, and may contain credentials
// (nats://user:password@host:port, nats://token@host:port): treat it as a
// secret then. Status answers and logs carry it without them.
func (n *Network) URL() string {
	if n.srv != nil {
		return n.srv.ClientURL()
	}
	return n.nc.ConnectedUrl()
}

// RouteURL returns the cluster route URL of the embedded server, or "" when
// the node has no embedded server or it was started without WithRoutes and
// WithClusterListen.
func (n *Network) RouteURL() string {
	if n.srv == nil {
		return ""
	}
	addr := n.srv.ClusterAddr()
	if addr == nil {
		return ""
	}
	return "nats-route://" + addr.String()
}

// Faults returns the fault injector (never nil).
func (n *Network) Faults() *Faults { return n.faults }

// RPCTimeout is the default deadline of a request.
func (n *Network) RPCTimeout() time.Duration { return n.rpcTO }

// Done is closed when the network is closed.
func (n *Network) Done() <-chan struct{} { return n.done }

// Subject joins parts into a subject under this network's namespace.
func (n *Network) Subject(parts ...string) string {
	return n.name + "." + strings.Join(parts, ".")
}

// Stats returns message counters since New.
func (n *Network) Stats() Stats {
	st := n.stats.snapshot()
	st.PendingDropped = n.pendingDropped()
	return st
}

// pendingDropped is Stats.PendingDropped: the frames the NATS client
// dropped on subscriptions closed since, and on those open.
func (n *Network) pendingDropped() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	d := n.stats.pendingDropped.Load()
	for s := range n.subs {
		d += s.pendingDropped()
	}
	return d
}

// Close closes every subscription, fails pending requests with ErrClosed,
// disconnects, stops the embedded server, and drops the values kept in
// slots. It is idempotent and returns once everything the network started
// has stopped. Nothing in it can fail: it always returns nil, and returns
// an error only to be an io.Closer beside a node's other closers.
func (n *Network) Close() error {
	n.once.Do(func() {
		n.mu.Lock()
		n.closed = true
		subs := make([]*Subscription, 0, len(n.subs))
		for s := range n.subs {
			subs = append(subs, s)
		}
		calls := n.calls
		n.calls = map[uint64]*call{}
		n.mu.Unlock()
		close(n.done)
		n.metrics.close()
		for _, c := range calls {
			c.fail(ErrClosed)
		}
		for _, s := range subs {
			s.close(false) // the connection closes next: nothing to wait for
		}
		if n.delay != nil {
			n.delay.close()
		}
		n.closeFrags()
		n.bg.Wait()
		if n.nc != nil {
			n.nc.Close()
		}
		n.shutdownServer()
		n.dropSlots()
	})
	return nil
}

func (n *Network) shutdownServer() {
	if n.srv != nil {
		embedded.Delete(n.srv.ClientURL())
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
}

func (n *Network) asyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrSlowConsumer) {
		n.stats.slowConsumer.Add(1)
		subj := ""
		if sub != nil {
			subj = sub.Subject
		}
		if n.slowLog.allow(dropLogInterval) {
			n.log.Warn("transport: subscriber too slow, messages dropped (logged once per interval; see Stats.PendingDropped)",
				"subject", subj, "pending_msgs_limit", pendingMsgsLimit, "pending_bytes_limit", pendingBytesLimit)
		}
		return
	}
	n.log.Warn("transport: nats error", "err", err)
}

// logLimit lets a log line through at most once per interval; counters
// count every event, the log only says they happen. Its zero value lets
// the first line through. It is safe for concurrent use.
type logLimit struct {
	last atomic.Int64 // when a line last went through, Unix nanoseconds
}

// allow reports whether a line may go through now, and if so starts a new
// interval. Of callers racing, one wins.
func (l *logLimit) allow(every time.Duration) bool {
	now := time.Now().UnixNano()
	last := l.last.Load()
	return now-last >= int64(every) && l.last.CompareAndSwap(last, now)
}

func validToken(s string) bool {
	return s != "" && !strings.ContainsAny(s, ". \t\r\n*>")
}
