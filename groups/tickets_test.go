package groups

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mosaik-go/mosaik/transport"
)

func issuer(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func TestTicketCheck(t *testing.T) {
	pub, priv := issuer(t)
	_, otherPriv := issuer(t)
	peer, stranger := transport.NewPeerID(), transport.NewPeerID()
	soon := time.Now().Add(time.Hour)
	mk := func(key ed25519.PrivateKey, p transport.PeerID, exp time.Time, aud ...string) string {
		s, err := IssueTicket(key, p, exp, aud...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	hmac, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: peer.String(), ExpiresAt: jwt.NewNumericDate(soon)}).SignedString([]byte(pub))
	if err != nil {
		t.Fatal(err)
	}
	noExp, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.RegisteredClaims{Subject: peer.String()}).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	good := mk(priv, peer, soon)
	// Change one character inside the signature: the last ones carry
	// padding bits that decoding may ignore (this failed 1 run in ~256).
	i := len(good) - 10
	swap := byte('A')
	if good[i] == 'A' {
		swap = 'B'
	}
	tampered := good[:i] + string(swap) + good[i+1:]
	for _, c := range []struct {
		name   string
		rules  Tickets
		ticket string
		ok     bool
	}{
		{"valid", Tickets{Issuer: pub}, good, true},
		{"none", Tickets{Issuer: pub}, "", false},
		{"another issuer", Tickets{Issuer: pub}, mk(otherPriv, peer, soon), false},
		{"another peer's", Tickets{Issuer: pub}, mk(priv, stranger, soon), false},
		{"expired", Tickets{Issuer: pub}, mk(priv, peer, time.Now().Add(-time.Minute)), false},
		{"no expiry", Tickets{Issuer: pub}, noExp, false},
		{"HMAC with the public key as secret", Tickets{Issuer: pub}, hmac, false},
		{"tampered", Tickets{Issuer: pub}, tampered, false},
		{"junk", Tickets{Issuer: pub}, "a.b.c", false},
		{"huge", Tickets{Issuer: pub}, strings.Repeat("a", maxTicketSize+1), false},
		{"audience wanted, none given", Tickets{Issuer: pub, Audience: "prices"}, good, false},
		{"audience matches", Tickets{Issuer: pub, Audience: "prices"}, mk(priv, peer, soon, "orders", "prices"), true},
		{"audience differs", Tickets{Issuer: pub, Audience: "prices"}, mk(priv, peer, soon, "orders"), false},
	} {
		_, err := c.rules.check(c.ticket, peer)
		if (err == nil) != c.ok {
			t.Errorf("%s: check = %v, want ok=%v", c.name, err, c.ok)
		}
	}
	if err := (&Tickets{Issuer: pub[:5]}).validate(); err == nil {
		t.Error("a short issuer key was accepted")
	}
}

// TestTickets: members with tickets form the group; a member without one is
// never admitted; a member whose ticket expires is removed.
func TestTickets(t *testing.T) {
	pub, priv := issuer(t)
	c := newCluster(t)
	rules := &Tickets{Issuer: pub}
	start := func(expires time.Time, withTicket bool) *node {
		id := transport.NewIdentity()
		cfg := testConfig()
		cfg.Tickets = rules
		if withTicket {
			tk, err := IssueTicket(priv, id.PeerID(), expires)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Ticket = tk
		}
		nd, err := c.joinWith(cfg, transport.NewFaults(), transport.WithIdentity(id))
		if err != nil {
			t.Fatal(err)
		}
		return nd
	}
	far := time.Now().Add(time.Hour)
	a, b := start(far, true), start(far, true)
	// JWT expiry has a resolution of one second: leave room for the
	// group to form and add the member before it runs out.
	short := start(time.Now().Add(4*time.Second), true)
	online(t, a, b, short)
	stranger := start(far, false)

	members := func() map[transport.PeerID]bool {
		out := map[transport.PeerID]bool{}
		for _, m := range a.g.Members() {
			out[m.Peer] = true
		}
		return out
	}
	waitFor(t, 20*time.Second, "the member whose ticket expired removed", func() bool {
		m := members()
		return !m[short.net.ID()] && m[a.net.ID()] && m[b.net.ID()]
	})
	if members()[stranger.net.ID()] {
		t.Fatal("a member without a ticket was admitted")
	}
	if err := stranger.g.When().Online(ctxT(t, time.Second)); err == nil {
		t.Fatal("a member without a ticket came online")
	}
	// Without a ticket it cannot write either: the leader does not answer
	// its forwards.
	if _, err := stranger.g.Execute(ctxT(t, 2*time.Second), counterCmd{Add: 1000}); err == nil {
		t.Fatal("a member without a ticket wrote")
	}
	if _, err := a.g.Execute(ctxT(t, 10*time.Second), counterCmd{Add: 1}); err != nil {
		t.Fatalf("the group stopped working: %v", err)
	}
	res, err := a.g.Query(ctxT(t, 10*time.Second), struct{}{}, Strong)
	if err != nil || res.Value != 1 {
		t.Fatalf("counter = %d, %v; want 1 (only the member with a ticket wrote)", res.Value, err)
	}
}

// TestTicketRulesInGroupID: members that require tickets from different
// issuers are different groups.
func TestTicketRulesInGroupID(t *testing.T) {
	p1, _ := issuer(t)
	p2, _ := issuer(t)
	key := NewKey()
	ids := map[ID]bool{}
	for _, tk := range []*Tickets{nil, {Issuer: p1}, {Issuer: p2}, {Issuer: p1, Audience: "x"}} {
		cfg, err := (&Config{Tickets: tk}).resolve(nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[deriveID(key, "sig", &cfg)] = true
	}
	if len(ids) != 4 {
		t.Fatalf("%d distinct group ids for 4 ticket rules", len(ids))
	}
}
