package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// checkManifest reads the records of the directory's current MANIFEST
// before Pebble opens it. Pebble stops reading its MANIFEST at the first
// record that fails its checksum and opens the database as the records
// before it describe: a flipped byte in the middle of the file would
// silently drop the tables added after it, and with them acknowledged
// writes. A record that fails is tolerated only as the torn tail a crash
// during the last append leaves: when no valid record follows it.
func checkManifest(fs vfs.FS, dir string) error {
	desc, err := pebble.Peek(dir, fs)
	if err != nil || !desc.Exists || desc.ManifestFilename == "" {
		return nil // Pebble's own Open reports what is wrong
	}
	name := fs.PathJoin(dir, desc.ManifestFilename)
	f, err := fs.Open(name)
	if err != nil {
		return nil
	}
	defer f.Close()
	if err := checkManifestFile(f); errors.Is(err, errDamaged) {
		return fmt.Errorf("%w: %s: %s: %v", ErrCorrupt, dir, desc.ManifestFilename, err)
	} else if err != nil {
		return fmt.Errorf("storage: read %s: %w", name, err)
	}
	return nil
}

// errDamaged marks the errors of checkManifestFile and checkWAL that
// report damage, as opposed to a failure to read.
var errDamaged = errors.New("damaged")

// checkManifestFile returns an error for a MANIFEST with a damaged record
// that is not its torn tail.
func checkManifestFile(f vfs.File) error {
	rr := record.NewReader(f, 0)
	for {
		start := rr.Offset()
		r, err := rr.Next()
		if err == nil {
			_, err = io.Copy(io.Discard, r)
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, record.ErrInvalidChunk), errors.Is(err, record.ErrZeroedChunk):
			return fmt.Errorf("%w: record at offset %d: %v", errDamaged, start, err)
		case errors.Is(err, record.ErrUnexpectedEOF):
			// Torn tail, or corruption with valid records after it.
			at, err := validChunkAfter(f, start)
			if err != nil {
				return err
			}
			if at >= 0 {
				return fmt.Errorf("%w: the record at offset %d is damaged, and a valid record follows at offset %d", errDamaged, start, at)
			}
			return nil
		default:
			return err
		}
	}
}

// Chunks of Pebble's record format (pebble/record, the "legacy" format
// its MANIFEST uses): within 32 KiB blocks, each chunk is a masked CRC-32C
// of type and payload (4 bytes, little-endian), the payload length (2), the
// type (1: full, 2: first, 3: middle, 4: last) and the payload.
const (
	recordBlockSize  = 32 << 10
	recordHeaderSize = 7
)

// validChunkAfter walks the chunks of the record at offset from to the
// first one that is damaged, and returns the offset of the first valid
// chunk after that, or -1. A crash while appending leaves no valid chunk
// after the one it tore; bit rot does.
func validChunkAfter(f vfs.File, from int64) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	block := make([]byte, recordBlockSize)
	damaged := false
	for base := from - from%recordBlockSize; base < size; base += recordBlockSize {
		n, err := f.ReadAt(block[:min(recordBlockSize, size-base)], base)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		b := block[:n]
		i := 0
		if base < from {
			i = int(from - base)
		}
		for i+recordHeaderSize <= len(b) {
			end, ok := chunkAt(b, i)
			switch {
			case ok && !damaged:
				i = end
			case ok:
				return base + int64(i), nil
			default:
				damaged = true
				i++
			}
		}
	}
	return -1, nil
}

// chunkAt reports whether a valid chunk starts at b[i], and where it ends.
func chunkAt(b []byte, i int) (end int, ok bool) {
	if typ := b[i+6]; typ < 1 || typ > 4 {
		return 0, false
	}
	end = i + recordHeaderSize + int(binary.LittleEndian.Uint16(b[i+4:]))
	if end > len(b) {
		return 0, false
	}
	c := crc32.Checksum(b[i+6:end], castagnoli)
	return end, binary.LittleEndian.Uint32(b[i:]) == (c>>15|c<<17)+0xa282ead8
}

