package transport

import (
	"context"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
)

// Scope is a sealed channel for one group (or any party of nodes that share
// an id) on this node. Everything sent through it is sealed with
// XChaCha20-Poly1305 and every frame received on its subscriptions is
// opened, and its sender authenticated, before anything parses it:
//
//   - to one peer, with a key both derive from their X25519 keys, the
//     scope's id and, if the scope has a secret, the secret: only that peer
//     can open it, and it proves who sent it;
//   - to everyone (a broadcast), with a key from the scope's id and secret,
//     signed with the sender's Ed25519 key.
//
// A scope without a secret is open: anyone on the NATS server can join it
// and read its broadcasts, but nobody can send as another node, nor read
// what two nodes say to each other. Frames that fail are dropped and
// counted (Stats.Rejected). A Scope is safe for concurrent use; it holds no
// goroutines and needs no closing.
type Scope struct {
	net    *Network
	id     [32]byte
	sealed bool
	key    [32]byte // the scope's key: from its secret, or public
	bcast  cipher.AEAD

	mu    sync.RWMutex
	pairs map[PeerID]cipher.AEAD

	rejected atomic.Uint64
}

// maxScopePairs bounds the pairwise keys a scope keeps; over it they are
// derived again on use.
const maxScopePairs = 4096

// Scope returns the sealed channel of the party named id. A zero secret
// means the network's default (WithSecret); with neither, the scope is
// open.
func (n *Network) Scope(id [32]byte, secret Secret) *Scope {
	if secret.IsZero() {
		secret = n.secret
	}
	s := &Scope{net: n, id: id, sealed: !secret.IsZero(), pairs: map[PeerID]cipher.AEAD{}}
	s.key = groupKey(secret, id) // a zero secret derives a key anyone can
	bk, err := hkdf.Key(sha256.New, s.key[:], nil, "mosaik.scope.broadcast.v1", chacha20poly1305.KeySize)
	if err != nil {
		panic("transport: hkdf: " + err.Error())
	}
	if s.bcast, err = chacha20poly1305.NewX(bk); err != nil {
		panic("transport: " + err.Error())
	}
	return s
}

// Sealed reports whether the scope has a secret.
func (s *Scope) Sealed() bool { return s.sealed }

// Network returns the node the scope belongs to.
func (s *Scope) Network() *Network { return s.net }

// Rejected counts frames on the scope's subscriptions that did not open:
// sealed with another secret, forged, replayed, or not sealed at all.
func (s *Scope) Rejected() uint64 { return s.rejected.Load() }

// pair returns the AEAD this node shares with e's peer in this scope, and
// caches it. Only for peers this node chose to seal to, or whose frame
// opened: see open.
func (s *Scope) pair(e *peerEntry) (cipher.AEAD, error) {
	if a := s.cachedPair(e.card.id); a != nil {
		return a, nil
	}
	a, err := s.derivePair(e)
	if err != nil {
		return nil, err
	}
	s.keepPair(e.card.id, a)
	return a, nil
}

func (s *Scope) cachedPair(p PeerID) cipher.AEAD {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pairs[p]
}

// keepPair caches a's key for p; over maxScopePairs, the cache starts
// afresh.
func (s *Scope) keepPair(p PeerID, a cipher.AEAD) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pairs) >= maxScopePairs {
		clear(s.pairs)
	}
	s.pairs[p] = a
}

