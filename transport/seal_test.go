package transport

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/internal/nodekey"
)

// echoIn answers every request on subject in scope sc with prefix+data.
func echoIn(t testing.TB, sc *Scope, subject, prefix string) *Subscription {
	t.Helper()
	return subscribeIn(t, sc, subject, func(m *Msg) {
		if !m.ExpectsReply() {
			t.Errorf("request on %s does not expect a reply", subject)
			return
		}
		if err := m.Respond(append([]byte(prefix), m.Data...)); err != nil {
			t.Errorf("Respond: %v", err)
		}
	})
}

// showsPlaintext reports whether frame carries any 32-byte run of data as
// is.
func showsPlaintext(frame, data []byte) bool {
	for at := 0; at+32 <= len(data); at += 997 {
		if bytes.Contains(frame, data[at:at+32]) {
			return true
		}
	}
	return false
}

// TestScopeRoundTrip: two nodes in one scope exchange requests, streamed
// replies, pairwise messages, broadcasts, and messages large enough to be
// fragmented, both ways; in an open scope and in one sealed with a secret.
// On the wire every frame is sealed, fits the chunk size, and shows none of
// its payload; a third node of the scope hears the broadcasts but cannot
// open what the two say to each other. Nothing is rejected.
func TestScopeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret Secret
	}{{"open", Secret{}}, {"sealed", NewSecret()}} {
		t.Run(tc.name, func(t *testing.T) {
			const maxChunk = 4096
			a := newNet(t, withMaxChunk(maxChunk))
			b := join(t, a, withMaxChunk(maxChunk))
			c := join(t, a, withMaxChunk(maxChunk))
			id := scopeID("roundtrip")
			scA, scB, scC := a.Scope(id, tc.secret), b.Scope(id, tc.secret), c.Scope(id, tc.secret)
			if scA.Sealed() == tc.secret.IsZero() {
				t.Fatalf("Sealed() = %v with secret %v", scA.Sealed(), tc.secret)
			}
			if scA.Network() != a {
				t.Fatal("Network() is not the scope's node")
			}
			subj := func(s string) string { return a.Subject("rt", s) }
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()

			// Requests and their replies.
			echoIn(t, scB, subj("echo"), "b:")
			toB := capture(t, b, subj("echo"))
			toA := capture(t, a, a.inbox+".*")
			const q = "ping 0123456789abcdef"
			for i := range 2 {
				got, err := scA.Request(ctx, subj("echo"), b.ID(), []byte(q))
				if err != nil || string(got) != "b:"+q {
					t.Fatalf("request %d = %q, %v", i, got, err)
				}
				if i == 0 {
					// a asked b for its card first, in the clear.
					f := nextFrame(t, toA)
					if f[1] != flagReply || !bytes.Equal(f[2:34], b.id[:]) || !bytes.Equal(f[headerLen:], b.ident.card) {
						t.Fatalf("first reply to a: flags %#x, %d bytes; want b's card", f[1], len(f))
					}
				}
				req, rep := nextFrame(t, toB), nextFrame(t, toA)
				// The first request introduces a; b's sealed reply shows
				// that b has a's card, so the second goes without it.
				wantFlags := byte(flagSealed | flagIntro)
				wantLen := headerLen + cardLen + len(q) + sealOverhead
				if i == 1 {
					wantFlags, wantLen = flagSealed, headerLen+len(q)+sealOverhead
				}
				if req[1] != wantFlags || len(req) != wantLen || !bytes.Equal(req[2:34], a.id[:]) {
					t.Errorf("request %d: flags %#x, %d bytes, from %x; want flags %#x, %d bytes, from a",
						i, req[1], len(req), req[2:6], wantFlags, wantLen)
				}
				if i == 0 && !bytes.Equal(req[headerLen:headerLen+cardLen], a.ident.card) {
					t.Error("the introduction is not a's card")
				}
				if rep[1] != flagSealed|flagReply || len(rep) != headerLen+len("b:"+q)+sealOverhead || !bytes.Equal(rep[2:34], b.id[:]) {
					t.Errorf("reply %d: flags %#x, %d bytes", i, rep[1], len(rep))
				}
				if bytes.Contains(req, []byte(q)) || bytes.Contains(rep, []byte(q)) {
					t.Errorf("round %d: the payload travels in the clear", i)
				}
				if ep, ctr := frameCounter(req); ep != a.epoch || ctr == 0 {
					t.Errorf("request %d: epoch %d counter %d", i, ep, ctr)
				}
			}
			// A node may ask itself.
			echoIn(t, scA, subj("self"), "a:")
			if got, err := scA.Request(ctx, subj("self"), a.ID(), []byte("x")); err != nil || string(got) != "a:x" {
				t.Fatalf("request to self = %q, %v", got, err)
			}
			// A sealed request names its peer.
			if _, err := scA.Request(ctx, subj("echo"), PeerID{}, nil); err == nil {
				t.Error("a sealed request to everyone was sent")
			}
			if _, err := scA.Call(subj("echo"), PeerID{}, nil, func([]byte, error) {}); err == nil {
				t.Error("a sealed call to everyone was sent")
			}

			// Streamed replies, small and fragmented.
			subscribeIn(t, scB, subj("stream"), func(m *Msg) {
				for i := range 3 {
					if err := m.Respond(append(bytes.Clone(m.Data), byte(i))); err != nil {
						t.Errorf("Respond: %v", err)
					}
				}
			})
			for _, size := range []int{10, 300 << 10} {
				req := pattern(size, 7)
				replies := make(chan []byte, 3)
				stop, err := scA.Call(subj("stream"), b.ID(), req, func(r []byte, err error) {
					if err != nil {
						t.Errorf("reply: %v", err)
					}
					replies <- r
				})
				if err != nil {
					t.Fatal(err)
				}
				for i := range 3 {
					select {
					case r := <-replies:
						if !bytes.Equal(r, append(bytes.Clone(req), byte(i))) {
							t.Fatalf("size %d: reply %d corrupted (%d bytes)", size, i, len(r))
						}
					case <-time.After(waitTimeout):
						t.Fatalf("size %d: reply %d missing", size, i)
					}
				}
				stop()
			}

			// Pairwise messages and broadcasts, small and fragmented, with
			// every frame on the wire checked. c listens on the pairwise
			// subject too.
			pairB, _ := collectIn(t, scB, subj("p"))
			pairC, subC := collectIn(t, scC, subj("p"))
			allA, _ := collectIn(t, scA, subj("all"))
			allB, _ := collectIn(t, scB, subj("all"))
			allC, _ := collectIn(t, scC, subj("all"))
			wireP, wireAll := capture(t, b, subj("p")), capture(t, b, subj("all"))
			// c knows a's card, so refusing a's frames to b never makes it
			// ask a for it: a sends nothing but the messages below.
			if _, err := c.cardOf(ctx, a.ID()); err != nil {
				t.Fatal(err)
			}
			single := maxChunk - headerLen - frameSlack
			var pairFrames uint64
			for i, size := range []int{0, 1, single, single + 1, 3 * single, 1 << 20} {
				data := pattern(size, byte(i))
				for _, to := range []PeerID{b.ID(), {}} {
					subject, wire := subj("p"), wireP
					if to.IsZero() {
						subject, wire = subj("all"), wireAll
					}
					before := a.Stats().MsgsOut
					if err := scA.Publish(subject, to, data); err != nil {
						t.Fatalf("size %d: %v", size, err)
					}
					frames := a.Stats().MsgsOut - before
					want := uint64(1)
					if size > single {
						want = uint64((size + single - 1) / single)
					}
					if frames != want {
						t.Errorf("size %d to %s: %d frames, want %d", size, to.Short(), frames, want)
					}
					if !to.IsZero() {
						pairFrames += frames
					}
					for range frames {
						f := nextFrame(t, wire)
						if len(f) > maxChunk {
							t.Fatalf("size %d: a %d-byte frame, over the %d-byte chunk", size, len(f), maxChunk)
						}
						wantFlags := byte(flagSealed)
						if to.IsZero() {
							wantFlags |= flagBroadcast | flagIntro // every broadcast carries the card
						}
						if want > 1 {
							wantFlags |= flagFragment
						}
						if f[1]&^flagIntro != wantFlags&^flagIntro || (to.IsZero() && f[1]&flagIntro == 0) {
							t.Fatalf("size %d to %s: flags %#x, want %#x", size, to.Short(), f[1], wantFlags)
						}
						if showsPlaintext(f, data) {
							t.Fatalf("size %d to %s: payload in the clear", size, to.Short())
						}
					}
					var got []<-chan *Msg
					if to.IsZero() {
						got = []<-chan *Msg{allA, allB, allC} // a hears its own broadcasts
					} else {
						got = []<-chan *Msg{pairB}
					}
					for _, ch := range got {
						m := next(t, ch)
						if !bytes.Equal(m.Data, data) || m.From != a.ID() || m.Subject != subject {
							t.Fatalf("size %d to %s: got %d bytes from %s on %s", size, to.Short(), len(m.Data), m.From.Short(), m.Subject)
						}
						if m.ExpectsReply() || m.Respond(nil) == nil {
							t.Error("a published message takes a reply")
						}
					}
				}
			}
			// c has the scope but not the pair key of a and b: it opened
			// none of their pairwise frames.
			eventually(t, "c refuses every frame of a to b", func() bool { return subC.Failed() == pairFrames })
			empty(t, pairC)
			if scC.Rejected() != pairFrames {
				t.Errorf("c rejected %d of a's %d frames to b", scC.Rejected(), pairFrames)
			}
			for _, n := range []*Network{a, b} {
				if st := n.Stats(); st.Rejected != 0 || st.Malformed != 0 {
					t.Errorf("%s: %+v", n.ID().Short(), st)
				}
			}
			if scA.Rejected() != 0 || scB.Rejected() != 0 {
				t.Errorf("scopes rejected %d and %d frames", scA.Rejected(), scB.Rejected())
			}
		})
	}
}

