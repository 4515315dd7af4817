package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
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
	name := desc.ManifestFilename // a path already, in dir
	f, err := fs.Open(name)
	if err != nil {
		return nil
	}
	defer f.Close()
	if err := checkManifestFile(f); errors.Is(err, errDamaged) {
		return fmt.Errorf("%w: %s: %s: %v", ErrCorrupt, dir, fs.PathBase(name), err)
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

// Chunks of Pebble's record format (pebble/record): within 32 KiB
// blocks, which no chunk spans, each chunk is a masked CRC-32C of what
// follows the length (4 bytes, little-endian), the payload length (2), the
// type (1) and the payload. The legacy types (1: full, 2: first, 3:
// middle, 4: last), which the MANIFEST uses, have nothing more in their
// header; the WAL's recyclable types (5..8) have the log number after the
// type, and its WAL-sync types (9..12) also the offset up to which the log
// was synced when the chunk was written.
const (
	recordBlockSize    = 32 << 10
	recordHeaderSize   = 7
	walRecyclableFirst = 5
	walSyncFirst       = 9
	walSyncLast        = 12
	walRecyclableHdr   = recordHeaderSize + 4
	walSyncHdr         = walRecyclableHdr + 8
)

// chunk is what the header of a chunk says, and whether it is valid.
type chunk struct {
	typ    byte
	logNum uint32 // recyclable and WAL-sync chunks
	synced uint64 // WAL-sync chunks: the offset Pebble records as synced
	// end is where the chunk ends by its header, -1 when the header is
	// impossible (unknown type, or cut off by the end of the block).
	end int
	// valid: the header is possible, the chunk fits in its block and its
	// checksum matches.
	valid bool
}

// legacy reports whether the chunk has the legacy (MANIFEST) format.
func (c chunk) legacy() bool { return c.typ < walRecyclableFirst }

// chunkAt reads the chunk that starts at b[i], b being one block.
func chunkAt(b []byte, i int) chunk {
	c := chunk{end: -1}
	if i+recordHeaderSize > len(b) {
		return c
	}
	c.typ = b[i+6]
	hdr := 0
	switch {
	case c.typ >= 1 && c.typ < walRecyclableFirst:
		hdr = recordHeaderSize
	case c.typ >= walRecyclableFirst && c.typ < walSyncFirst:
		hdr = walRecyclableHdr
	case c.typ >= walSyncFirst && c.typ <= walSyncLast:
		hdr = walSyncHdr
	}
	if hdr == 0 || i+hdr > len(b) {
		return c
	}
	if hdr > recordHeaderSize {
		c.logNum = binary.LittleEndian.Uint32(b[i+7:])
	}
	if hdr == walSyncHdr {
		c.synced = binary.LittleEndian.Uint64(b[i+11:])
	}
	c.end = i + hdr + int(binary.LittleEndian.Uint16(b[i+4:]))
	c.valid = c.end <= len(b) && binary.LittleEndian.Uint32(b[i:]) == maskedCRC(b[i+6:c.end])
	return c
}

// maskedCRC is the checksum of a chunk, as pebble/record computes it.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// chunkReader reads a record file one 32 KiB block at a time.
type chunkReader struct {
	f     vfs.File
	size  int64
	block []byte
}

func newChunkReader(f vfs.File) (*chunkReader, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return &chunkReader{f: f, size: st.Size(), block: make([]byte, recordBlockSize)}, nil
}

// read returns the block that starts at base.
func (r *chunkReader) read(base int64) ([]byte, error) {
	n, err := r.f.ReadAt(r.block[:min(recordBlockSize, r.size-base)], base)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return r.block[:n], nil
}

// findAfterDamage looks past the damaged chunk at offset at for a valid
// chunk that match accepts, and returns its offset, or -1. It
// reads only at real chunk boundaries, never at arbitrary offsets (a
// record's payload may hold anything, a well-formed chunk included): in
// the damaged chunk's block, from where the damaged chunk's header says it
// ends, if that is inside the block; in every later block, from its start.
// In either, it walks chunk by chunk up to the first invalid chunk.
func (r *chunkReader) findAfterDamage(at int64, match func(c chunk, at int64) bool) (int64, error) {
	first := at - at%recordBlockSize
	for base := first; base < r.size; base += recordBlockSize {
		b, err := r.read(base)
		if err != nil {
			return 0, err
		}
		i := 0
		if base == first {
			if i = chunkAt(b, int(at-base)).end; i < 0 {
				continue
			}
		}
		for i < len(b) {
			c := chunkAt(b, i)
			if !c.valid {
				break
			}
			if match(c, base+int64(i)) {
				return base + int64(i), nil
			}
			i = c.end
		}
	}
	return -1, nil
}

// validChunkAfter walks the chunks of the record at offset from to the
// first one that is damaged, and returns the offset of the first valid
// chunk after that (see findAfterDamage), or -1. A crash while appending
// leaves no valid chunk after the one it tore; bit rot does.
func validChunkAfter(f vfs.File, from int64) (int64, error) {
	r, err := newChunkReader(f)
	if err != nil {
		return 0, err
	}
	for base := from - from%recordBlockSize; base < r.size; base += recordBlockSize {
		b, err := r.read(base)
		if err != nil {
			return 0, err
		}
		i := 0
		if base < from {
			i = int(from - base)
		}
		// The writer zeroes the rest of a block too short for a header.
		for i+recordHeaderSize <= len(b) {
			c := chunkAt(b, i)
			if !c.valid || !c.legacy() {
				return r.findAfterDamage(base+int64(i), func(c chunk, _ int64) bool { return c.legacy() })
			}
			i = c.end
		}
	}
	return -1, nil
}

// checkWALs reads the chunks of every write-ahead log in the directory
// before Pebble replays them. Pebble takes the first damaged chunk of the
// newest log for its torn end, and drops it and everything after it,
// unless a later chunk promises that the damaged one was synced. That
// promise is not to be relied on: the offset Pebble writes into a chunk
// lags behind what was synced (its flush goroutine lets a committer go
// before it records how far the sync reached, and does not count the full
// blocks it writes), and the first log of a new directory is written
// without offsets. A damaged record with synced, acknowledged writes in it
// and after it would be dropped silently. Here a damaged chunk followed by
// a valid chunk of the same log is damage (see checkWAL). A log that is
// kept only for reuse is checked too: damage in it is reported although
// Pebble would not read it.
//
// With truncate (Options.TruncateDamagedWAL), the newest log, damaged so,
// is cut instead at its damaged chunk, unless a later chunk promises the
// damaged one was synced: everything from that chunk on is zeroed, which Pebble
// reads as the end of the log.
func checkWALs(fs vfs.FS, dir string, truncate bool, log *slog.Logger) error {
	names, err := fs.List(dir)
	if err != nil {
		return fmt.Errorf("storage: list %s: %w", dir, err)
	}
	logNum := func(n string) (uint64, bool) {
		num, ok := strings.CutSuffix(n, ".log")
		if !ok {
			return 0, false
		}
		v, err := strconv.ParseUint(num, 10, 32)
		return v, err == nil
	}
	// Only the newest log can have lost an unsynced page to a crash: Pebble
	// syncs a log when it closes it, before it creates the next. Cutting an
	// older one would drop synced writes and leave a log Pebble refuses
	// anyway (it wants older logs to end cleanly).
	var newest uint64
	for _, n := range names {
		if v, ok := logNum(n); ok {
			newest = max(newest, v)
		}
	}
	// The cut waits until every log passed: Open refusing must leave the
	// directory as it was.
	var cut *walDamage
	var cutName string
	for _, n := range names {
		num, ok := logNum(n)
		if !ok {
			continue
		}
		name := fs.PathJoin(dir, n)
		err = checkWAL(fs, name, uint32(num))
		var d *walDamage
		errors.As(err, &d)
		cuttable := d != nil && !d.promised && num == newest
		if truncate && cuttable {
			cut, cutName = d, n
			continue
		}
		if errors.Is(err, errDamaged) {
			hint := ""
			if cuttable {
				hint = "; if the node crashed or lost power and its disk is sound, Options.TruncateDamagedWAL cuts the log there"
			}
			return fmt.Errorf("%w: %s: write-ahead log %s: %v%s", ErrCorrupt, dir, n, err, hint)
		} else if err != nil {
			return fmt.Errorf("storage: read %s: %w", name, err)
		}
	}
	if cut != nil {
		name := fs.PathJoin(dir, cutName)
		if err := zeroFrom(fs, name, cut.at); err != nil {
			return fmt.Errorf("storage: cut the damaged write-ahead log %s at offset %d: %w", name, cut.at, err)
		}
		log.Warn("storage: cut a damaged write-ahead log at its first damaged chunk (Options.TruncateDamagedWAL)",
			"dir", dir, "log", cutName, "offset", cut.at, "next_valid_chunk", cut.next)
	}
	return nil
}

// walDamage is the error of checkWAL: a damaged chunk followed by a valid
// chunk of the same log.
type walDamage struct {
	at, next int64 // the damaged chunk; the first valid chunk of the log after it
	// promised: a later chunk of the log records that the log was synced
	// past the damaged chunk.
	promised bool
}

func (d *walDamage) Error() string {
	s := fmt.Sprintf("the chunk at offset %d is damaged, and a valid chunk of the same log follows at offset %d (the records from offset %d on would be dropped)", d.at, d.next, d.at)
	if d.promised {
		s += "; a later chunk records that the log was synced past the damage"
	}
	return s
}

func (d *walDamage) Unwrap() error { return errDamaged }

// checkWAL returns a *walDamage when a chunk of the log is damaged and a
// valid chunk of the same log follows it. The log ends at its first chunk
// that is not one of its own. When that chunk is valid, it belongs to
// another log (the EOF trailer Pebble writes when it closes a log, or the
// stale tail of an older log whose file was reused): a clean end. When it
// is damaged, it is the torn end a crash leaves, the stale tail cut
// mid-chunk, or damage. Pebble appends records in order, so a valid
// record of this log after it means the damaged one was written in full
// before it: damage, whatever offset the later chunks claim was synced.
// (A crash on a disk that kept a later page of an unsynced write and lost
// an earlier one looks the same: Open cannot tell it from the loss of an
// acknowledged write, and leaves the choice to the operator, see
// Options.TruncateDamagedWAL.)
func checkWAL(fs vfs.FS, name string, logNum uint32) error {
	f, err := fs.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := newChunkReader(f)
	if err != nil {
		return err
	}
	for base := int64(0); base < r.size; base += recordBlockSize {
		b, err := r.read(base)
		if err != nil {
			return err
		}
		for i := 0; i < len(b); {
			if len(b)-i < walSyncHdr && allZero(b[i:]) {
				break // the writer zeroes the rest of a block too short for a header
			}
			c := chunkAt(b, i)
			switch {
			case c.valid && c.legacy() && base == 0 && i == 0:
				return nil // a log in the legacy format: Pebble's checks only
			case c.valid && (c.legacy() || c.logNum != logNum):
				return nil // a clean end
			case c.valid:
				i = c.end
				continue
			}
			d := &walDamage{at: base + int64(i), next: -1}
			// Every valid chunk of the log after the damage, for the first
			// one and for what they promise.
			if _, err := r.findAfterDamage(d.at, func(c chunk, at int64) bool {
				if c.legacy() || c.logNum != logNum {
					return false
				}
				if d.next < 0 {
					d.next = at
				}
				d.promised = d.promised || c.synced > uint64(d.at)
				return false
			}); err != nil {
				return err
			}
			if d.next >= 0 {
				return d
			}
			return nil
		}
	}
	return nil
}

// zeroFrom overwrites the file from offset at to its end with zeros, and
// syncs it.
func zeroFrom(fs vfs.FS, name string, at int64) error {
	f, err := fs.OpenReadWrite(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return errors.Join(err, f.Close())
	}
	zeros := make([]byte, recordBlockSize)
	for off := at; off < st.Size(); off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), st.Size()-off)], off); err != nil {
			return errors.Join(err, f.Close())
		}
	}
	return errors.Join(f.Sync(), f.Close())
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
