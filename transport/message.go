package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Frame layout. Every message a node sends starts with a fixed header so the
// receiver knows who sent it and whether it answers a request:
//
//	[0]       version
//	[1]       flags
//	[2:34]    sender PeerID
//	[34:42]   request id (0: none)
//	[42:50]   sender's epoch (when its network started)
//	[50:58]   sender's counter, never repeated within an epoch
//	intro only:    the sender's card (cardLen bytes)
//	fragment only: message id (8), index (4), count (4)
//	payload; sealed: ciphertext and tag (see Scope)
//
// A frame sent in a Scope is sealed; a subscription of a scope takes only
// sealed frames that open, and a plain one only plain frames.
const (
	frameVersion   = 2
	headerLen      = 58
	fragHeaderLen  = 16
	flagReply      = 1 << 0
	flagFragment   = 1 << 1
	flagSealed     = 1 << 2    // sealed in the receiving subscription's scope
	flagIntro      = 1 << 3    // the sender's card follows the header
	flagBroadcast  = 1 << 4    // sealed with the scope key and signed, for everyone
	maxMessageSize = 64 << 20  // a reassembled message may not exceed this
	maxFragMemory  = 256 << 20 // all partial messages together
	fragTTL        = 30 * time.Second
)

// Msg is a message delivered to a Handler. Data is owned by the handler.
type Msg struct {
	From    PeerID
	Subject string
	Data    []byte

	net   *Network
	scope *Scope // the scope it was sealed in; nil for a plain frame
	reply string
	reqID uint64
}

// Respond answers the request m carries. A handler may respond more than
// once to stream several replies to a Call; a plain Request takes the first.
func (m *Msg) Respond(data []byte) error {
	if m.reply == "" || m.reqID == 0 {
		return fmt.Errorf("transport: message on %s expects no reply", m.Subject)
	}
	return m.net.sendFrame(context.Background(), m.scope, m.reply, "", m.From, flagReply, m.reqID, data, false)
}

// ExpectsReply reports whether the sender waits for a Respond.
func (m *Msg) ExpectsReply() bool { return m.reply != "" && m.reqID != 0 }

// Handler handles messages of one subscription. Calls for one subscription
// never overlap; a slow handler delays the next message of its subscription
// only.
type Handler func(*Msg)

// Subscription is a live subscription. Close it to stop delivery.
type Subscription struct {
	net     *Network
	scope   *Scope // nil: plain frames only
	sub     *nats.Subscription
	handler Handler
	// onNoResponders, if set, gets the subject of a server's "no responders"
	// status, sent to a reply subject when a request reached nobody.
	onNoResponders func(subject string)

	mu     sync.RWMutex // held shared while the handler runs
	closed bool

	// windows holds, per sender, which counters this subscription has
	// delivered. Only the subscription's delivery goroutine touches it.
	windows map[PeerID]*replayWindow
	failed  atomic.Uint64 // frames that did not open
}

// Failed counts the frames this subscription dropped because they did not
// open in its scope: not sealed, sealed with another secret, or forged.
// Frames from senders not known yet and replays are not counted here.
func (s *Subscription) Failed() uint64 { return s.failed.Load() }

// Pending limits of every subscription: how far its handler may fall
// behind before the NATS client drops frames. The bytes are two messages
// of the largest size, so a handler still busy with one such message can
// receive the next whole; the count is far more frames than any honest
// burst (Raft pipelines 128 AppendEntries; a largest message is 64 frames
// at the default NATS payload), and bounds how long a flood of small frames
// can hold the messages behind it. An overflow drops frames (Raft and
// callers retry), is counted (Stats.SlowConsumer, Stats.PendingDropped)
// and logged, never silent.
const (
	pendingMsgsLimit  = 1 << 16
	pendingBytesLimit = 2 * maxMessageSize
)

// subscribePlain delivers every plain message published on subject to h.
// Malformed frames are dropped and counted. A handler that falls behind by
// more than pendingMsgsLimit frames or pendingBytesLimit bytes loses
// frames: the overflow is logged and counted (Stats.SlowConsumer and
// Stats.PendingDropped), never silent. subscribePlain in a Scope to take sealed
// messages.
func (n *Network) subscribePlain(subject string, h Handler) (*Subscription, error) {
	return n.subscribe(subject, nil, h)
}

