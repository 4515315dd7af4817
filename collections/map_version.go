package collections

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/benbjohnson/immutable"

	"github.com/mosaik-go/mosaik/rsm"
)

// Per-key versions: every key of a Map carries the Version of the command
// that last set it (an insert, an Extend entry or an applied
// compare-exchange), as etcd's mod revision and NATS KV's revision. The
// version is part of the replicated state: Apply sets it from the log
// position, snapshots carry it, and a restore brings it back. It lives in
// the sorted tree's leaves (see btree_version.go); the hash index that
// serves Get does not hold it.

// GetWithVersion returns the value of key, the version at which it was last
// set, and whether key is present. A key that is absent has version 0. The
// version is the same on every replica that holds the same state.
func (r mapReads[K, V]) GetWithVersion(key K) (V, Version, bool) {
	return r.m.load().m.GetVersioned(key)
}

// CompareVersionExchange sets key to replacement if its version (as
// GetWithVersion reports it) is version, atomically: version 0 matches an
// absent key, any other version a present key last set at exactly that
// version. A nil replacement removes the key. The bool reports whether it
// applied; either way the write has a version, and if it applied with a
// replacement that version is the key's new one. The decision is made where
// the command applies, the same on every replica; a value that changed and
// changed back has a new version, so it does not match the old one.
func (w *MapWriter[K, V]) CompareVersionExchange(ctx context.Context, key K, version Version, replacement *V) (Version, bool, error) {
	if _, err := checkKV(key, replacement); err != nil {
		return 0, false, err
	}
	v, r, err := w.execute1(ctx, mapCmd[K, V]{Op: mapCASVersion, Key: key, Value: replacement, Version: version})
	return v, r.Applied, err
}

// versionMatches reports whether a key whose version is ver, present or
// not, matches the expected version of a version compare-exchange.
func versionMatches(ver Version, present bool, expected Version) bool {
	if expected == 0 {
		return !present
	}
	return present && ver == expected
}

// mapCmdWire is mapCmd without its codec: four fields, as every Map
// command was encoded before per-key versions, and still is except the
// version compare-exchange, so logs and nodes of older code decode them.
type mapCmdWire[K comparable, V any] mapCmd[K, V]

// mapCmdVersioned is the version compare-exchange as it travels: a fifth
// field for the expected version.
type mapCmdVersioned[K comparable, V any] struct {
	_        struct{} `cbor:",toarray"`
	Op       uint8
	Key      K
	Value    *V
	Expected *V
	Version  Version
}

// MarshalCBOR encodes c as four fields, or five for a version
// compare-exchange.
func (c mapCmd[K, V]) MarshalCBOR() ([]byte, error) {
	if c.Op != mapCASVersion {
		return rsm.EncMode().Marshal(mapCmdWire[K, V](c))
	}
	return rsm.EncMode().Marshal(mapCmdVersioned[K, V]{Op: c.Op, Key: c.Key, Value: c.Value, Expected: c.Expected, Version: c.Version})
}

// UnmarshalCBOR decodes either form.
func (c *mapCmd[K, V]) UnmarshalCBOR(b []byte) error {
	if len(b) == 0 || b[0] != 0x85 { // not an array of five
		return rsm.DecMode().Unmarshal(b, (*mapCmdWire[K, V])(c))
	}
	var x mapCmdVersioned[K, V]
	if err := rsm.DecMode().Unmarshal(b, &x); err != nil {
		return err
	}
	*c = mapCmd[K, V]{Op: x.Op, Key: x.Key, Value: x.Value, Expected: x.Expected, Version: x.Version}
	return nil
}

// A Map snapshot with per-key versions has its own magic; its records are a
// key and a value field, then the key's version as a uvarint, above 0 and
// at most the snapshot's version. A restore also reads the format before
// per-key versions (snapshotMagic), and gives every key the snapshot's
// version: the most it can know, and the same on every replica that
// restores that snapshot.
const mapSnapshotMagic = "mosaik.map.v3"

// writeMapSnapshot writes st with per-key versions.
func writeMapSnapshot[K comparable, V any](w io.Writer, st *mapState[K, V]) error {
	return writeSnapshotAs(w, mapSnapshotMagic, st.v, st.m.Len(), mapRecords(st))
}

// mapRecords writes st's entries, each with its version.
func mapRecords[K comparable, V any](st *mapState[K, V]) func(*snapshotWriter) error {
	return func(sw *snapshotWriter) error {
		var err error
		st.m.AllVersioned(func(k K, v V, ver Version) bool {
			if err = writeField(sw, k); err != nil {
				return false
			}
			if err = writeField(sw, v); err != nil {
				return false
			}
			if _, err = sw.bw.Write(binary.AppendUvarint(sw.length[:0], uint64(ver))); err != nil {
				return false
			}
			sw.records++
			return true
		})
		return err
	}
}

// readMapSnapshot reads a Map snapshot of either format into a tree that
// keeps per-key versions, and returns it and the snapshot's version.
func readMapSnapshot[K comparable, V any](r io.Reader, cmp immutable.Comparer[K]) (*treeLoader[K, V], Version, error) {
	b := newVersionedTreeLoader[K, V](cmp)
	v, err := readSnapshotOf(r, func(h snapshotHeader) func(*snapshotReader) error {
		var versioned bool
		switch {
		case h.Magic == mapSnapshotMagic:
			versioned = true
		case h.Magic != snapshotMagic:
			return nil
		case h.Count > 0 && h.Version == 0:
			// No key can be set at version 0, which means absent.
			return func(*snapshotReader) error { return errors.New("entries at version 0") }
		}
		return func(sr *snapshotReader) error {
			var (
				k K
				v V
			)
			if err := readField(sr, &k); err != nil {
				return err
			}
			if err := readField(sr, &v); err != nil {
				return err
			}
			ver := h.Version
			if versioned {
				u, err := binary.ReadUvarint(sr.br)
				if err != nil {
					return noEOF(err)
				}
				if u == 0 || u > uint64(h.Version) {
					return fmt.Errorf("key version %d outside (0, %d]", u, h.Version)
				}
				ver = Version(u)
			}
			b.setAt(k, v, ver)
			return nil
		}
	})
	return b, v, err
}
