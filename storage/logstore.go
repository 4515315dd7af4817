package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/internal/raftconf"
)

// view is one group's part of a DB: its Raft log and stable store, and the
// state its snapshot store needs. Every key it touches starts with the
// group's prefix. It is safe for concurrent use.
type view struct {
	db    *DB
	group [32]byte
	short string

	logLo, logHi     []byte
	stablePrefix     []byte
	metaLo, metaHi   []byte
	chunkLo, chunkHi []byte

	released atomic.Bool

	snapMu  sync.Mutex
	nextSeq uint64

	ra readAhead
}

// readAhead keeps a run of entries read past the one asked for. Raft reads
// its log in order (replaying it on start, sending it to followers), one
// GetLog at a time; a Pebble Get per entry costs several times more than
// stepping an iterator. A GetLog that follows the previous index reads up
// to raMaxEntries (or raMaxBytes) entries ahead with one iterator. Every
// write of the group clears the run; gen tells a read that raced a write
// not to keep what it read.
type readAhead struct {
	mu    sync.Mutex
	gen   uint64
	last  uint64      // index of the latest GetLog
	first uint64      // index of logs[0]
	logs  []*raft.Log // consecutive entries from first
}

const (
	raMaxEntries = 512
	raMaxBytes   = 4 << 20
)

// invalidate forgets the run; writers call it after they commit.
func (ra *readAhead) invalidate() {
	ra.mu.Lock()
	ra.gen++
	ra.logs = nil
	ra.mu.Unlock()
}

var (
	_ raft.LogStore    = (*view)(nil)
	_ raft.StableStore = (*view)(nil)
)

func newView(db *DB, group [32]byte) *view {
	v := &view{db: db, group: group, short: shortGroup(group)}
	v.logLo, v.logHi = kindBounds(group, kindLog)
	v.stablePrefix, _ = kindBounds(group, kindStable)
	v.metaLo, v.metaHi = kindBounds(group, kindSnapMeta)
	v.chunkLo, v.chunkHi = kindBounds(group, kindSnapChunk)
	return v
}

// open prepares the view: it deletes the pieces of snapshots that never
// finished, and finds the next snapshot number. The caller has entered.
func (v *view) open() error {
	metas, err := v.listMetas()
	if err != nil {
		return err
	}
	done := map[uint64]bool{}
	for _, m := range metas {
		done[m.Seq] = true
		v.nextSeq = max(v.nextSeq, m.Seq+1)
	}
	it, err := v.db.pdb.NewIter(&pebble.IterOptions{LowerBound: v.chunkLo, UpperBound: v.chunkHi})
	if err != nil {
		return v.db.readErr(err)
	}
	var partial []uint64
	for ok := it.First(); ok; {
		seq, _, err := chunkKeyParts(it.Key())
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("%w: group %s: %v", ErrCorrupt, v.short, err)
		}
		v.nextSeq = max(v.nextSeq, seq+1)
		if !done[seq] {
			partial = append(partial, seq)
		}
		ok = it.SeekGE(v.chunkPrefix(seq + 1))
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return v.db.readErr(err)
	}
	if err := v.verifyLog(); err != nil {
		return err
	}
	if len(partial) == 0 || v.db.opts.ReadOnly {
		return nil
	}
	b := v.db.pdb.NewBatch()
	defer b.Close()
	for _, seq := range partial {
		_ = b.DeleteRange(v.chunkPrefix(seq), v.chunkPrefix(seq+1), nil)
	}
	return v.db.commit(b, pebble.NoSync)
}

// verifyLog checks the log as CheckConfigurations does, so a log Raft
// cannot start from fails Stores with an error naming the entry, rather
// than Raft's start, which panics on it. The caller has entered.
func (v *view) verifyLog() error { return v.scanLog() }