func (n *Network) subscribe(subject string, scope *Scope, h Handler) (*Subscription, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	n.mu.Unlock()
	s := &Subscription{net: n, scope: scope, handler: h, windows: map[PeerID]*replayWindow{}}
	sub, err := n.nc.Subscribe(subject, s.receive)
	if err != nil {
		return nil, fmt.Errorf("transport: subscribe %s: %w", subject, err)
	}
	if err := sub.SetPendingLimits(pendingMsgsLimit, pendingBytesLimit); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("transport: subscribe %s: %w", subject, err)
	}
	s.sub = sub
	if err := n.nc.FlushTimeout(n.rpcTO); err != nil {
		_ = sub.Unsubscribe()
		if n.isClosed() {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("transport: subscribe %s: %w", subject, err)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		_ = sub.Unsubscribe()
		return nil, ErrClosed
	}
	n.subs[s] = struct{}{}
	n.mu.Unlock()
	return s, nil
}

// Close stops delivery and waits for a handler call in progress to return.
// It is idempotent.
func (s *Subscription) Close() { s.close(true) }

// close unsubscribes; with flush, it waits (bounded) for the server to have
// the unsubscribe, unless the connection is down or closing anyway.
func (s *Subscription) close(flush bool) {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if already {
		return
	}
	dropped := s.pendingDropped()
	_ = s.sub.Unsubscribe()
	// Wait until the server has the unsubscribe: from then on a request to
	// this subject fails at once with no responders instead of waiting for a
	// reply that cannot come.
	if flush && s.net.nc.IsConnected() {
		_ = s.net.nc.FlushTimeout(time.Second)
	}
	s.net.mu.Lock()
	s.net.stats.pendingDropped.Add(dropped)
	delete(s.net.subs, s)
	s.net.mu.Unlock()
}

// pendingDropped counts the frames the NATS client dropped because s fell
// behind.
func (s *Subscription) pendingDropped() uint64 {
	d, err := s.sub.Dropped()
	if err != nil || d < 0 {
		return 0
	}
	return uint64(d)
}

func (s *Subscription) receive(nm *nats.Msg) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return
	}
	if len(nm.Data) == 0 && nm.Header.Get("Status") == "503" {
		if s.onNoResponders != nil {
			s.onNoResponders(nm.Subject)
		}
		return
	}
	m, ok := s.net.decode(s, nm)
	if !ok {
		return
	}
	s.handler(m)
}

// decode parses a frame, opens it if sealed, reassembles fragments and
// applies faults. It returns false when there is nothing to deliver (yet).
// Nothing reads a sealed frame's payload before it opened.
func (n *Network) decode(s *Subscription, nm *nats.Msg) (*Msg, bool) {
	b := nm.Data
	n.stats.msgsIn.Add(1)
	n.stats.bytesIn.Add(uint64(len(b)))
	if len(b) < headerLen || b[0] != frameVersion {
		n.stats.malformed.Add(1)
		return nil, false
	}
	flags := b[1]
	m := &Msg{Subject: nm.Subject, net: n, reply: nm.Reply}
	copy(m.From[:], b[2:34])
	m.reqID = binary.BigEndian.Uint64(b[34:42])
	if flags&flagReply != 0 {
		m.reply = "" // replies are never answered
	}
	if n.faults.dropRecv(m.From) {
		n.stats.faultDrops.Add(1)
		return nil, false
	}
	m.scope = s.scope
	if s == n.inboxSub {
		m.scope = n.callScope(m.reqID)
	}
	at := headerLen
	body := b[at:]
	if m.scope != nil || flags&(flagSealed|flagIntro|flagBroadcast) != 0 {
		var ok bool
		if body, ok = n.unseal(s, m, b); !ok {
			return nil, false
		}
	}
	if flags&flagFragment != 0 {
		whole, ok := n.reassemble(s, m.From, body, m.scope != nil)
		if !ok {
			return nil, false
		}
		body = whole
	}
	m.Data = body
	return m, true
}

