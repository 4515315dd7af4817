package transport

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mosaik-go/mosaik/internal/prom"
)

// WithMetrics exports the node's Prometheus metrics, and those of the groups
// it runs, through reg. Several nodes may share one registry: every metric
// carries the node's short PeerID as label "peer", and a group's metrics
// its short id as label "group". Metrics of a closed node or group are
// removed. Without WithMetrics (or with a nil reg) nothing is measured.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(o *options) error {
		o.metrics = reg
		return nil
	}
}

// Metrics returns the registerer given to WithMetrics, or nil. Packages
// built on the network register their metrics there.
func (n *Network) Metrics() prometheus.Registerer {
	if n.metrics == nil {
		return nil
	}
	return n.metrics.reg
}

// netMetrics are a node's metrics; nil when it has no registry.
type netMetrics struct {
	reg     prometheus.Registerer
	peer    string
	stats   *prom.Readings
	dropped []*prom.Readings // one per reason
	raft    raftVecs
}

// raftVecs count the traffic of each Raft group (scope) on each node.
type raftVecs struct {
	sentMsgs, sentBytes, recvMsgs, recvBytes      *prometheus.CounterVec
	snapSends, snapSentBytes, snapSendFailures    *prometheus.CounterVec
	snapReceives, snapRecvBytes, snapRecvFailures *prometheus.CounterVec
}

func newNetMetrics(reg prometheus.Registerer, n *Network) *netMetrics {
	if reg == nil {
		return nil
	}
	m := &netMetrics{reg: reg, peer: n.id.Short()}
	counter := func(name, help string, v *atomic.Uint64) prom.Reading {
		return prom.Reading{Name: name, Help: help, Type: prometheus.CounterValue, Read: func() float64 { return float64(v.Load()) }}
	}
	s := &n.stats
	m.stats = prom.Register(reg, "transport", prometheus.Labels{"peer": m.peer},
		counter("sent_messages_total", "Messages (frames) the node published.", &s.msgsOut),
		counter("sent_bytes_total", "Bytes of the frames the node published.", &s.bytesOut),
		counter("received_messages_total", "Messages (frames) the node received.", &s.msgsIn),
		counter("received_bytes_total", "Bytes of the frames the node received.", &s.bytesIn),
		counter("malformed_messages_total", "Frames dropped because they could not be parsed or reassembled.", &s.malformed),
		counter("rejected_messages_total", "Frames dropped unread because they did not open in their scope: not sealed, another secret, forged, replayed, or an unknown sender.", &s.rejected),
		counter("duplicate_identity_total", "Signs of another live node with this node's identity (a copied data directory): probes answered, or the answer that stopped this node.", &s.duplicates),
		counter("fault_dropped_messages_total", "Messages dropped by fault injection.", &s.faultDrops),
		counter("slow_consumer_errors_total", "Overflows of a subscription's pending buffer (messages dropped).", &s.slowConsumer),
	)
	// Messages dropped for a bound, by reason: one collector per reason,
	// each with its constant label.
	for _, d := range []struct {
		reason string
		read   func() float64
	}{
		{dropSenderPartials, func() float64 { return float64(s.dropSenderPartials.Load()) }},
		{dropSenderBytes, func() float64 { return float64(s.dropSenderBytes.Load()) }},
		{dropFragMemory, func() float64 { return float64(s.dropFragMemory.Load()) }},
		{dropSlowConsumer, func() float64 { return float64(n.pendingDropped()) }},
	} {
		m.dropped = append(m.dropped, prom.Register(reg, "transport", prometheus.Labels{"peer": m.peer, "reason": d.reason},
			prom.Reading{Name: "dropped_messages_total", Type: prometheus.CounterValue, Read: d.read,
				Help: "Messages dropped because a bound was hit: a sender's partial (fragmented) messages on a subscription (sender_partials), their bytes (sender_bytes), all partial messages of the node (partial_memory), or frames the NATS client dropped from a subscription's full pending buffer (slow_consumer)."}))
	}
	vec := func(name, help string) *prometheus.CounterVec {
		return prom.CounterVec(reg, "transport", name, help, "group", "peer")
	}
	m.raft = raftVecs{
		sentMsgs:         vec("group_sent_messages_total", "Raft RPCs and answers a node sent for a group."),
		sentBytes:        vec("group_sent_bytes_total", "Bytes of the Raft RPCs and answers a node sent for a group."),
		recvMsgs:         vec("group_received_messages_total", "Raft RPCs and answers a node received for a group."),
		recvBytes:        vec("group_received_bytes_total", "Bytes of the Raft RPCs and answers a node received for a group."),
		snapSends:        vec("snapshot_sends_total", "Snapshot transfers a node sent to a follower."),
		snapSentBytes:    vec("snapshot_sent_bytes_total", "Snapshot bytes a node sent."),
		snapSendFailures: vec("snapshot_send_failures_total", "Snapshot transfers a node sent that failed."),
		snapReceives:     vec("snapshot_receives_total", "Snapshot transfers a node received to the end or to a failure."),
		snapRecvBytes:    vec("snapshot_received_bytes_total", "Snapshot bytes a node received."),
		snapRecvFailures: vec("snapshot_receive_failures_total", "Snapshot transfers a node received that failed."),
	}
	return m
}