// CheckConfigurations reads the group's log as hashicorp/raft's NewRaft
// does when it starts, and returns an error wrapping ErrCorrupt that names
// the group and the index of the first entry NewRaft would panic on.
// NewRaft reads every entry from the newest snapshot's index + 1 to the
// last index, and decodes the configuration entries among them: there,
// an entry that is missing, whose checksum or index does not match, or a
// configuration entry that raft.DecodeConfiguration cannot decode is
// reported. Below the newest snapshot NewRaft reads nothing: a hole there
// is no error (Raft leaves one when it installs a snapshot past a short
// log), and entries are checked for their checksum only. It reads every
// entry once, in order (the same scan DB.Stores makes); it holds no more
// than one entry in memory.
//
// It is a method of the log store DB.Stores hands out; find it with a type
// assertion to ConfigurationChecker.
func (v *view) CheckConfigurations() (err error) {
	if err := v.enter(); err != nil {
		return err
	}
	defer v.exit()
	defer v.recoverCorrupt(&err, "check the log")
	return v.scanLog()
}

// scanLog checks every stored entry; see CheckConfigurations. The caller
// has entered.
func (v *view) scanLog() error {
	metas, err := v.listMetas()
	if err != nil {
		return err
	}
	var snapIndex uint64 // of the newest snapshot; NewRaft reads from the next
	if len(metas) > 0 {
		snapIndex = metas[0].Index
	}
	it, err := v.db.pdb.NewIter(&pebble.IterOptions{LowerBound: v.logLo, UpperBound: v.logHi})
	if err != nil {
		return v.db.readErr(err)
	}
	defer it.Close()
	next := snapIndex + 1 // the next entry NewRaft reads
	for ok := it.First(); ok; ok = it.Next() {
		index, err := logIndex(it.Key())
		if err != nil {
			return v.corrupt("%v", err)
		}
		val, err := it.ValueAndErr()
		if err != nil {
			return v.db.readErr(err)
		}
		if err := checkLog(val, index); err != nil {
			return v.corrupt("log entry %d: %v", index, err)
		}
		if index <= snapIndex {
			continue
		}
		if index != next {
			return v.corrupt("log entry %d: missing, yet Raft reads every entry from %d (after the newest snapshot) to the last, and entry %d is stored", next, snapIndex+1, index)
		}
		next++
		if raft.LogType(val[17]) != raft.LogConfiguration {
			continue
		}
		var l raft.Log
		if err := decodeLog(val, index, &l); err != nil {
			return v.corrupt("log entry %d: %v", index, err)
		}
		if _, err := raftconf.Decode(l.Data); err != nil {
			return v.corrupt("log entry %d: %v", index, err)
		}
	}
	if err := it.Error(); err != nil {
		return v.db.readErr(err)
	}
	return nil
}

// enter starts an operation on the view; see DB.enter.
func (v *view) enter() error {
	if err := v.db.enter(); err != nil {
		return err
	}
	if v.released.Load() {
		v.db.exit()
		return fmt.Errorf("%w: stores of group %s were released", ErrClosed, v.short)
	}
	return nil
}

func (v *view) exit() { v.db.exit() }

// release ends the view; the group may be handed out again. Idempotent.
func (v *view) release() error {
	if v.released.Swap(true) {
		return nil
	}
	v.db.regMu.Lock()
	if v.db.inUse[v.group] == v {
		delete(v.db.inUse, v.group)
	}
	v.db.regMu.Unlock()
	return nil
}

func (v *view) corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s: group %s: %s", ErrCorrupt, v.db.dir, v.short, fmt.Sprintf(format, args...))
}

// recoverCorrupt is DB.recoverCorrupt, naming the group and what was read.
func (v *view) recoverCorrupt(err *error, what string) {
	if r := recover(); r != nil {
		*err = v.db.panicked(r, "group "+v.short+": "+what)
	}
}

// recoverCorruptIndex is recoverCorrupt for a read that names a log index
// ("log entry 12"). It formats the name only after a panic: GetLog, which
// Raft calls once per entry, must not allocate to name itself.
func (v *view) recoverCorruptIndex(err *error, what string, index uint64) {
	if r := recover(); r != nil {
		*err = v.db.panicked(r, fmt.Sprintf("group %s: %s %d", v.short, what, index))
	}
}

