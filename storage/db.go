package storage

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mosaik-go/mosaik/internal/nodekey"
)

// DB is a node's durable store: one Pebble database in one data directory,
// shared by every group the node is a member of. It is a Provider whose
// stores outlive the process. Create it with Open (the zero DB is not
// usable); it is safe for concurrent use. Close it after every group using
// it has stopped.
//
// After a write fails to sync, every operation fails with ErrFailed: Pebble
// has the write in memory but not on disk, and an fsync cannot be retried
// safely. Open the directory again (in practice: restart the process) to
// recover exactly what was synced.
type DB struct {
	dir  string
	fs   vfs.FS
	opts Options // defaulted
	wo   *pebble.WriteOptions
	pdb  *pebble.DB
	lock *pebble.Lock
	node [32]byte
	log  *slog.Logger

	// mu is held for reading by every operation and for writing by Close,
	// so Close waits for operations in flight and none starts after it.
	mu     sync.RWMutex
	closed bool
	failed atomic.Pointer[error]

	regMu   sync.Mutex
	inUse   map[[32]byte]*view
	readers map[*snapReader]struct{}

	closeOnce sync.Once
	closeErr  error

	corruptMu     sync.Mutex
	corruptLogged time.Time // when noteCorruption last logged
	corruptSeen   int       // events since
}

var _ Provider = (*DB)(nil)