// unseal opens frame b of m in m's scope and returns what follows the
// header: the fragment header, if any, and the payload.
func (n *Network) unseal(s *Subscription, m *Msg, b []byte) ([]byte, bool) {
	flags := b[1]
	if m.scope == nil || flags&flagSealed == 0 {
		s.failed.Add(1)
		return n.reject(m.scope, "not sealed in the subscription's scope")
	}
	at := headerLen
	var card []byte
	if flags&flagIntro != 0 {
		if len(b) < at+cardLen {
			return n.reject(m.scope, "short card")
		}
		card = b[at : at+cardLen]
		at += cardLen
	}
	if flags&flagFragment != 0 {
		at += fragHeaderLen
	}
	if len(b) < at {
		return n.reject(m.scope, "short frame")
	}
	// The sender's card: the one the frame brings, checked (a broadcast
	// opens first, so a frame without the scope's key costs no signature
	// check), or the one this node keeps.
	var e *peerEntry
	why := "does not open"
	sender := func() (*peerEntry, error) {
		var err error
		switch {
		case card != nil:
			if e, err = n.cards.check(m.From, card); err != nil {
				why = "bad card"
			}
		default:
			if e = n.cards.get(m.From); e == nil {
				n.fetchCard(m.From)
				why, err = "sender unknown", errUnsealed
			}
		}
		return e, err
	}
	payload, err := m.scope.open(b, at, m.Subject, flags&flagBroadcast != 0, sender)
	if err != nil {
		if why == "does not open" {
			s.failed.Add(1)
		}
		return n.reject(m.scope, why)
	}
	if card != nil {
		e = n.cards.keep(e) // the frame opened: its card is worth keeping
	}
	// Each message is delivered at most once: its only frame, or the first
	// fragment of it, must carry a counter this subscription has not seen.
	// Later fragments need no check: they only complete a message whose
	// first fragment passed, in order, under the sender's unique message
	// id. (Checking them too would refuse the fragments of concurrent large
	// messages, which the sender numbers long before it sends them.)
	first := flags&flagFragment == 0 || binary.BigEndian.Uint32(b[at-8:at-4]) == 0
	epoch := binary.BigEndian.Uint64(b[42:50])
	ctr := binary.BigEndian.Uint64(b[50:58])
	if first && !s.accept(m.From, epoch, ctr) {
		return n.reject(m.scope, "replayed")
	}
	e.sawRun(epoch)
	if flags&flagBroadcast == 0 && !n.cards.isKnown(e) {
		n.cards.markKnown(e) // it sealed to us: it has our card
	}
	start := headerLen
	if flags&flagIntro != 0 {
		start += cardLen
	}
	// The fragment header stays in front of the payload, now opened.
	return b[start : at+len(payload)], true
}

// reject drops a frame that a scope's subscription cannot take.
func (n *Network) reject(scope *Scope, why string) ([]byte, bool) {
	n.stats.rejected.Add(1)
	if scope != nil {
		scope.rejected.Add(1)
	}
	n.log.Debug("transport: frame rejected", "why", why)
	return nil, false
}

// accept records counter ctr of sender p's epoch, and reports whether it
// is new: a frame is delivered at most once per subscription.
// A subscription tracks at most maxCards senders. When it is full it
// forgets senders idle for windowIdle and, if still full, refuses new ones:
// forgetting an active sender's window would let its old frames in again.
func (s *Subscription) accept(p PeerID, epoch, ctr uint64) bool {
	now := time.Now()
	w := s.windows[p]
	if w == nil {
		if len(s.windows) >= maxCards {
			for q, v := range s.windows {
				if now.Sub(v.used) > windowIdle {
					delete(s.windows, q)
				}
			}
			if len(s.windows) >= maxCards {
				return false
			}
		}
		w = &replayWindow{}
		s.windows[p] = w
	}
	if !w.accept(epoch, ctr) {
		return false
	}
	w.used = now
	return true
}

// windowIdle is how long a sender must be silent before a full
// subscription forgets its replay window.
const windowIdle = 10 * time.Minute

// replayWindow remembers the last replayBits counters of one sender's
// current epoch. A later epoch starts afresh; an earlier one is refused.
type replayWindow struct {
	used  time.Time // last frame accepted
	epoch uint64
	top   uint64 // highest counter seen; 0 before the first
	bits  [replayBits / 64]uint64
}

const replayBits = 4096

func (w *replayWindow) accept(epoch, ctr uint64) bool {
	switch {
	case epoch < w.epoch || ctr == 0:
		return false
	case epoch > w.epoch:
		*w = replayWindow{epoch: epoch}
	}
	if ctr > w.top {
		// Forget the counters the window slides past, a word at a time
		// where it can: a sender's counter jumps by the frames it sent
		// elsewhere, often by thousands.
		if ctr-w.top >= replayBits {
			w.bits = [replayBits / 64]uint64{}
		} else {
			for i := w.top + 1; i <= ctr; {
				if i%64 == 0 && ctr-i >= 63 {
					w.bits[(i/64)%(replayBits/64)] = 0
					i += 64
					continue
				}
				w.bits[(i/64)%(replayBits/64)] &^= 1 << (i % 64)
				i++
			}
		}
		w.top = ctr
	} else if w.top-ctr >= replayBits {
		return false // too old to tell
	}
	word, bit := &w.bits[(ctr/64)%(replayBits/64)], uint64(1)<<(ctr%64)
	if *word&bit != 0 {
		return false
	}
	*word |= bit
	return true
}