// close removes the node's metrics. Groups remove their own.
func (m *netMetrics) close() {
	if m != nil {
		m.stats.Unregister()
		for _, r := range m.dropped {
			r.Unregister()
		}
	}
}

// raftMetrics are the metrics of one RaftTransport; nil without a registry.
type raftMetrics struct {
	counters                                      *prom.Counters
	sentMsgs, sentBytes, recvMsgs, recvBytes      prometheus.Counter
	snapSends, snapSentBytes, snapSendFailures    prometheus.Counter
	snapReceives, snapRecvBytes, snapRecvFailures prometheus.Counter
}

// forScope returns the metrics of a RaftTransport for scope, labelled with
// the scope's first 8 characters: a group id's short form.
func (m *netMetrics) forScope(scope string) *raftMetrics {
	if m == nil {
		return nil
	}
	v := &m.raft
	r := &raftMetrics{}
	r.counters = prom.Bind([]string{scope[:min(len(scope), 8)], m.peer},
		prom.Child{Vec: v.sentMsgs, To: &r.sentMsgs}, prom.Child{Vec: v.sentBytes, To: &r.sentBytes},
		prom.Child{Vec: v.recvMsgs, To: &r.recvMsgs}, prom.Child{Vec: v.recvBytes, To: &r.recvBytes},
		prom.Child{Vec: v.snapSends, To: &r.snapSends}, prom.Child{Vec: v.snapSentBytes, To: &r.snapSentBytes},
		prom.Child{Vec: v.snapSendFailures, To: &r.snapSendFailures},
		prom.Child{Vec: v.snapReceives, To: &r.snapReceives}, prom.Child{Vec: v.snapRecvBytes, To: &r.snapRecvBytes},
		prom.Child{Vec: v.snapRecvFailures, To: &r.snapRecvFailures},
	)
	return r
}

func (m *raftMetrics) close() {
	if m != nil {
		m.counters.Delete()
	}
}

// sent counts a request or answer of n bytes.
func (m *raftMetrics) sent(n int) {
	if m != nil {
		m.sentMsgs.Inc()
		m.sentBytes.Add(float64(n))
	}
}

// received counts a request or answer that arrived, unless err says none
// did.
func (m *raftMetrics) received(b []byte, err error) {
	if m != nil && err == nil {
		m.recvMsgs.Inc()
		m.recvBytes.Add(float64(len(b)))
	}
}

// snapshotChunk counts snapshot bytes received.
func (m *raftMetrics) snapshotChunk(n int) {
	if m != nil {
		m.snapRecvBytes.Add(float64(n))
	}
}

// snapshotReceived counts a received transfer that ended, failed if err is
// set.
func (m *raftMetrics) snapshotReceived(err error) {
	if m != nil {
		m.snapReceives.Inc()
		if err != nil {
			m.snapRecvFailures.Inc()
		}
	}
}

// snapshotSent counts a snapshot transfer this node sent, its bytes and
// whether it failed.
func (m *raftMetrics) snapshotSent(n int64, failed bool) {
	if m != nil {
		m.snapSends.Inc()
		m.snapSentBytes.Add(float64(n))
		if failed {
			m.snapSendFailures.Inc()
		}
	}
}
