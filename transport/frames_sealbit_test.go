package transport

import (
	"bytes"
	"testing"

	"github.com/nats-io/nats.go"
)

// The node's inbox takes plain frames (request id 0) and sealed replies on
// one subscription, and a fragment's message id travels in clear. A
// stranger without the scope's secret, naming a member as sender, must not
// reach the member's sealed partial message: not evict it, not add to it,
// and not upset the plain budget's accounting. These tests send the
// stranger's plain fragments between the member's sealed ones.

// inboxParty is a fuzz party whose receiver waits for a sealed reply to
// request callID from the sender.
func inboxParty(t *testing.T) *fuzzParty {
	p := newFuzzParty(t)
	p.recv.calls[callID] = &call{to: p.sender.id, scope: p.sealed.scope}
	return p
}

const callID = 7

// sealedFrag is fragment idx of count of the sender's sealed reply msg.
func (p *fuzzParty) sealedFrag(t *testing.T, msg uint64, idx, count uint32, data []byte) []byte {
	return p.seal(t, false, flagReply|flagFragment, callID, rawFragment(msg, idx, count, nil), data)
}

// strangerFrag is a plain fragment a stranger sends as from.
func strangerFrag(from PeerID, msg uint64, idx, count uint32, data []byte) []byte {
	return rawFrame(frameVersion, flagFragment, from, 0, rawFragment(msg, idx, count, data))
}

func inboxDecode(p *fuzzParty, frame []byte) (*Msg, bool) {
	return p.recv.decode(p.inbox, &nats.Msg{Subject: "s", Data: frame})
}

// plainBudget returns the plain partials' count and bytes as counted, and
// as held.
func plainBudget(n *Network) (count, bytes, heldCount, heldBytes int) {
	n.fragMu.Lock()
	defer n.fragMu.Unlock()
	for _, q := range n.frags {
		if q.plain {
			heldCount++
			heldBytes += len(q.buf)
		}
	}
	return n.fragAux.plain.count, n.fragAux.plain.bytes, heldCount, heldBytes
}

func checkPlainBudget(t *testing.T, n *Network) {
	t.Helper()
	if c, b, hc, hb := plainBudget(n); c != hc || b != hb {
		t.Fatalf("plain partials counted as %d (%d bytes), held %d (%d bytes)", c, b, hc, hb)
	}
}

// (a) Plain fragment starts under a member's id do not evict its sealed
// partial message.
func TestStrangerPlainFragmentsDoNotEvictSealed(t *testing.T) {
	p := inboxParty(t)
	want := []byte("one two three")
	if _, ok := inboxDecode(p, p.sealedFrag(t, 1, 0, 3, want[:4])); ok {
		t.Fatal("a first fragment delivered")
	}
	for i := range maxSenderPartials {
		inboxDecode(p, strangerFrag(p.sender.id, uint64(100+i), 0, 2, []byte("x")))
	}
	inboxDecode(p, p.sealedFrag(t, 1, 1, 3, want[4:8]))
	m, ok := inboxDecode(p, p.sealedFrag(t, 1, 2, 3, want[8:]))
	if !ok || !bytes.Equal(m.Data, want) || m.scope != p.sealed.scope {
		t.Fatalf("the member's sealed message was lost to a stranger's plain fragments (delivered %v); %+v", ok, p.recv.stats.snapshot())
	}
	checkPlainBudget(t, p.recv)
}

// (b) A plain fragment with the right message id and index is not spliced
// into a member's sealed message: the message is never delivered with it,
// and the member's own fragments still complete it.
func TestStrangerPlainFragmentNotSplicedIntoSealed(t *testing.T) {
	p := inboxParty(t)
	if _, ok := inboxDecode(p, p.sealedFrag(t, 1, 0, 3, []byte("head"))); ok {
		t.Fatal("a first fragment delivered")
	}
	if _, ok := inboxDecode(p, strangerFrag(p.sender.id, 1, 1, 3, []byte("EVIL"))); ok {
		t.Fatal("the stranger's fragment completed a message")
	}
	if m, ok := inboxDecode(p, p.sealedFrag(t, 1, 2, 3, []byte("tail"))); ok {
		t.Fatalf("delivered %q as sealed: a stranger's plain fragment spliced into a member's sealed message", m.Data)
	}

	// The member's message, with a stranger's fragment in between, arrives
	// as sent.
	want := []byte("headbodytail")
	inboxDecode(p, p.sealedFrag(t, 2, 0, 3, want[:4]))
	inboxDecode(p, strangerFrag(p.sender.id, 2, 1, 3, []byte("EVIL")))
	inboxDecode(p, p.sealedFrag(t, 2, 1, 3, want[4:8]))
	m, ok := inboxDecode(p, p.sealedFrag(t, 2, 2, 3, want[8:]))
	if !ok || !bytes.Equal(m.Data, want) || m.scope != p.sealed.scope {
		t.Fatalf("the member's sealed message did not arrive as sent (delivered %v)", ok)
	}
	checkPlainBudget(t, p.recv)
}

// (c) However plain and sealed fragments interleave, the plain budget
// counts exactly the plain partials held, and frees what they held, so it
// does not fill up with bytes nobody holds.
func TestPlainFragmentBudgetDoesNotLeak(t *testing.T) {
	p := inboxParty(t)
	for i := range uint64(20) {
		msg := 10 + i
		inboxDecode(p, p.sealedFrag(t, msg, 0, 3, []byte("head")))
		inboxDecode(p, strangerFrag(p.sender.id, msg, 1, 3, bytes.Repeat([]byte{1}, 100)))
		inboxDecode(p, p.sealedFrag(t, msg, 2, 3, []byte("tail")))
		checkPlainBudget(t, p.recv)
		// and the other way: a member's sealed fragment on a stranger's
		// plain partial under the member's id
		inboxDecode(p, strangerFrag(p.sender.id, 1000+msg, 0, 3, bytes.Repeat([]byte{2}, 50)))
		inboxDecode(p, p.sealedFrag(t, 1000+msg, 1, 3, []byte("body")))
		checkPlainBudget(t, p.recv)
	}
	// A stranger's plain fragmented message still arrives, plain.
	other := NewPeerID()
	inboxDecode(p, strangerFrag(other, 5, 0, 2, []byte("pl")))
	m, ok := inboxDecode(p, strangerFrag(other, 5, 1, 2, []byte("ain")))
	if !ok || string(m.Data) != "plain" || m.scope != nil {
		t.Fatalf("a plain fragmented message was not delivered plain (delivered %v)", ok)
	}
	checkPlainBudget(t, p.recv)
}
