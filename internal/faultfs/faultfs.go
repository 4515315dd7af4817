// Package faultfs makes Pebble's file system fail on purpose, for tests of
// what storage and the layers above do with a failing disk.
package faultfs

import (
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// WALSyncFailure returns an injector, off until switched on, that fails
// every sync of a write-ahead log: the failed fsync after which storage.DB
// refuses everything. Wrap a file system with it (errorfs.Wrap) and open
// the DB on that (storage.Options.FS).
func WALSyncFailure() *errorfs.Toggle {
	return &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if strings.HasSuffix(op.Path, ".log") {
				return errorfs.ErrInjected
			}
		}
		return nil
	})}
}