// derivePair derives the AEAD this node shares with e's peer in this
// scope, without caching it.
func (s *Scope) derivePair(e *peerEntry) (cipher.AEAD, error) {
	p := e.card.id
	shared, err := s.net.cards.secret(e)
	if err != nil {
		return nil, err
	}
	lo, hi := s.net.id, p
	if lo.Compare(hi) > 0 {
		lo, hi = hi, lo
	}
	info := make([]byte, 0, 96)
	info = append(info, "mosaik.scope.pair.v1"...)
	info = append(info, lo[:]...)
	info = append(info, hi[:]...)
	k, err := hkdf.Key(sha256.New, shared, s.key[:], string(info), chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	return chacha20poly1305.NewX(k)
}

// Subscribe delivers the frames on subject that open in this scope to h.
func (s *Scope) Subscribe(subject string, h Handler) (*Subscription, error) {
	return s.net.subscribe(subject, s, h)
}

// Publish sends data to peer to on subject, or to everyone listening when
// to is zero.
func (s *Scope) Publish(subject string, to PeerID, data []byte) error {
	return s.net.sendFrame(context.Background(), s, subject, "", to, 0, 0, data, false)
}

// Call sends a request to peer to (which must not be zero) on subject and
// passes every reply to fn, on the goroutine that reads the node's inbox,
// until the returned cancel is called. fn must not block. If the network closes first, fn gets ErrClosed
// once, possibly while a last reply is still being handed to it: fn must be
// safe for that. If this node's connection to NATS, or to's, drops and comes
// back while the call waits, fn gets ErrConnectionLost once and no reply
// after: the request or its replies may have been lost with a server.
func (s *Scope) Call(subject string, to PeerID, data []byte, fn func(reply []byte, err error)) (cancel func(), err error) {
	return s.net.call(context.Background(), s, subject, to, data, false, fn)
}

// Request sends data to peer to on subject and waits for the first reply.
// It waits at most until ctx ends or, if ctx has no deadline, the network's
// RPC timeout.
func (s *Scope) Request(ctx context.Context, subject string, to PeerID, data []byte) ([]byte, error) {
	return s.net.request(ctx, s, subject, to, data, false)
}

// Frame sealing. A sealed frame's nonce is the sender's epoch, its counter
// and the first 8 bytes of its id: unique per key, since the counter never
// repeats within an epoch and both ends of a pair differ in id. The
// additional data is the subject and every frame byte before the payload,
// so nothing in the header can be changed or moved to another subject.

const (
	sealOverhead = chacha20poly1305.Overhead
	sigLen       = ed25519.SignatureSize
	// frameSlack is the most a frame adds to its payload besides the
	// header: a card, a fragment header, the tag and a signature.
	frameSlack = cardLen + fragHeaderLen + sealOverhead + sigLen
)

func frameNonce(f []byte) []byte {
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	copy(nonce[0:16], f[42:58]) // epoch and counter
	copy(nonce[16:24], f[2:10]) // sender
	return nonce
}

func frameAD(f []byte, payloadAt int, subject string) []byte {
	ad := make([]byte, 0, payloadAt+len(subject))
	ad = append(ad, f[:payloadAt]...)
	return append(ad, subject...)
}

// seal seals f[payloadAt:] in place for peer, growing f by the tag; for
// everyone when peer is nil. A broadcast's payload is first followed by the
// sender's signature of it, inside the seal, so that only holders of the
// scope's key see even that.
func (s *Scope) seal(f []byte, payloadAt int, subject string, peer *peerEntry) ([]byte, error) {
	ad := frameAD(f, payloadAt, subject)
	aead := s.bcast
	if peer == nil {
		f = append(f, ed25519.Sign(s.net.ident.sign, append(ad, f[payloadAt:]...))...)
	} else {
		var err error
		if aead, err = s.pair(peer); err != nil {
			return nil, err
		}
	}
	return aead.Seal(f[:payloadAt], frameNonce(f), f[payloadAt:], ad), nil
}

// open authenticates and opens a sealed frame in place and returns its
// payload; it fails for anything not sealed by its sender in this scope.
// sender finds the sender's card: before opening a pairwise frame, whose key
// needs it, and only after opening a broadcast, to check its signature.
// A pairwise key not cached yet is cached only once the frame opened, as
// its card is kept only then: frames that do not open cannot churn the
// cache and push out the members' keys.
func (s *Scope) open(f []byte, payloadAt int, subject string, broadcast bool, sender func() (*peerEntry, error)) ([]byte, error) {
	aead := s.bcast
	var e *peerEntry
	var err error
	fresh := false
	if !broadcast {
		if e, err = sender(); err != nil {
			return nil, err
		}
		if aead = s.cachedPair(e.card.id); aead == nil {
			if aead, err = s.derivePair(e); err != nil {
				return nil, err
			}
			fresh = true
		}
	}
	ad := frameAD(f, payloadAt, subject)
	out, err := aead.Open(f[payloadAt:payloadAt], frameNonce(f), f[payloadAt:], ad)
	if err != nil {
		return nil, errUnsealed
	}
	if fresh {
		s.keepPair(e.card.id, aead)
	}
	if broadcast {
		if len(out) < sigLen {
			return nil, errUnsealed
		}
		if e, err = sender(); err != nil {
			return nil, err
		}
		sig := out[len(out)-sigLen:]
		out = out[:len(out)-sigLen]
		if !ed25519.Verify(e.card.sign, append(ad, out...), sig) {
			return nil, errUnsealed
		}
	}
	return out, nil
}

var errUnsealed = fmt.Errorf("transport: frame does not open")