// TestScopeDefaultSecret: a node's WithSecret seals the scopes that name no
// secret; a scope that names one uses it instead.
func TestScopeDefaultSecret(t *testing.T) {
	s, other := NewSecret(), NewSecret()
	a := newNet(t, WithSecret(s))
	b := join(t, a)
	id := scopeID("default")
	if !a.Scope(id, Secret{}).Sealed() || b.Scope(id, Secret{}).Sealed() {
		t.Fatal("Sealed() ignores the node's default secret")
	}
	echoIn(t, b.Scope(id, s), b.Subject("echo"), "")
	echoIn(t, b.Scope(id, other), b.Subject("other"), "")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if got, err := a.Scope(id, Secret{}).Request(ctx, a.Subject("echo"), b.ID(), []byte("x")); err != nil || string(got) != "x" {
		t.Fatalf("default secret: %q, %v", got, err)
	}
	if got, err := a.Scope(id, other).Request(ctx, a.Subject("other"), b.ID(), []byte("y")); err != nil || string(got) != "y" {
		t.Fatalf("named secret: %q, %v", got, err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if _, err := a.Scope(id, Secret{}).Request(short, a.Subject("other"), b.ID(), []byte("z")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("default secret where another is named: %v, want no answer", err)
	}
}

// TestScopeRefusesOutsiders: nodes that do not hold the scope's secret
// (another secret, none, or the right secret for another scope id) send
// pairwise, broadcast, request, and plain frames to a member: nothing is
// delivered, no handler runs, their requests go unanswered, and every frame
// is counted as rejected.
func TestScopeRefusesOutsiders(t *testing.T) {
	secret := NewSecret()
	id := scopeID("members")
	a := newNet(t)
	b := join(t, a)
	scA, scB := a.Scope(id, secret), b.Scope(id, secret)
	in, sub := collectIn(t, scB, b.Subject("in"))
	var asked atomic.Int32
	ask := subscribeIn(t, scB, b.Subject("ask"), func(m *Msg) {
		asked.Add(1)
		_ = m.Respond([]byte("answer"))
	})
	for _, tc := range []struct {
		name   string
		id     [32]byte
		secret Secret
	}{
		{"other secret", id, NewSecret()},
		{"no secret", id, Secret{}},
		{"other scope", scopeID("elsewhere"), secret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := join(t, a)
			sc := o.Scope(tc.id, tc.secret)
			before, scBefore := b.Stats(), scB.Rejected()
			failed, askFailed := sub.Failed(), ask.Failed()
			if err := sc.Publish(o.Subject("in"), b.ID(), []byte("pairwise")); err != nil {
				t.Fatal(err)
			}
			if err := sc.Publish(o.Subject("in"), PeerID{}, []byte("broadcast")); err != nil {
				t.Fatal(err)
			}
			if err := o.publishPlain(o.Subject("in"), b.ID(), []byte("plain")); err != nil {
				t.Fatal(err)
			}
			short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if r, err := sc.Request(short, o.Subject("ask"), b.ID(), []byte("q")); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("request: %q, %v; want no answer", r, err)
			}
			eventually(t, "four frames rejected", func() bool { return b.Stats().Rejected-before.Rejected == 4 })
			// A member's message is the first delivered since.
			if err := scA.Publish(a.Subject("in"), b.ID(), []byte("member")); err != nil {
				t.Fatal(err)
			}
			if m := next(t, in); string(m.Data) != "member" || m.From != a.ID() {
				t.Fatalf("delivered %q from %s", m.Data, m.From.Short())
			}
			empty(t, in)
			if n := asked.Load(); n != 0 {
				t.Errorf("handler ran %d times", n)
			}
			after := b.Stats()
			if after.Rejected-before.Rejected != 4 || after.Malformed != before.Malformed {
				t.Errorf("stats %+v after %+v", after, before)
			}
			if got := scB.Rejected() - scBefore; got != 4 {
				t.Errorf("scope counted %d rejected, want 4", got)
			}
			if got := sub.Failed() - failed; got != 3 {
				t.Errorf("subscription counted %d frames that did not open, want 3", got)
			}
			if got := ask.Failed() - askFailed; got != 1 {
				t.Errorf("request subscription counted %d frames that did not open, want 1", got)
			}
		})
	}
}

