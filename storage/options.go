package storage

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Defaults and limits of Options.
const (
	DefaultRetainSnapshots   = 2
	DefaultSnapshotChunkSize = 256 << 10
	DefaultMemTableSize      = 8 << 20
	DefaultCacheSize         = 16 << 20

	MinSnapshotChunkSize = 4 << 10
	MaxSnapshotChunkSize = 16 << 20
	MinMemTableSize      = 1 << 20
	MaxMemTableSize      = 1 << 30
	MaxRetainSnapshots   = 64
)

// Options configures Open. A nil *Options is valid and means all defaults;
// so is the zero Options, field by field: a zero field takes its default,
// filled in by EnsureDefaults, the one place defaults live.
//
// Options is a plain value: Open reads it and keeps no reference to it.
type Options struct {
	// FS is the filesystem the data directory lives on. Default: the
	// operating system's (vfs.Default). Tests pass vfs.NewMem(),
	// vfs.NewCrashableMem() or an errorfs wrapper.
	FS vfs.FS

	// NoSync makes commits return before the write-ahead log reaches
	// stable storage. The zero value, false, is the safe default: every
	// batch of log entries, every term and vote, and every finished snapshot waits for
	// fsync before it is reported stored, as Raft's safety requires. With
	// NoSync a crash of the machine, or of the process, may lose the last
	// writes the node acknowledged, and with them a vote it cast.
	NoSync bool

	// ReadOnly opens an existing data directory without changing it, for
	// tools that look inside one (see DB.ReadGroup). Open then fails for a
	// missing directory or one that holds no database, and writes through
	// the stores fail with ErrReadOnly. The directory is still locked, so it
	// cannot be opened while a node uses it.
	ReadOnly bool

	// TruncateDamagedWAL lets Open cut the newest write-ahead log at a damaged
	// chunk that valid chunks of the same log follow, which Open otherwise
	// refuses with ErrCorrupt: the records from the damaged chunk on are
	// zeroed and dropped, and the cut is logged. Set it to restart a node
	// that crashed or lost power on a sound disk: such a crash may keep a
	// later page of a write that was never synced, nor acknowledged, and
	// lose an earlier one, and Open cannot tell that from damage. On a
	// failing disk the cut may drop writes the node acknowledged, its vote
	// among them; there, wipe the directory instead, and the node rejoins
	// its groups as a new member. Damage that a later chunk records as
	// synced is refused all the same. It cannot be set with ReadOnly.
	TruncateDamagedWAL bool

	// RetainSnapshots is how many finished snapshots each group keeps; older
	// ones are deleted when a new one is finished. Default 2.
	RetainSnapshots int

	// SnapshotChunkSize is the size of the pieces a snapshot is stored in.
	// It bounds the memory a snapshot being written or read needs. Default
	// 256 KiB; between 4 KiB and 16 MiB.
	SnapshotChunkSize int

	// MemTableSize is the size of Pebble's memtable. Default 8 MiB.
	MemTableSize int64

	// CacheSize is the size of Pebble's block cache. Default 16 MiB.
	CacheSize int64

	// Logger receives Pebble's informational and error messages. Default:
	// none.
	Logger *slog.Logger
}

// EnsureDefaults fills every zero field with its default and returns o; on a
// nil receiver it returns new Options holding the defaults. Invalid values
// are left alone for Validate to report.
func (o *Options) EnsureDefaults() *Options {
	if o == nil {
		o = &Options{}
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.RetainSnapshots == 0 {
		o.RetainSnapshots = DefaultRetainSnapshots
	}
	if o.SnapshotChunkSize == 0 {
		o.SnapshotChunkSize = DefaultSnapshotChunkSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	return o
}

// Validate reports every problem with o at once, joined with errors.Join,
// or nil. A nil receiver and zero fields are valid (they mean defaults);
// Validate checks the values Open would use.
func (o *Options) Validate() error {
	if o == nil {
		return nil
	}
	c := *o
	c.EnsureDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("storage: Options."+format, args...))
	}
	if c.TruncateDamagedWAL && c.ReadOnly {
		bad("TruncateDamagedWAL cannot be set with ReadOnly")
	}
	if c.RetainSnapshots < 1 || c.RetainSnapshots > MaxRetainSnapshots {
		bad("RetainSnapshots %d is outside [1, %d]", c.RetainSnapshots, MaxRetainSnapshots)
	}
	if n := c.SnapshotChunkSize; n < MinSnapshotChunkSize || n > MaxSnapshotChunkSize {
		bad("SnapshotChunkSize %d is outside [%d, %d]", n, MinSnapshotChunkSize, MaxSnapshotChunkSize)
	}
	if m := c.MemTableSize; m < MinMemTableSize || m > MaxMemTableSize {
		bad("MemTableSize %d is outside [%d, %d]", m, MinMemTableSize, MaxMemTableSize)
	} else if n := c.SnapshotChunkSize; int64(n) > m/4 {
		bad("SnapshotChunkSize %d is more than a quarter of MemTableSize %d", n, m)
	}
	if c.CacheSize < 0 {
		bad("CacheSize %d is negative", c.CacheSize)
	}
	return errors.Join(errs...)
}