// publishPlain sends a plain message on subject. to names the receiving peer
// for fault injection; the zero PeerID means a broadcast.
func (n *Network) publishPlain(subject string, to PeerID, data []byte) error {
	return n.sendFrame(context.Background(), nil, subject, "", to, 0, 0, data, false)
}

// sendFrame sends data or, if framed, a frame built in place: data[headerLen:]
// is the payload and the header is written into data[:headerLen]. A plain
// frame that fits one message goes out as is, without a copy; data is not
// kept once sendFrame returns. In a scope, frames are sealed for to, or for
// everyone when to is zero. Finding to's card, when this node has none
// yet, waits until ctx ends or for the RPC timeout.
func (n *Network) sendFrame(ctx context.Context, scope *Scope, subject, reply string, to PeerID, flags byte, reqID uint64, data []byte, framed bool) error {
	if n.isClosed() {
		return ErrClosed
	}
	var frame []byte
	if framed {
		frame, data = data, data[headerLen:]
	}
	if len(data) > maxMessageSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), maxMessageSize)
	}
	if n.faults.dropSend(to) {
		n.stats.faultDrops.Add(1)
		return nil
	}
	var intro bool
	var peer *peerEntry // whom a pairwise frame is sealed for
	if scope != nil {
		flags |= flagSealed
		if to.IsZero() {
			flags |= flagBroadcast | flagIntro
		} else {
			var err error
			if peer, err = n.cardOf(ctx, to); err != nil {
				return err
			}
			if flags&flagReply == 0 && !n.cards.isKnown(peer) {
				flags |= flagIntro
			}
		}
		intro = flags&flagIntro != 0
	}
	var frames [][]byte
	var err error
	switch {
	case len(data) > n.maxChunk-headerLen-frameSlack:
		frames, err = n.fragment(scope, subject, peer, flags, reqID, data)
	case frame != nil && !intro:
		n.putHeader(frame, flags, reqID)
		if scope != nil {
			frame, err = scope.seal(frame, headerLen, subject, peer)
		}
		frames = [][]byte{frame}
	default:
		var f []byte
		f, err = n.frame(scope, subject, peer, flags, reqID, nil, data)
		frames = [][]byte{f}
	}
	if err != nil {
		return err
	}
	if d := n.faults.delay(); d > 0 || n.delay.busy() {
		if frame != nil && len(frames) == 1 {
			frames[0] = bytes.Clone(frames[0]) // it may be the caller's frame, reused
		}
		n.delay.push(time.Now().Add(d), func() { n.publish(subject, reply, frames) })
		return nil
	}
	return n.publish(subject, reply, frames)
}

func (n *Network) publish(subject, reply string, frames [][]byte) error {
	for _, f := range frames {
		n.stats.msgsOut.Add(1)
		n.stats.bytesOut.Add(uint64(len(f)))
		var err error
		if reply == "" {
			err = n.nc.Publish(subject, f)
		} else {
			err = n.nc.PublishRequest(subject, reply, f)
		}
		if err != nil {
			if n.isClosed() {
				return ErrClosed
			}
			return fmt.Errorf("transport: publish %s: %w", subject, err)
		}
	}
	return nil
}

// frame builds one frame around data, sealed in scope if there is one: for
// peer, or for everyone when peer is nil.
func (n *Network) frame(scope *Scope, subject string, peer *peerEntry, flags byte, reqID uint64, frag []byte, data []byte) ([]byte, error) {
	size := headerLen + len(frag) + len(data)
	if flags&flagIntro != 0 {
		size += cardLen
	}
	f := make([]byte, headerLen, size+sealOverhead+sigLen)
	n.putHeader(f, flags, reqID)
	if flags&flagIntro != 0 {
		f = append(f, n.ident.card...)
	}
	f = append(f, frag...)
	payloadAt := len(f)
	f = append(f, data...)
	if scope == nil {
		return f, nil
	}
	return scope.seal(f, payloadAt, subject, peer)
}

func (n *Network) putHeader(f []byte, flags byte, reqID uint64) {
	f[0] = frameVersion
	f[1] = flags
	copy(f[2:34], n.id[:])
	binary.BigEndian.PutUint64(f[34:42], reqID)
	binary.BigEndian.PutUint64(f[42:50], n.epoch)
	binary.BigEndian.PutUint64(f[50:58], n.counter.Add(1))
}