// TestScopeReplayAndTamper captures sealed frames (pairwise, broadcast, and
// the first fragment of a large message) on their way to a member that does
// not listen yet. Once it listens: each frame with any one bit flipped, in
// header, card, fragment header, payload, tag or signature, is refused and
// counted; the frames as captured are then delivered, once each; published
// again they are refused as replays, and so they are on another subject.
func TestScopeReplayAndTamper(t *testing.T) {
	secret := NewSecret()
	id := scopeID("replay")
	a := newNet(t, withMaxChunk(4096))
	b := join(t, a)
	scA, scB := a.Scope(id, secret), b.Scope(id, secret)
	subject := b.Subject("r")
	wire := capture(t, b, subject)
	big := pattern(5000, 3)
	if err := scA.Publish(subject, b.ID(), []byte("pairwise")); err != nil {
		t.Fatal(err)
	}
	if err := scA.Publish(subject, PeerID{}, []byte("broadcast")); err != nil {
		t.Fatal(err)
	}
	if err := scA.Publish(subject, b.ID(), big); err != nil {
		t.Fatal(err)
	}
	frames := [][]byte{nextFrame(t, wire), nextFrame(t, wire), nextFrame(t, wire), nextFrame(t, wire)}
	if frames[2][1]&flagFragment == 0 || frames[3][1]&flagFragment == 0 {
		t.Fatal("the large message is not fragmented")
	}

	in, sub := collectIn(t, scB, subject)
	raw := rawConn(t, b)
	pub := func(subject string, f []byte) {
		t.Helper()
		if err := raw.Publish(subject, f); err != nil {
			t.Fatal(err)
		}
	}
	before := b.Stats()
	flips := 0
	for _, f := range frames[:3] { // the last fragment is left whole
		for i := range f {
			if i >= 220 && i < len(f)-100 && i%53 != 0 {
				continue // every byte of header, card and fragment header, a sample of the rest
			}
			bits := []int{i % 8}
			if i < 2 {
				bits = []int{0, 1, 2, 3, 4, 5, 6, 7} // every bit of version and flags
			}
			for _, bit := range bits {
				g := bytes.Clone(f)
				g[i] ^= 1 << bit
				pub(subject, g)
				flips++
			}
		}
	}
	// Then the frames as captured: the first delivered messages must be
	// theirs, in order.
	for _, f := range frames {
		pub(subject, f)
	}
	for _, want := range [][]byte{[]byte("pairwise"), []byte("broadcast"), big} {
		if m := next(t, in); !bytes.Equal(m.Data, want) || m.From != a.ID() {
			t.Fatalf("delivered %q from %s, want %q", trunc(m.Data), m.From.Short(), trunc(want))
		}
	}
	eventually(t, "every tampered frame counted", func() bool {
		st := b.Stats()
		return st.Malformed+st.Rejected-before.Malformed-before.Rejected == uint64(flips)
	})
	if got := b.Stats().Malformed - before.Malformed; got != 3*8 {
		t.Errorf("%d tampered frames malformed, want %d (the version flips)", got, 3*8)
	}
	if sub.Failed() == 0 {
		t.Error("no tampered frame counted as failing to open")
	}

	// Replays, as they are and on another subject where b also listens.
	other := b.Subject("r2")
	inOther, _ := collectIn(t, scB, other)
	failed, rejected, scRejected := sub.Failed(), b.Stats().Rejected, scB.Rejected()
	malformed := b.Stats().Malformed
	for _, f := range frames {
		pub(subject, f)
		pub(other, f)
	}
	// A replayed single frame or first fragment is refused as a replay; a
	// replayed later fragment has no message to complete and is dropped as
	// malformed.
	eventually(t, "replays counted", func() bool {
		st := b.Stats()
		return st.Rejected-rejected == 7 && st.Malformed-malformed == 1
	})
	if err := scA.Publish(subject, b.ID(), []byte("fresh")); err != nil {
		t.Fatal(err)
	}
	if err := scA.Publish(other, b.ID(), []byte("fresh too")); err != nil {
		t.Fatal(err)
	}
	expect(t, in, "fresh")
	expect(t, inOther, "fresh too")
	// Every replay on the other subject fails to open; on the first, all but
	// the big message's second fragment are refused as replays.
	if got := scB.Rejected() - scRejected; got != 7 {
		t.Errorf("scope counted %d rejected replays, want 7", got)
	}
	if got := sub.Failed() - failed; got != 0 {
		t.Errorf("replays counted as %d frames that do not open on the first subscription, want 0", got)
	}
	empty(t, in)
	empty(t, inOther)
}

