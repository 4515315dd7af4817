package transport

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// PeerID identifies a node. It is random per process unless the node keeps
// one in a data directory (storage.DB.NodeKey) and passes it with WithIdentity.
// The zero PeerID means "no peer".
type PeerID [32]byte

// NewPeerID returns a random PeerID.
func NewPeerID() PeerID {
	var p PeerID
	if _, err := rand.Read(p[:]); err != nil {
		panic("transport: crypto/rand failed: " + err.Error())
	}
	return p
}

// ParsePeerID parses the 64 hex digits String prints.
func ParsePeerID(s string) (PeerID, error) {
	var p PeerID
	if len(s) != 2*len(p) {
		return p, fmt.Errorf("transport: peer id %q: want %d hex digits", s, 2*len(p))
	}
	if _, err := hex.Decode(p[:], []byte(s)); err != nil {
		return p, fmt.Errorf("transport: peer id %q: %w", s, err)
	}
	return p, nil
}

// String returns the id as 64 hex digits.
func (p PeerID) String() string { return hex.EncodeToString(p[:]) }

// Short returns the first 8 hex digits, for logs and tables.
func (p PeerID) Short() string { return hex.EncodeToString(p[:4]) }

// IsZero reports whether p is the zero PeerID.
func (p PeerID) IsZero() bool { return p == PeerID{} }

// Compare orders peers by their bytes; it returns -1, 0 or +1.
func (p PeerID) Compare(q PeerID) int { return bytes.Compare(p[:], q[:]) }
