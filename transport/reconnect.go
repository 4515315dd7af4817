package transport

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// A NATS server that dies takes with it the requests and replies it held,
// and the replies sent to its clients until they reconnect elsewhere. Left
// alone, each such request waits for its timeout. Instead:
//
//   - When this node's connection comes back, every call it registered
//     before the connection dropped fails at once with ErrConnectionLost.
//     Calls made while it was down are kept: the client buffered their
//     requests and sent them on reconnect, so their replies may come.
//   - It then publishes a signed notice on <network>.reconnected. A node
//     that gets it fails its calls waiting on this node the same way: their
//     requests or replies may have gone through the dead server, and
//     nothing else tells it.
//
// A call failed for nothing (its reply was on the way) costs one retry:
// forwards are deduplicated and Raft sends again. Each reconnect fails each
// call at most once, so nothing loops.
//
// The notice is [noticeVersion][epoch][sequence][Ed25519 signature] over
// the network name, the sender and the first 17 bytes. A receiver checks it
// only while it has calls waiting on the sender (so strangers' notices cost
// no signature check), with the card it holds for the sender, and takes a
// sender's notices only in increasing (epoch, sequence) order, and none of
// an epoch older than the sender's frames it opened (a run that ended): a
// replayed notice fails nothing, unless the receiver never took it, and
// then once.

// Owned by the Network: connGen and reconnects are guarded by Network.mu;
// each call records the connGen it was made in.

const (
	// noticeBurst is how many notices of one sender a node checks at
	// once; then noticeRate a second: anyone can send notices in a
	// sender's name, and each costs a signature check.
	noticeBurst   = 8
	noticeRate    = 4
	noticeVersion = 1
	noticeBody    = 17
	noticeLen     = noticeBody + ed25519.SignatureSize
)

func (n *Network) noticeSubject() string { return n.Subject("reconnected") }

// connHandlers returns the NATS options that make the node notice a lost
// connection, calling whatever handlers opts set as well.
func (n *Network) connHandlers(opts []nats.Option) []nats.Option {
	user := nats.GetDefaultOptions()
	for _, o := range opts {
		_ = o(&user)
	}
	return []nats.Option{
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			n.onDisconnect(err)
			if user.DisconnectedErrCB != nil {
				user.DisconnectedErrCB(nc, err)
			} else if user.DisconnectedCB != nil {
				user.DisconnectedCB(nc)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			n.onReconnect(nc)
			if user.ReconnectedCB != nil {
				user.ReconnectedCB(nc)
			}
		}),
	}
}

// onDisconnect starts a new connection generation: calls made from now on
// are buffered by the client and sent on reconnect.
func (n *Network) onDisconnect(err error) {
	n.mu.Lock()
	n.connGen++
	n.mu.Unlock()
	n.log.Debug("transport: disconnected from NATS", "err", err)
}

// onReconnect fails the calls made before the connection dropped and tells
// the others.
func (n *Network) onReconnect(nc *nats.Conn) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.reconnects++
	seq := n.reconnects
	lost := n.takeCalls(func(c *call) bool { return c.gen < n.connGen })
	n.mu.Unlock()
	n.stats.reconnects.Add(1)
	n.failLost(lost, "this node's connection to NATS dropped")
	n.log.Info("transport: reconnected to NATS", "url", redactURL(nc.ConnectedUrl()), "calls_failed", len(lost))
	if !n.live.Load() {
		return // New is not done: nobody waits on this node yet
	}
	if err := n.publishPlain(n.noticeSubject(), PeerID{}, n.notice(seq)); err != nil {
		n.log.Debug("transport: reconnect notice not sent", "err", err)
	}
}

// takeCalls removes and returns the calls lost reports. n.mu is held.
func (n *Network) takeCalls(lost func(*call) bool) []*call {
	var out []*call
	for id, c := range n.calls {
		if lost(c) {
			out = append(out, c)
			delete(n.calls, id)
		}
	}
	return out
}

func (n *Network) failLost(lost []*call, why string) {
	n.stats.callsLost.Add(uint64(len(lost)))
	for _, c := range lost {
		c.fail(fmt.Errorf("%w: %s", ErrConnectionLost, why))
	}
}

// notice builds this node's signed notice of its reconnect number seq.
func (n *Network) notice(seq uint64) []byte {
	b := make([]byte, noticeBody, noticeLen)
	b[0] = noticeVersion
	binary.BigEndian.PutUint64(b[1:9], n.epoch)
	binary.BigEndian.PutUint64(b[9:17], seq)
	return append(b, ed25519.Sign(n.ident.sign, noticeSigned(n.name, n.id, b))...)
}

func noticeSigned(network string, from PeerID, body []byte) []byte {
	s := make([]byte, 0, 32+len(network)+len(from)+noticeBody)
	s = append(s, "mosaik.reconnected.v1\x00"...)
	s = append(s, network...)
	s = append(s, 0)
	s = append(s, from[:]...)
	return append(s, body[:noticeBody]...)
}

// onNotice fails the calls waiting on a peer that reconnected.
func (n *Network) onNotice(m *Msg) {
	if m.From == n.id {
		return
	}
	b := m.Data
	if len(b) != noticeLen || b[0] != noticeVersion {
		n.stats.malformed.Add(1)
		return
	}
	e := n.cards.get(m.From)
	if e == nil {
		// No card to check it with: it can fail nothing. Spend no
		// scan of the calls on it (anyone can name any id).
		return
	}
	waiting := func(c *call) bool { return c.to == m.From }
	n.mu.Lock()
	waits := false
	for _, c := range n.calls {
		if waits = waiting(c); waits {
			break
		}
	}
	n.mu.Unlock()
	if !waits {
		return // nothing to fail: spend no signature check
	}
	if !n.cards.mayCheckNotice(e, time.Now()) {
		n.stats.rejected.Add(1) // the genuine one, if any, fails by its timeout
		return
	}
	n.noticeChecks.Add(1)
	if !ed25519.Verify(e.card.sign, noticeSigned(n.name, m.From, b), b[noticeBody:]) {
		n.stats.rejected.Add(1)
		return
	}
	if !n.cards.newNotice(e, binary.BigEndian.Uint64(b[1:9]), binary.BigEndian.Uint64(b[9:17])) {
		n.stats.rejected.Add(1)
		return
	}
	n.mu.Lock()
	lost := n.takeCalls(waiting)
	n.mu.Unlock()
	n.failLost(lost, "the peer's connection to NATS dropped")
	n.log.Debug("transport: peer reconnected", "peer", m.From.Short(), "calls_failed", len(lost))
}
