package transport

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mosaik-go/mosaik/internal/nodekey"
)

// Identity is a node's key pair. Its Ed25519 key names the node (the
// PeerID is a digest of the public key) and signs what the node
// broadcasts; an X25519 key, vouched for by the Ed25519 key in the node's
// card, agrees a sealing key with each peer. Nobody without the seed can
// send as the node. An Identity is immutable and safe for concurrent use.
type Identity struct {
	id   PeerID
	sign ed25519.PrivateKey
	dh   *ecdh.PrivateKey
	card []byte // see cardLen
}

// NewIdentity returns a fresh random identity.
func NewIdentity() *Identity {
	var seed [nodekey.SeedSize]byte
	if _, err := rand.Read(seed[:]); err != nil {
		panic("transport: crypto/rand failed: " + err.Error())
	}
	id, err := IdentityFromSeed(seed)
	if err != nil {
		panic("transport: identity: " + err.Error())
	}
	return id
}

// IdentityFromSeed returns the identity a 32-byte seed stands for: the same
// seed gives the same PeerID on every run. A durable node keeps its seed in
// its data directory (storage.DB.NodeKey). Keep a seed as secret as a
// private key: it is one.
func IdentityFromSeed(seed [32]byte) (*Identity, error) {
	dh, err := nodekey.Exchange(seed)
	if err != nil {
		return nil, err
	}
	sign := nodekey.Signing(seed)
	pub := sign.Public().(ed25519.PublicKey)
	id := &Identity{id: nodekey.ID(pub), sign: sign, dh: dh}
	c := make([]byte, cardBody, cardLen)
	c[0] = cardVersion
	copy(c[1:33], pub)
	copy(c[33:65], dh.PublicKey().Bytes())
	id.card = append(c, ed25519.Sign(sign, cardSigned(c))...)
	return id, nil
}

// PeerID returns the id this identity proves.
func (id *Identity) PeerID() PeerID { return id.id }

// A card is what a node shows others so they can check what it sends:
//
//	[0]       cardVersion
//	[1:33]    Ed25519 public key (its digest is the PeerID)
//	[33:65]   X25519 public key
//	[65:129]  Ed25519 signature of "mosaik.card.v1" and [0:65]
//
// A card proves itself: anyone can check it against the PeerID it claims.
const (
	cardVersion = 1
	cardBody    = 65
	cardLen     = cardBody + ed25519.SignatureSize
)

func cardSigned(body []byte) []byte {
	return append([]byte("mosaik.card.v1\x00"), body[:cardBody]...)
}

// peerCard is a checked card.
type peerCard struct {
	id   PeerID
	raw  []byte
	sign ed25519.PublicKey
	dh   *ecdh.PublicKey
}

var errBadCard = errors.New("transport: peer card does not verify")

// parseCard checks a card. It never trusts a byte before the signature
// holds.
func parseCard(b []byte) (*peerCard, error) {
	if len(b) != cardLen || b[0] != cardVersion {
		return nil, errBadCard
	}
	pub := ed25519.PublicKey(bytes.Clone(b[1:33]))
	if !ed25519.Verify(pub, cardSigned(b), b[cardBody:]) {
		return nil, errBadCard
	}
	dh, err := ecdh.X25519().NewPublicKey(b[33:65])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadCard, err)
	}
	return &peerCard{id: PeerID(nodekey.ID(pub)), raw: bytes.Clone(b), sign: pub, dh: dh}, nil
}

// peerEntry is what this node knows of another: its card, the secret the
// two share, and whether the peer has shown it knows this node's card.
type peerEntry struct {
	card   *peerCard
	once   sync.Once
	shared []byte // X25519 of our key and theirs; set by once
	err    error
	known  bool // the peer sealed something to us: it has our card

	// the newest reconnect notice taken from the peer (see onNotice)
	noticeEpoch, noticeSeq uint64
	// runEpoch is the latest epoch (start time) of the peer's frames that
	// opened here: a notice of an earlier run is a replay.
	runEpoch atomic.Uint64
	// the notice checks left (see mayCheckNotice), as of noticeAt
	noticeTokens float64
	noticeAt     time.Time
}

