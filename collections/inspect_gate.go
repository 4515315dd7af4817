package collections

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mosaik-go/mosaik/internal/prom"
	"github.com/mosaik-go/mosaik/transport"
)

// Bounds of the inspect protocol, per node (a transport.Network, shared by
// every collection open on it) and per requesting peer, so that one member
// of a collection's scope cannot take what the others need. A request over
// a bound is answered busy (inspect says ErrBusy) at once; nothing waits
// for room.
const (
	// InspectMaxDumps bounds the dumps in progress on a node: started and
	// not read to their last page, nor expired.
	InspectMaxDumps = 64
	// InspectMaxPeerDumps bounds the dumps in progress one peer holds on a
	// node.
	InspectMaxPeerDumps = 8
	// InspectMaxPolls bounds the change polls waiting on a node.
	InspectMaxPolls = 256
	// InspectMaxPeerPolls bounds the change polls of one peer waiting on a
	// node.
	InspectMaxPeerPolls = 16

	// inspectBusyLogEvery is the least time between two warnings of
	// refused requests.
	inspectBusyLogEvery = time.Minute
)

// inspectGate counts what the inspect servers of one node hold: dumps in
// progress and waiting polls, per node and per peer. Every collection open
// on one network shares its gate, which the network keeps; the last to
// close releases it. The gate is
// safe for concurrent use.
type inspectGate struct {
	holder *gateHolder // refs is guarded by holder.mu
	self   string      // the node's short id
	log    *slog.Logger
	busy   *prometheus.CounterVec // nil without metrics
	m      *prom.Readings

	refs int

	mu         sync.Mutex
	dumps      int
	polls      int
	peerDumps  map[transport.PeerID]int
	peerPolls  map[transport.PeerID]int
	refused    uint64 // since the last warning
	lastWarned time.Time
}

// Who holds a slot.
const (
	slotDump = "dump"
	slotPoll = "poll"
)

// gateHolder holds a network's gate while collections on it serve inspect,
// kept on the network (see transport.Slot). Its mutex guards gate and the
// gate's refs.
type gateHolder struct {
	mu   sync.Mutex
	gate *inspectGate
}

var gateSlot = transport.NewSlot(func(*transport.Network) *gateHolder { return &gateHolder{} })

func newInspectGate(self string, log *slog.Logger) *inspectGate {
	return &inspectGate{self: self, log: log, peerDumps: map[transport.PeerID]int{}, peerPolls: map[transport.PeerID]int{}}
}

// acquireGate returns net's gate, made on first use; release it once.
func acquireGate(net *transport.Network) *inspectGate {
	h := gateSlot.Get(net)
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.gate
	if g == nil {
		g = newInspectGate(net.ID().Short(), net.Logger())
		g.holder = h
		if reg := net.Metrics(); reg != nil {
			peer := g.self
			g.busy = prom.CounterVec(reg, "collections", "inspect_busy_total",
				"Inspect requests refused because the node or the requesting peer held as many dumps or polls as allowed.", "peer", "kind")
			read := func(p *int) func() float64 {
				return func() float64 { g.mu.Lock(); defer g.mu.Unlock(); return float64(*p) }
			}
			g.m = prom.Register(reg, "collections", prometheus.Labels{"peer": peer},
				prom.Reading{Name: "inspect_dumps", Help: "Inspect dumps in progress on the node.", Type: prometheus.GaugeValue, Read: read(&g.dumps)},
				prom.Reading{Name: "inspect_polls", Help: "Inspect change polls waiting on the node.", Type: prometheus.GaugeValue, Read: read(&g.polls)},
			)
		}
		h.gate = g
	}
	g.refs++
	return g
}

func (g *inspectGate) release() {
	h := g.holder
	h.mu.Lock()
	defer h.mu.Unlock()
	g.refs--
	if g.refs > 0 {
		return
	}
	if h.gate == g {
		h.gate = nil
	}
	g.m.Unregister()
	if g.busy != nil {
		g.busy.DeleteLabelValues(g.self, slotDump)
		g.busy.DeleteLabelValues(g.self, slotPoll)
	}
}

// take takes a slot of kind for peer, or says why it cannot: the refusal
// is counted, and warned of at most once per inspectBusyLogEvery.
func (g *inspectGate) take(kind string, peer transport.PeerID) (refusal string) {
	g.mu.Lock()
	total, perPeer, max, maxPeer, what := &g.dumps, g.peerDumps, InspectMaxDumps, InspectMaxPeerDumps, "dumps in progress"
	if kind == slotPoll {
		total, perPeer, max, maxPeer, what = &g.polls, g.peerPolls, InspectMaxPolls, InspectMaxPeerPolls, "change polls waiting"
	}
	var why string
	switch {
	case perPeer[peer] >= maxPeer:
		why = fmt.Sprintf("this peer has %d inspect %s on node %s, the most allowed per peer", maxPeer, what, g.self)
	case *total >= max:
		why = fmt.Sprintf("node %s has %d inspect %s, the most allowed", g.self, max, what)
	default:
		*total++
		perPeer[peer]++
		g.mu.Unlock()
		return ""
	}
	g.refused++
	warn := time.Since(g.lastWarned) >= inspectBusyLogEvery
	refused := g.refused
	if warn {
		g.lastWarned, g.refused = time.Now(), 0
	}
	g.mu.Unlock()
	if g.busy != nil {
		g.busy.WithLabelValues(g.self, kind).Inc()
	}
	if warn {
		g.log.Warn("collections: inspect requests refused, busy", "refused", refused, "last_from", peer.Short(), "reason", why)
	}
	return why
}

// put returns a slot taken with take.
func (g *inspectGate) put(kind string, peer transport.PeerID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	total, perPeer := &g.dumps, g.peerDumps
	if kind == slotPoll {
		total, perPeer = &g.polls, g.peerPolls
	}
	*total--
	if perPeer[peer]--; perPeer[peer] <= 0 {
		delete(perPeer, peer)
	}
}

// held reports the dumps and polls held on the node, for tests.
func (g *inspectGate) held() (dumps, polls int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.dumps, g.polls
}