// Open opens the data directory dir, creating it if needed (unless
// Options.ReadOnly: then nothing on disk changes), and returns
// the node's store. opts may be nil.
//
// The first Open of a directory gives the node a random id, kept from then
// on (see NodeID). Open fails with ErrLocked while another process or
// another Open in this process holds the directory, with ErrNotDataDir for
// a directory that holds anything else, with an error wrapping
// fs.ErrPermission when the process may not create or open the lock file,
// and with ErrCorrupt when a file of the database is damaged or missing or
// the store's own records do not decode.
//
// Everything Open creates is readable by the directory's owner only:
// directories 0700, files 0600, whatever the umask; files an older build
// left wider are narrowed.
func Open(dir string, opts *Options) (*DB, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, errors.New("storage: Open: empty directory name")
	}
	fs := vfs.FS(privateFS{o.FS})
	if o.ReadOnly {
		if err := checkReadable(fs, dir); err != nil {
			return nil, err
		}
	} else {
		// Only the node's user may enter: the directory holds its private key.
		if err := fs.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("storage: create data directory %s: %w", dir, err)
		}
		if err := checkDirContents(fs, dir); err != nil {
			return nil, err
		}
	}
	lock, err := pebble.LockDirectory(dir, fs)
	var pathErr *iofs.PathError
	if err != nil && errors.As(err, &pathErr) {
		// Creating or opening the lock file failed (permission denied,
		// read-only filesystem, ...): the lock itself was never tried.
		return nil, fmt.Errorf("storage: lock %s: %w", dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s is held by another process, or by another storage.Open in this process that has not closed it (%v)", ErrLocked, dir, err)
	}
	if !o.ReadOnly {
		if err := restrictModes(fs, dir); err != nil {
			_ = lock.Close()
			return nil, fmt.Errorf("storage: make %s private: %w", dir, err)
		}
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// A damaged MANIFEST refuses Open: no log is cut then.
	merr := checkManifest(fs, dir)
	if err := errors.Join(merr, checkWALs(fs, dir, o.TruncateDamagedWAL && merr == nil, log)); err != nil {
		_ = lock.Close()
		return nil, err
	}
	db := &DB{
		dir:     dir,
		fs:      fs,
		opts:    o,
		wo:      pebble.Sync,
		lock:    lock,
		log:     log,
		inUse:   map[[32]byte]*view{},
		readers: map[*snapReader]struct{}{},
	}
	if o.NoSync {
		db.wo = pebble.NoSync
	}
	popts := &pebble.Options{
		FS:           fs,
		Lock:         lock,
		MemTableSize: uint64(o.MemTableSize),
		CacheSize:    o.CacheSize,
		Logger:       pebbleLogger{log},
		ReadOnly:     o.ReadOnly,
		// FormatWALSyncChunks and later mark in the WAL how far it was
		// synced, so a damaged record inside the synced part is reported as
		// corruption rather than taken for the torn end of the log (and
		// everything after it dropped); FormatTableFormatV6 adds a checksum
		// to each table's footer. A directory written in an older format
		// is upgraded when it is opened for writing.
		FormatMajorVersion: pebble.FormatTableFormatV6,
		// Pebble's default for a corrupt block it finds is its logger's
		// Fatalf, which would end the process from a compaction's
		// goroutine. The read that found it fails with a corruption
		// error instead (see readErr), and the event is logged here.
		EventListener: &pebble.EventListener{DataCorruption: db.noteCorruption},
	}
	pdb, err := db.openPebble(popts)
	if err != nil {
		_ = lock.Close()
		return nil, openErr(fs, dir, err)
	}
	db.pdb = pdb
	if err := db.guarded("open", db.init); err != nil {
		_ = pdb.Close()
		_ = lock.Close()
		return nil, err
	}
	return db, nil
}

// openErr classifies an error of pebble.Open on a directory that holds a
// database. Pebble marks a failed checksum as corruption, and a file its
// MANIFEST names that is missing comes back as fs.ErrNotExist; both are
// damage. A table file shorter or longer than the MANIFEST says comes back
// as a plain error, so when Pebble's error is of no known kind the table
// files are looked at: one that does not end in a table footer is damage.
// Anything else (an error of the operating system, a directory written by
// a newer Pebble or with other options) is reported as Pebble said it,
// not as damage.
func openErr(fs vfs.FS, dir string, err error) error {
	var pathErr *iofs.PathError
	var errno syscall.Errno
	switch {
	case pebble.IsCorruptionError(err), errors.Is(err, iofs.ErrNotExist):
		return fmt.Errorf("%w: open %s: %v", ErrCorrupt, dir, err)
	case errors.As(err, &pathErr), errors.As(err, &errno):
		return fmt.Errorf("storage: open %s: %w", dir, err)
	}
	if name := tableWithoutFooter(fs, dir); name != "" {
		return fmt.Errorf("%w: open %s: table %s is cut short or extended (it does not end in a table footer): %v", ErrCorrupt, dir, name, err)
	}
	return fmt.Errorf("storage: open %s: %w", dir, err)
}

// Every sstable ends in one of these (pebble/sstable: the magic numbers
// of its footer, for the Pebble, RocksDB and LevelDB formats).
var tableMagics = [][]byte{
	[]byte("\xf0\x9f\xaa\xb3\xf0\x9f\xaa\xb3"),
	[]byte("\xf7\xcf\xf4\x85\xb7\x41\xe2\x88"),
	[]byte("\x57\xfb\x80\x8b\x24\x75\x47\xdb"),
}

// tableWithoutFooter returns the name of a table file in dir that does
// not end in a table footer's magic number, or "".
func tableWithoutFooter(fs vfs.FS, dir string) string {
	names, err := fs.List(dir)
	if err != nil {
		return ""
	}
	for _, n := range names {
		if !strings.HasSuffix(n, ".sst") {
			continue
		}
		f, err := fs.Open(fs.PathJoin(dir, n))
		if err != nil {
			continue
		}
		var tail [8]byte
		st, err := f.Stat()
		if err == nil && st.Size() >= int64(len(tail)) {
			_, err = f.ReadAt(tail[:], st.Size()-int64(len(tail)))
		}
		_ = f.Close()
		if err != nil {
			continue // not readable: no evidence either way
		}
		if !slices.ContainsFunc(tableMagics, func(m []byte) bool { return bytes.Equal(tail[:], m) }) {
			return n
		}
	}
	return ""
}

// checkDirContents refuses a directory that holds files Pebble did not
// write: Open must never start an empty store inside someone else's data.
func checkDirContents(fs vfs.FS, dir string) error {
	names, err := fs.List(dir)
	if err != nil {
		return fmt.Errorf("storage: list %s: %w", dir, err)
	}
	if len(names) == 0 {
		return nil
	}
	desc, err := pebble.Peek(dir, fs)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNotDataDir, dir, err)
	}
	if desc.Exists {
		return nil
	}
	var foreign []string
	for _, n := range names {
		if !pebbleFile(n) {
			foreign = append(foreign, n)
		}
	}
	if len(foreign) == 0 {
		return nil // a first Open that stopped half-way
	}
	if len(foreign) > 3 {
		foreign = append(foreign[:3], "...")
	}
	return fmt.Errorf("%w: %s is not empty and holds no database (found %s)", ErrNotDataDir, dir, strings.Join(foreign, ", "))
}