// forge builds a frame on subject as sc's node would send it to peer to (or
// to everyone), but naming claimed as its sender and carrying card (if not
// nil) as the introduction. It is sealed with what sc's node has: its own
// keys, and the scope's secret if sc's node holds it.
func forge(t testing.TB, sc *Scope, subject string, claimed, to PeerID, card []byte, flags byte, reqID uint64, body []byte) []byte {
	t.Helper()
	flags |= flagSealed
	if to.IsZero() {
		flags |= flagBroadcast
	}
	if card != nil {
		flags |= flagIntro
	}
	f := make([]byte, headerLen, headerLen+len(card)+len(body)+sealOverhead+sigLen)
	sc.net.putHeader(f, flags, reqID)
	copy(f[2:34], claimed[:])
	f = append(f, card...)
	payloadAt := len(f)
	f = append(f, body...)
	var peer *peerEntry
	if !to.IsZero() {
		var err error
		if peer, err = sc.net.cardOf(context.Background(), to); err != nil {
			t.Fatal(err)
		}
	}
	f, err := sc.seal(f, payloadAt, subject, peer)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestScopeForgedSender: a member m (it holds the secret) sends frames that
// name another member a as their sender, with no card, with its own card,
// or with a's card; pairwise and broadcast. A stranger with no card does
// the same. None opens: each is counted, nothing is delivered, and b still
// holds a's true card. m's frames as itself are delivered.
func TestScopeForgedSender(t *testing.T) {
	secret := NewSecret()
	id := scopeID("forge")
	a := newNet(t)
	b, m := join(t, a), join(t, a)
	scA, scB, scM := a.Scope(id, secret), b.Scope(id, secret), m.Scope(id, secret)
	subject := b.Subject("f")
	in, sub := collectIn(t, scB, subject)
	// b knows a and m, as members do.
	for _, sc := range []*Scope{scA, scM} {
		if err := sc.Publish(subject, b.ID(), []byte("hello")); err != nil {
			t.Fatal(err)
		}
		next(t, in)
	}
	raw := rawConn(t, m)
	stranger := NewPeerID()
	forged := []struct {
		name  string
		frame []byte
	}{
		{"pairwise as a, no card", forge(t, scM, subject, a.ID(), b.ID(), nil, 0, 0, []byte("forged"))},
		{"pairwise as a, m's card", forge(t, scM, subject, a.ID(), b.ID(), m.ident.card, 0, 0, []byte("forged"))},
		{"pairwise as a, a's card", forge(t, scM, subject, a.ID(), b.ID(), a.ident.card, 0, 0, []byte("forged"))},
		{"broadcast as a, no card", forge(t, scM, subject, a.ID(), PeerID{}, nil, 0, 0, []byte("forged"))},
		{"broadcast as a, m's card", forge(t, scM, subject, a.ID(), PeerID{}, m.ident.card, 0, 0, []byte("forged"))},
		{"broadcast as a, a's card", forge(t, scM, subject, a.ID(), PeerID{}, a.ident.card, 0, 0, []byte("forged"))},
		{"request as a, a's card", forge(t, scM, subject, a.ID(), b.ID(), a.ident.card, 0, 77, []byte("forged"))},
		{"stranger, no card", forge(t, scM, subject, stranger, b.ID(), nil, 0, 0, []byte("forged"))},
		{"stranger, m's card", forge(t, scM, subject, stranger, PeerID{}, m.ident.card, 0, 0, []byte("forged"))},
	}
	before, failed := b.Stats(), sub.Failed()
	for _, f := range forged {
		if err := raw.Publish(subject, f.frame); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "forgeries rejected", func() bool { return b.Stats().Rejected-before.Rejected == uint64(len(forged)) })
	if err := scM.Publish(subject, b.ID(), []byte("m as itself")); err != nil {
		t.Fatal(err)
	}
	if msg := next(t, in); string(msg.Data) != "m as itself" || msg.From != m.ID() {
		t.Fatalf("delivered %q from %s", msg.Data, msg.From.Short())
	}
	empty(t, in)
	// Those with a's card, or none, were opened and failed; the others were
	// refused for their card or their unknown sender.
	if got := sub.Failed() - failed; got != 5 {
		t.Errorf("%d forgeries failed to open, want 5", got)
	}
	if e := b.cards.get(a.ID()); e == nil || !bytes.Equal(e.card.raw, a.ident.card) {
		t.Error("b no longer holds a's card")
	}
	if e := b.cards.get(stranger); e != nil {
		t.Error("b holds a card for the stranger")
	}
}

// TestPlainAndSealedDoNotMix: a plain frame on a scope's subscription and a
// sealed one on a plain subscription are both refused and counted.
func TestPlainAndSealedDoNotMix(t *testing.T) {
	secret := NewSecret()
	a := newNet(t)
	b := join(t, a)
	scA, scB := a.Scope(scopeID("mix"), secret), b.Scope(scopeID("mix"), secret)
	sealedIn, sealedSub := collectIn(t, scB, b.Subject("sealed"))
	plainIn := collect(t, b, b.Subject("plain"))
	plainSub := b.subsFor(t, b.Subject("plain"))[0]
	var asked atomic.Int32
	subscribeIn(t, scB, b.Subject("ask"), func(m *Msg) { asked.Add(1); _ = m.Respond(nil) })

	before := b.Stats()
	// Plain into the scope.
	if err := a.publishPlain(b.Subject("sealed"), b.ID(), []byte("plain, pairwise")); err != nil {
		t.Fatal(err)
	}
	if err := a.publishPlain(b.Subject("sealed"), PeerID{}, []byte("plain, to all")); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := a.requestPlain(short, b.Subject("ask"), b.ID(), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("plain request to a scope's subscription: %v, want no answer", err)
	}
	// Sealed onto a plain subscription.
	if err := scA.Publish(b.Subject("plain"), b.ID(), []byte("sealed, pairwise")); err != nil {
		t.Fatal(err)
	}
	if err := scA.Publish(b.Subject("plain"), PeerID{}, []byte("sealed, to all")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "five rejected", func() bool { return b.Stats().Rejected-before.Rejected == 5 })
	if err := scA.Publish(b.Subject("sealed"), b.ID(), []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	if err := a.publishPlain(b.Subject("plain"), b.ID(), []byte("plain")); err != nil {
		t.Fatal(err)
	}
	expect(t, sealedIn, "sealed")
	expect(t, plainIn, "plain")
	empty(t, sealedIn)
	empty(t, plainIn)
	if asked.Load() != 0 {
		t.Error("a scope's handler ran for a plain request")
	}
	if sealedSub.Failed() != 2 || plainSub.Failed() != 2 {
		t.Errorf("failed to open: %d on the sealed subscription, %d on the plain one; want 2 and 2",
			sealedSub.Failed(), plainSub.Failed())
	}
	if got := scB.Rejected(); got != 3 {
		t.Errorf("scope counted %d rejected, want 3 (the plain frames)", got)
	}
}

// TestSealedReplyMustComeFromPeer: while a sealed request waits, its inbox
// gets a plain reply from the asked node, a plain one claiming it, a sealed
// reply from another member, one from another member forged as the asked
// node, one from the asked node sealed in another scope, and an earlier
// genuine reply, both rebound to this request and as it was. None is
// taken: the request gets the real answer.
func TestSealedReplyMustComeFromPeer(t *testing.T) {
	secret := NewSecret()
	id := scopeID("replies")
	a := newNet(t)
	b, x := join(t, a), join(t, a)
	scA, scB, scX := a.Scope(id, secret), b.Scope(id, secret), x.Scope(id, secret)
	held := make(chan *Msg, 2)
	subscribeIn(t, scB, b.Subject("q"), func(m *Msg) { held <- m })
	inbox := capture(t, a, a.inbox+".*")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	// A first request, answered: its reply is kept for later.
	go func() { _ = (<-held).Respond([]byte("first")) }()
	if r, err := scA.Request(ctx, b.Subject("q"), b.ID(), nil); err != nil || string(r) != "first" {
		t.Fatalf("first request: %q, %v", r, err)
	}
	old := nextFrame(t, inbox)
	if old[1]&flagSealed == 0 { // b's card, which a asked for first
		old = nextFrame(t, inbox)
	}
	if old[1] != flagSealed|flagReply {
		t.Fatalf("captured flags %#x, want a sealed reply", old[1])
	}
	// a knows x, as members come to.
	if _, err := a.cardOf(ctx, x.ID()); err != nil {
		t.Fatal(err)
	}

	type result struct {
		data []byte
		err  error
	}
	res := make(chan result, 1)
	go func() {
		d, err := scA.Request(ctx, b.Subject("q"), b.ID(), []byte("second"))
		res <- result{d, err}
	}()
	m := <-held
	replyTo := a.inbox + "." + strconv.FormatUint(m.reqID, 10)
	if m.reply != replyTo {
		t.Fatalf("reply subject %q, want %q", m.reply, replyTo)
	}
	before := a.Stats().Rejected
	rejected := 0
	// The asked node answers plain.
	if err := b.sendFrame(context.Background(), nil, replyTo, "", a.ID(), flagReply, m.reqID, []byte("plain from b"), false); err != nil {
		t.Fatal(err)
	}
	rejected++
	// Anyone answers plain, as b.
	raw := rawConn(t, a)
	if err := raw.Publish(replyTo, rawFrame(frameVersion, flagReply, b.ID(), m.reqID, []byte("plain as b"))); err != nil {
		t.Fatal(err)
	}
	rejected++
	// b answers sealed in another scope of the same secret.
	if err := b.sendFrame(context.Background(), b.Scope(scopeID("replies elsewhere"), secret), replyTo, "", a.ID(), flagReply, m.reqID, []byte("other scope"), false); err != nil {
		t.Fatal(err)
	}
	rejected++
	// An earlier genuine reply of b: as it was, and rebound to this
	// request.
	if err := raw.Publish(replyTo, old); err != nil {
		t.Fatal(err)
	}
	rebound := bytes.Clone(old)
	binary.BigEndian.PutUint64(rebound[34:42], m.reqID)
	if err := raw.Publish(replyTo, rebound); err != nil {
		t.Fatal(err)
	}
	rejected += 2
	// Member x answers as itself (it opens: the call ignores it), then as b
	// (it does not open). One connection: the first is handled before the
	// second is counted.
	if err := x.sendFrame(context.Background(), scX, replyTo, "", a.ID(), flagReply, m.reqID, []byte("x as itself"), false); err != nil {
		t.Fatal(err)
	}
	if err := x.nc.Publish(replyTo, forge(t, scX, replyTo, b.ID(), a.ID(), b.ident.card, flagReply, m.reqID, []byte("x as b"))); err != nil {
		t.Fatal(err)
	}
	rejected++
	eventually(t, "false replies handled", func() bool { return a.Stats().Rejected-before == uint64(rejected) })
	select {
	case r := <-res:
		t.Fatalf("request took %q, %v before b answered", r.data, r.err)
	default:
	}
	if err := m.Respond([]byte("real")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-res:
		if r.err != nil || string(r.data) != "real" {
			t.Fatalf("request = %q, %v; want the real answer", r.data, r.err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no reply")
	}
	if got := a.Stats().Rejected - before; got != uint64(rejected) {
		t.Errorf("%d replies rejected, want %d", got, rejected)
	}
}

// TestCardFetchedWhenUnknown: a node restarts with its identity and forgets
// the cards it knew. A peer that knew it still sends without introducing
// itself; the restarted node refuses that frame, asks for the sender's
// card on <network>.card.<peer>, and opens what follows. Anyone may ask a
// node for its card there.
func TestCardFetchedWhenUnknown(t *testing.T) {
	secret := NewSecret()
	id := scopeID("cards")
	a := newNet(t)
	ident := NewIdentity()
	b1, err := New(t.Context(), WithURL(a.URL()), WithIdentity(ident))
	if err != nil {
		t.Fatal(err)
	}
	scA := a.Scope(id, secret)
	echoIn(t, scA, a.Subject("echo"), "")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := b1.Scope(id, secret).Request(ctx, a.Subject("echo"), a.ID(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if e := a.cards.get(ident.PeerID()); e == nil || !a.cards.isKnown(e) {
		t.Fatal("a does not know that b has its card")
	}
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}

	b2 := join(t, a, WithIdentity(ident))
	if b2.cards.get(a.ID()) != nil {
		t.Fatal("a restarted node knows a's card")
	}
	in, _ := collectIn(t, b2.Scope(id, secret), b2.Subject("in"))
	wire := capture(t, b2, b2.Subject("in"))
	if err := scA.Publish(a.Subject("in"), ident.PeerID(), []byte("lost")); err != nil {
		t.Fatal(err)
	}
	if f := nextFrame(t, wire); f[1]&flagIntro != 0 {
		t.Fatal("a introduced itself to a node it believes knows it")
	}
	eventually(t, "b2 learns a's card", func() bool { return b2.cards.get(a.ID()) != nil })
	// The refusal is counted after the fetch it starts, which may finish first.
	eventually(t, "b2 counts the frame it refused", func() bool { return b2.Stats().Rejected >= 1 })
	if b2.Stats().Rejected != 1 {
		t.Errorf("b2 rejected %d frames, want 1", b2.Stats().Rejected)
	}
	if err := scA.Publish(a.Subject("in"), ident.PeerID(), []byte("opens")); err != nil {
		t.Fatal(err)
	}
	expect(t, in, "opens")
	empty(t, in)

	// The card service, asked by hand.
	raw := rawConn(t, a)
	reply, err := raw.Request(a.Subject("card", a.ID().String()), rawFrame(frameVersion, 0, NewPeerID(), 1, nil), waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if f := reply.Data; len(f) != headerLen+cardLen || f[1] != flagReply || !bytes.Equal(f[headerLen:], a.ident.card) {
		t.Fatalf("card reply %x", trunc(f))
	}
}

// TestRaftAllow: a transport that allows only some senders answers the
// others' RPCs of every kind with an error, before Raft sees them; allowed
// senders get through, and the allow function sees authenticated senders.
func TestRaftAllow(t *testing.T) {
	p := sealedPair(t)
	nc := join(t, p.na)
	c := newRaftTransport(t, p.scope(nc, "scope"), suiteTimeout)
	var consumed, beats atomic.Int32
	serve(t, p.b, func(rpc raft.RPC) {
		consumed.Add(1)
		switch cmd := rpc.Command.(type) {
		case *raft.InstallSnapshotRequest:
			_, _ = io.Copy(io.Discard, rpc.Reader)
			rpc.Respond(&raft.InstallSnapshotResponse{Term: cmd.Term, Success: true}, nil)
		case *raft.AppendEntriesRequest:
			rpc.Respond(&raft.AppendEntriesResponse{Term: cmd.Term, Success: true}, nil)
		case *raft.RequestVoteRequest:
			rpc.Respond(&raft.RequestVoteResponse{Granted: true}, nil)
		case *raft.RequestPreVoteRequest:
			rpc.Respond(&raft.RequestPreVoteResponse{Granted: true}, nil)
		case *raft.TimeoutNowRequest:
			rpc.Respond(&raft.TimeoutNowResponse{}, nil)
		default:
			rpc.Respond(nil, fmt.Errorf("unexpected %T", cmd))
		}
	})
	p.b.SetHeartbeatHandler(func(rpc raft.RPC) {
		beats.Add(1)
		rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
	})
	var mu sync.Mutex
	seen := map[PeerID]bool{}
	p.b.SetAllow(func(from PeerID) bool {
		mu.Lock()
		seen[from] = true
		mu.Unlock()
		return from == nc.ID()
	})
	type rpcFn func(tr *RaftTransport) error
	rpcs := []struct {
		name string
		call rpcFn
	}{
		{"RequestVote", func(tr *RaftTransport) error {
			return tr.RequestVote("b", p.b.LocalAddr(), &raft.RequestVoteRequest{Term: 1}, new(raft.RequestVoteResponse))
		}},
		{"RequestPreVote", func(tr *RaftTransport) error {
			return tr.RequestPreVote("b", p.b.LocalAddr(), &raft.RequestPreVoteRequest{Term: 1}, new(raft.RequestPreVoteResponse))
		}},
		{"TimeoutNow", func(tr *RaftTransport) error {
			return tr.TimeoutNow("b", p.b.LocalAddr(), &raft.TimeoutNowRequest{}, new(raft.TimeoutNowResponse))
		}},
		{"AppendEntries", func(tr *RaftTransport) error {
			return tr.AppendEntries("b", p.b.LocalAddr(), appendN(1), new(raft.AppendEntriesResponse))
		}},
		{"Heartbeat", func(tr *RaftTransport) error {
			return tr.AppendEntries("b", p.b.LocalAddr(), &raft.AppendEntriesRequest{Term: 1, Leader: []byte(tr.LocalAddr())}, new(raft.AppendEntriesResponse))
		}},
		{"Pipeline", func(tr *RaftTransport) error {
			pl, err := tr.AppendEntriesPipeline("b", p.b.LocalAddr())
			if err != nil {
				return err
			}
			defer pl.Close()
			if _, err := pl.AppendEntries(appendN(1), new(raft.AppendEntriesResponse)); err != nil {
				return err
			}
			select {
			case f := <-pl.Consumer():
				return f.Error()
			case <-time.After(waitTimeout):
				return errors.New("no future")
			}
		}},
		{"InstallSnapshot", func(tr *RaftTransport) error {
			data := randomBytes(2*tr.snapshotChunk()+1, 3)
			return tr.InstallSnapshot("b", p.b.LocalAddr(), snapshotRequest(int64(len(data))),
				new(raft.InstallSnapshotResponse), bytes.NewReader(data))
		}},
	}
	before := p.nb.Stats().Rejected
	for _, r := range rpcs {
		err := r.call(p.a)
		var re *RemoteError
		if !errors.As(err, &re) || !strings.Contains(re.Msg, errNotMember.Error()) {
			t.Errorf("%s from a refused sender: %v, want the not-a-member error", r.name, err)
		}
	}
	if consumed.Load() != 0 || beats.Load() != 0 {
		t.Fatalf("Raft got %d RPCs and %d heartbeats from a refused sender", consumed.Load(), beats.Load())
	}
	// AppendEntries is sent again notMemberRetries times after a refusal
	// (see TestAppendRetriesNotMember).
	if got, want := p.nb.Stats().Rejected-before, uint64(len(rpcs)+notMemberRetries); got != want {
		t.Errorf("%d RPCs counted rejected, want %d", got, want)
	}
	for _, r := range rpcs {
		if err := r.call(c); err != nil {
			t.Errorf("%s from an allowed sender: %v", r.name, err)
		}
	}
	// Every RPC but the heartbeat went to the consumer; a snapshot counts
	// once.
	if consumed.Load() != int32(len(rpcs)-1) || beats.Load() != 1 {
		t.Errorf("Raft got %d RPCs and %d heartbeats from the allowed sender, want %d and 1", consumed.Load(), beats.Load(), len(rpcs)-1)
	}
	mu.Lock()
	if len(seen) != 2 || !seen[p.na.ID()] || !seen[nc.ID()] {
		t.Errorf("allow saw %v, want a and c", seen)
	}
	mu.Unlock()
	// Allowing everyone lets a through.
	p.b.SetAllow(func(PeerID) bool { return true })
	if err := rpcs[0].call(p.a); err != nil {
		t.Errorf("vote once allowed: %v", err)
	}
}

// TestRaftMatched: Matched records what a peer acknowledged to this node's
// AppendEntries (with entries, direct or pipelined) and InstallSnapshot: it
// moves on success in the request's term and never on a failure, a stale
// answer, a heartbeat, or a smaller index in the same term.
func TestRaftMatched(t *testing.T) {
	p := sealedPair(t)
	b := p.nb.ID()
	serve(t, p.b, func(rpc raft.RPC) {
		switch cmd := rpc.Command.(type) {
		case *raft.AppendEntriesRequest:
			switch {
			case cmd.PrevLogEntry == 666:
				rpc.Respond(&raft.AppendEntriesResponse{Term: cmd.Term, Success: false}, nil)
			case cmd.PrevLogEntry == 667:
				rpc.Respond(&raft.AppendEntriesResponse{Term: cmd.Term + 1, Success: true}, nil) // a later term
			case cmd.PrevLogEntry == 668:
				rpc.Respond(nil, errors.New("refused"))
			default:
				rpc.Respond(&raft.AppendEntriesResponse{Term: cmd.Term, Success: true}, nil)
			}
		case *raft.InstallSnapshotRequest:
			_, _ = io.Copy(io.Discard, rpc.Reader)
			rpc.Respond(&raft.InstallSnapshotResponse{Term: cmd.Term, Success: cmd.LastLogIndex != 666}, nil)
		}
	})
	p.b.SetHeartbeatHandler(func(rpc raft.RPC) {
		rpc.Respond(&raft.AppendEntriesResponse{Term: rpc.Command.(*raft.AppendEntriesRequest).Term, Success: true}, nil)
	})
	entries := func(term, prev uint64, n int) *raft.AppendEntriesRequest {
		req := &raft.AppendEntriesRequest{Term: term, Leader: []byte(p.a.LocalAddr()), PrevLogEntry: prev, PrevLogTerm: term}
		for i := range n {
			req.Entries = append(req.Entries, &raft.Log{Index: prev + 1 + uint64(i), Term: term, Data: []byte("x")})
		}
		return req
	}
	appendTo := func(req *raft.AppendEntriesRequest) {
		t.Helper()
		_ = p.a.AppendEntries("b", p.b.LocalAddr(), req, new(raft.AppendEntriesResponse))
	}
	check := func(what string, want Progress) {
		t.Helper()
		if got := p.a.Matched(b); got != want {
			t.Errorf("after %s: Matched = %+v, want %+v", what, got, want)
		}
	}
	check("nothing", Progress{})
	appendTo(&raft.AppendEntriesRequest{Term: 5, Leader: []byte(p.a.LocalAddr())})
	check("a heartbeat", Progress{})
	appendTo(entries(5, 666, 2))
	check("a failed append", Progress{})
	appendTo(entries(5, 10, 3))
	check("an append", Progress{5, 13})
	appendTo(entries(5, 666, 5))
	check("a failed append", Progress{5, 13})
	appendTo(entries(5, 667, 5))
	check("an answer in a later term", Progress{5, 13})
	appendTo(entries(5, 668, 5))
	check("an error", Progress{5, 13})
	appendTo(entries(5, 4, 1))
	check("a smaller index", Progress{5, 13})
	appendTo(entries(5, 13, 0)) // a probe: matches up to 13 again
	check("a probe", Progress{5, 13})

	pl, err := p.a.AppendEntriesPipeline("b", p.b.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	for _, req := range []*raft.AppendEntriesRequest{entries(5, 13, 4), entries(5, 666, 10)} {
		if _, err := pl.AppendEntries(req, new(raft.AppendEntriesResponse)); err != nil {
			t.Fatal(err)
		}
		select {
		case f := <-pl.Consumer():
			_ = f.Error()
		case <-time.After(waitTimeout):
			t.Fatal("no future")
		}
	}
	check("a pipelined append and a failed one", Progress{5, 17})

	snap := func(term, last uint64) {
		t.Helper()
		req := snapshotRequest(3)
		req.Term, req.LastLogIndex = term, last
		_ = p.a.InstallSnapshot("b", p.b.LocalAddr(), req, new(raft.InstallSnapshotResponse), bytes.NewReader([]byte("abc")))
	}
	snap(6, 666)
	check("a refused snapshot", Progress{5, 17})
	snap(6, 40)
	check("a snapshot in a later term", Progress{6, 40})
	appendTo(entries(6, 40, 2))
	check("an append after the snapshot", Progress{6, 42})

	if got := p.b.Matched(p.na.ID()); got != (Progress{}) {
		t.Errorf("the follower's view of the leader: %+v, want none", got)
	}
	if got := p.a.Matched(NewPeerID()); got != (Progress{}) {
		t.Errorf("a stranger's progress: %+v", got)
	}
	p.a.RetainMatched(func(q PeerID) bool { return q != b })
	check("RetainMatched", Progress{})
}

// TestReplayWindow checks the window against a model: a counter is taken
// once, if it is not zero and not older than the window, in the current or
// a later epoch.
func TestReplayWindow(t *testing.T) {
	var w replayWindow
	steps := []struct {
		epoch, ctr uint64
		want       bool
		why        string
	}{
		{1, 0, false, "counter 0"},
		{1, 1, true, "first"},
		{1, 1, false, "duplicate"},
		{1, 2, true, "in order"},
		{1, 5, true, "a gap"},
		{1, 4, true, "out of order, within the window"},
		{1, 3, true, "out of order, within the window"},
		{1, 4, false, "duplicate, out of order"},
		{1, 5 + replayBits - 1, true, "the window moves"},
		{1, 6, true, "within the window, not taken"},
		{1, 5, false, "the oldest in the window, taken"},
		{1, 1, false, "too old"},
		{1, 2 + replayBits, true, "the slot of counter 2, cleared as the window moved"},
		{1, 2 + replayBits, false, "duplicate"},
		{1, 10 * replayBits, true, "a jump past the window"},
		{1, 9*replayBits + 1, true, "the oldest counter in the new window"},
		{1, 9 * replayBits, false, "one older"},
		{1, 6 + replayBits, false, "taken before the jump, too old now"},
		{1, 10*replayBits - 1, true, "within the new window"},
		{2, 1, true, "a new epoch starts afresh"},
		{2, 1, false, "duplicate in the new epoch"},
		{1, 10*replayBits + 1, false, "an older epoch"},
		{1, 1, false, "an older epoch"},
		{2, 0, false, "counter 0"},
		{2, 2, true, "the new epoch goes on"},
		{^uint64(0), ^uint64(0), true, "the largest epoch and counter"},
		{^uint64(0), ^uint64(0), false, "duplicate"},
		{^uint64(0), ^uint64(0) - replayBits + 1, true, "the oldest in the window"},
		{^uint64(0), ^uint64(0) - replayBits, false, "too old"},
	}
	for i, s := range steps {
		if got := w.accept(s.epoch, s.ctr); got != s.want {
			t.Errorf("step %d (%s): accept(%d, %d) = %v", i, s.why, s.epoch, s.ctr, got)
		}
	}

	// Random counters, mostly near the front, some far behind or ahead,
	// with epochs that now and then move on or go back, against a model
	// that remembers everything.
	rng := rand.New(rand.NewPCG(1, 2))
	var v replayWindow
	type key struct{ epoch, ctr uint64 }
	seen := map[key]bool{}
	var epoch, top uint64 = 1, 0
	for i := range 200_000 {
		e, c := epoch, uint64(0)
		switch r := rng.IntN(1000); {
		case r < 2:
			e = epoch + 1
		case r < 4 && epoch > 1:
			e = epoch - 1
		}
		switch r := rng.IntN(100); {
		case r < 60:
			c = top + uint64(rng.IntN(8))
		case r < 90:
			c = top - min(top, uint64(rng.IntN(replayBits+64)))
		case r < 99:
			c = top + uint64(rng.IntN(3*replayBits))
		default:
			c = 0
		}
		want := c != 0 && e >= epoch && !seen[key{e, c}]
		if e == epoch && c <= top && top-c >= replayBits {
			want = false
		}
		if got := v.accept(e, c); got != want {
			t.Fatalf("op %d: accept(%d, %d) = %v, want %v (epoch %d, top %d)", i, e, c, got, want, epoch, top)
		}
		if want {
			seen[key{e, c}] = true
			if e > epoch {
				epoch, top = e, 0
			}
			top = max(top, c)
		}
	}
}

// TestSubscriptionWindowsPerSender: replay windows are kept per sender, so
// one sender's counters never make another's frames look old.
func TestSubscriptionWindowsPerSender(t *testing.T) {
	s := &Subscription{windows: map[PeerID]*replayWindow{}}
	p, q := NewPeerID(), NewPeerID()
	if !s.accept(p, 1, 10*replayBits) || !s.accept(q, 1, 1) || !s.accept(q, 1, 2) {
		t.Fatal("one sender's window holds back another")
	}
	if s.accept(p, 1, 10*replayBits) || s.accept(q, 1, 1) {
		t.Fatal("duplicates taken")
	}
}

// TestSecret: a secret never prints its bytes, round-trips through Hex, and
// a passphrase stretches into the same secret every time.
func TestSecret(t *testing.T) {
	var zero Secret
	if !zero.IsZero() || NewSecret().IsZero() {
		t.Fatal("IsZero")
	}
	s := NewSecret()
	if s.Equal(NewSecret()) {
		t.Fatal("NewSecret repeats")
	}
	h := s.Hex()
	if len(h) != 64 {
		t.Fatalf("Hex is %d digits", len(h))
	}
	type config struct {
		Name   string
		Secret Secret
		Ptr    *Secret
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "secret", s, "config", config{"c", s, &s})
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "secret", s, "config", config{"c", s, &s})
	outputs := []string{
		s.String(), s.GoString(), fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x %X", s, s, s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v", config{"c", s, &s}, config{"c", s, &s}, config{"c", s, &s}),
		fmt.Sprintf("%v %+v", &s, []Secret{s}), logged.String(),
		fmt.Sprintf("%v %+v %#v", hidden{s}, hidden{s}, hidden{s}), // fmt cannot call String on an unexported field
	}
	// The secret's bytes in any of the ways they might show.
	var leaks []string
	for _, k := range [][]byte{s.k[:4], s.k[10:14], s.k[28:]} {
		leaks = append(leaks, hex.EncodeToString(k), strings.ToUpper(hex.EncodeToString(k)),
			strings.Trim(fmt.Sprint(k), "[]"), fmt.Sprintf("%#v", k)[len("[]byte{"):])
	}
	for _, out := range outputs {
		for _, l := range leaks {
			if strings.Contains(out, l) {
				t.Errorf("%q shows the secret (%q)", out, l)
			}
		}
	}
	if !s.Equal(s) || s.Equal(zero) || !zero.Equal(Secret{}) {
		t.Error("Equal is wrong")
	}
	if !strings.Contains(s.String(), "redacted") || !strings.Contains(zero.String(), "none") {
		t.Errorf("String() = %q, zero %q", s.String(), zero.String())
	}

	if p, err := ParseSecret(h); err != nil || !p.Equal(s) {
		t.Errorf("ParseSecret(Hex()) = %v, %v", p, err)
	}
	if p, err := ParseSecret(strings.ToUpper(h)); err != nil || !p.Equal(s) {
		t.Errorf("ParseSecret(upper case) = %v, %v", p, err)
	}
	for _, bad := range []string{"", "00", h[:62], h + "00", "zz" + h[2:], " " + h[1:]} {
		if _, err := ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) accepted", bad)
		}
	}
	if b, err := SecretFromBytes(s.k[:]); err != nil || !b.Equal(s) {
		t.Errorf("SecretFromBytes = %v, %v", b, err)
	}
	for _, n := range []int{0, 31, 33} {
		if _, err := SecretFromBytes(make([]byte, n)); err == nil {
			t.Errorf("SecretFromBytes of %d bytes accepted", n)
		}
	}

	p1, err := SecretFromPassphrase("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := SecretFromPassphrase("correct horse battery staple")
	if err != nil || !p2.Equal(p1) {
		t.Errorf("the same passphrase gave %v, %v", p2, err)
	}
	p3, err := SecretFromPassphrase("correct horse battery stapler")
	if err != nil || p3.Equal(p1) || p3.IsZero() {
		t.Errorf("another passphrase gave the same secret (%v)", err)
	}
	// Pinned: a passphrase must give the same secret in every version,
	// or nodes of two versions would not share their groups.
	if got, want := p1.Hex(), "eaea38f1e6006542812580576ebcd4bab690e1c5a92764fc76856c7b8a29df51"; got != want {
		t.Errorf("passphrase secret %s, was %s", got, want)
	}
	for _, short := range []string{"", "1234567", "seven!!"} {
		if _, err := SecretFromPassphrase(short); err == nil {
			t.Errorf("SecretFromPassphrase(%q) accepted", short)
		}
	}
	if _, err := SecretFromPassphrase("12345678"); err != nil {
		t.Errorf("an 8-character passphrase refused: %v", err)
	}

	// Scope keys: the secret and the id both count, and without a secret
	// anyone derives the same key.
	id1, id2 := scopeID("one"), scopeID("two")
	keys := map[[32]byte]string{}
	for name, k := range map[string][32]byte{
		"s/1": groupKey(s, id1), "s/2": groupKey(s, id2), "p1/1": groupKey(p1, id1), "none/1": groupKey(Secret{}, id1),
	} {
		if other, dup := keys[k]; dup {
			t.Errorf("scope keys %s and %s are equal", name, other)
		}
		keys[k] = name
	}
	if groupKey(s, id1) != groupKey(s, id1) || groupKey(Secret{}, id1) != groupKey(Secret{}, id1) {
		t.Error("groupKey is not deterministic")
	}
}

// TestIdentity: a seed always gives the same identity, its PeerID is the
// one nodekey derives; its card checks out for that PeerID only, and not
// with any byte changed.
func TestIdentity(t *testing.T) {
	seed := [32]byte{1, 2, 3, 4, 5}
	i1, err := IdentityFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	i2, err := IdentityFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	if i1.PeerID() != i2.PeerID() || !bytes.Equal(i1.card, i2.card) || !i1.sign.Equal(i2.sign) {
		t.Fatal("IdentityFromSeed is not deterministic")
	}
	if i1.PeerID() != PeerID(nodekey.IDOf(seed)) {
		t.Errorf("PeerID %s, nodekey says %x", i1.PeerID().Short(), nodekey.IDOf(seed))
	}
	other, err := IdentityFromSeed([32]byte{1, 2, 3, 4, 6})
	if err != nil {
		t.Fatal(err)
	}
	if other.PeerID() == i1.PeerID() {
		t.Fatal("two seeds, one PeerID")
	}
	if a, b := NewIdentity(), NewIdentity(); a.PeerID() == b.PeerID() || a.PeerID().IsZero() {
		t.Fatal("NewIdentity repeats or is zero")
	}

	c, err := parseCard(i1.card)
	if err != nil {
		t.Fatal(err)
	}
	if c.id != i1.PeerID() || !c.sign.Equal(i1.sign.Public()) || !bytes.Equal(c.dh.Bytes(), i1.dh.PublicKey().Bytes()) {
		t.Fatal("the card does not carry the identity's keys")
	}
	if len(i1.card) != cardLen || i1.card[0] != cardVersion {
		t.Fatalf("card of %d bytes, version %d", len(i1.card), i1.card[0])
	}
	for i := range i1.card {
		for bit := range 8 {
			bad := bytes.Clone(i1.card)
			bad[i] ^= 1 << bit
			if _, err := parseCard(bad); !errors.Is(err, errBadCard) {
				t.Fatalf("card with byte %d bit %d flipped: %v", i, bit, err)
			}
		}
	}
	for _, bad := range [][]byte{nil, i1.card[:cardLen-1], append(bytes.Clone(i1.card), 0)} {
		if _, err := parseCard(bad); err == nil {
			t.Errorf("a card of %d bytes accepted", len(bad))
		}
	}
	// A card signed by another key than the one it carries.
	forged := bytes.Clone(i1.card)
	copy(forged[cardBody:], ed25519.Sign(other.sign, cardSigned(forged)))
	if _, err := parseCard(forged); err == nil {
		t.Error("a card signed by another key accepted")
	}

	cs := newCards(NewIdentity())
	if _, err := cs.learn(other.PeerID(), i1.card); !errors.Is(err, errBadCard) {
		t.Errorf("a valid card learnt for another PeerID: %v", err)
	}
	if cs.get(other.PeerID()) != nil {
		t.Error("the card was kept")
	}
	e, err := cs.learn(i1.PeerID(), i1.card)
	if err != nil || e.card.id != i1.PeerID() {
		t.Fatalf("learn: %v", err)
	}
	if again, err := cs.learn(i1.PeerID(), i1.card); err != nil || again != e {
		t.Errorf("learning a known card again: %v, same entry %v", err, again == e)
	}
	if _, err := cs.learn(i1.PeerID(), other.card); err == nil {
		t.Error("another node's card replaced a known one")
	}
	if cs.get(i1.PeerID()) != e {
		t.Error("a known card was replaced")
	}
	// Both ends of a pair agree on their shared secret, and no third party
	// shares it.
	ca, cb, cc := newCards(i1), newCards(other), newCards(NewIdentity())
	ea, _ := cb.learn(i1.PeerID(), i1.card)
	eb, _ := ca.learn(other.PeerID(), other.card)
	ec, _ := cc.learn(other.PeerID(), other.card)
	sab, err1 := ca.secret(eb)
	sba, err2 := cb.secret(ea)
	scb, err3 := cc.secret(ec)
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sab, sba) || bytes.Equal(sab, scb) {
		t.Error("pairwise secrets do not agree, or a third node shares them")
	}
}

// TestScopeFragmentationConcurrentLarge sends several large messages at
// once through one sealed scope, so that their fragments' counters
// interleave by more than the replay window. Every message must arrive.
func TestScopeFragmentationConcurrentLarge(t *testing.T) {
	a := newNet(t, withMaxChunk(4096))
	b := join(t, a, withMaxChunk(4096))
	s := NewSecret()
	scA, scB := a.Scope(scopeID("c"), s), b.Scope(scopeID("c"), s)
	got, _ := collectIn(t, scB, b.Subject("big"))
	const senders, size = 8, 1 << 20
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			if err := scA.Publish(b.Subject("big"), b.ID(), pattern(size+i, byte(i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for range senders {
		m := next(t, got)
		i := len(m.Data) - size
		if i < 0 || i >= senders || seen[i] || !bytes.Equal(m.Data, pattern(size+i, byte(i))) {
			t.Fatalf("message of %d bytes corrupted or repeated", len(m.Data))
		}
		seen[i] = true
	}
	if st := b.Stats(); st.Rejected != 0 || st.Malformed != 0 {
		t.Errorf("receiver %+v", st)
	}
}

// TestScopeFragmentationConcurrent interleaves the fragments of several
// sealed messages from one sender, within the replay window.
func TestScopeFragmentationConcurrent(t *testing.T) {
	a := newNet(t, withMaxChunk(4096))
	b := join(t, a, withMaxChunk(4096))
	s := NewSecret()
	scA, scB := a.Scope(scopeID("c"), s), b.Scope(scopeID("c"), s)
	got, _ := collectIn(t, scB, b.Subject("big"))
	all, _ := collectIn(t, scB, b.Subject("all"))
	const senders, size = 8, 100 << 10 // 8 × 27 frames: far less than replayBits
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			if err := scA.Publish(b.Subject("big"), b.ID(), pattern(size+i, byte(i))); err != nil {
				t.Error(err)
			}
			if err := scA.Publish(b.Subject("all"), PeerID{}, pattern(size+i, byte(i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, ch := range []<-chan *Msg{got, all} {
		seen := map[int]bool{}
		for range senders {
			m := next(t, ch)
			i := len(m.Data) - size
			if i < 0 || i >= senders || seen[i] || !bytes.Equal(m.Data, pattern(size+i, byte(i))) {
				t.Fatalf("message of %d bytes corrupted or repeated", len(m.Data))
			}
			seen[i] = true
		}
	}
	if st := b.Stats(); st.Rejected != 0 || st.Malformed != 0 {
		t.Errorf("receiver %+v", st)
	}
}

type hidden struct{ s Secret }

// TestSubscriptionWindowsFull: a subscription that tracks as many senders
// as it may refuses new ones rather than forget an active sender's window
// (which would let that sender's captured frames in again), and makes room
// by forgetting senders long idle.
func TestSubscriptionWindowsFull(t *testing.T) {
	s := &Subscription{windows: map[PeerID]*replayWindow{}}
	victim := NewPeerID()
	if !s.accept(victim, 1, 1) {
		t.Fatal("first frame refused")
	}
	for i := 1; i < maxCards; i++ {
		if !s.accept(NewPeerID(), 1, 1) {
			t.Fatalf("sender %d refused below the limit", i)
		}
	}
	if s.accept(NewPeerID(), 1, 1) {
		t.Fatal("a new sender was taken in over the limit")
	}
	if s.accept(victim, 1, 1) {
		t.Fatal("the victim's frame was accepted twice after the table filled")
	}
	for p, w := range s.windows {
		if p != victim {
			w.used = time.Now().Add(-2 * windowIdle)
		}
	}
	if !s.accept(NewPeerID(), 1, 1) {
		t.Fatal("no room made by forgetting idle senders")
	}
	if s.accept(victim, 1, 1) || !s.accept(victim, 1, 2) {
		t.Fatal("the active victim's window was forgotten")
	}
}

// TestAppendRetriesNotMember: an AppendEntries refused because the
// receiver has not yet heard of the sender (a newcomer the leader just
// added) is sent again a few times, 5 ms apart, before Raft sees the
// refusal; a refusal that lasts reaches Raft after those few tries.
func TestAppendRetriesNotMember(t *testing.T) {
	p := sealedPair(t)
	serve(t, p.b, func(rpc raft.RPC) {
		cmd := rpc.Command.(*raft.AppendEntriesRequest)
		rpc.Respond(&raft.AppendEntriesResponse{Term: cmd.Term, Success: true}, nil)
	})
	var asked atomic.Int32
	var refuse atomic.Int32
	p.b.SetAllow(func(PeerID) bool {
		asked.Add(1)
		return refuse.Add(-1) < 0
	})
	for _, tc := range []struct {
		refusals int32
		ok       bool
	}{{1, true}, {notMemberRetries, true}, {notMemberRetries + 1, false}} {
		asked.Store(0)
		refuse.Store(tc.refusals)
		var resp raft.AppendEntriesResponse
		err := p.a.AppendEntries("b", p.b.LocalAddr(), appendN(1), &resp)
		if tc.ok && (err != nil || !resp.Success) {
			t.Fatalf("%d refusals: %v, success %v", tc.refusals, err, resp.Success)
		}
		if !tc.ok && !isNotMember(err) {
			t.Fatalf("%d refusals: got %v, want the refusal", tc.refusals, err)
		}
		if want := min(tc.refusals+1, notMemberRetries+1); asked.Load() != want {
			t.Fatalf("%d refusals: asked %d times, want %d", tc.refusals, asked.Load(), want)
		}
	}
}
