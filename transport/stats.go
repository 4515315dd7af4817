package transport

import "sync/atomic"

// Stats counts a node's messages since it joined the network.
type Stats struct {
	MsgsIn, MsgsOut   uint64
	BytesIn, BytesOut uint64
	// Malformed counts frames dropped because they could not be parsed or
	// reassembled.
	Malformed uint64
	// FaultDrops counts messages dropped by fault injection.
	FaultDrops uint64
	// SlowConsumer counts overflows of a subscription's pending buffer.
	SlowConsumer uint64
	// Rejected counts frames a scope's subscription dropped before reading
	// them: not sealed, sealed with another secret, forged, replayed, or
	// from a sender whose card is not known yet.
	Rejected uint64
	// Duplicates counts signs of another live node with this node's
	// identity: probes it answered, or the answer that stopped New.
	Duplicates uint64
}

type counters struct {
	msgsIn, msgsOut, bytesIn, bytesOut  atomic.Uint64
	malformed, faultDrops, slowConsumer atomic.Uint64
	rejected, duplicates                atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		MsgsIn: c.msgsIn.Load(), MsgsOut: c.msgsOut.Load(),
		BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
		Malformed: c.malformed.Load(), FaultDrops: c.faultDrops.Load(),
		SlowConsumer: c.slowConsumer.Load(), Rejected: c.rejected.Load(),
		Duplicates: c.duplicates.Load(),
	}
}
