package storage

import (
	"errors"
	"io"
	"strings"

	"context"
	"github.com/cockroachdb/pebble/v2/vfs"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestFileModes uses a data directory on the operating system's
// filesystem, under the common umask 022, and checks that only its owner
// may read anything in it: directories 0700, files 0600 (the directory
// holds the node's private key).
func TestFileModes(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := filepath.Join(t.TempDir(), "node", "data")
	for round := range 2 { // the second Open finds the files of the first
		db, err := Open(dir, &Options{SnapshotChunkSize: 4096})
		if err != nil {
			t.Fatal(err)
		}
		st, err := db.Stores(groupID(1))
		if err != nil {
			t.Fatal(err)
		}
		base := uint64(round * 100)
		if err := st.Log.StoreLogs(mkLogs(base+1, base+100)); err != nil {
			t.Fatal(err)
		}
		if err := st.Stable.SetUint64([]byte("CurrentTerm"), 3); err != nil {
			t.Fatal(err)
		}
		writeSnapshot(t, st.Snapshots, base+50, 1, 10_000, 1000)
		if err := db.pdb.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := db.pdb.Compact(context.Background(), []byte{0}, []byte{0xff}, false); err != nil {
			t.Fatal(err)
		}
		checkModes(t, filepath.Dir(dir))
		if err := st.Release(); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		checkModes(t, filepath.Dir(dir))
		if round == 0 {
			// What an older build left: the second Open narrows it.
			loosen(t, dir)
		}
	}
}

func loosen(t *testing.T, dir string) {
	t.Helper()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.Chmod(filepath.Join(dir, n.Name()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func checkModes(t *testing.T, root string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // an obsolete file Pebble deleted meanwhile
		}
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else {
			files++
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s: mode %#o, want %#o", p, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Fatalf("only %d files under %s", files, root)
	}
}

// lockDenied is a filesystem on which creating the lock file fails as
// open(2) does for a user who may not write it: with EACCES.
type lockDenied struct{ vfs.FS }

func (l lockDenied) Lock(name string) (io.Closer, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EACCES}
}

func (l lockDenied) Unwrap() vfs.FS { return l.FS }

// TestLockPermissionDenied: a lock file the process may not open is
// reported as a permission problem, not as a directory held by another
// process. The tests run as root, whom file modes do not stop, so the
// error is injected through the filesystem; TestLockPermissionDeniedOS
// provokes the real one when not root.
func TestLockPermissionDenied(t *testing.T) {
	_, err := Open("/data", &Options{FS: lockDenied{vfs.NewMem()}})
	checkDenied(t, err)
}

func TestLockPermissionDeniedOS(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root is not denied by file modes; TestLockPermissionDenied injects the error instead")
	}
	dir := t.TempDir()
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "LOCK"), 0); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, nil)
	checkDenied(t, err)
}

func checkDenied(t *testing.T, err error) {
	t.Helper()
	if err == nil || errors.Is(err, ErrLocked) || !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("Open with a lock file it may not open: %v", err)
	}
}