// pebbleFile reports whether a name is one Pebble gives the files it writes.
func pebbleFile(name string) bool {
	switch {
	case name == "LOCK", name == "CURRENT", name == "archive":
		return true
	case strings.HasPrefix(name, "OPTIONS-"), strings.HasPrefix(name, "MANIFEST-"),
		strings.HasPrefix(name, "marker."), strings.HasPrefix(name, "temporary."):
		return true
	case strings.HasSuffix(name, ".log"), strings.HasSuffix(name, ".sst"), strings.HasSuffix(name, ".blob"):
		return true
	}
	return false
}

// init checks the format marker and reads the node id, or writes both into
// a new, empty database.
func (db *DB) init() error {
	marker, found, err := db.get(keyFormat)
	if err != nil {
		return err
	}
	if found {
		if m := string(marker); m != formatMarker {
			if strings.HasPrefix(m, formatPrefix) {
				return fmt.Errorf("%w: %s was written in storage format %q; this build reads %q", ErrNotDataDir, db.dir, m, formatMarker)
			}
			return fmt.Errorf("%w: %s holds a database with format marker %q", ErrNotDataDir, db.dir, m)
		}
		raw, found, err := db.get(keyNode)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%w: %s: the node id record is missing", ErrCorrupt, db.dir)
		}
		id, err := decodeChecked(keyNode, raw)
		if err == nil && len(id) != 32 {
			err = fmt.Errorf("holds %d bytes, want 32", len(id))
		}
		if err != nil {
			return fmt.Errorf("%w: %s: node id record: %v", ErrCorrupt, db.dir, err)
		}
		copy(db.node[:], id)
		return nil
	}
	it, err := db.pdb.NewIter(nil)
	if err != nil {
		return db.readErr(err)
	}
	any := it.First()
	var first []byte
	if any {
		first = append(first, it.Key()...)
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return db.readErr(err)
	}
	if any && (first[0] == nsMeta || first[0] == nsGroup) {
		return fmt.Errorf("%w: %s: the format marker is missing, yet the database holds mosaik's records (first key %x)", ErrCorrupt, db.dir, first)
	}
	if any {
		return fmt.Errorf("%w: %s holds a Pebble database that mosaik did not write (first key %q)", ErrNotDataDir, db.dir, first)
	}
	if db.opts.ReadOnly {
		return fmt.Errorf("%w: %s holds an empty database (its first Open did not finish)", ErrNotDataDir, db.dir)
	}
	if _, err := rand.Read(db.node[:]); err != nil {
		return fmt.Errorf("storage: node key: %w", err)
	}
	b := db.pdb.NewBatch()
	defer b.Close()
	_ = b.Set(keyFormat, []byte(formatMarker), nil)
	_ = b.Set(keyNode, encodeChecked(keyNode, db.node[:]), nil)
	// The identity is synced even with NoSync: a node must never come back
	// under another id with the same data.
	return db.commit(b, pebble.Sync)
}

// NodeKey returns the node's private key seed: made on the first Open of
// the directory and the same on every Open after. Use it as the network
// identity: transport.IdentityFromSeed(db.NodeKey()). It is a private key:
// never log or send it.
func (db *DB) NodeKey() [32]byte { return db.node }

// NodeID returns the id of the node whose key this directory keeps (the
// transport.PeerID of IdentityFromSeed(NodeKey())).
func (db *DB) NodeID() [32]byte { return nodekey.IDOf(db.node) }

// Err returns the ErrFailed error every operation returns since a write
// failed to sync, or nil.
func (db *DB) Err() error {
	if f := db.failed.Load(); f != nil {
		return *f
	}
	return nil
}

// Dir returns the data directory.
func (db *DB) Dir() string { return db.dir }

// Durable implements Provider: a DB's stores outlive the process.
func (db *DB) Durable() bool { return true }

