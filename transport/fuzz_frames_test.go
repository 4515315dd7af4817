package transport

import (
	"bytes"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/nats-io/nats.go"
)

// Fuzz targets for what a node decodes from NATS in this package's frame
// path. Each holds the same property: nothing panics, and a frame is
// delivered, kept as part of a message, or dropped and counted, never
// dropped silently. (FuzzDecodeFrame, beside the Raft wire fuzzers, checks
// what is delivered; these check that the rest is accounted for.)

// accounted is what a node has counted as dropped.
func accounted(n *Network) uint64 {
	st := n.stats.snapshot()
	return st.Malformed + st.Rejected + st.Dropped + st.FaultDrops
}

// progress is how far the node's partial messages have come: it grows by
// one for every fragment kept.
func progress(n *Network) int {
	n.fragMu.Lock()
	defer n.fragMu.Unlock()
	sum := 0
	for _, p := range n.frags {
		sum += int(p.next)
	}
	return sum
}

// fuzzParty is a sender and a receiver stub in one sealed scope, each
// knowing the other's card, and the receiver's plain, sealed and inbox
// subscriptions.
type fuzzParty struct {
	sender, recv         *Network
	ssc                  *Scope
	plain, sealed, inbox *Subscription
}

// The fuzz party's identities, made once: making them is most of the cost
// of a party.
var (
	fuzzSendID, _ = IdentityFromSeed([32]byte{11})
	fuzzRecvID, _ = IdentityFromSeed([32]byte{12})
)

func newFuzzParty(t testing.TB) *fuzzParty {
	sendID, recvID := fuzzSendID, fuzzRecvID
	secret, _ := SecretFromBytes(bytes.Repeat([]byte{9}, 32))
	id := scopeID("fuzz frames")
	p := &fuzzParty{sender: stubNet(t, sendID), recv: stubNet(t, recvID)}
	if _, err := p.sender.cards.learn(recvID.PeerID(), recvID.card); err != nil {
		t.Fatal(err)
	}
	if _, err := p.recv.cards.learn(sendID.PeerID(), sendID.card); err != nil {
		t.Fatal(err)
	}
	p.ssc = p.sender.Scope(id, secret)
	n := p.recv
	p.plain = &Subscription{net: n, windows: map[PeerID]*replayWindow{}}
	p.sealed = &Subscription{net: n, scope: n.Scope(id, secret), windows: map[PeerID]*replayWindow{}}
	p.inbox = &Subscription{net: n, windows: map[PeerID]*replayWindow{}}
	n.inboxSub = p.inbox
	n.calls = map[uint64]*call{}
	return p
}