// fragment cuts data into frames. The first fragment is built, and so
// numbered, last: a receiver checks only a message's first frame against
// replays, and it must not look older than frames this node numbered while
// building the rest of the message.
func (n *Network) fragment(scope *Scope, subject string, peer *peerEntry, flags byte, reqID uint64, data []byte) ([][]byte, error) {
	chunk := n.maxChunk - headerLen - frameSlack
	count := (len(data) + chunk - 1) / chunk
	id := n.nextID.Add(1)
	frames := make([][]byte, count)
	var fh [fragHeaderLen]byte
	binary.BigEndian.PutUint64(fh[0:8], id)
	binary.BigEndian.PutUint32(fh[12:16], uint32(count))
	for k := 1; k <= count; k++ {
		i := k % count // 1, 2, ..., count-1, then 0
		end := min((i+1)*chunk, len(data))
		binary.BigEndian.PutUint32(fh[8:12], uint32(i))
		f, err := n.frame(scope, subject, peer, flags|flagFragment, reqID, fh[:], data[i*chunk:end])
		if err != nil {
			return nil, err
		}
		frames[i] = f
	}
	return frames, nil
}

// fragKey names a partial message. Whether its fragments are sealed is
// part of it: the message id travels in clear and a plain frame proves
// nothing of the sender it names, so plain fragments never reach a sealed
// message, nor sealed ones a plain message.
type fragKey struct {
	sub    *Subscription
	from   PeerID
	sealed bool
	id     uint64
}

// senderKey names one sender on one subscription, sealed or plain: the
// unit of the per-sender bounds on partial messages. A stranger's plain
// fragments naming a member count against the member's plain bounds only,
// never its sealed ones.
type senderKey struct {
	sub    *Subscription
	from   PeerID
	sealed bool
}

// Bounds on partial messages. A sender has no reason to interleave more
// than a few large messages on one subject: Raft sends one AppendEntries
// at a time per follower (pipelined ones each complete before the next
// starts on the wire unless they are sent concurrently), snapshots are
// chunked below the fragment size, and fragments of one message are
// published back to back. So each (subscription, sender) keeps at most
// maxSenderPartials partial messages (a new one evicts the sender's
// oldest) holding at most maxSenderFragBytes: two messages of the largest
// size, so one can complete while the next starts. A sender over them
// hurts only itself. All partials together are bounded by maxFragMemory
// bytes and maxPartials messages (many senders, each within its caps), and
// expire after fragTTL.
//
// Plain frames prove nothing of their sender, so plain partial messages
// (status answers, cards, users' plain requests) have a budget of their
// own, maxPlainPartials and maxPlainFragBytes, that sealed ones never
// share: a stranger who fills it delays only plain messages.
const (
	maxSenderPartials  = 8
	maxSenderFragBytes = 2 * maxMessageSize
	maxPartials        = 1 << 14
	maxPlainPartials   = 256
	maxPlainFragBytes  = maxMessageSize
)

// fragLimits are the bounds on partial messages of one Network; tests
// lower them (withFragLimits). New resolves them once (orDefaults): the
// zero value of a field there means its default.
type fragLimits struct {
	senderPartials, senderBytes, memory, partials int
	ttl                                           time.Duration
}

// orDefaults fills the zero fields with the defaults.
func (l fragLimits) orDefaults() fragLimits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.senderPartials, maxSenderPartials)
	def(&l.senderBytes, maxSenderFragBytes)
	def(&l.memory, maxFragMemory)
	def(&l.partials, maxPartials)
	if l.ttl <= 0 {
		l.ttl = fragTTL
	}
	return l
}

// partial is a message being reassembled. It is on two lists: all partial
// messages, oldest first (to expire them), and its sender's (to bound
// them).
type partial struct {
	buf   []byte
	next  uint32
	count uint32
	start time.Time

	key          fragKey
	plain        bool     // counted in fragAux.plain, not sealed
	older, newer *partial // in fragAux.all
}

// senderFrags are the partial messages of one sender on one subscription.
type senderFrags struct {
	parts []*partial // oldest first; at most maxSenderPartials
	bytes int
}

// fragAux is what the Network keeps besides frags and fragMem to bound and
// expire partial messages; fragMu guards it all. Nothing here costs more
// than O(maxSenderPartials) per fragment: expiry pops the oldest partials,
// each once.
type fragAux struct {
	oldest, newest *partial // every partial, by start
	by             map[senderKey]*senderFrags
	plain          struct{ count, bytes int } // the plain partials among them

	limits fragLimits  // resolved: no zero fields (see orDefaults)
	timed  bool        // expire on a timer too (set by New; not in tests' stubs)
	timer  *time.Timer // pending expiry, if armed
	armed  bool
	closed bool
	wg     sync.WaitGroup // the timer's function, once armed
}

