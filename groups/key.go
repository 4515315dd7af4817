package groups

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"

	"github.com/zeebo/blake3"
)

// Key names a group. Nodes that join with the same key, the same machine
// signature and the same must-match settings form one group.
type Key [32]byte

// NewKey returns a random key.
func NewKey() Key {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		panic("groups: crypto/rand failed: " + err.Error())
	}
	return k
}

// KeyFromSecret derives a key from a human-readable name, so nodes that
// name the same thing agree without talking. Despite its name the key is
// not a secret: anyone who knows or guesses the name can compute it, and
// the group id derived from it is public. To keep a group to its members,
// give it a secret (Config.Secret).
func KeyFromSecret(secret string) Key {
	return Key(digest("mosaik.groups.key", []byte(secret)))
}

// String returns the key as hex.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// ID identifies a group: a digest of its key, the machine signature and the
// settings every member must share.
type ID [32]byte

// String returns the id as 64 hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// protocolVersion changes when members of different versions must not meet.
const protocolVersion = "mosaik.groups.v1"

// deriveID digests everything members must agree on. Leadership preference
// and storage are per node and stay out of it.
func deriveID(key Key, signature string, c *Config) ID {
	var b []byte
	b = append(b, key[:]...)
	b = appendString(b, signature)
	b = appendDuration(b, c.HeartbeatInterval)
	b = appendDuration(b, c.ElectionTimeout)
	if c.Tickets != nil {
		b = append(b, c.Tickets.idBytes()...)
	}
	return ID(digest(protocolVersion, b))
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendDuration(b []byte, d time.Duration) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(d))
}

func digest(context string, data []byte) [32]byte {
	h := blake3.New()
	_, _ = h.Write(appendString(nil, context))
	_, _ = h.Write(data)
	var out [32]byte
	h.Sum(out[:0])
	return out
}
