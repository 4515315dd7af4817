package transport

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrDuplicateIdentity is returned by New when another live node already
// uses this node's identity, as happens when a data directory was copied.
// Two nodes with one PeerID would share its inbox and its Raft votes.
var ErrDuplicateIdentity = errors.New("transport: another live node uses this identity")

// A node proves on joining that its identity is not in use already: before
// it answers on its own card subject, it sends a probe there. The probe and
// its answer are signed by the identity's key, so only a node holding the
// same seed can answer it, or be warned by it; anyone else's answer is
// ignored. Nodes of older versions answer with a bare card and are not
// detected.
//
//	probe:  probeVersion | nonce (16) | epoch (8) | signature (64)
//	answer: card | epoch (8) | signature (64) of the probe's nonce and epoch
const (
	probeVersion = 1
	probeNonce   = 16
	probeLen     = 1 + probeNonce + 8 + ed25519.SignatureSize
	answerLen    = cardLen + 8 + ed25519.SignatureSize

	// probeFresh is how far a probe's epoch (its sender's start time) may
	// be from the receiver's clock: an old probe replayed by a stranger
	// cannot raise a false alarm later than that.
	probeFresh = 2 * time.Minute
)

func probeSigned(nonce []byte, epoch uint64) []byte {
	b := append([]byte("mosaik.probe.v1\x00"), nonce...)
	return binary.BigEndian.AppendUint64(b, epoch)
}

func answerSigned(nonce []byte, probeEpoch, epoch uint64) []byte {
	b := append([]byte("mosaik.probe-answer.v1\x00"), nonce...)
	b = binary.BigEndian.AppendUint64(b, probeEpoch)
	return binary.BigEndian.AppendUint64(b, epoch)
}

// probeTimeout bounds the probe: where nobody listens on the card subject,
// as when the identity is free, the server says so at once.
func (n *Network) probeTimeout() time.Duration { return min(n.rpcTO, time.Second) }

// probeIdentity asks whoever answers on this node's card subject to prove
// it holds this node's key. It returns ErrDuplicateIdentity if one does.
func (n *Network) probeIdentity(ctx context.Context) error {
	p := make([]byte, 1+probeNonce, probeLen)
	p[0] = probeVersion
	if _, err := rand.Read(p[1:]); err != nil {
		return err
	}
	nonce := p[1 : 1+probeNonce]
	p = binary.BigEndian.AppendUint64(p, n.epoch)
	p = append(p, ed25519.Sign(n.ident.sign, probeSigned(nonce, n.epoch))...)

	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, n.probeTimeout())
	defer cancel()
	found := make(chan uint64, 1)
	pub := n.ident.sign.Public().(ed25519.PublicKey)
	stop, err := n.call(ctx, nil, n.cardSubject(n.id), n.id, p, false, func(b []byte, err error) {
		if err != nil {
			cancel() // nobody listens, or the network closed
			return
		}
		if len(b) != answerLen {
			return // an older node, or a stranger
		}
		epoch := binary.BigEndian.Uint64(b[cardLen:])
		if epoch == n.epoch || !ed25519.Verify(pub, answerSigned(nonce, n.epoch, epoch), b[cardLen+8:]) {
			return
		}
		select {
		case found <- epoch:
		default:
		}
	})
	if err != nil {
		return err
	}
	defer stop()
	select {
	case epoch := <-found:
		n.stats.duplicates.Add(1)
		started := time.Unix(0, int64(epoch)).UTC().Format(time.RFC3339)
		return fmt.Errorf("%w: peer %s, running since %s (is this a copy of its data directory?)", ErrDuplicateIdentity, n.id.Short(), started)
	case <-ctx.Done():
		// The probe's own timeout, or nobody listens: the identity is
		// free. The caller's context ended: New gives up.
		return parent.Err()
	}
}

// answerProbe answers a probe signed with this node's own key, warns that a
// second node with its identity is starting, and returns true. It returns
// false for anything else on the card subject. Anyone on the server can
// send there: everything cheap is checked before the signature.
func (n *Network) answerProbe(m *Msg) bool {
	b := m.Data
	if len(b) != probeLen || b[0] != probeVersion {
		return false
	}
	nonce := b[1 : 1+probeNonce]
	epoch := binary.BigEndian.Uint64(b[1+probeNonce:])
	if epoch == n.epoch {
		return false // this node's own probe
	}
	if d := time.Since(time.Unix(0, int64(epoch))); d > probeFresh || d < -probeFresh {
		return false // replayed, or a clock far off: no alarm
	}
	pub := n.ident.sign.Public().(ed25519.PublicKey)
	if !ed25519.Verify(pub, probeSigned(nonce, epoch), b[1+probeNonce+8:]) {
		return false
	}
	// A probe from a node that started before this one is this node's own
	// earlier incarnation, replayed: answer it (that harms nobody) but
	// raise no alarm. A copy starting now started later.
	if epoch > n.epoch {
		n.stats.duplicates.Add(1)
		if n.dupWarn.allow(time.Minute) {
			n.log.Error("transport: another node with this node's identity is starting; it was told to stop (is it a copy of this data directory?)")
		}
	}
	a := make([]byte, 0, answerLen)
	a = append(a, n.ident.card...)
	a = binary.BigEndian.AppendUint64(a, n.epoch)
	a = append(a, ed25519.Sign(n.ident.sign, answerSigned(nonce, epoch, n.epoch))...)
	_ = m.Respond(a)
	return true
}