// Why a partial message was dropped for a bound; labels of the metric
// transport_dropped_messages_total.
const (
	dropSenderPartials = "sender_partials" // a sender's oldest, for its new one
	dropSenderBytes    = "sender_bytes"    // a sender's partials hold too much
	dropFragMemory     = "partial_memory"  // all partials hold too much
	dropSlowConsumer   = "slow_consumer"   // the NATS client's pending buffer was full
)

// reassemble adds one fragment. Fragments of one message arrive in order on
// one subscription; anything else (a gap, a foreign count) drops the whole
// message and counts it as malformed. A message over a bound (see
// maxSenderPartials) is dropped and counted as dropped, and logged at most
// once per dropLogInterval.
func (n *Network) reassemble(s *Subscription, from PeerID, body []byte, sealed bool) ([]byte, bool) {
	if len(body) < fragHeaderLen {
		n.stats.malformed.Add(1)
		return nil, false
	}
	k := fragKey{s, from, sealed, binary.BigEndian.Uint64(body[0:8])}
	idx := binary.BigEndian.Uint32(body[8:12])
	count := binary.BigEndian.Uint32(body[12:16])
	data := body[fragHeaderLen:]

	whole, ok, why := n.addFragment(k, idx, count, data)
	if why != "" {
		n.logDrop(why, from, s)
	}
	return whole, ok
}

// addFragment is reassemble under fragMu. It returns why it dropped a
// message for a bound, if it did.
func (n *Network) addFragment(k fragKey, idx, count uint32, data []byte) (whole []byte, ok bool, why string) {
	n.fragMu.Lock()
	defer n.fragMu.Unlock()
	x := &n.fragAux
	lim := &x.limits
	plain := !k.sealed
	sk := senderKey{k.sub, k.from, k.sealed}
	p := n.frags[k]
	if p == nil {
		if idx != 0 || count < 2 {
			n.stats.malformed.Add(1)
			return nil, false, ""
		}
		now := time.Now()
		n.expireFrags(now)
		if sf := x.by[sk]; sf != nil && len(sf.parts) >= lim.senderPartials {
			n.dropPartial(sf.parts[0], dropSenderPartials)
			why = dropSenderPartials
		}
		if full := len(n.frags)-x.plain.count >= lim.partials; plain && x.plain.count >= maxPlainPartials || !plain && full {
			n.countDrop(dropFragMemory)
			return nil, false, dropFragMemory
		}
		sf := x.by[sk]
		if sf == nil {
			if x.by == nil {
				x.by = map[senderKey]*senderFrags{}
			}
			sf = &senderFrags{}
			x.by[sk] = sf
		}
		p = &partial{count: count, start: now, key: k, plain: plain}
		if plain {
			x.plain.count++
		}
		if n.frags == nil {
			n.frags = map[fragKey]*partial{}
		}
		n.frags[k] = p
		sf.parts = append(sf.parts, p)
		x.push(p)
		n.armFragGC(now)
	}
	if p.plain != plain {
		// Cannot happen: the key tells them apart. Were it to, the
		// fragment is refused and the partial left alone.
		n.stats.malformed.Add(1)
		return nil, false, why
	}
	sf := x.by[sk]
	if idx != p.next || count != p.count || len(p.buf)+len(data) > maxMessageSize {
		n.removePartial(p)
		n.stats.malformed.Add(1)
		return nil, false, why
	}
	// Over the sender's bytes, its older partials go first: the one that
	// grows is the likeliest to complete.
	for sf.bytes+len(data) > lim.senderBytes {
		old := sf.parts[0]
		n.dropPartial(old, dropSenderBytes)
		why = dropSenderBytes
		if old == p {
			return nil, false, why
		}
	}
	if p.plain && x.plain.bytes+len(data) > maxPlainFragBytes || !p.plain && n.fragMem-x.plain.bytes+len(data) > lim.memory {
		n.dropPartial(p, dropFragMemory)
		return nil, false, dropFragMemory
	}
	p.buf = append(p.buf, data...)
	n.fragMem += len(data)
	if p.plain {
		x.plain.bytes += len(data)
	}
	sf.bytes += len(data)
	p.next++
	if p.next < p.count {
		return nil, false, why
	}
	n.removePartial(p)
	return p.buf, true, why
}

// dropPartial drops p for a bound and counts it. fragMu is held.
func (n *Network) dropPartial(p *partial, why string) {
	n.removePartial(p)
	n.countDrop(why)
}