// Stores implements Provider. It hands out the group's stores, reading
// back whatever the group stored before. A group's stores are handed out
// once at a time: until their Release, another call for the same group
// fails with ErrGroupInUse.
func (db *DB) Stores(group [32]byte) (Stores, error) {
	if err := db.enter(); err != nil {
		return Stores{}, err
	}
	defer db.exit()
	v := newView(db, group)
	db.regMu.Lock()
	if db.inUse[group] != nil {
		db.regMu.Unlock()
		return Stores{}, fmt.Errorf("%w: group %s", ErrGroupInUse, shortGroup(group))
	}
	db.inUse[group] = v
	db.regMu.Unlock()
	if err := db.guarded("group "+v.short+": open stores", v.open); err != nil {
		v.release()
		return Stores{}, err
	}
	return Stores{Log: v, Stable: v, Snapshots: &snapStore{v: v}, Release: v.release}, nil
}

// Groups returns the ids of the groups that have anything stored, in
// order.
func (db *DB) Groups() (_ [][32]byte, err error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.exit()
	defer db.recoverCorrupt(&err, "list groups")
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{nsGroup}, UpperBound: []byte{nsGroup + 1}})
	if err != nil {
		return nil, db.readErr(err)
	}
	defer it.Close()
	var out [][32]byte
	for ok := it.First(); ok; {
		k := it.Key()
		if len(k) < groupPrefixLen {
			return nil, fmt.Errorf("%w: key %x is too short for a group key", ErrCorrupt, k)
		}
		var g [32]byte
		copy(g[:], k[1:groupPrefixLen])
		out = append(out, g)
		next, carry := groupPrefix(g), true
		for i := len(next) - 1; i > 0 && carry; i-- {
			next[i]++
			carry = next[i] == 0
		}
		if carry {
			break
		}
		ok = it.SeekGE(next)
	}
	if err := it.Error(); err != nil {
		return nil, db.readErr(err)
	}
	return out, nil
}

// Close closes the database. Stores handed out fail with ErrClosed from
// now on, and snapshot readers still open are closed. Stop every group
// using the DB first: Raft panics when its log store fails under a running
// member. Close is idempotent; every call returns the first call's result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.mu.Lock()
		defer db.mu.Unlock()
		db.closed = true
		db.regMu.Lock()
		for r := range db.readers {
			r.abandon()
		}
		clear(db.readers)
		db.regMu.Unlock()
		err := db.closePebble()
		if lerr := db.lock.Close(); lerr != nil {
			err = errors.Join(err, fmt.Errorf("storage: release lock of %s: %w", db.dir, lerr))
		}
		db.closeErr = err
	})
	return db.closeErr
}

func (db *DB) closePebble() (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(pebbleFatal)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("storage: close %s: %s", db.dir, f.msg)
		}
	}()
	if err := db.pdb.Close(); err != nil {
		return fmt.Errorf("storage: close %s: %w", db.dir, err)
	}
	return nil
}

// enter starts an operation: it fails once the DB is closed or failed.
// Every successful enter is paired with exit.
func (db *DB) enter() error {
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return ErrClosed
	}
	if f := db.failed.Load(); f != nil {
		db.mu.RUnlock()
		return *f
	}
	return nil
}

func (db *DB) exit() { db.mu.RUnlock() }

// fail records the first failure to sync; every operation returns it from
// then on. Pebble has by then applied the batch in memory, so reads must
// stop too: they could return what is not on disk.
func (db *DB) fail(f pebbleFatal) error {
	err := fmt.Errorf("%w: %s: %s", ErrFailed, db.dir, f.msg)
	if f.err != nil {
		err = fmt.Errorf("%w: %s: %w", ErrFailed, db.dir, f.err)
	}
	if db.failed.CompareAndSwap(nil, &err) {
		db.log.Error("storage: a write failed to sync; the store refuses all operations until it is opened again", "dir", db.dir, "err", err)
	}
	return *db.failed.Load()
}

// commit commits b. Pebble treats a failed WAL write or sync as fatal and
// calls its logger's Fatalf, which exits the process by default; ours
// panics with pebbleFatal instead, and commit turns that into ErrFailed
// for the caller and every operation after.
func (db *DB) commit(b *pebble.Batch, wo *pebble.WriteOptions) (err error) {
	if db.opts.ReadOnly {
		return fmt.Errorf("%w: %s", ErrReadOnly, db.dir)
	}
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(pebbleFatal)
			if !ok {
				panic(r)
			}
			err = db.fail(f)
		}
	}()
	if err := b.Commit(wo); err != nil {
		return fmt.Errorf("storage: commit to %s: %w", db.dir, err)
	}
	return nil
}

