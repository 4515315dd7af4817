package transport

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Secret is a group's shared secret: only nodes that hold it can join the
// group, read its messages or send it any. The zero Secret means none (an
// open group). A Secret never prints itself: String and %v show a
// placeholder. It is a plain value, safe to copy and share.
type Secret struct {
	// k is behind a pointer so that even fmt printing a struct that holds a
	// Secret in an unexported field (where String is not called) shows an
	// address, not the bytes. nil: no secret.
	k *[32]byte
}

// NewSecret returns 32 random bytes as a secret. Store it with Hex and load
// it with ParseSecret.
func NewSecret() Secret {
	s := Secret{k: new([32]byte)}
	if _, err := rand.Read(s.k[:]); err != nil {
		panic("transport: crypto/rand failed: " + err.Error())
	}
	return s
}

// SecretFromBytes uses 32 bytes (from a secrets manager, a file) as a
// secret.
func SecretFromBytes(b []byte) (Secret, error) {
	if len(b) != 32 {
		return Secret{}, fmt.Errorf("transport: a secret is 32 bytes, got %d", len(b))
	}
	s := Secret{k: new([32]byte)}
	copy(s.k[:], b)
	return s, nil
}

// ParseSecret parses the 64 hex digits Hex returns.
func ParseSecret(h string) (Secret, error) {
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		return Secret{}, errors.New("transport: a secret is 64 hex digits")
	}
	return SecretFromBytes(b)
}

// Argon2id parameters for passphrases (RFC 9106's second recommended
// option): about a tenth of a second and 64 MiB per guess.
const (
	passTime    = 3
	passMemory  = 64 << 10 // KiB
	passThreads = 4
	passSalt    = "mosaik-go.passphrase.v1"
)

var passCache sync.Map // sha256 of passphrase -> [32]byte, so each is stretched once per process

// SecretFromPassphrase stretches a passphrase into a secret with Argon2id,
// so that guessing it from captured traffic costs a tenth of a second and
// 64 MiB per guess. A random secret (NewSecret) is stronger than any
// passphrase a person remembers; use one where you can.
func SecretFromPassphrase(passphrase string) (Secret, error) {
	if len(passphrase) < 8 {
		return Secret{}, errors.New("transport: a passphrase needs at least 8 characters")
	}
	h := sha256.Sum256([]byte(passphrase))
	if k, ok := passCache.Load(h); ok {
		key := k.([32]byte)
		return Secret{k: &key}, nil
	}
	s := Secret{k: new([32]byte)}
	copy(s.k[:], argon2.IDKey([]byte(passphrase), []byte(passSalt), passTime, passMemory, passThreads, 32))
	passCache.Store(h, *s.k)
	return s, nil
}

// Equal reports whether s and o are the same secret, in constant time.
// Compare secrets with Equal, not ==.
func (s Secret) Equal(o Secret) bool {
	if s.k == nil || o.k == nil {
		return s.k == o.k
	}
	return subtle.ConstantTimeCompare(s.k[:], o.k[:]) == 1
}

// IsZero reports whether s is no secret.
func (s Secret) IsZero() bool { return s.k == nil }

// Hex returns the secret as 64 hex digits, for storing it.
func (s Secret) Hex() string {
	if s.k == nil {
		return ""
	}
	return hex.EncodeToString(s.k[:])
}

// String hides the secret.
func (s Secret) String() string {
	if s.k == nil {
		return "transport.Secret(none)"
	}
	return "transport.Secret(redacted)"
}

// GoString hides the secret from %#v too.
func (s Secret) GoString() string { return s.String() }

// groupKey derives the key a scope seals with from its secret and its
// public id. Without the secret the id tells nothing about it.
func groupKey(s Secret, scope [32]byte) [32]byte {
	var out [32]byte
	ikm := make([]byte, 32) // no secret: a key anyone can derive
	if s.k != nil {
		ikm = s.k[:]
	}
	k, err := hkdf.Key(sha256.New, ikm, scope[:], "mosaik.scope.key.v1", 32)
	if err != nil {
		panic("transport: hkdf: " + err.Error()) // only for impossible lengths
	}
	copy(out[:], k)
	return out
}