func (n *Network) countDrop(why string) {
	switch why {
	case dropSenderPartials:
		n.stats.dropSenderPartials.Add(1)
	case dropSenderBytes:
		n.stats.dropSenderBytes.Add(1)
	case dropFragMemory:
		n.stats.dropFragMemory.Add(1)
	}
}

// removePartial forgets p, complete or not. fragMu is held.
func (n *Network) removePartial(p *partial) {
	x := &n.fragAux
	delete(n.frags, p.key)
	n.fragMem -= len(p.buf)
	if p.plain {
		x.plain.count--
		x.plain.bytes -= len(p.buf)
	}
	x.unlink(p)
	sk := senderKey{p.key.sub, p.key.from, p.key.sealed}
	if sf := x.by[sk]; sf != nil {
		sf.bytes -= len(p.buf)
		if i := slices.Index(sf.parts, p); i >= 0 {
			sf.parts = slices.Delete(sf.parts, i, i+1)
		}
		if len(sf.parts) == 0 {
			delete(x.by, sk)
		}
	}
}

func (x *fragAux) push(p *partial) {
	p.older, p.newer = x.newest, nil
	if x.newest != nil {
		x.newest.newer = p
	} else {
		x.oldest = p
	}
	x.newest = p
}

func (x *fragAux) unlink(p *partial) {
	if p.older != nil {
		p.older.newer = p.newer
	} else if x.oldest == p {
		x.oldest = p.newer
	}
	if p.newer != nil {
		p.newer.older = p.older
	} else if x.newest == p {
		x.newest = p.older
	}
	p.older, p.newer = nil, nil
}

// expireFrags drops the partial messages older than fragTTL and counts
// them as malformed. Partials are listed by start, so it looks at no more
// than it drops, and one more. fragMu is held.
func (n *Network) expireFrags(now time.Time) {
	ttl := n.fragAux.limits.ttl
	for p := n.fragAux.oldest; p != nil && now.Sub(p.start) > ttl; p = n.fragAux.oldest {
		n.removePartial(p)
		n.stats.malformed.Add(1)
	}
}

// fragGCMin is the shortest wait between two runs of the expiry timer.
const fragGCMin = time.Second

// armFragGC arms the expiry timer for the oldest partial message, unless
// it is armed, the network closed, or it has no timer (a test's stub).
// fragMu is held.
func (n *Network) armFragGC(now time.Time) {
	x := &n.fragAux
	if !x.timed || x.armed || x.closed || x.oldest == nil {
		return
	}
	d := max(x.oldest.start.Add(x.limits.ttl).Sub(now)+time.Millisecond, fragGCMin)
	x.armed = true
	x.wg.Add(1)
	x.timer = time.AfterFunc(d, n.fragGC)
}

// fragGC runs on the expiry timer: it expires what is due and arms the
// timer again while partial messages remain.
func (n *Network) fragGC() {
	defer n.fragAux.wg.Done()
	n.fragMu.Lock()
	defer n.fragMu.Unlock()
	x := &n.fragAux
	x.armed = false
	if x.closed {
		return
	}
	now := time.Now()
	n.expireFrags(now)
	n.armFragGC(now)
}

// closeFrags stops the expiry timer, waits for it, and forgets every
// partial message.
func (n *Network) closeFrags() {
	n.fragMu.Lock()
	x := &n.fragAux
	x.closed = true
	if x.armed && x.timer.Stop() {
		x.armed = false
		x.wg.Done()
	}
	clear(n.frags)
	clear(x.by)
	x.oldest, x.newest = nil, nil
	n.fragMem = 0
	n.fragMu.Unlock()
	x.wg.Wait()
}

// dropLogInterval is the shortest time between two log lines about
// dropped messages; the counters count every one.
const dropLogInterval = 10 * time.Second

// logDrop logs a message dropped for a bound, at most once per
// dropLogInterval.
func (n *Network) logDrop(why string, from PeerID, s *Subscription) {
	if !n.dropLog.allow(dropLogInterval) {
		return
	}
	subject := ""
	if s != nil && s.sub != nil {
		subject = s.sub.Subject
	}
	n.log.Warn("transport: messages dropped over a bound (logged once per interval; see Stats)",
		"why", why, "from", from.Short(), "subject", subject, "interval", dropLogInterval)
}

// call is a request waiting for replies on the node's inbox.
type call struct {
	to    PeerID
	scope *Scope // replies must open in it; nil for plain calls
	fn    func([]byte, error)
	gen   uint64    // Network.connGen when it was made
	once  sync.Once // guards fail
}