// seal builds a frame the sender seals for the receiver (or everyone).
func (p *fuzzParty) seal(t testing.TB, broadcast bool, flags byte, reqID uint64, frag, data []byte) []byte {
	flags |= flagSealed
	var peer *peerEntry
	if broadcast {
		flags |= flagBroadcast | flagIntro
	} else {
		peer = p.sender.cards.get(p.recv.id)
	}
	f, err := p.sender.frame(p.ssc, "s", peer, flags, reqID, frag, data)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// decodeAccounted decodes frame on s and fails t if it was neither
// delivered, nor kept, nor counted.
func decodeAccounted(t *testing.T, n *Network, s *Subscription, frame []byte) (*Msg, bool) {
	t.Helper()
	before, prog := accounted(n), progress(n)
	m, ok := n.decode(s, &nats.Msg{Subject: "s", Data: frame})
	if !ok && accounted(n) == before && progress(n) <= prog {
		t.Fatalf("frame %x dropped silently", trunc(frame))
	}
	return m, ok
}

// FuzzFramesHeader feeds arbitrary bytes as frames to a plain
// subscription, a sealed one and the inbox.
func FuzzFramesHeader(f *testing.F) {
	from := PeerID{3}
	f.Add([]byte{}, uint8(0))
	f.Add([]byte{frameVersion}, uint8(0))
	f.Add(rawFrame(frameVersion, 0, from, 0, []byte("hello")), uint8(0))
	f.Add(rawFrame(frameVersion, flagReply, from, 7, []byte("reply")), uint8(2))
	f.Add(rawFrame(frameVersion, flagFragment, from, 0, rawFragment(1, 0, 2, []byte("a"))), uint8(0))
	f.Add(rawFrame(frameVersion, flagFragment, from, 0, rawFragment(1, 0, 1<<32-1, nil)), uint8(1))
	f.Add(rawFrame(frameVersion, flagSealed|flagIntro|flagBroadcast, from, 0, make([]byte, cardLen+sealOverhead)), uint8(1))
	f.Add(rawFrame(frameVersion, 0xff, from, 1<<63, make([]byte, 200)), uint8(2))
	f.Fuzz(func(t *testing.T, frame []byte, which uint8) {
		p := newFuzzParty(t)
		s := []*Subscription{p.plain, p.sealed, p.inbox}[int(which)%3]
		for range 2 {
			m, ok := decodeAccounted(t, p.recv, s, bytes.Clone(frame))
			if !ok {
				continue
			}
			if len(frame) < headerLen || frame[0] != frameVersion || !bytes.Equal(m.From[:], frame[2:34]) {
				t.Fatalf("delivered %x", trunc(frame))
			}
			if s == p.sealed {
				t.Fatalf("the sealed subscription delivered a frame the sender did not seal")
			}
		}
	})
}

// FuzzFramesUnseal changes one byte of a frame the sender sealed, or cuts
// or extends it: whatever changed, the receiver drops and counts it; the
// frame as sealed opens (a fragment start is kept).
func FuzzFramesUnseal(f *testing.F) {
	seeds := func(t testing.TB, p *fuzzParty) [][]byte {
		return [][]byte{
			p.seal(t, false, flagIntro, 5, nil, []byte("request")),
			p.seal(t, false, 0, 6, nil, nil),
			p.seal(t, false, flagReply, 7, nil, []byte("reply")),
			p.seal(t, true, 0, 0, nil, []byte("broadcast")),
			p.seal(t, false, flagFragment, 0, rawFragment(1, 0, 2, nil), []byte("a")),
			p.seal(t, true, flagFragment, 0, rawFragment(2, 0, 3, nil), []byte("b")),
		}
	}
	f.Add(uint8(0), uint16(0), byte(0), int16(0))
	for i := range 6 {
		f.Add(uint8(i), uint16(1), byte(0), int16(0))
		f.Add(uint8(i), uint16(headerLen+3), byte(1), int16(0))
		f.Add(uint8(i), uint16(60), byte(0x80), int16(-1))
		f.Add(uint8(i), uint16(40), byte(0), int16(3))
	}
	f.Fuzz(func(t *testing.T, which uint8, pos uint16, xor byte, resize int16) {
		p := newFuzzParty(t)
		frames := seeds(t, p)
		frame := frames[int(which)%len(frames)]
		changed := false
		if xor != 0 && len(frame) > 0 {
			frame[int(pos)%len(frame)] ^= xor
			changed = true
		}
		switch {
		case resize < 0:
			frame = frame[:max(0, len(frame)+int(resize))]
			changed = true
		case resize > 0:
			frame = append(frame, make([]byte, resize%512)...)
			changed = changed || resize%512 != 0
		}
		before, prog := accounted(p.recv), progress(p.recv)
		m, ok := decodeAccounted(t, p.recv, p.sealed, frame)
		switch {
		case changed && (ok || progress(p.recv) > prog):
			t.Fatalf("a changed frame was taken (delivered %v): %x", ok, trunc(frame))
		case changed && accounted(p.recv) == before:
			t.Fatalf("a changed frame was not counted")
		case !changed && frame[1]&flagFragment == 0 && (!ok || m.From != p.sender.id):
			t.Fatalf("the frame as sealed did not open")
		case !changed && frame[1]&flagFragment != 0 && progress(p.recv) != prog+1:
			t.Fatalf("the fragment start as sealed was not kept")
		}
	})
}

// FuzzFramesReassemble runs a script of fragments from a few senders on a
// few subscriptions, sealed or plain, through reassembly with small bounds,
// and checks after each step that the bookkeeping agrees with the partial
// messages held and with a model of them, and that no bound is exceeded.
//
// A step is 5 bytes: subscription (bit 0), sender (bits 1-2), plain (bit 3);
// message id; index; count; data length / 2.
func FuzzFramesReassemble(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 10, 0, 0, 1, 2, 10})
	f.Add([]byte{0, 1, 0, 3, 100, 0, 1, 1, 3, 100, 0, 1, 2, 3, 100})
	f.Add(bytes.Repeat([]byte{1, 2, 0, 200, 255}, 40))
	f.Add(bytes.Repeat([]byte{0, 7, 0, 9, 80, 1, 7, 0, 9, 80, 0, 7, 1, 9, 80}, 10))
	// sealed and plain fragments of one sender and message id, interleaved
	f.Add([]byte{0, 1, 0, 3, 10, 8, 1, 1, 3, 20, 0, 1, 2, 3, 10, 0, 1, 1, 3, 10, 0, 1, 2, 3, 10})
	f.Add([]byte{8, 2, 0, 3, 10, 0, 2, 1, 3, 20, 8, 2, 1, 3, 10, 8, 2, 2, 3, 10})
	f.Add(bytes.Repeat([]byte{8, 3, 0, 4, 30, 0, 3, 0, 4, 30, 8, 3, 1, 4, 30}, 8))
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) == 0 {
			return
		}
		n := stubNet(t, fuzzRecvID)
		lim := fragLimits{senderPartials: 1 + int(script[0]%3), senderBytes: 1000, memory: 1800, partials: 6}.orDefaults()
		n.fragAux.limits = lim
		subs := []*Subscription{{net: n}, {net: n}}
		senders := []PeerID{{1}, {2}, {3}}
		held := map[fragKey]int{} // bytes kept for each message since its start
		for len(script) >= 5 {
			op := script[:5]
			script = script[5:]
			s := subs[op[0]&1]
			from := senders[int(op[0]>>1&3)%len(senders)]
			sealed := op[0]&8 == 0
			id, idx, count := uint64(op[1]%16), uint32(op[2]%8), uint32(op[3]%12)
			data := make([]byte, int(op[4])*2)
			before, prog := accounted(n), progress(n)
			whole, ok := n.reassemble(s, from, append(rawFragment(id, idx, count, nil), data...), sealed)
			k := fragKey{s, from, sealed, id}
			switch {
			case ok && len(whole) != held[k]+len(data):
				t.Fatalf("delivered %d bytes, want %d", len(whole), held[k]+len(data))
			case ok:
				delete(held, k)
			case kept(n, k, idx) && idx == 0:
				held[k] = len(data)
			case kept(n, k, idx):
				held[k] += len(data)
			}
			if !ok && accounted(n) == before && progress(n) <= prog {
				t.Fatalf("fragment %v dropped silently", op)
			}
			checkFrags(t, n, lim)
			checkModel(t, n, held)
		}
	})
}

