package storage

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/hashicorp/raft"
)

// Key layout of the node's Pebble DB. Every key starts with a namespace
// byte:
//
//	0x01 "format"                         format marker, written on first open
//	0x01 "node"                           the node's key seed: 32 bytes + CRC
//	0x02 group(32) 0x01 index(8)          a Raft log entry
//	0x02 group(32) 0x02 key               a stable-store value
//	0x02 group(32) 0x03 seq(8)            a finished snapshot's metadata
//	0x02 group(32) 0x04 seq(8) chunk(8)   a piece of a snapshot
//
// Integers are big-endian so keys sort in numeric order. A group's keys
// share the 33-byte prefix 0x02 group, so one group never reads another's.
// A snapshot's chunks are written before its metadata; chunks without
// metadata belong to a snapshot that never finished and are deleted when
// the group's stores are next handed out.
const (
	nsMeta  byte = 0x01
	nsGroup byte = 0x02

	kindLog       byte = 0x01
	kindStable    byte = 0x02
	kindSnapMeta  byte = 0x03
	kindSnapChunk byte = 0x04

	groupPrefixLen = 1 + 32
)

var (
	keyFormat = []byte{nsMeta, 'f', 'o', 'r', 'm', 'a', 't'}
	keyNode   = []byte{nsMeta, 'n', 'o', 'd', 'e'}
)

// formatMarker is the value of keyFormat. A different version under the
// same prefix is a data directory of another build.
const (
	formatPrefix = "mosaik.storage.v"
	formatMarker = formatPrefix + "2" // 2: the node record holds the node's key seed, not its id
)

// castagnoli is the CRC-32C table; amd64 and arm64 compute it in hardware.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func groupPrefix(g [32]byte) []byte {
	k := make([]byte, groupPrefixLen, groupPrefixLen+1+16)
	k[0] = nsGroup
	copy(k[1:], g[:])
	return k
}

// kindBounds returns the key prefix of one kind of record of a group, and the
// first key past it.
func kindBounds(g [32]byte, kind byte) (lo, hi []byte) {
	lo = append(groupPrefix(g), kind)
	hi = append(groupPrefix(g), kind+1)
	return lo, hi
}

func appendUint64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func shortGroup(g [32]byte) string { return hex.EncodeToString(g[:4]) }

// Log entry record, format 1:
//
//	format(1)=1 index(8) term(8) type(1) appendedAt(8, unix ns, 0 = unset)
//	uvarint len(data) data uvarint len(extensions) extensions crc32c(4)
//
// The CRC covers everything before it. The index repeats the key's, so a
// record found under the wrong key is detected too.
const (
	logFormat    = 1
	logHeaderLen = 1 + 8 + 8 + 1 + 8
)

func encodeLog(dst []byte, l *raft.Log) []byte {
	dst = append(dst, logFormat)
	dst = appendUint64(dst, l.Index)
	dst = appendUint64(dst, l.Term)
	dst = append(dst, byte(l.Type))
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	dst = appendUint64(dst, uint64(at))
	dst = binary.AppendUvarint(dst, uint64(len(l.Data)))
	dst = append(dst, l.Data...)
	dst = binary.AppendUvarint(dst, uint64(len(l.Extensions)))
	dst = append(dst, l.Extensions...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst, castagnoli))
}