func (c *call) fail(err error) { c.once.Do(func() { c.fn(nil, err) }) }

// onNoResponders fails the call whose request reached no subscriber.
func (n *Network) onNoResponders(subject string) {
	id, err := strconv.ParseUint(subject[strings.LastIndexByte(subject, '.')+1:], 10, 64)
	if err != nil {
		return
	}
	n.mu.Lock()
	c := n.calls[id]
	n.mu.Unlock()
	if c != nil {
		c.fail(fmt.Errorf("%w: nobody listens (no responders)", ErrUnreachable))
	}
}

// callScope is the scope a reply to request id must be sealed in.
func (n *Network) callScope(id uint64) *Scope {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c := n.calls[id]; c != nil {
		return c.scope
	}
	return nil
}

func (n *Network) onReply(m *Msg) {
	n.mu.Lock()
	c := n.calls[m.reqID]
	n.mu.Unlock()
	if c == nil || (!c.to.IsZero() && c.to != m.From) || c.scope != m.scope {
		return // late, cancelled, not from whom we asked, or not as sealed as asked
	}
	c.fn(m.Data, nil)
}

// callPlain is Scope.Call for a plain request (unsealed, sender not proven).
func (n *Network) callPlain(subject string, to PeerID, data []byte, fn func(reply []byte, err error)) (cancel func(), err error) {
	return n.call(context.Background(), nil, subject, to, data, false, fn)
}

func (n *Network) call(ctx context.Context, scope *Scope, subject string, to PeerID, data []byte, framed bool, fn func(reply []byte, err error)) (cancel func(), err error) {
	if scope != nil && to.IsZero() {
		return nil, errors.New("transport: a sealed request must name its peer")
	}
	id := n.nextID.Add(1)
	c := &call{to: to, scope: scope, fn: fn}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	c.gen = n.connGen
	n.calls[id] = c
	n.mu.Unlock()
	cancel = func() {
		n.mu.Lock()
		delete(n.calls, id)
		n.mu.Unlock()
	}
	if err := n.sendFrame(ctx, scope, subject, n.inbox+"."+strconv.FormatUint(id, 10), to, 0, id, data, framed); err != nil {
		cancel()
		return nil, err
	}
	return cancel, nil
}

// requestPlain is Scope.Request for a plain request (unsealed, sender not
// proven).
func (n *Network) requestPlain(ctx context.Context, subject string, to PeerID, data []byte) ([]byte, error) {
	return n.request(ctx, nil, subject, to, data, false)
}

func (n *Network) request(ctx context.Context, scope *Scope, subject string, to PeerID, data []byte, framed bool) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.rpcTO)
		defer cancel()
	}
	type result struct {
		data []byte
		err  error
	}
	ch := make(chan result, 1)
	var got atomic.Bool
	stop, err := n.call(ctx, scope, subject, to, data, framed, func(b []byte, err error) {
		if got.CompareAndSwap(false, true) {
			ch <- result{b, err}
		}
	})
	if err != nil {
		return nil, err
	}
	defer stop()
	select {
	case r := <-ch:
		return r.data, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("transport: request %s to %s: %w", subject, to.Short(), ctx.Err())
	}
}

func (n *Network) isClosed() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// delayQueue publishes delayed frames in the order they were sent.
type delayQueue struct {
	mu    sync.Mutex
	n     int // queued or being published
	items []delayed
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

type delayed struct {
	due time.Time
	fn  func()
}

func newDelayQueue() *delayQueue {
	q := &delayQueue{wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go q.run()
	return q
}

func (q *delayQueue) push(due time.Time, fn func()) {
	q.mu.Lock()
	q.items = append(q.items, delayed{due, fn})
	q.n++
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *delayQueue) run() {
	defer close(q.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		q.mu.Lock()
		var next *delayed
		if len(q.items) > 0 {
			next = &q.items[0]
		}
		q.mu.Unlock()
		if next != nil {
			if d := time.Until(next.due); d <= 0 {
				q.mu.Lock()
				it := q.items[0]
				q.items = q.items[1:]
				q.mu.Unlock()
				it.fn()
				q.mu.Lock()
				q.n--
				q.mu.Unlock()
				continue
			} else {
				timer.Reset(d)
			}
		}
		select {
		case <-q.stop:
			return
		case <-q.wake:
		case <-timer.C:
		}
	}
}

func (q *delayQueue) busy() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n > 0
}

func (q *delayQueue) close() {
	close(q.stop)
	<-q.done
}
