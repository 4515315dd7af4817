package transport

import (
	"bytes"
	"crypto/cipher"
	"maps"
	"testing"

	"github.com/nats-io/nats.go"
)

// A scope caches the pairwise keys of the peers whose frames opened in it.
// Introductions from fresh identities that do not open (another secret, or
// forged) must not churn that cache: they derive a key, fail, and leave the
// members' keys cached.
func TestUnopenedIntroductionsLeavePairKeys(t *testing.T) {
	p := newFuzzParty(t)
	sc := p.sealed.scope
	// The member's key is cached once its frame opened.
	if _, ok := p.recv.decode(p.sealed, &nats.Msg{Subject: "s", Data: p.seal(t, false, flagIntro, 0, nil, []byte("hi"))}); !ok {
		t.Fatal("the member's frame did not open")
	}
	before := pairsOf(sc)
	if before[p.sender.id] == nil {
		t.Fatal("the member's pairwise key is not cached")
	}
	other, _ := SecretFromBytes(bytes.Repeat([]byte{1}, 32))
	secret, _ := SecretFromBytes(bytes.Repeat([]byte{9}, 32)) // the party's
	for i := range 64 {
		stranger := stubNet(t, NewIdentity())
		if _, err := stranger.cards.learn(p.recv.id, p.recv.ident.card); err != nil {
			t.Fatal(err)
		}
		var f []byte
		var err error
		if i%2 == 0 { // sealed with another secret
			f, err = stranger.frame(stranger.Scope(sc.id, other), "s", stranger.cards.get(p.recv.id), flagSealed|flagIntro, 0, nil, []byte("x"))
		} else { // in the right scope, then changed
			f, err = stranger.frame(stranger.Scope(sc.id, secret), "s", stranger.cards.get(p.recv.id), flagSealed|flagIntro, 0, nil, []byte("x"))
			f[len(f)-1] ^= 1
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := p.recv.decode(p.sealed, &nats.Msg{Subject: "s", Data: f}); ok {
			t.Fatal("a stranger's frame opened")
		}
	}
	if after := pairsOf(sc); !maps.Equal(before, after) {
		t.Fatalf("frames that did not open changed the scope's pairwise keys: %d cached before, %d after", len(before), len(after))
	}
	if n := p.recv.stats.rejected.Load(); n != 64 {
		t.Fatalf("%d frames rejected, want 64", n)
	}
}

func pairsOf(s *Scope) map[PeerID]cipher.AEAD {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.pairs)
}
