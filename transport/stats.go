package transport

import "sync/atomic"

// Stats counts a node's messages since it joined the network.
type Stats struct {
	MsgsIn, MsgsOut   uint64
	BytesIn, BytesOut uint64
	// Malformed counts frames dropped because they could not be parsed or
	// reassembled, and partial messages that expired incomplete.
	Malformed uint64
	// FaultDrops counts messages dropped by fault injection.
	FaultDrops uint64
	// SlowConsumer counts overflows of a subscription's pending buffer:
	// times a subscription began to drop frames because its handler fell
	// behind by more than its pending limits (see Subscribe).
	SlowConsumer uint64
	// PendingDropped counts the frames dropped in those overflows.
	PendingDropped uint64
	// Rejected counts frames a scope's subscription dropped before reading
	// them: not sealed, sealed with another secret, forged, replayed, or
	// from a sender whose card is not known yet.
	Rejected uint64
	// Duplicates counts signs of another live node with this node's
	// identity: probes it answered, or the answer that stopped New.
	Duplicates uint64
	// Dropped counts partial (fragmented) messages dropped because a bound
	// was hit: the sender's partial messages on the subscription, their
	// bytes, or the bytes or number of all partial messages of the node.
	// The sender's other messages, and everyone else's, are unaffected.
	Dropped uint64
	// Reconnects counts this node's reconnects to NATS after its
	// connection dropped.
	Reconnects uint64
	// CallsLost counts requests failed with ErrConnectionLost: this
	// node's connection, or the peer's, dropped while they waited.
	CallsLost uint64
}

type counters struct {
	msgsIn, msgsOut, bytesIn, bytesOut  atomic.Uint64
	malformed, faultDrops, slowConsumer atomic.Uint64
	rejected, duplicates                atomic.Uint64
	reconnects, callsLost               atomic.Uint64
	// partial messages dropped for a bound, by bound (see reassemble)
	dropSenderPartials, dropSenderBytes, dropFragMemory atomic.Uint64
	// frames the NATS client dropped on subscriptions closed since
	pendingDropped atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		MsgsIn: c.msgsIn.Load(), MsgsOut: c.msgsOut.Load(),
		BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
		Malformed: c.malformed.Load(), FaultDrops: c.faultDrops.Load(),
		SlowConsumer: c.slowConsumer.Load(), Rejected: c.rejected.Load(),
		Duplicates:     c.duplicates.Load(),
		PendingDropped: c.pendingDropped.Load(),
		Dropped:        c.dropSenderPartials.Load() + c.dropSenderBytes.Load() + c.dropFragMemory.Load(),
		Reconnects:     c.reconnects.Load(), CallsLost: c.callsLost.Load(),
	}
}
