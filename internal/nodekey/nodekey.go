// Package nodekey derives a node's keys and id from its 32-byte seed. The
// seed is the node's only secret: transport turns it into the node's
// identity, and storage keeps it for a durable node.
package nodekey

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"

	"github.com/zeebo/blake3"
)

// SeedSize is the size of a node seed.
const SeedSize = 32

// Signing returns the node's Ed25519 key: it signs what the node
// broadcasts, and its public half names the node.
func Signing(seed [SeedSize]byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(seed[:])
}

// Exchange returns the node's X25519 key, from which pairwise sealing keys
// are agreed. It is derived from the seed under its own label, so the two
// keys are independent.
func Exchange(seed [SeedSize]byte) (*ecdh.PrivateKey, error) {
	k, err := hkdf.Key(sha256.New, seed[:], nil, "mosaik.node.x25519.v1", 32)
	if err != nil {
		return nil, err
	}
	return ecdh.X25519().NewPrivateKey(k)
}

// ID is the id of the node whose Ed25519 public key is pub: a BLAKE3 digest
// of it, so whoever can sign for pub can prove the id is theirs.
func ID(pub ed25519.PublicKey) [32]byte {
	h := blake3.New()
	_, _ = h.Write([]byte("mosaik.peer.v1\x00"))
	_, _ = h.Write(pub)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// IDOf is the id of the node with this seed.
func IDOf(seed [SeedSize]byte) [32]byte {
	return ID(Signing(seed).Public().(ed25519.PublicKey))
}
