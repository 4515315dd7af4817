package storage

import (
	"io"
	"io/fs"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// privateFS is the filesystem Open hands Pebble, and uses itself: every
// directory it creates is 0700 and every file 0600, whatever the umask,
// because the data directory holds the node's private key. Pebble's own
// filesystem creates files 0666 less the umask (0644 under the common
// 022), so each file it creates or opens for writing has its mode
// narrowed through its descriptor before it is handed on (see
// restrictFile). Files of a filesystem without descriptors (vfs.NewMem)
// are left alone.
type privateFS struct{ vfs.FS }

const (
	privateDirMode  = 0o700
	privateFileMode = 0o600
)

func (p privateFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := p.FS.Create(name, category)
	if err != nil {
		return f, err
	}
	return restricted(f, name)
}

func (p privateFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := p.FS.OpenReadWrite(name, category, opts...)
	if err != nil {
		return f, err
	}
	return restricted(f, name)
}

func (p privateFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := p.FS.ReuseForWrite(oldname, newname, category)
	if err != nil {
		return f, err
	}
	return restricted(f, newname)
}

// MkdirAll creates directories 0700, whatever perm Pebble asks for.
func (p privateFS) MkdirAll(dir string, _ os.FileMode) error {
	return p.FS.MkdirAll(dir, privateDirMode)
}

// Lock creates the lock file through Pebble's filesystem, which does not
// hand out its descriptor; on the operating system's filesystem its mode
// is narrowed by name once it is locked.
func (p privateFS) Lock(name string) (io.Closer, error) {
	c, err := p.FS.Lock(name)
	if err != nil || !isOSFS(p.FS) {
		return c, err
	}
	if err := restrictPath(name); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

func (p privateFS) Unwrap() vfs.FS { return p.FS }

func restricted(f vfs.File, name string) (vfs.File, error) {
	if err := restrictFile(f); err != nil {
		_ = f.Close()
		return nil, &fs.PathError{Op: "chmod", Path: name, Err: err}
	}
	return f, nil
}

// isOSFS reports whether fs is, or wraps, the operating system's
// filesystem.
func isOSFS(fs vfs.FS) bool {
	for fs != nil {
		if fs == vfs.Default {
			return true
		}
		fs = fs.Unwrap()
	}
	return false
}

// restrictPath narrows the mode of an existing file to 0600 (a directory
// to 0700), if it is wider.
func restrictPath(name string) error {
	st, err := os.Lstat(name)
	if err != nil {
		return err
	}
	want := fs.FileMode(privateFileMode)
	if st.IsDir() {
		want = privateDirMode
	}
	if st.Mode().Type()&fs.ModeSymlink != 0 || st.Mode().Perm()&^want == 0 {
		return nil
	}
	return os.Chmod(name, want)
}

// restrictModes narrows the modes of what a data directory written by an
// older build holds (files 0644 under umask 022): the directory and the
// files directly in it. The caller holds the directory's lock.
func restrictModes(fsys vfs.FS, dir string) error {
	if !isOSFS(fsys) {
		return nil
	}
	if err := restrictPath(dir); err != nil {
		return err
	}
	names, err := fsys.List(dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := restrictPath(fsys.PathJoin(dir, n)); err != nil {
			return err
		}
	}
	return nil
}