// get returns a copy of the value stored under key. The caller has
// entered, or is Open.
func (db *DB) get(key []byte) ([]byte, bool, error) {
	v, closer, err := db.pdb.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, db.readErr(err)
	}
	out := append([]byte(nil), v...)
	_ = closer.Close()
	return out, true, nil
}

func (db *DB) readErr(err error) error {
	if pebble.IsCorruptionError(err) {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, db.dir, err)
	}
	return fmt.Errorf("storage: read %s: %w", db.dir, err)
}

// openPebble is pebble.Open, with a panic on corrupt files turned into
// ErrCorrupt.
func (db *DB) openPebble(popts *pebble.Options) (pdb *pebble.DB, err error) {
	defer db.recoverCorrupt(&err, "open")
	return pebble.Open(db.dir, popts)
}

// noteCorruption is Pebble's DataCorruption event: a block whose checksum
// failed, found by a read or a compaction. The read fails with a
// corruption error. A compaction that fails is picked again at once, and
// fails again (Pebble does not back off), so the events are logged at
// most once a minute, with their count.
func (db *DB) noteCorruption(info pebble.DataCorruptionInfo) {
	db.corruptMu.Lock()
	db.corruptSeen++
	now := time.Now()
	if !db.corruptLogged.IsZero() && now.Sub(db.corruptLogged) < time.Minute {
		db.corruptMu.Unlock()
		return
	}
	n := db.corruptSeen
	db.corruptLogged, db.corruptSeen = now, 0
	db.corruptMu.Unlock()
	db.log.Error("storage: pebble found corrupt data", "dir", db.dir, "file", info.Path, "err", info.Details, "events", n)
}

// guarded runs f, the body of a read, turning a panic into an error
// wrapping ErrCorrupt; see recoverCorrupt.
func (db *DB) guarded(what string, f func() error) (err error) {
	defer db.recoverCorrupt(&err, what)
	return f()
}

// recoverCorrupt, deferred, turns a panic into an error wrapping
// ErrCorrupt that names the operation. Pebble panics, or calls its
// logger's Fatalf (which panics with pebbleFatal), on some kinds of
// corrupt files instead of returning an error: a read must fail, not take
// the process down. The stack is logged, since a panic may also be a bug.
// A failed sync inside a read-and-write operation is recovered by commit
// first and stays ErrFailed.
func (db *DB) recoverCorrupt(err *error, what string) {
	if r := recover(); r != nil {
		*err = db.panicked(r, what)
	}
}

// panicked logs a recovered panic and returns it as ErrCorrupt.
func (db *DB) panicked(r any, what string) error {
	msg := fmt.Sprint(r)
	if f, ok := r.(pebbleFatal); ok {
		msg = f.msg
	}
	db.log.Error("storage: recovered a panic while reading stored data; reported as corrupt",
		"dir", db.dir, "op", what, "panic", msg, "stack", string(debug.Stack()))
	return fmt.Errorf("%w: %s: %s: reading the stored data panicked: %s", ErrCorrupt, db.dir, what, msg)
}

// pebbleFatal is what our Pebble logger panics with instead of exiting:
// the message, and the error among its arguments, if any.
type pebbleFatal struct {
	msg string
	err error
}

// pebbleLogger forwards Pebble's messages to slog. Fatalf panics with
// pebbleFatal: DB.commit recovers it and reports ErrFailed, and a read
// recovers it as ErrCorrupt (recoverCorrupt). A fatal error in one of
// Pebble's background goroutines (a failed MANIFEST sync during a flush)
// is not recovered and ends the process, as Pebble intends; corrupt data a
// compaction finds is not fatal (see noteCorruption).
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Info("pebble: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	f := pebbleFatal{msg: fmt.Sprintf(format, args...)}
	for _, a := range args {
		if err, ok := a.(error); ok {
			f.err = err
		}
	}
	p.l.Error("pebble: fatal: " + f.msg)
	panic(f)
}