// maxCards bounds the cards a node keeps. Over it, arbitrary entries are
// forgotten; a forgotten peer's card comes again with its next
// introduction or on request.
const maxCards = 8192

// cards is the node's table of checked peer cards, owned by the Network.
type cards struct {
	self *Identity
	mu   sync.Mutex
	m    map[PeerID]*peerEntry
}

func newCards(self *Identity) *cards {
	return &cards{self: self, m: map[PeerID]*peerEntry{}}
}

func (c *cards) get(p PeerID) *peerEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[p]
}

// learn checks raw as the card of p and keeps it.
func (c *cards) learn(p PeerID, raw []byte) (*peerEntry, error) {
	e, err := c.check(p, raw)
	if err != nil {
		return nil, err
	}
	return c.keep(e), nil
}

// check checks raw as the card of p without keeping it: a card that came
// with a frame is kept only once the frame opened (see keep), so frames
// that do not open cannot fill or churn the table. A card already known
// under p is compared, not checked again.
func (c *cards) check(p PeerID, raw []byte) (*peerEntry, error) {
	if e := c.get(p); e != nil && bytes.Equal(e.card.raw, raw) {
		return e, nil
	}
	card, err := parseCard(raw)
	if err != nil {
		return nil, err
	}
	if card.id != p {
		return nil, fmt.Errorf("%w: it names %s, not %s", errBadCard, card.id.Short(), p.Short())
	}
	return &peerEntry{card: card}, nil
}

// keep stores a checked entry and returns the one the table holds for its
// peer (an equal card already kept wins).
func (c *cards) keep(e *peerEntry) *peerEntry {
	p := e.card.id
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[p]; old != nil && bytes.Equal(old.card.raw, e.card.raw) {
		return old
	}
	if len(c.m) >= maxCards {
		for k := range c.m {
			delete(c.m, k)
			if len(c.m) < maxCards*3/4 {
				break
			}
		}
	}
	c.m[p] = e
	return e
}

// secret returns the X25519 secret this node shares with e's peer.
func (c *cards) secret(e *peerEntry) ([]byte, error) {
	e.once.Do(func() {
		e.shared, e.err = c.self.dh.ECDH(e.card.dh)
	})
	return e.shared, e.err
}

// newNotice records a reconnect notice of e's peer and reports whether it
// is newer than every one taken before.
func (c *cards) newNotice(e *peerEntry, epoch, seq uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch < e.runEpoch.Load() || epoch < e.noticeEpoch || epoch == e.noticeEpoch && seq <= e.noticeSeq {
		return false
	}
	e.noticeEpoch, e.noticeSeq = epoch, seq
	return true
}

// mayCheckNotice takes one of the notice checks allowed for e's peer
// (noticeBurst, then noticeRate a second), if one is left.
func (c *cards) mayCheckNotice(e *peerEntry, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.noticeAt.IsZero() {
		e.noticeTokens = noticeBurst
	} else {
		e.noticeTokens = min(noticeBurst, e.noticeTokens+now.Sub(e.noticeAt).Seconds()*noticeRate)
	}
	e.noticeAt = now
	if e.noticeTokens < 1 {
		return false
	}
	e.noticeTokens--
	return true
}

// sawRun records that a frame of e's peer's run epoch opened.
func (e *peerEntry) sawRun(epoch uint64) {
	for {
		old := e.runEpoch.Load()
		if epoch <= old || e.runEpoch.CompareAndSwap(old, epoch) {
			return
		}
	}
}

func (c *cards) markKnown(e *peerEntry) {
	c.mu.Lock()
	e.known = true
	c.mu.Unlock()
}

func (c *cards) isKnown(e *peerEntry) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return e.known
}