// recoverCorruptNamed is recoverCorrupt for a read that names a key or an
// id, quoted; like recoverCorruptIndex, it formats only after a panic.
func recoverCorruptNamed[S string | []byte](v *view, err *error, what string, name S) {
	if r := recover(); r != nil {
		*err = v.db.panicked(r, fmt.Sprintf("group %s: %s %q", v.short, what, name))
	}
}

// FirstIndex implements raft.LogStore. It is 0 for an empty log.
func (v *view) FirstIndex() (uint64, error) { return v.edgeIndex(true) }

// LastIndex implements raft.LogStore. It is 0 for an empty log.
func (v *view) LastIndex() (uint64, error) { return v.edgeIndex(false) }

func (v *view) edgeIndex(first bool) (_ uint64, err error) {
	if err := v.enter(); err != nil {
		return 0, err
	}
	defer v.exit()
	defer v.db.recoverCorrupt(&err, "group "+v.short+": find the log's first or last index")
	it, err := v.db.pdb.NewIter(&pebble.IterOptions{LowerBound: v.logLo, UpperBound: v.logHi})
	if err != nil {
		return 0, v.db.readErr(err)
	}
	var ok bool
	if first {
		ok = it.First()
	} else {
		ok = it.Last()
	}
	var idx uint64
	if ok {
		idx, err = logIndex(it.Key())
		if err != nil {
			err = v.corrupt("%v", err)
		}
	}
	if ierr := errors.Join(it.Error(), it.Close()); ierr != nil {
		return 0, v.db.readErr(ierr)
	}
	return idx, err
}

// GetLog implements raft.LogStore. A missing entry is raft.ErrLogNotFound;
// an entry that does not decode is ErrCorrupt. The entry's slices may be
// shared with other callers: they must not be modified.
func (v *view) GetLog(index uint64, l *raft.Log) (err error) {
	if err := v.enter(); err != nil {
		return err
	}
	defer v.exit()
	defer v.recoverCorruptIndex(&err, "log entry", index)
	ra := &v.ra
	ra.mu.Lock()
	if index >= ra.first && index-ra.first < uint64(len(ra.logs)) {
		*l = *ra.logs[index-ra.first]
		ra.last = index
		ra.mu.Unlock()
		return nil
	}
	inOrder := index == ra.last+1
	ra.last = index
	gen := ra.gen
	ra.mu.Unlock()
	if !inOrder {
		return v.getOne(index, l)
	}
	run, err := v.readRun(index)
	if err != nil {
		return err
	}
	*l = *run[0]
	ra.mu.Lock()
	if ra.gen == gen && len(run) > 1 {
		ra.first, ra.logs = index+1, run[1:]
	}
	ra.mu.Unlock()
	return nil
}

func (v *view) getOne(index uint64, l *raft.Log) error {
	val, closer, err := v.db.pdb.Get(logKey(v.logLo, index))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return v.db.readErr(err)
	}
	err = decodeLog(val, index, l)
	_ = closer.Close()
	if err != nil {
		return v.corrupt("log entry %d: %v", index, err)
	}
	return nil
}

// readRun reads entry index and the consecutive entries after it, up to
// the read-ahead limits. An entry after the first that does not decode
// ends the run; it is reported when asked for.
func (v *view) readRun(index uint64) ([]*raft.Log, error) {
	it, err := v.db.pdb.NewIter(&pebble.IterOptions{LowerBound: logKey(v.logLo, index), UpperBound: v.logHi})
	if err != nil {
		return nil, v.db.readErr(err)
	}
	defer it.Close()
	var run []*raft.Log
	size := 0
	for ok := it.First(); ok && len(run) < raMaxEntries && size < raMaxBytes; ok = it.Next() {
		want := index + uint64(len(run))
		if got, err := logIndex(it.Key()); err != nil || got != want {
			break
		}
		val, err := it.ValueAndErr()
		if err != nil {
			break
		}
		l := new(raft.Log)
		if err := decodeLog(val, want, l); err != nil {
			if len(run) == 0 {
				return nil, v.corrupt("log entry %d: %v", want, err)
			}
			break
		}
		run = append(run, l)
		size += len(val)
	}
	if len(run) == 0 {
		if err := it.Error(); err != nil {
			return nil, v.db.readErr(err)
		}
		return nil, raft.ErrLogNotFound
	}
	return run, nil
}

