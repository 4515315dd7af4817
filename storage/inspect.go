package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// checkReadable is Open's check of a directory opened with
// Options.ReadOnly: it must exist and hold a database, since nothing may
// be created.
func checkReadable(fsys vfs.FS, dir string) error {
	st, err := fsys.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: no data directory at %s: %w", dir, fs.ErrNotExist)
	}
	if err != nil {
		return fmt.Errorf("storage: %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: %s is a file, not a directory", ErrNotDataDir, dir)
	}
	if err := checkDirContents(fsys, dir); err != nil {
		return err
	}
	desc, err := pebble.Peek(dir, fsys)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNotDataDir, dir, err)
	}
	if !desc.Exists {
		return fmt.Errorf("%w: %s holds no database", ErrNotDataDir, dir)
	}
	return nil
}

// GroupReader reads what one group stored, without taking the group's
// stores: it works on a DB opened with Options.ReadOnly, and beside a
// running member of the group, whose writes it may or may not see. Get
// one from DB.ReadGroup. It is safe for concurrent use; every method fails
// with ErrClosed once the DB is closed. A corrupt record is reported with
// ErrCorrupt when it is read, not before.
type GroupReader struct{ v *view }

// ReadGroup returns a reader of the group's log, stable store and
// snapshots. A group with nothing stored reads as empty.
func (db *DB) ReadGroup(group [32]byte) *GroupReader {
	return &GroupReader{v: newView(db, group)}
}

// ID returns the group's id.
func (r *GroupReader) ID() [32]byte { return r.v.group }

// FirstIndex returns the index of the group's first log entry, or 0 when
// its log is empty.
func (r *GroupReader) FirstIndex() (uint64, error) { return r.v.FirstIndex() }

// LastIndex returns the index of the group's last log entry, or 0 when its
// log is empty.
func (r *GroupReader) LastIndex() (uint64, error) { return r.v.LastIndex() }

// Get returns the value Raft stored under key in the group's stable store
// ("CurrentTerm", "LastVoteTerm", "LastVoteCand"), or ErrKeyNotFound. The
// caller owns the slice returned.
func (r *GroupReader) Get(key []byte) ([]byte, error) { return r.v.Get(key) }

// GetUint64 returns a number Raft stored under key, or ErrKeyNotFound.
func (r *GroupReader) GetUint64(key []byte) (uint64, error) { return r.v.GetUint64(key) }

// CheckConfigurations checks the group's log as the log store's
// CheckConfigurations does (see ConfigurationChecker).
func (r *GroupReader) CheckConfigurations() error { return r.v.CheckConfigurations() }

// SnapshotInfo describes one finished snapshot of a group.
type SnapshotInfo struct {
	raft.SnapshotMeta
	// Created is when the snapshot was finished, in UTC.
	Created time.Time
}

// Snapshots returns the group's finished snapshots, newest first.
func (r *GroupReader) Snapshots() (_ []SnapshotInfo, err error) {
	v := r.v
	if err := v.enter(); err != nil {
		return nil, err
	}
	defer v.exit()
	defer v.recoverCorrupt(&err, "list snapshots")
	metas, err := v.listMetas()
	if err != nil {
		return nil, err
	}
	out := make([]SnapshotInfo, len(metas))
	for i, m := range metas {
		out[i] = SnapshotInfo{SnapshotMeta: *m.raft(), Created: m.Created}
	}
	return out, nil
}

// Entries returns the group's log entries from index from on, in order.
// It reads a few hundred entries at a time, so it holds neither the log
// in memory nor the DB busy while the loop body runs. An error (a corrupt
// entry, a closed DB) is yielded once, with a nil entry, and ends the
// sequence. Each entry yielded is the caller's.
func (r *GroupReader) Entries(from uint64) iter.Seq2[*raft.Log, error] {
	return func(yield func(*raft.Log, error) bool) {
		next := from
		for {
			run, err := r.readFrom(next)
			if err != nil {
				yield(nil, err)
				return
			}
			if len(run) == 0 {
				return
			}
			for _, l := range run {
				if !yield(l, nil) {
					return
				}
			}
			last := run[len(run)-1].Index
			if last == ^uint64(0) {
				return
			}
			next = last + 1
		}
	}
}

// readFrom reads a run of consecutive entries starting at the first one
// stored at index from or after; none when there is none.
func (r *GroupReader) readFrom(from uint64) (_ []*raft.Log, err error) {
	v := r.v
	if err := v.enter(); err != nil {
		return nil, err
	}
	defer v.exit()
	defer v.recoverCorruptIndex(&err, "read log entries from", from)
	failed, retried := uint64(0), false
	for {
		at, ok, err := v.nextIndex(from)
		if err != nil || !ok {
			return nil, err
		}
		run, err := v.readRun(at)
		if !errors.Is(err, raft.ErrLogNotFound) {
			return run, err
		}
		// The entry went away since nextIndex saw it (a member compacted
		// its log), or its value cannot be read.
		if retried && at == failed {
			return nil, v.corrupt("log entry %d cannot be read", at)
		}
		failed, retried, from = at, true, at
	}
}

// nextIndex returns the index of the first entry stored at index from or
// after. The caller has entered.
func (v *view) nextIndex(from uint64) (uint64, bool, error) {
	it, err := v.db.pdb.NewIter(&pebble.IterOptions{LowerBound: logKey(v.logLo, from), UpperBound: v.logHi})
	if err != nil {
		return 0, false, v.db.readErr(err)
	}
	var at uint64
	ok := it.First()
	if ok {
		at, err = logIndex(it.Key())
		if err != nil {
			err = v.corrupt("%v", err)
		}
	}
	if ierr := errors.Join(it.Error(), it.Close()); ierr != nil {
		return 0, false, v.db.readErr(ierr)
	}
	return at, ok && err == nil, err
}
