//go:build unix

package storage

import (
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// restrictFile narrows the mode of an open file to 0600 through its
// descriptor, if it is wider; it does nothing for a file without one.
func restrictFile(f vfs.File) error {
	fd := f.Fd()
	if fd == vfs.InvalidFd {
		return nil
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(fd), &st); err != nil {
		return err
	}
	if st.Mode&0o777&^privateFileMode == 0 {
		return nil
	}
	return syscall.Fchmod(int(fd), privateFileMode)
}