// checkModel checks n's partial messages, and its count of the plain ones,
// against held, the bytes each message kept since its start. Messages
// dropped since are forgotten from held.
func checkModel(t *testing.T, n *Network, held map[fragKey]int) {
	t.Helper()
	n.fragMu.Lock()
	defer n.fragMu.Unlock()
	plain, plainBytes := 0, 0
	for k, b := range held {
		p := n.frags[k]
		if p == nil {
			delete(held, k) // dropped for a bound, a gap or a foreign count
			continue
		}
		if len(p.buf) != b || p.plain == k.sealed {
			t.Fatalf("partial %v holds %d bytes (plain %v), model %d", k, len(p.buf), p.plain, b)
		}
		if !k.sealed {
			plain++
			plainBytes += b
		}
	}
	if len(held) != len(n.frags) {
		t.Fatalf("%d partials held, model %d", len(n.frags), len(held))
	}
	if x := &n.fragAux; x.plain.count != plain || x.plain.bytes != plainBytes {
		t.Fatalf("plain partials counted as %d (%d bytes), model %d (%d bytes)", x.plain.count, x.plain.bytes, plain, plainBytes)
	}
}

// kept reports whether fragment idx of message k was just kept.
func kept(n *Network, k fragKey, idx uint32) bool {
	n.fragMu.Lock()
	defer n.fragMu.Unlock()
	p := n.frags[k]
	return p != nil && p.next == idx+1
}