// StoreLog implements raft.LogStore.
func (v *view) StoreLog(l *raft.Log) error { return v.StoreLogs([]*raft.Log{l}) }

var encPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// StoreLogs implements raft.LogStore: the entries are one Pebble batch,
// committed with one sync (unless Options.NoSync). It returns only once
// they are on stable storage; a failed sync is ErrFailed.
func (v *view) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	if err := v.enter(); err != nil {
		return err
	}
	defer v.exit()
	b := v.db.pdb.NewBatch()
	defer b.Close()
	bp := encPool.Get().(*[]byte)
	key := make([]byte, 0, len(v.logLo)+8)
	for _, l := range logs {
		*bp = encodeLog((*bp)[:0], l)
		key = appendUint64(append(key[:0], v.logLo...), l.Index)
		_ = b.Set(key, *bp, nil)
	}
	if cap(*bp) <= 1<<20 {
		encPool.Put(bp)
	}
	err := v.db.commit(b, v.db.wo)
	v.ra.invalidate()
	if err != nil {
		return fmt.Errorf("storage: group %s: store log entries %d-%d: %w", v.short, logs[0].Index, logs[len(logs)-1].Index, err)
	}
	return nil
}

// DeleteRange implements raft.LogStore: it deletes entries min to max,
// inclusive, with one range deletion.
func (v *view) DeleteRange(min, max uint64) error {
	if min > max {
		return nil
	}
	if err := v.enter(); err != nil {
		return err
	}
	defer v.exit()
	b := v.db.pdb.NewBatch()
	defer b.Close()
	_ = b.DeleteRange(logKey(v.logLo, min), logUpper(v.logLo, max), nil)
	err := v.db.commit(b, v.db.wo)
	v.ra.invalidate()
	if err != nil {
		return fmt.Errorf("storage: group %s: delete log entries %d-%d: %w", v.short, min, max, err)
	}
	return nil
}

func (v *view) stableKey(key []byte) []byte {
	k := make([]byte, 0, len(v.stablePrefix)+len(key))
	return append(append(k, v.stablePrefix...), key...)
}

// Set implements raft.StableStore; it returns once the value is synced.
func (v *view) Set(key, val []byte) error {
	if err := v.enter(); err != nil {
		return err
	}
	defer v.exit()
	k := v.stableKey(key)
	b := v.db.pdb.NewBatch()
	defer b.Close()
	_ = b.Set(k, encodeChecked(k, val), nil)
	if err := v.db.commit(b, v.db.wo); err != nil {
		return fmt.Errorf("storage: group %s: set %q: %w", v.short, key, err)
	}
	return nil
}

// Get implements raft.StableStore. A key never set returns ErrKeyNotFound,
// whose text is the "not found" Raft looks for.
func (v *view) Get(key []byte) (_ []byte, err error) {
	if err := v.enter(); err != nil {
		return nil, err
	}
	defer v.exit()
	defer recoverCorruptNamed(v, &err, "stable key", key)
	k := v.stableKey(key)
	raw, found, err := v.db.get(k)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrKeyNotFound
	}
	val, err := decodeChecked(k, raw)
	if err != nil {
		return nil, v.corrupt("stable key %q: %v", key, err)
	}
	return val, nil
}

// SetUint64 implements raft.StableStore.
func (v *view) SetUint64(key []byte, val uint64) error {
	return v.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 implements raft.StableStore. A key never set returns
// ErrKeyNotFound; a value that is not 8 bytes is ErrCorrupt.
func (v *view) GetUint64(key []byte) (uint64, error) {
	b, err := v.Get(key)
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, v.corrupt("stable key %q holds %d bytes, want 8", key, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

var _ ConfigurationChecker = (*view)(nil)