// checkWALs reads the chunks of every write-ahead log in the directory
// before Pebble replays them. Pebble takes the first damaged chunk of the
// newest log for its torn end, and drops it and everything after it,
// unless a later chunk promises that the damaged one was synced; but it
// looks for that promise only in the 32 KiB blocks after the damaged one,
// so a damaged record followed by synced records in the same block is
// dropped silently, and with it acknowledged writes. Here the promise is
// looked for everywhere after the damage. A log that is kept only for
// reuse is checked too: damage in it is reported although Pebble would not
// read it.
func checkWALs(fs vfs.FS, dir string) error {
	names, err := fs.List(dir)
	if err != nil {
		return fmt.Errorf("storage: list %s: %w", dir, err)
	}
	for _, n := range names {
		num, ok := strings.CutSuffix(n, ".log")
		if !ok {
			continue
		}
		logNum, err := strconv.ParseUint(num, 10, 32)
		if err != nil {
			continue
		}
		if err := checkWAL(fs, fs.PathJoin(dir, n), uint32(logNum)); errors.Is(err, errDamaged) {
			return fmt.Errorf("%w: %s: write-ahead log %s: %v", ErrCorrupt, dir, n, err)
		} else if err != nil {
			return fmt.Errorf("storage: read %s: %w", fs.PathJoin(dir, n), err)
		}
	}
	return nil
}

// Chunk encodings of Pebble's WAL (pebble/record): recyclable chunks have
// the log number after the type, WAL-sync chunks also the offset up to
// which the log was synced when the chunk was written.
const (
	walRecyclableFirst = 5
	walSyncFirst       = 9
	walSyncLast        = 12
	walRecyclableHdr   = recordHeaderSize + 4
	walSyncHdr         = walRecyclableHdr + 8
)

// checkWAL returns an error when a chunk of the log is damaged and a later
// valid chunk of the same log promises it was synced.
func checkWAL(fs vfs.FS, name string, logNum uint32) error {
	f, err := fs.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	block := make([]byte, recordBlockSize)
	end := int64(-1) // where this log's valid chunks end
	for base := int64(0); base < size && end < 0; base += recordBlockSize {
		n, err := f.ReadAt(block[:min(recordBlockSize, size-base)], base)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		b := block[:n]
		for i := 0; i+walRecyclableHdr <= len(b); {
			typ := b[i+6]
			if typ == 0 && allZero(b[i:]) {
				break // padding at the end of a block
			}
			if typ < walRecyclableFirst || typ > walSyncLast {
				if typ >= 1 && typ <= 4 && base == 0 && i == 0 {
					return nil // a log in the legacy format: Pebble's checks only
				}
				end = base + int64(i)
				break
			}
			next, _, ok := walChunkAt(b, i, logNum)
			if !ok {
				end = base + int64(i)
				break
			}
			i = next
		}
	}
	if end < 0 {
		return nil
	}
	// Look for a later valid chunk of this log that was written after the
	// log had been synced past end.
	for base := end - end%recordBlockSize; base < size; base += recordBlockSize {
		n, err := f.ReadAt(block[:min(recordBlockSize, size-base)], base)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		b := block[:n]
		i := 0
		if base < end {
			i = int(end-base) + 1
		}
		for ; i+walSyncHdr <= len(b); i++ {
			if typ := b[i+6]; typ < walSyncFirst || typ > walSyncLast {
				continue
			}
			if _, synced, ok := walChunkAt(b, i, logNum); ok && synced > uint64(end) {
				return fmt.Errorf("%w: the chunk at offset %d is damaged, and the chunk at offset %d says the log was synced up to offset %d", errDamaged, end, base+int64(i), synced)
			}
		}
	}
	return nil
}

// walChunkAt reports whether a valid recyclable or WAL-sync chunk of log
// logNum starts at b[i]; it returns where it ends and, for a WAL-sync
// chunk, the synced offset it carries.
func walChunkAt(b []byte, i int, logNum uint32) (end int, synced uint64, ok bool) {
	typ := b[i+6]
	hdr := walRecyclableHdr
	if typ >= walSyncFirst {
		hdr = walSyncHdr
	}
	if i+hdr > len(b) || binary.LittleEndian.Uint32(b[i+7:]) != logNum {
		return 0, 0, false
	}
	end = i + hdr + int(binary.LittleEndian.Uint16(b[i+4:]))
	if end > len(b) {
		return 0, 0, false
	}
	c := crc32.Checksum(b[i+6:end], castagnoli)
	if binary.LittleEndian.Uint32(b[i:]) != (c>>15|c<<17)+0xa282ead8 {
		return 0, 0, false
	}
	if hdr == walSyncHdr {
		synced = binary.LittleEndian.Uint64(b[i+11:])
	}
	return end, synced, true
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