// checkFrags checks the bookkeeping of n's partial messages against them.
func checkFrags(t *testing.T, n *Network, lim fragLimits) {
	t.Helper()
	n.fragMu.Lock()
	defer n.fragMu.Unlock()
	x := &n.fragAux
	mem, listed := 0, 0
	for p := x.oldest; p != nil; p = p.newer {
		listed++
		if n.frags[p.key] != p {
			t.Fatalf("listed partial %v not in frags", p.key)
		}
		if p.newer != nil && p.newer.start.Before(p.start) {
			t.Fatalf("partials out of order")
		}
	}
	if listed != len(n.frags) {
		t.Fatalf("%d partials listed, %d held", listed, len(n.frags))
	}
	per := map[senderKey]int{}
	sealedMem, sealedCount := 0, 0
	for k, p := range n.frags {
		mem += len(p.buf)
		per[senderKey{k.sub, k.from, k.sealed}] += len(p.buf)
		if p.next == 0 || p.next >= p.count {
			t.Fatalf("partial at %d of %d", p.next, p.count)
		}
		if p.plain == k.sealed {
			t.Fatalf("partial %v kept as plain %v", k, p.plain)
		}
		if k.sealed {
			sealedMem += len(p.buf)
			sealedCount++
		}
	}
	if mem != n.fragMem || sealedMem > lim.memory || sealedCount > lim.partials {
		t.Fatalf("%d bytes held, %d counted; sealed: %d bytes, bound %d; %d partials", mem, n.fragMem, sealedMem, lim.memory, sealedCount)
	}
	if plainMem, plain := mem-sealedMem, len(n.frags)-sealedCount; plainMem > maxPlainFragBytes || plain > maxPlainPartials {
		t.Fatalf("plain: %d bytes in %d partials", plainMem, plain)
	}
	if len(x.by) != len(per) {
		t.Fatalf("%d senders kept, %d hold partials", len(x.by), len(per))
	}
	for sk, sf := range x.by {
		if sf.bytes != per[sk] || sf.bytes > lim.senderBytes || len(sf.parts) > lim.senderPartials || len(sf.parts) == 0 {
			t.Fatalf("sender holds %d bytes (counted %d) in %d partials", per[sk], sf.bytes, len(sf.parts))
		}
	}
}

// FuzzFramesCard parses arbitrary bytes as a peer card, as a frame's
// introduction or a card reply brings it.
func FuzzFramesCard(f *testing.F) {
	id, _ := IdentityFromSeed([32]byte{5})
	f.Add(id.card, false)
	f.Add(id.card[:cardLen-1], false)
	f.Add(append([]byte{2}, id.card[1:]...), true)
	f.Add(make([]byte, cardLen), true)
	f.Fuzz(func(t *testing.T, raw []byte, asOther bool) {
		c, err := parseCard(raw)
		if err != nil {
			if c != nil {
				t.Fatal("a card and an error")
			}
			return
		}
		if !bytes.Equal(c.raw, raw) || len(raw) != cardLen {
			t.Fatalf("card %x kept as %x", raw, c.raw)
		}
		cards := newCards(id)
		claim := c.id
		if asOther {
			claim = PeerID{1}
		}
		e, err := cards.check(claim, raw)
		if (err == nil) != (claim == c.id) {
			t.Fatalf("check as %s: %v", claim.Short(), err)
		}
		if err == nil && e.card.id != c.id {
			t.Fatalf("checked as %s", e.card.id.Short())
		}
	})
}

// FuzzFramesStatus decodes arbitrary bytes as a status answer, as Survey
// does, and re-encodes what decodes.
func FuzzFramesStatus(f *testing.F) {
	st := NodeStatus{Peer: PeerID{1}, Network: "n", Started: time.Unix(1, 2).UTC(), URL: "nats://x",
		Sections: map[string]cbor.RawMessage{"g": mustCBOR(f, map[string]int{"a": 1})}}
	f.Add(mustCBOR(f, st))
	f.Add(mustCBOR(f, NodeStatus{}))
	f.Add([]byte{0xa1, 0x64, 'p', 'e', 'e', 'r', 0x58, 0x20})
	f.Add([]byte{0xbf, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var got NodeStatus
		if decMode.Unmarshal(b, &got) != nil {
			return
		}
		again, err := encMode.Marshal(got)
		if err != nil {
			return // e.g. a section that is not well-formed CBOR
		}
		var back NodeStatus
		if err := decMode.Unmarshal(again, &back); err != nil {
			t.Fatalf("re-encoded status does not decode: %v", err)
		}
		if back.Peer != got.Peer || back.Network != got.Network || len(back.Sections) != len(got.Sections) {
			t.Fatalf("round trip changed %+v to %+v", got, back)
		}
	})
}

func mustCBOR(t testing.TB, v any) []byte {
	b, err := encMode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