// checkLog checks a log record's checksum, format and index without
// decoding it; decodeLog checks the rest.
func checkLog(b []byte, index uint64) error {
	if len(b) < logHeaderLen+2+4 {
		return fmt.Errorf("record of %d bytes is truncated", len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return fmt.Errorf("checksum mismatch (stored %08x, computed %08x)", sum, got)
	}
	if body[0] != logFormat {
		return fmt.Errorf("record format %d unknown", body[0])
	}
	if got := binary.BigEndian.Uint64(body[1:9]); got != index {
		return fmt.Errorf("record holds index %d", got)
	}
	return nil
}

// decodeLog decodes a log record stored under index into l. The slices it
// sets are fresh copies: b may be reused by the caller.
func decodeLog(b []byte, index uint64, l *raft.Log) error {
	if err := checkLog(b, index); err != nil {
		return err
	}
	body := b[:len(b)-4]
	term := binary.BigEndian.Uint64(body[9:17])
	typ := raft.LogType(body[17])
	at := int64(binary.BigEndian.Uint64(body[18:26]))
	rest := body[logHeaderLen:]
	data, rest, err := lengthPrefixed(rest, "data")
	if err != nil {
		return err
	}
	ext, rest, err := lengthPrefixed(rest, "extensions")
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%d trailing bytes", len(rest))
	}
	*l = raft.Log{Index: index, Term: term, Type: typ}
	if len(data)+len(ext) > 0 {
		buf := make([]byte, len(data)+len(ext))
		copy(buf, data)
		copy(buf[len(data):], ext)
		if len(data) > 0 {
			l.Data = buf[:len(data):len(data)]
		}
		if len(ext) > 0 {
			l.Extensions = buf[len(data):]
		}
	}
	if at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	return nil
}

func lengthPrefixed(b []byte, what string) (field, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, nil, fmt.Errorf("length of %s does not decode", what)
	}
	b = b[k:]
	if n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("%s of %d bytes overruns the record", what, n)
	}
	return b[:n], b[n:], nil
}

// Stable values and the node id are stored with a CRC-32C of key and value
// in front, so a value found under another key, or altered, is detected.
func encodeChecked(key, val []byte) []byte {
	crc := crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, val)
	out := make([]byte, 4, 4+len(val))
	binary.BigEndian.PutUint32(out, crc)
	return append(out, val...)
}

func decodeChecked(key, b []byte) ([]byte, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("record of %d bytes is truncated", len(b))
	}
	val := b[4:]
	crc := crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, val)
	if got := binary.BigEndian.Uint32(b); got != crc {
		return nil, fmt.Errorf("checksum mismatch (stored %08x, computed %08x)", got, crc)
	}
	return val, nil
}

// logKey returns the key of entry index of a group, appended to prefix (the
// group's kindLog prefix).
func logKey(prefix []byte, index uint64) []byte {
	k := make([]byte, 0, len(prefix)+8)
	return appendUint64(append(k, prefix...), index)
}

// logIndex extracts the index from a log key.
func logIndex(key []byte) (uint64, error) {
	if len(key) != groupPrefixLen+1+8 {
		return 0, fmt.Errorf("log key of %d bytes", len(key))
	}
	return binary.BigEndian.Uint64(key[groupPrefixLen+1:]), nil
}

// logUpper returns the first key past index max (exclusive upper bound).
func logUpper(prefix []byte, max uint64) []byte {
	if max == math.MaxUint64 {
		k := append([]byte(nil), prefix...)
		k[len(k)-1]++
		return k
	}
	return logKey(prefix, max+1)
}

func (v *view) metaKey(seq uint64) []byte {
	k := make([]byte, 0, len(v.metaLo)+8)
	return appendUint64(append(k, v.metaLo...), seq)
}

func (v *view) chunkPrefix(seq uint64) []byte {
	k := make([]byte, 0, len(v.chunkLo)+16)
	return appendUint64(append(k, v.chunkLo...), seq)
}

func (v *view) chunkKey(dst []byte, seq, n uint64) []byte {
	dst = appendUint64(append(dst[:0], v.chunkLo...), seq)
	return appendUint64(dst, n)
}

// chunkKeyParts splits a chunk key into snapshot number and chunk number.
func chunkKeyParts(key []byte) (seq, n uint64, err error) {
	if len(key) != groupPrefixLen+1+16 {
		return 0, 0, fmt.Errorf("snapshot chunk key of %d bytes", len(key))
	}
	k := key[groupPrefixLen+1:]
	return binary.BigEndian.Uint64(k), binary.BigEndian.Uint64(k[8:]), nil
}
